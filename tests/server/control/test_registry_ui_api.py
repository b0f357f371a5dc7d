"""The registry's governance as the web UI reads it: a version's card, approvals, gate
verdict and report, the policy and whether the caller may decide; approving and
rejecting as an approver (never a viewer, never the version's creator); a model's audit
trail, newest first."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.server.conftest import assert_error
from tests.server.control.ui_app import UiApp, serve_yard
from tests.ui.governance_yard import HOSTILE, MODEL

V1 = f"/api/v1/models/{MODEL}/versions/1"
V2 = f"/api/v1/models/{MODEL}/versions/2"


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UiApp]:
    yield from serve_yard(tmp_path_factory.mktemp("registry-ui"))


def test_a_versions_governance_holds_its_card_gate_and_policy(ui: UiApp) -> None:
    body = ui.http.get(f"{V1}/governance", headers=ui.as_user("victor")).json()
    assert body["card"]["intended_use"] == HOSTILE  # stored as written; the page escapes it
    assert body["created_by"] == "alice"
    gate = body["gate"]
    assert gate["verdict"]["passed"] and gate["counts"]  # it judged the files v1 holds
    assert "rmse 0.1 <= 0.2" in gate["report"]["markdown"]
    assert body["policy"]["four_eyes"] is True
    assert body["you"] == {
        "user": "victor",
        "decision": {"allowed": False, "reason": body["you"]["decision"]["reason"]},
    }
    assert "approver role is required" in body["you"]["decision"]["reason"]


def test_a_version_never_gated_says_so(ui: UiApp) -> None:
    gate = ui.http.get(f"{V2}/governance", headers=ui.as_user("victor")).json()["gate"]
    assert gate["verdict"] is None and not gate["counts"] and gate["report"] is None
    assert "no recorded quality gate" in gate["detail"]


def test_the_creator_may_not_decide_four_eyes(ui: UiApp) -> None:
    body = ui.http.get(f"{V1}/governance", headers=ui.as_user("alice")).json()
    assert not body["you"]["decision"]["allowed"]
    assert "four-eyes" in body["you"]["decision"]["reason"]
    refused = ui.http.post(f"{V1}/approve", headers=ui.as_user("alice"), json={})
    assert "four-eyes" in assert_error(refused, 403, "PERMISSION_DENIED")["message"]


@pytest.mark.parametrize("verb", ["approve", "reject"])
@pytest.mark.parametrize("user", ["victor", "ed"])
def test_viewers_and_editors_are_refused_before_the_registry(
    ui: UiApp, user: str, verb: str
) -> None:
    refused = ui.http.post(f"{V1}/{verb}", headers=ui.as_user(user), json={"reason": "x"})
    assert "needs the approver role" in assert_error(refused, 403, "PERMISSION_DENIED")["message"]


def test_an_approver_approves_and_the_trail_records_it(ui: UiApp) -> None:
    answer = ui.http.post(f"{V1}/approve", headers=ui.as_user("ana"), json={"comment": "ok"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["approval"]["decision"] == "approved"
    body = ui.http.get(f"{V1}/governance", headers=ui.as_user("ana")).json()
    assert [(a["actor"], a["decision"], a["reason"]) for a in body["approvals"]] == [
        ("ana", "approved", "ok")
    ]
    events = ui.http.get(f"/api/v1/models/{MODEL}/audit", headers=ui.as_user("victor")).json()
    newest = events["events"][0]
    assert (newest["actor"], newest["action"], newest["entity"]) == (
        "ana",
        "version.approve",
        f"model:{MODEL}/1",
    )
    assert [e["seq"] for e in events["events"]] == sorted(
        (e["seq"] for e in events["events"]), reverse=True
    )
    assert events["verified"] is None  # only on request


def test_a_rejection_needs_a_reason(ui: UiApp) -> None:
    refused = ui.http.post(f"{V2}/reject", headers=ui.as_user("ana"), json={"reason": " "})
    assert_error(refused, 400, "INVALID_PARAMETER_VALUE", "reason")
    refused = ui.http.post(f"{V2}/reject", headers=ui.as_user("ana"), json={"reason": 3})
    assert_error(refused, 400, "INVALID_PARAMETER_VALUE", "reason")
    done = ui.http.post(f"{V2}/reject", headers=ui.as_user("ana"), json={"reason": "drifts"})
    assert done.json()["approval"] == {**done.json()["approval"], "decision": "rejected"}


def test_the_audit_chain_verifies_on_request(ui: UiApp) -> None:
    body = ui.http.get(
        f"/api/v1/models/{MODEL}/audit",
        params={"verify": "1", "limit": 2},
        headers=ui.as_user("victor"),
    ).json()
    assert len(body["events"]) == 2
    assert body["verified"]["ok"] and body["verified"]["checked"] >= 2


@pytest.mark.parametrize(
    ("path", "status", "code", "field"),
    [
        (f"/api/v1/models/{MODEL}/versions/9/governance", 404, "RESOURCE_DOES_NOT_EXIST", None),
        (
            f"/api/v1/models/{MODEL}/versions/x/governance",
            400,
            "INVALID_PARAMETER_VALUE",
            "version",
        ),
        ("/api/v1/models/nope/audit", 404, "RESOURCE_DOES_NOT_EXIST", None),
        (f"/api/v1/models/{MODEL}/audit?limit=0", 400, "INVALID_PARAMETER_VALUE", "limit"),
        (f"/api/v1/models/{MODEL}/audit?limit=1e9", 400, "INVALID_PARAMETER_VALUE", "limit"),
    ],
)
def test_bad_input_is_refused_naming_the_field(
    ui: UiApp, path: str, status: int, code: str, field: str | None
) -> None:
    assert_error(ui.http.get(path, headers=ui.as_user("victor")), status, code, field)


def test_without_a_token_nothing_is_read(ui: UiApp) -> None:
    assert ui.http.get(f"{V1}/governance").status_code == 401
