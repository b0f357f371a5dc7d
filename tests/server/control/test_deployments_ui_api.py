"""Deployments as the web UI reads and changes them: the traffic policy (without its
sticky salt), revisions, live request charts from the prediction log, the A/B report's
state, and switch / promote / rollback as an editor, recorded as theirs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.server.conftest import assert_error
from tests.server.control.ui_app import UiApp, serve_yard
from tests.ui.governance_yard import DEPLOYMENT, write_ab_test

BASE = f"/api/v1/deployments/{DEPLOYMENT}"


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UiApp]:
    yield from serve_yard(tmp_path_factory.mktemp("deployments-ui"))


def serving(policy: dict) -> tuple[str, int]:
    top = max(policy["variants"], key=lambda v: v["weight"])
    return top["model"], top["version"]


def test_the_list_and_one_deployment_show_the_policy_but_not_its_salt(ui: UiApp) -> None:
    (listed,) = ui.http.get("/api/v1/deployments", headers=ui.as_user("victor")).json()[
        "deployments"
    ]
    assert listed["name"] == DEPLOYMENT and "salt" not in listed["policy"]
    body = ui.http.get(BASE, headers=ui.as_user("victor")).json()
    assert [r["action"] for r in body["history"]][-2:] == ["switch", "create"]
    assert body["history"][0]["revision"] == body["deployment"]["current_revision"]
    assert all("salt" not in r["policy"] for r in body["history"])


def test_traffic_counts_requests_errors_and_latency_per_bucket(ui: UiApp) -> None:
    body = ui.http.get(f"{BASE}/traffic", headers=ui.as_user("victor")).json()
    assert body["step_ms"] == 60_000  # the default for an hour
    assert sum(b["requests"] for b in body["buckets"]) == 12
    assert sum(b["errors"] for b in body["buckets"]) == 1
    assert {(b["variant"], b["version"]) for b in body["buckets"]} == {("blue", 2)}
    assert all(b["latency_p99_ms"] >= b["latency_p50_ms"] for b in body["buckets"])
    coarse = ui.http.get(
        f"{BASE}/traffic", params={"window": "1d", "step": "1d"}, headers=ui.as_user("victor")
    ).json()
    assert sum(b["requests"] for b in coarse["buckets"]) == 12


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"window": "0s"}, "window"),
        ({"window": "30d"}, "window"),
        ({"window": "soon"}, "window"),
        ({"window": "7d", "step": "1s"}, "step"),
    ],
)
def test_bad_windows_are_refused_naming_the_field(ui: UiApp, params: dict, field: str) -> None:
    answer = ui.http.get(f"{BASE}/traffic", params=params, headers=ui.as_user("victor"))
    assert_error(answer, 400, "INVALID_PARAMETER_VALUE", field)


def test_recent_predictions_come_newest_first(ui: UiApp) -> None:
    body = ui.http.get(
        f"{BASE}/predictions", params={"limit": 3}, headers=ui.as_user("victor")
    ).json()
    rows = body["predictions"]
    assert [r["request_id"] for r in rows] == ["req-review-1", "req-10", "req-9"]
    assert rows[0]["outputs"] == "[1.0]" and rows[0]["variant"] == "blue"
    bad = ui.http.get(f"{BASE}/predictions", params={"limit": 0}, headers=ui.as_user("victor"))
    assert_error(bad, 400, "INVALID_PARAMETER_VALUE", "limit")


def test_the_ab_report_says_why_it_is_not_there_yet(ui: UiApp) -> None:
    body = ui.http.get(f"{BASE}/ab-report", headers=ui.as_user("victor")).json()
    assert body["available"] is False and "no logged predictions with feedback" in body["reason"]


def test_an_unknown_or_malformed_deployment_is_refused(ui: UiApp) -> None:
    assert ui.http.get("/api/v1/deployments/nope", headers=ui.as_user("victor")).status_code == 404
    bad = ui.http.get("/api/v1/deployments/Bad_Name", headers=ui.as_user("victor"))
    assert_error(bad, 400, "INVALID_PARAMETER_VALUE", "name")


@pytest.mark.parametrize("verb", ["switch", "promote", "rollback"])
def test_a_viewer_changes_nothing(ui: UiApp, verb: str) -> None:
    refused = ui.http.post(f"{BASE}/{verb}", headers=ui.as_user("victor"), json={})
    assert "needs the editor role" in assert_error(refused, 403, "PERMISSION_DENIED")["message"]


def test_an_editor_switches_and_rolls_back_as_themselves(ui: UiApp) -> None:
    before = ui.http.get(BASE, headers=ui.as_user("ed")).json()["deployment"]
    switched = ui.http.post(
        f"{BASE}/switch", headers=ui.as_user("ed"), json={"reason": "try v1 again"}
    ).json()["deployment"]
    assert switched["current_revision"] == before["current_revision"] + 1
    assert serving(switched["policy"]) != serving(before["policy"])
    newest = ui.http.get(BASE, headers=ui.as_user("ed")).json()["history"][0]
    assert (newest["action"], newest["created_by"], newest["reason"]) == (
        "switch",
        "ed",
        "try v1 again",
    )
    back = ui.http.post(
        f"{BASE}/rollback", headers=ui.as_user("ed"), json={"revision": before["current_revision"]}
    ).json()["deployment"]
    assert serving(back["policy"]) == serving(before["policy"])


@pytest.mark.parametrize(
    ("verb", "body", "field"),
    [
        ("rollback", {"revision": 0}, "revision"),
        ("rollback", {"revision": "2"}, "revision"),
        ("rollback", {"revision": 99}, "revision"),
        ("switch", {"reason": 5}, "reason"),
        ("promote", {"variant": "nope"}, None),
    ],
)
def test_bad_changes_are_refused(ui: UiApp, verb: str, body: dict, field: str | None) -> None:
    answer = ui.http.post(f"{BASE}/{verb}", headers=ui.as_user("ed"), json=body)
    assert 400 <= answer.status_code < 500, answer.text
    if field:
        assert answer.json()["field"] == field


def test_feedback_outside_an_ab_test_makes_no_report(ui: UiApp) -> None:
    from modelyard.serving.feedback import FeedbackItem, FeedbackStore, Served
    from modelyard.tracking.backends import database_for

    FeedbackStore(database_for(ui.yard.settings)).record(
        DEPLOYMENT, [FeedbackItem("req-1", value=1.0)], [Served("blue", 2, (1.0,))]
    )
    body = ui.http.get(f"{BASE}/ab-report", headers=ui.as_user("victor")).json()
    assert body["available"] is False and "variants 'a' and 'b'" in body["reason"]


def test_an_ab_test_with_feedback_has_its_report(ui: UiApp) -> None:
    name = write_ab_test(ui.yard.settings)
    body = ui.http.get(f"/api/v1/deployments/{name}/ab-report", headers=ui.as_user("victor")).json()
    assert body["available"] is True
    assert (body["control"], body["treatment"]) == ("a", "b")
    assert body["overall"]["control"]["n"] == body["overall"]["treatment"]["n"] == 20
    assert body["overall"]["treatment"]["mean"] == 1.0 and f"A/B report for {name}" in body["text"]
