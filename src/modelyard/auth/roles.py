"""The four roles, in order: viewer < editor < approver < admin.

Each role includes everything below it: an approver may also edit and view. ``at_least``
is the one comparison every check uses, so the order lives in one place.

>>> at_least(Role.APPROVER, Role.EDITOR)
True
>>> at_least("viewer", "editor")
False
"""

from __future__ import annotations

from enum import StrEnum

from modelyard.errors import InvalidParameter


class Role(StrEnum):
    VIEWER = "viewer"  # read runs, experiments, models and artifacts
    EDITOR = "editor"  # also log runs, register models, upload artifacts
    APPROVER = "approver"  # also approve or reject model versions
    ADMIN = "admin"  # also manage users and tokens


#: Lowest first; a role's rank is its index.
ORDER: tuple[Role, ...] = (Role.VIEWER, Role.EDITOR, Role.APPROVER, Role.ADMIN)
_RANK = {role: rank for rank, role in enumerate(ORDER)}


def parse_role(value: str | Role) -> Role:
    """``value`` as a Role (case-insensitive); the error lists the four choices."""
    try:
        return Role(str(value).strip().lower())
    except ValueError:
        raise InvalidParameter(
            f"unknown role {value!r}; use one of {', '.join(ORDER)}", field="role"
        ) from None


def at_least(role: str | Role, needed: str | Role) -> bool:
    """Whether ``role`` includes ``needed`` (an admin is at least everything)."""
    return _RANK[parse_role(role)] >= _RANK[parse_role(needed)]


def roles_up_to(role: str | Role) -> frozenset[str]:
    """The role and every role below it, as names (what the registry's ``Actor`` holds)."""
    top = _RANK[parse_role(role)]
    return frozenset(str(r) for r in ORDER[: top + 1])


def with_article(role: str | Role) -> str:
    """'a viewer', 'an editor': for messages such as "alice is a viewer"."""
    name = str(parse_role(role))
    return f"{'an' if name[0] in 'aeiou' else 'a'} {name}"
