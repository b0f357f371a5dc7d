"""The monitoring, data and lineage pages in Chromium, over a server whose stores the real
rooms wrote (``observed_yard``): each page loads without console errors or failed
requests; a feature's reference-vs-current histogram opens; an alert's history opens; a
dataset version shows its profile; a feature view shows its freshness; clicking a lineage
node re-centres the graph on it, and the nodes link to their pages."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from tests.server.conftest import LiveServer, start_server, stop_server
from tests.ui.conftest import CleanPage, screenshot, watch
from tests.ui.governance_yard import DEPLOYMENT as GOVERNED
from tests.ui.governance_yard import Yard
from tests.ui.observed_yard import (
    DEPLOYMENT,
    HOSTILE,
    MONITOR,
    VIEW,
    Observed,
    write_observed,
)
from tests.ui.signed_in import signed_in

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def observed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, Observed]]:
    tmp = tmp_path_factory.mktemp("ui-observed")
    written = write_observed(tmp, tmp / "yard")
    url, log, process = start_server(tmp / "yard")
    try:
        yield LiveServer(url, tmp / "yard", log, process), written
    finally:
        stop_server(process)


@pytest.fixture
def page(browser: Any, observed: tuple[LiveServer, Observed]) -> Iterator[CleanPage]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        yield watch(context.new_page(), observed[0].url)
    finally:
        context.close()


def test_the_monitoring_index_lists_monitors_with_open_alerts(
    page: CleanPage, observed: tuple[LiveServer, Observed]
) -> None:
    page.page.goto(observed[0].url + "/#/monitoring")
    page.page.wait_for_selector("#monitors tbody tr")
    row = page.page.locator("#monitors tbody tr").first.inner_text()
    assert MONITOR in row and DEPLOYMENT in row and "open" in row
    page.page.click(f"#monitors a:text('{DEPLOYMENT}')")
    page.page.wait_for_selector("#drift .uplot")
    page.check()


def test_a_deployments_monitoring_shows_drift_histograms_live_metrics_and_alerts(
    page: CleanPage, observed: tuple[LiveServer, Observed]
) -> None:
    p = page.page
    p.goto(observed[0].url + f"/#/monitoring/{DEPLOYMENT}")
    p.wait_for_selector("#drift .uplot")
    p.wait_for_selector("#live .uplot")
    drift_titles = p.locator("#drift .chart").evaluate_all("els => els.map(e => e.dataset.chart)")
    assert any(t.startswith("price (") for t in drift_titles)
    live_titles = p.locator("#live .chart").evaluate_all("els => els.map(e => e.dataset.chart)")
    assert "requests" in live_titles and "mae" in live_titles
    mae = p.locator("#live .chart[data-chart='mae'] .u-legend .u-series").all_inner_texts()
    assert len([line for line in mae if "promo" in line]) == 2, mae  # a line per slice
    price = p.locator("#columns tbody tr", has_text="price")
    assert "drifted" in price.inner_text()
    price.locator("button[name=histogram]").click()
    p.wait_for_selector("#histogram svg.bars rect.bar.current")
    assert p.locator("#histogram rect.bar.reference").count() > 3
    assert "price" in p.text_content("#histogram h3")
    firing = p.locator("#alerts tbody tr", has_text="price drifted").filter(has_not_text="slice=")
    assert "firing" in firing.inner_text()
    firing.locator("button[name=alert-history]").click()
    p.wait_for_selector("#alert-history tbody tr")
    assert "firing" in p.text_content("#alert-history")
    assert "breached" in p.text_content("#evaluations")
    p.evaluate("window.scrollTo(0, 0)")  # sticky table heads drawn where they belong
    screenshot(p, "monitoring-deployment")
    page.check()


def test_data_lists_datasets_and_features_and_a_version_shows_its_profile(
    page: CleanPage, observed: tuple[LiveServer, Observed]
) -> None:
    p = page.page
    p.goto(observed[0].url + "/#/data")
    p.wait_for_selector("#datasets tbody tr")
    assert "sales" in p.text_content("#datasets")
    view_row = p.locator("#features tbody tr", has_text=VIEW)
    assert re.search(r"up to \d{4}-\d\d-\d\d [\d:]+ \(\d+ s ago\)", view_row.inner_text())
    screenshot(p, "data-index")
    p.locator("#datasets tbody tr", has_text="sales").locator("a:text('v1')").click()
    p.wait_for_selector("#profile tbody tr")
    price = p.locator("#profile tbody tr", has_text="price")
    assert price.locator("svg.bars rect.bar").count() > 3
    assert "No contract check on sales@1 yet" in p.text_content("#contracts")
    screenshot(p, "dataset-version")
    page.check()


def test_markup_in_a_dataset_is_shown_as_text(
    page: CleanPage, observed: tuple[LiveServer, Observed]
) -> None:
    p = page.page
    p.goto(observed[0].url + "/#/data/datasets/notes/versions/1")
    p.wait_for_selector("#profile tbody tr")
    assert HOSTILE in (p.text_content("main") or "")
    assert HOSTILE in (p.text_content("#profile") or "")
    assert p.locator("main img").count() == 0
    page.check()  # no dialog: nothing ran


def test_a_feature_view_shows_its_definition_and_freshness(
    page: CleanPage, observed: tuple[LiveServer, Observed]
) -> None:
    p = page.page
    p.goto(observed[0].url + "/#/data")
    p.click(f"#features a:text('{VIEW}')")
    p.wait_for_selector("#freshness")
    assert re.search(r"up to \d{4}-\d\d-\d\d [\d:]+ \(", p.text_content("#freshness") or "")
    assert (
        "units" in (p.text_content("#spec") or "") and p.locator("#versions tbody tr").count() == 1
    )
    page.check()


def test_clicking_a_lineage_node_centres_the_graph_on_it(
    page: CleanPage, observed: tuple[LiveServer, Observed]
) -> None:
    p = page.page
    p.goto(observed[0].url + "/#/lineage")
    p.click(f"#starts a:text('{DEPLOYMENT}')")  # a starting point, then 3 hops around it
    p.select_option("select[name=depth]", "3")
    p.wait_for_selector("#lineage-graph .lineage-node[data-node^='run:']")  # 3 hops up
    p.wait_for_selector("#lineage-graph .lineage-node.start")
    assert p.get_attribute("#lineage-graph .lineage-node.start", "data-node") == "deployment:shop"
    assert p.locator("#lineage-graph .lineage-edge").count() >= 3
    screenshot(p, "lineage-deployment")
    p.click("#lineage-graph .lineage-node[data-node='model:demand/1']")
    p.wait_for_function(
        "() => document.querySelector('#lineage-graph .lineage-node.start')"
        "?.dataset.node === 'model:demand/1'"
    )
    assert "node=model%3Ademand%2F1" in p.url or "node=model:demand/1" in p.url
    screenshot(p, "lineage-model")
    # Downstream of the model: the revision and the deployment; upstream: run and dataset.
    kinds = p.locator("#lineage-nodes tbody tr").all_inner_texts()
    assert any(k.startswith("dataset") for k in kinds) and any(
        k.startswith("deployment") for k in kinds
    )
    run = p.locator("#lineage-nodes tbody tr", has_text="run").locator("a.node-page")
    assert f"/runs/{observed[1].run_id}" in (run.get_attribute("href") or "")
    p.locator("#lineage-nodes tbody tr", has_text="dataset").locator("a.node-page").click()
    p.wait_for_selector("#profile tbody tr")
    page.check()


def test_under_auth_a_viewer_reads_every_page_and_no_token_reads_nothing(
    browser: Any, yard_server: tuple[LiveServer, Yard]
) -> None:
    """The governance yard's ``--auth`` server: deployment ``web`` with a prediction log but
    no monitor and no reference profile, no dataset versions, no feature definitions."""
    server, yard = yard_server
    with signed_in(browser, server, yard.tokens["victor"]) as clean:
        p = clean.page
        p.goto(server.url + f"/#/monitoring/{GOVERNED}")
        p.wait_for_selector("#live .uplot")
        assert "no monitors" in (p.text_content("main") or "")
        assert "nothing to compare" in (p.text_content("#latest") or "")
        p.goto(server.url + "/#/data")
        p.wait_for_selector("#datasets")
        assert "No dataset versions yet" in (p.text_content("#datasets") or "")
        p.goto(server.url + f"/#/lineage?node=deployment:{GOVERNED}")
        p.wait_for_selector("#lineage-graph .lineage-node.start")
        clean.check()
    for path in (
        f"/api/v1/monitoring/deployments/{GOVERNED}",
        "/api/v1/monitoring/monitors",
        "/api/v1/datasets",
        "/api/v1/features",
    ):
        assert httpx.get(server.url + path).status_code == 401, path
        signed = httpx.get(
            server.url + path, headers={"Authorization": f"Bearer {yard.tokens['victor']}"}
        )
        assert signed.status_code == 200, (path, signed.text)
