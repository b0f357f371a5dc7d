"""Reviewing a prediction in Chromium: find it by request id, see its logged inputs and
outputs, enter the right label; it is stored as feedback on the answer users got, with
the reviewer recorded (and shown); a viewer gets no form."""

from __future__ import annotations

from typing import Any

import pytest
from tests.server.conftest import LiveServer
from tests.ui.conftest import screenshot
from tests.ui.governance_yard import DEPLOYMENT, REQUEST_ID, Yard
from tests.ui.signed_in import signed_in

from modelyard.config import Settings
from modelyard.registry.audit import list_events
from modelyard.serving.feedback import FeedbackStore
from modelyard.tracking.backends import database_for

pytestmark = pytest.mark.slow


def test_an_editor_flags_a_prediction_and_it_becomes_feedback_with_the_reviewer(
    browser: Any, yard_server: tuple[LiveServer, Yard]
) -> None:
    server, yard = yard_server
    with signed_in(browser, server, yard.tokens["ed"]) as clean:
        page = clean.page
        page.goto(server.url + "/#/review")
        page.fill("input[name=request_id]", REQUEST_ID)
        page.press("input[name=request_id]", "Enter")
        page.wait_for_selector("#answers")
        logged = page.locator("table.rows tbody tr").first.inner_text()  # inputs, prediction
        assert [c.strip() for c in logged.split("\t")] == ["0", "11", "gold", "1"]
        assert "tenure" in page.text_content("table.rows thead")
        page.fill("input[name=label]", "0")
        page.click("button[name=submit-review]")
        page.wait_for_selector("#feedback td:text-is('ed')")
        assert "reviewed by ed" in page.text_content("[role=status]")
        assert "no" in page.locator("#feedback tbody tr").first.inner_text()  # 1.0 was wrong
        screenshot(page, "review-submitted")
        clean.check()
    db = database_for(Settings(home=server.home))
    frame = FeedbackStore(db).frame(DEPLOYMENT)
    mine = frame[frame.request_id == REQUEST_ID]
    assert list(mine.label) == ["0"] and list(mine.model_version) == [2]
    (event,) = [e for e in list_events(db) if e.entity == f"prediction:{REQUEST_ID}"]
    assert event.actor == "ed" and event.action == "feedback.review"


def test_a_viewer_sees_the_prediction_but_no_form(
    browser: Any, yard_server: tuple[LiveServer, Yard]
) -> None:
    server, yard = yard_server
    with signed_in(browser, server, yard.tokens["victor"]) as clean:
        clean.page.goto(server.url + f"/#/review/{REQUEST_ID}")
        clean.page.wait_for_selector("#answers")
        assert clean.page.locator("button[name=submit-review]").count() == 0
        assert "Only editors enter feedback" in clean.page.text_content("#why-not")
        clean.check()
