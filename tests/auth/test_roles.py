"""Roles are ordered viewer < editor < approver < admin, and each includes those below."""

from __future__ import annotations

import pytest

from modelyard.auth.roles import ORDER, Role, at_least, parse_role, roles_up_to, with_article
from modelyard.errors import InvalidParameter


def test_each_role_includes_exactly_the_roles_below_it():
    for i, role in enumerate(ORDER):
        for j, needed in enumerate(ORDER):
            assert at_least(role, needed) is (i >= j), (role, needed)


def test_roles_compare_by_name_too_and_case_insensitively():
    assert at_least("Admin", "approver") and not at_least("viewer", Role.EDITOR)
    assert parse_role(" EDITOR ") is Role.EDITOR


def test_an_unknown_role_names_the_four_choices():
    with pytest.raises(InvalidParameter, match="viewer, editor, approver, admin") as caught:
        parse_role("owner")
    assert caught.value.field == "role"


def test_the_registry_actor_gets_the_role_and_everything_below_it():
    assert roles_up_to("viewer") == {"viewer"}
    assert roles_up_to(Role.APPROVER) == {"viewer", "editor", "approver"}


def test_messages_read_naturally():
    assert with_article("viewer") == "a viewer" and with_article("editor") == "an editor"
    assert with_article("admin") == "an admin" and with_article("approver") == "an approver"
