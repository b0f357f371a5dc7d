"""The deployment pages in Chromium: the list with each traffic split, a deployment's
variants, live charts from the prediction log, A/B report and revision history; an
editor switches traffic (blue-green) with the button and rolls it back; a viewer gets
no buttons and the server refuses the change anyway."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from tests.server.conftest import LiveServer
from tests.ui.conftest import screenshot
from tests.ui.governance_yard import DEPLOYMENT, REQUEST_ID, Yard, write_ab_test
from tests.ui.signed_in import signed_in

pytestmark = pytest.mark.slow


def traffic(page: Any) -> list[str]:
    return [t.strip() for t in page.locator("#traffic tbody tr").all_inner_texts()]


def test_the_list_shows_each_deployments_split(
    browser: Any, yard_server: tuple[LiveServer, Yard]
) -> None:
    server, yard = yard_server
    with signed_in(browser, server, yard.tokens["victor"]) as clean:
        clean.page.goto(server.url + "/#/deployments")
        clean.page.wait_for_selector("#deployments .split-part")
        assert DEPLOYMENT in clean.page.text_content("#deployments")
        clean.check()


def test_a_viewer_sees_traffic_charts_and_history_without_buttons(
    browser: Any, yard_server: tuple[LiveServer, Yard]
) -> None:
    server, yard = yard_server
    with signed_in(browser, server, yard.tokens["victor"]) as clean:
        clean.page.goto(server.url + f"/#/deployments/{DEPLOYMENT}")
        clean.page.wait_for_selector("#live .uplot")
        assert clean.page.locator("#live .uplot").count() == 4
        assert "12 requests, 1 errors" in clean.page.text_content("#live-summary")
        assert "feedback" in clean.page.text_content("p#ab")  # nothing to compare: says why
        assert clean.page.locator("#history tbody tr").count() >= 2
        assert clean.page.locator("#recent tbody tr").count() == 12  # newest first
        assert clean.page.locator("#recent tbody tr").first.inner_text().startswith(REQUEST_ID)
        assert clean.page.locator("button[name=switch]").count() == 0
        assert "Only editors change traffic" in clean.page.text_content("#why-not")
        screenshot(clean.page, "deployment-viewer")
        clean.check()
    refused = httpx.post(
        f"{server.url}/api/v1/deployments/{DEPLOYMENT}/switch",
        headers={"Authorization": f"Bearer {yard.tokens['victor']}"},
        json={},
    )
    assert refused.status_code == 403 and "needs the editor role" in refused.text


def test_an_editor_switches_traffic_and_rolls_it_back(
    browser: Any, yard_server: tuple[LiveServer, Yard]
) -> None:
    server, yard = yard_server
    with signed_in(browser, server, yard.tokens["ed"]) as clean:
        page = clean.page
        page.goto(server.url + f"/#/deployments/{DEPLOYMENT}")
        page.wait_for_selector("button[name=switch]:enabled")
        before = traffic(page)
        serving = next(row for row in before if "100%" in row)
        revisions = page.locator("#history tbody tr").count()
        page.fill("input[name=reason]", "from the UI")
        page.click("button[name=switch]")
        page.wait_for_function(
            "n => document.querySelectorAll('#history tbody tr').length === n", arg=revisions + 1
        )
        after = traffic(page)
        assert serving not in after  # the other version now takes 100 %
        assert "from the UI" in page.locator("#history tbody tr").first.inner_text()
        assert "switch" in page.locator("#history tbody tr").first.inner_text()
        page.wait_for_selector("#live .uplot")
        screenshot(page, "deployment-switched")
        page.click("button[name=rollback]")
        page.wait_for_function(
            "n => document.querySelectorAll('#history tbody tr').length === n", arg=revisions + 2
        )
        assert traffic(page) == before
        clean.check()


def test_an_ab_test_shows_its_report(browser: Any, yard_server: tuple[LiveServer, Yard]) -> None:
    server, yard = yard_server
    name = write_ab_test(yard.settings, "exp-ui")
    with signed_in(browser, server, yard.tokens["victor"]) as clean:
        clean.page.goto(server.url + f"/#/deployments/{name}")
        clean.page.wait_for_selector("#ab table")
        overall = clean.page.locator("#ab tbody tr").first.inner_text()
        assert overall.startswith("overall") and "(n=20)" in overall and "significant" in overall
        assert clean.page.locator("#traffic tbody tr").count() == 2  # a and b
        screenshot(clean.page, "deployment-ab")
        clean.check()


def test_a_recent_prediction_links_to_its_review(
    browser: Any, yard_server: tuple[LiveServer, Yard]
) -> None:
    server, yard = yard_server
    with signed_in(browser, server, yard.tokens["victor"]) as clean:
        clean.page.goto(server.url + f"/#/deployments/{DEPLOYMENT}")
        clean.page.click(f"#recent a:text-is('{REQUEST_ID}')")
        clean.page.wait_for_selector("#answers")
        assert REQUEST_ID in clean.page.input_value("input[name=request_id]")
        clean.check()
