"""The registry pages in Chromium: models, a model's versions and aliases, the version page
(the link MLflow's UI prints) with its card, gate report, approvals and audit history; an
approver approves with the button, the version's creator and a viewer get no working
button, and the server refuses them anyway."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from tests.server.conftest import LiveServer
from tests.ui.conftest import CleanPage, screenshot
from tests.ui.governance_yard import HOSTILE, MODEL, Yard
from tests.ui.signed_in import signed_in

pytestmark = pytest.mark.slow


def test_the_models_list_links_each_model_and_its_versions(
    browser: Any, yard_server: tuple[LiveServer, Yard]
) -> None:
    server, yard = yard_server
    with signed_in(browser, server, yard.tokens["victor"]) as clean:
        clean.page.goto(server.url + "/#/models")
        clean.page.wait_for_selector("#models")
        assert clean.page.locator("#models a", has_text=MODEL).count() == 1
        clean.page.click(f"#models a:text-is('{MODEL}')")
        clean.page.wait_for_selector("#versions")
        assert clean.page.locator("#versions tbody tr").count() == 2
        assert clean.page.locator("#audit tbody tr").count() >= 3  # registered x2, card, ...
        screenshot(clean.page, "registry-model")
        clean.check()


def test_a_viewer_sees_the_version_page_and_no_working_button(
    browser: Any, yard_server: tuple[LiveServer, Yard]
) -> None:
    server, yard = yard_server
    with signed_in(browser, server, yard.tokens["victor"]) as clean:
        clean.page.goto(server.url + f"/#/models/{MODEL}/versions/1")
        clean.page.wait_for_selector("#gate-verdict")
        assert clean.page.text_content("#gate-verdict") == "passed"
        assert "rmse 0.1 <= 0.2" in clean.page.text_content("pre.report")
        assert clean.page.locator("#verdicts tbody tr").count() == 2  # failed, then passed
        assert HOSTILE in clean.page.text_content("main")  # the card's markup shown as text
        assert clean.page.locator("main img").count() == 0
        assert clean.page.is_disabled("button[name=approve]")
        assert "Only approvers decide; you are victor (viewer)" in clean.page.text_content(
            "#why-not"
        )
        screenshot(clean.page, "registry-version-viewer")
        clean.check()
    refused = httpx.post(
        f"{server.url}/api/v1/models/{MODEL}/versions/1/approve",
        headers={"Authorization": f"Bearer {yard.tokens['victor']}"},
        json={},
    )
    assert refused.status_code == 403 and "needs the approver role" in refused.text


def test_an_approver_approves_and_the_decision_shows_with_the_audit_event(
    browser: Any, yard_server: tuple[LiveServer, Yard]
) -> None:
    server, yard = yard_server
    with signed_in(browser, server, yard.tokens["ana"]) as clean:
        clean.page.goto(server.url + f"/#/models/{MODEL}/versions/2")
        clean.page.wait_for_selector("button[name=approve]:enabled")
        clean.page.fill("input[name=comment]", "checked the card")
        clean.page.click("button[name=approve]")
        clean.page.wait_for_selector("#approvals td:text-is('ana')")
        assert "checked the card" in clean.page.text_content("#approvals")
        assert clean.page.locator("#audit td:text-is('version.approve')").count() == 1
        screenshot(clean.page, "registry-version-approved")
        clean.check()


def test_the_versions_creator_may_not_approve_it_four_eyes(
    browser: Any, yard_server: tuple[LiveServer, Yard]
) -> None:
    server, yard = yard_server
    with signed_in(browser, server, yard.tokens["alice"]) as clean:
        clean.page.goto(server.url + f"/#/models/{MODEL}/versions/1")
        clean.page.wait_for_selector("#why-not")
        assert clean.page.is_disabled("button[name=approve]")
        assert "four-eyes" in clean.page.text_content("#why-not")
        clean.check()
    refused = httpx.post(
        f"{server.url}/api/v1/models/{MODEL}/versions/1/approve",
        headers={"Authorization": f"Bearer {yard.tokens['alice']}"},
        json={},
    )
    assert refused.status_code == 403 and "four-eyes" in refused.text


@pytest.mark.parametrize(
    ("fragment", "says"),
    [
        ("#/models", "No registered models yet."),
        ("#/deployments", "No deployments yet"),
        ("#/review", "Enter the request id"),
    ],
)
def test_the_new_sections_load_empty_without_auth(
    clean_page: CleanPage, ui_server: LiveServer, fragment: str, says: str
) -> None:
    clean_page.page.goto(f"{ui_server.url}/{fragment}")
    clean_page.page.wait_for_selector(f"main :text('{says}')")
    assert clean_page.page.locator("#session button").count() == 0  # nobody to sign out
    clean_page.check()


def test_an_editor_sets_an_alias_and_moves_the_stage(
    browser: Any, yard_server: tuple[LiveServer, Yard]
) -> None:
    server, yard = yard_server
    with signed_in(browser, server, yard.tokens["ed"]) as clean:
        page = clean.page
        page.goto(server.url + f"/#/models/{MODEL}/versions/2")
        page.fill("input[name=alias]", "challenger")
        page.click("button[name=set-alias]")
        page.wait_for_selector("button[name=drop-challenger]")
        page.select_option("select[name=stage]", "Staging")
        page.click("button[name=set-stage]")
        page.wait_for_selector("#stage:text-is('Staging')")
        page.click("button[name=drop-challenger]")
        page.wait_for_selector("#audit td:text-is('alias.delete')")
        assert page.locator("button[name=drop-challenger]").count() == 0
        for action in ("alias.set", "version.stage", "alias.delete"):
            assert page.locator(f"#audit td:text-is('{action}')").count() == 1, action
        clean.check()
    answer = httpx.get(
        f"{server.url}/api/2.0/mlflow/model-versions/get",
        params={"name": MODEL, "version": "2"},
        headers={"Authorization": f"Bearer {yard.tokens['victor']}"},
    ).json()["model_version"]
    assert answer["current_stage"] == "Staging" and "challenger" not in answer.get("aliases", [])
