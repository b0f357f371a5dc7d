"""``modelyard users …`` and ``modelyard tokens …`` on the local store a server shares."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from modelyard.auth.service import AuthService
from modelyard.cli import main, tokens, users
from modelyard.config import Settings
from modelyard.tracking.backends import database_for


def auth_app() -> typer.Typer:
    """The root ``modelyard`` app once it registers ``users`` and ``tokens``; until then the
    same root callback and error handling, composed with them here."""
    if {"users", "tokens"} <= {group.name for group in main.app.registered_groups}:
        return main.app
    app = typer.Typer(cls=main.ModelyardGroup, no_args_is_help=True, add_completion=False)
    app.callback()(main.root)
    app.add_typer(users.app, name="users")
    app.add_typer(tokens.app, name="tokens")
    return app


def make_cli(home):
    runner, app = CliRunner(), auth_app()
    return lambda *args: runner.invoke(app, ["--home", str(home), *args])


def rows(result) -> list[list[str]]:
    """The body rows of a rich table (its header is drawn with heavy lines, ┃)."""
    return [
        [cell.strip() for cell in line.split("│")[1:-1]]
        for line in result.stdout.splitlines()
        if "│" in line
    ]


def test_users_are_created_listed_and_given_roles(tmp_path):
    cli = make_cli(tmp_path / "yard")
    created = cli("users", "create", "alice", "--role", "editor")
    assert created.exit_code == 0, created.output
    assert "created user 'alice' with the editor role" in created.stdout
    assert cli("users", "create", "bo").exit_code == 0  # viewer unless told
    assert cli("users", "set-role", "bo", "APPROVER").stdout.strip() == (
        "user 'bo' now has the approver role"
    )
    listed = rows(cli("users", "list"))
    assert [(r[0], r[1], r[2], r[4]) for r in listed] == [
        ("alice", "editor", "active", "0"),
        ("bo", "approver", "active", "0"),
    ]
    as_json = cli("users", "list", "--json").stdout.splitlines()
    assert '"name": "alice"' in as_json[0] and '"role": "editor"' in as_json[0]


def test_bad_input_is_one_red_line_and_a_usage_error(tmp_path):
    cli = make_cli(tmp_path / "yard")
    cli("users", "create", "alice")
    duplicate = cli("users", "create", "alice")
    assert duplicate.exit_code == 2 and "'alice' already exists" in duplicate.stderr
    bad_name = cli("users", "create", "a:b")
    assert bad_name.exit_code == 2 and "invalid user name" in bad_name.stderr
    bad_role = cli("users", "create", "bo", "--role", "owner")
    assert bad_role.exit_code == 2 and "viewer" in bad_role.stderr  # the choices are listed
    missing = cli("users", "set-role", "nobody", "viewer")
    assert missing.exit_code == 2 and "no user named 'nobody'" in missing.stderr


def test_a_token_is_printed_once_alone_on_stdout_and_works(tmp_path):
    home = tmp_path / "yard"
    cli = make_cli(home)
    cli("users", "create", "alice", "--role", "editor")
    created = cli("tokens", "create", "--user", "alice", "--label", "laptop")
    assert created.exit_code == 0, created.output
    (token,) = created.stdout.splitlines()  # fit for TOKEN=$(modelyard tokens create …)
    assert "shown only this once" in created.stderr
    auth = AuthService(database_for(Settings(home=home)))
    assert auth.authenticate(token).user == "alice"

    listed = cli("tokens", "list")
    assert token not in listed.stdout
    ((token_id, user, label, _, last_used, expires, status),) = rows(listed)
    assert token.startswith(f"myd_{token_id}_")
    assert (user, label, status) == ("alice", "laptop", "active") and last_used != "—"
    assert expires == "never" and "never expiring" in created.stderr


def test_a_token_created_with_an_expiry_lists_it_and_is_refused_once_past(tmp_path, monkeypatch):
    from datetime import datetime

    import modelyard.ids
    from modelyard.auth import service as auth_service
    from modelyard.errors import Unauthenticated

    home = tmp_path / "yard"
    cli = make_cli(home)
    cli("users", "create", "ci")
    created = cli("tokens", "create", "--user", "ci", "--label", "nightly", "--expires", "90d")
    assert created.exit_code == 0, created.output
    token = created.stdout.strip()
    auth = AuthService(database_for(Settings(home=home)))
    (info,) = auth.list_tokens("ci")
    assert info.expires_at - info.created_at == 90 * 86_400_000
    shown = datetime.fromtimestamp(info.expires_at / 1000).strftime("%Y-%m-%d %H:%M:%S")
    assert f"expiring {shown}" in created.stderr
    ((_, _, label, _, last_used, expires, status),) = rows(cli("tokens", "list"))
    assert (label, last_used, expires, status) == ("nightly", "—", shown, "active")

    assert auth.authenticate(token).user == "ci"
    monkeypatch.setattr(auth_service, "now_ms", lambda: info.expires_at + 1)
    with pytest.raises(Unauthenticated, match="expired at"):
        auth.authenticate(token)
    monkeypatch.setattr(modelyard.ids, "now_ms", lambda: info.expires_at + 1)
    ((_, _, _, _, last_used, _, status),) = rows(cli("tokens", "list"))
    assert status == "expired" and last_used != "—"


@pytest.mark.parametrize("given", ["soon", "0", "-3d"])
def test_an_expiry_that_is_not_a_positive_duration_is_a_usage_error(tmp_path, given):
    cli = make_cli(tmp_path / "yard")
    cli("users", "create", "ci")
    refused = cli("tokens", "create", "--user", "ci", "--expires", given)
    assert refused.exit_code == 2 and "--expires" in refused.stderr
    assert refused.stdout == ""  # no token was printed (or made)


def test_revoking_by_a_prefix_hides_the_token_unless_all_are_asked_for(tmp_path):
    home = tmp_path / "yard"
    cli = make_cli(home)
    cli("users", "create", "alice")
    token = cli("tokens", "create", "--user", "alice").stdout.strip()
    token_id = token.split("_")[1]
    revoked = cli("tokens", "revoke", token_id[:5])
    assert revoked.exit_code == 0, revoked.output
    assert f"revoked token {token_id} of 'alice'" in revoked.stdout
    assert rows(cli("tokens", "list")) == []
    assert rows(cli("tokens", "list", "--all", "--user", "alice"))[0][-1] == "revoked"
    unknown = cli("tokens", "revoke", "ffffffff")
    assert unknown.exit_code == 2 and "no token with id" in unknown.stderr


def test_a_disabled_user_gets_no_new_tokens_until_enabled(tmp_path):
    cli = make_cli(tmp_path / "yard")
    cli("users", "create", "alice")
    assert "disabled user 'alice'" in cli("users", "disable", "alice").stdout
    assert rows(cli("users", "list"))[0][2] == "disabled"
    refused = cli("tokens", "create", "--user", "alice")
    assert refused.exit_code == 2 and "users enable alice" in refused.stderr
    assert cli("users", "enable", "alice").exit_code == 0
    assert cli("tokens", "create", "--user", "alice").exit_code == 0


def test_they_refuse_a_tracking_uri(tmp_path, monkeypatch):
    monkeypatch.setenv("MODELYARD_TRACKING_URI", "http://127.0.0.1:5000")
    result = make_cli(tmp_path / "yard")("users", "list")
    assert result.exit_code == 2 and "server's own metadata store" in result.stderr
