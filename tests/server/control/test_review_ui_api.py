"""Reviewing a logged prediction: its answers with the inputs and outputs the log holds,
the right value stored as feedback on the variant and version that answered, the
reviewer in the audit trail (and shown beside the feedback); viewers are refused."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.server.conftest import assert_error
from tests.server.control.ui_app import UiApp, serve_yard
from tests.ui.governance_yard import DEPLOYMENT, REQUEST_ID

from modelyard.serving.feedback import FeedbackItem, FeedbackStore
from modelyard.tracking.backends import database_for

PATH = f"/api/v1/predictions/{REQUEST_ID}"


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UiApp]:
    yield from serve_yard(tmp_path_factory.mktemp("review-ui"))


def test_a_prediction_comes_with_its_logged_inputs_and_outputs(ui: UiApp) -> None:
    body = ui.http.get(PATH, headers=ui.as_user("victor")).json()
    (answer,) = body["answers"]
    assert (answer["deployment"], answer["variant"], answer["version"]) == (DEPLOYMENT, "blue", 2)
    assert answer["inputs"] == {"tenure": [11.0], "plan": ["gold"]}
    assert answer["outputs"] == [1.0] and answer["status"] == "ok"


def test_an_unknown_request_is_not_found(ui: UiApp) -> None:
    missing = ui.http.get("/api/v1/predictions/req-nope", headers=ui.as_user("victor"))
    assert_error(missing, 404, "RESOURCE_DOES_NOT_EXIST", "request_id")


def test_a_viewer_cannot_review(ui: UiApp) -> None:
    refused = ui.http.post(f"{PATH}/review", headers=ui.as_user("victor"), json={"label": "0"})
    assert_error(refused, 403, "PERMISSION_DENIED")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "label"),
        ({"label": ""}, "label"),
        ({"value": "much"}, "value"),
        ({"label": "0", "row": -1}, "row"),
        ({"label": "0", "deployment": "Bad_Name"}, "name"),
        ({"label": "0", "extra": 1}, "extra"),
    ],
)
def test_a_review_without_a_right_value_is_refused(
    ui: UiApp, body: dict, field: str | None
) -> None:
    answer = ui.http.post(f"{PATH}/review", headers=ui.as_user("ed"), json=body)
    assert answer.status_code == 400, answer.text
    if field:
        assert answer.json()["field"] == field


def test_a_review_becomes_feedback_with_the_reviewer(ui: UiApp) -> None:
    answer = ui.http.post(f"{PATH}/review", headers=ui.as_user("ed"), json={"label": "0"})
    assert answer.status_code == 200, answer.text
    (stored,) = answer.json()["feedback"]
    assert (stored["label"], stored["correct"], stored["reviewer"]) == ("0", False, "ed")
    assert (stored["variant"], stored["model_version"]) == ("blue", 2)
    db = database_for(ui.yard.settings)
    frame = FeedbackStore(db).frame(DEPLOYMENT)
    assert list(frame[frame.request_id == REQUEST_ID].label) == ["0"]
    trail = ui.http.get("/api/v1/models/churn/audit", headers=ui.as_user("victor")).json()
    newest = trail["events"][0]
    assert (newest["actor"], newest["action"], newest["entity"]) == (
        "ed",
        "feedback.review",
        f"prediction:{REQUEST_ID}",
    )


def test_machine_feedback_names_no_reviewer(ui: UiApp) -> None:
    db = database_for(ui.yard.settings)
    FeedbackStore(db).record(DEPLOYMENT, [FeedbackItem("req-3", value=1.0)], [None])
    (stored,) = ui.http.get("/api/v1/predictions/req-3", headers=ui.as_user("victor")).json()[
        "feedback"
    ]
    assert stored["value"] == 1.0 and stored["reviewer"] is None
