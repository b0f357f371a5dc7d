"""The web UI in a real browser against a real server, with runs the mlflow client logged.

What a user does: open the link the mlflow client printed, filter, sort and page the runs
table, compare runs, open artifacts. Every test ends with no console error, no failed
request and no request leaving the server (``clean_page.check()``).
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from tests.ui.conftest import CleanPage, Logged, screenshot
from tests.ui.log_runs import COMMIT, HOSTILE_NAME, LONG_POINTS, TABLE_RUNS

pytestmark = pytest.mark.slow


def rows(page: Any) -> Any:
    return page.locator("#runs tbody tr")


def test_the_link_the_mlflow_client_prints_opens_the_run_page(
    clean_page: CleanPage, logged: Logged
) -> None:
    page = clean_page.page
    link = logged.run_links["artifacts-run"]
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/#/experiments/\d+/runs/\w+", link), link
    page.goto(link)
    page.wait_for_selector("h1.run-name")
    assert page.inner_text("h1.run-name") == "artifacts-run"
    assert COMMIT in page.inner_text("code.commit")
    params = page.inner_text("section:has(h2:text('Parameters')) table")
    assert "depth" in params and "lgbm" in params
    assert "forecasting" in page.inner_text("section:has(h2:text('Tags'))")
    assert "sales-2026" in page.inner_text("#datasets")
    page.wait_for_selector(".chart[data-metric='loss'] canvas")
    page.wait_for_selector(".chart[data-metric='accuracy'] canvas")
    screenshot(page, "run")
    page.goto(link + "?workspace=default")  # mlflow adds this outside the default workspace
    page.wait_for_selector("h1.run-name:text-is('artifacts-run')")
    clean_page.check()


def test_the_experiment_link_opens_its_runs_table(clean_page: CleanPage, logged: Logged) -> None:
    page = clean_page.page
    link = next(u for u in logged.experiment_links if u != logged.experiment_links[-1])
    page.goto(link)
    page.wait_for_selector("#runs")
    assert page.inner_text("h1") == "ui-table"
    clean_page.check()


def test_a_run_named_like_html_is_shown_as_text(clean_page: CleanPage, logged: Logged) -> None:
    page = clean_page.page
    page.goto(logged.run_links[HOSTILE_NAME])
    page.wait_for_selector("h1.run-name")
    assert page.inner_text("h1.run-name") == HOSTILE_NAME
    assert HOSTILE_NAME in page.inner_text("section:has(h2:text('Parameters')) table")
    assert HOSTILE_NAME in page.inner_text("section:has(h2:text('Tags')) table")
    assert page.locator("img[src='x']").count() == 0
    page.goto(page.url.split("/runs/")[0])  # its row in the experiment's table
    page.wait_for_selector("#runs")
    assert HOSTILE_NAME in page.inner_text("#runs")
    assert page.locator("img[src='x']").count() == 0
    clean_page.check()


def test_the_runs_table_filters_sorts_and_pages(clean_page: CleanPage, logged: Logged) -> None:
    page = clean_page.page
    base = logged.run_links["table-000"].split("/runs/")[0]
    page.goto(base + "?size=25")
    page.wait_for_selector("#runs")
    assert rows(page).count() == 25
    page.click("#next-page")
    page.wait_for_selector("text=Page 2")
    page.click("#next-page")
    page.wait_for_selector("text=Page 3")
    assert rows(page).count() == TABLE_RUNS - 50
    assert page.is_disabled("#next-page")
    page.click("#prev-page")
    page.wait_for_selector("text=Page 2")
    assert rows(page).count() == 25
    page.go_back()  # the browser's own history keeps the numbering
    page.wait_for_selector("text=Page 3")
    page.go_back()
    page.wait_for_selector("text=Page 2")
    page.click("#prev-page")
    page.wait_for_selector("text=Page 1 · 25 runs")
    assert page.is_disabled("#prev-page")

    page.fill("input[name=filter]", "params.model = 'a' and metrics.score >= 40")
    page.click("#run-filter button[type=submit]")
    page.wait_for_selector("text=Page 1 · 10 runs")
    names = rows(page).locator("a.run-link").all_inner_texts()
    assert sorted(names) == [f"table-{i:03d}" for i in range(41, 60, 2)]

    page.click("button.sort[data-order='metrics.`score`']")  # highest first
    page.wait_for_selector("th.sorted:has-text('▼')")
    assert rows(page).first.locator("a.run-link").inner_text() == "table-059"
    page.click("button.sort[data-order='metrics.`score`']")  # then lowest first
    page.wait_for_selector("th.sorted:has-text('▲')")
    assert rows(page).first.locator("a.run-link").inner_text() == "table-041"

    clean_page.check()

    page.fill("input[name=filter]", "metrics.score >>> 1")  # a bad filter: the server's reason
    page.click("#run-filter button[type=submit]")
    assert "filter" in page.locator(".error").inner_text().lower()
    assert clean_page.problems == [
        "console error: Failed to load resource: the server responded with a status of 400 "
        "(Bad Request)"
    ]


def test_columns_can_be_chosen(clean_page: CleanPage, logged: Logged) -> None:
    page = clean_page.page
    page.goto(logged.run_links["table-000"].split("/runs/")[0])
    page.wait_for_selector("#runs")
    assert "param: lr" in page.inner_text("#runs thead")
    page.click("details.columns summary")
    page.uncheck("input[name=column][value='params.lr']")
    page.wait_for_function("!document.querySelector('#runs thead').innerText.includes('param: lr')")
    page.evaluate("localStorage.clear()")
    clean_page.check()


def test_compare_shows_the_params_diff_and_overlaid_charts(
    clean_page: CleanPage, logged: Logged
) -> None:
    page = clean_page.page
    page.goto(logged.run_links["table-000"].split("/runs/")[0] + "?filter=metrics.score <= 1")
    page.wait_for_selector("#runs")
    for box in page.locator("input[name=select-run]").all():
        box.check()
    page.click("#compare")
    page.wait_for_selector("#params-diff")
    diff = page.inner_text("#params-diff")
    assert "model" in diff and "lr" in diff
    page.wait_for_selector(".chart[data-metric='score'] canvas")
    legend = page.inner_text(".chart[data-metric='score'] .u-legend")
    assert "table-000" in legend and "table-001" in legend
    smoothing = page.locator("input[name=smoothing]")
    smoothing.evaluate("(e) => { e.value = '0.6'; e.dispatchEvent(new Event('input')); }")
    page.wait_for_selector(".controls span:text-is('0.6')")
    page.check("input[name=log-scale]")
    for axis, label in [("relative", "seconds"), ("timestamp", "time"), ("step", "step")]:
        page.select_option("select[name=x-axis]", axis)
        page.wait_for_selector(f".chart[data-metric='score'] .u-legend .u-label:text-is('{label}')")
    screenshot(page, "compare")
    clean_page.check()


def test_a_100k_point_history_is_down_sampled_on_the_server(
    clean_page: CleanPage, logged: Logged
) -> None:
    page = clean_page.page
    page.goto(logged.run_links["long-history"])
    page.wait_for_selector(".chart[data-metric='long'] canvas")
    note = page.inner_text(".chart[data-metric='long'] .note")
    assert f"to 1000 of {LONG_POINTS} points" in note
    clean_page.check()


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("plot.png", ".preview img.artifact-image"),
        ("notes.txt", ".preview pre.text"),
        ("predictions.csv", ".preview table.data"),
        ("report.html", ".preview iframe.artifact-html"),
    ],
)
def test_artifacts_preview(clean_page: CleanPage, logged: Logged, name: str, shown: str) -> None:
    page = clean_page.page
    page.goto(logged.run_links["artifacts-run"])
    page.click(f"button.file[data-path='{name}']")
    page.wait_for_selector(shown)
    if name == "plot.png":
        page.wait_for_function("document.querySelector('img.artifact-image').naturalWidth === 2")
    if name == "notes.txt":
        assert "<b>not bold</b>" in page.inner_text(".preview pre.text")
    if name == "predictions.csv":
        assert "20.25" in page.inner_text("table.data")
    if name == "report.html":
        frame = page.locator("iframe.artifact-html")
        assert frame.get_attribute("sandbox") == ""
        inner = page.frame_locator("iframe.artifact-html")
        assert inner.locator("#made").inner_text() == "Model report"  # the script never ran
        assert page.title() != "pwned"
        refusal = "Blocked script execution in 'about:srcdoc'"
        blocked = [p for p in clean_page.problems if refusal in p]
        assert len(blocked) == 1, clean_page.problems  # the browser refused it, and said so
        clean_page.problems.remove(blocked[0])
    clean_page.check()


def test_a_parquet_artifact_shows_its_head(clean_page: CleanPage, logged: Logged) -> None:
    page = clean_page.page
    page.goto(logged.run_links["artifacts-run"])
    page.click("button.dir:has-text('tables/')")
    page.click("button.file[data-path='tables/sample.parquet']")
    page.wait_for_selector(".preview table.data")
    assert "sku" in page.inner_text(".preview table.data")
    assert "First 2 of 2 rows" in page.inner_text(".preview")
    clean_page.check()


def test_a_running_runs_charts_follow_new_points(
    clean_page: CleanPage, ui_server: Any, logged: Logged
) -> None:
    import httpx

    with httpx.Client(base_url=ui_server.url, timeout=30) as http:
        experiment = http.get("/api/v1/experiments", params={"name_like": "ui-run"}).json()
        experiment_id = experiment["experiments"][0]["experiment_id"]
        run = http.post("/api/v1/runs", json={"experiment_id": experiment_id}).json()
        batch = f"/api/v1/runs/{run['run_id']}/batch"

        def log(steps: range) -> None:
            points = [{"key": "live", "value": s / 10, "step": s, "timestamp": 1} for s in steps]
            assert http.post(batch, json={"metrics": points}).status_code == 200

        log(range(5))
        page = clean_page.page
        page.clock.install()  # the page's timers run when the test says so
        page.goto(f"{ui_server.url}/#/experiments/{experiment_id}/runs/{run['run_id']}")
        page.wait_for_selector(".chart[data-metric='live'][data-points='5'] canvas")
        page.clock.run_for(11_000)  # nothing new: the same chart
        log(range(5, 12))
        page.clock.run_for(11_000)
        page.wait_for_selector(".chart[data-metric='live'][data-points='12'] canvas")
    clean_page.check()


def test_a_page_that_does_not_exist_says_so(clean_page: CleanPage, ui_server: Any) -> None:
    page = clean_page.page
    page.goto(f"{ui_server.url}/#/no/such/page")  # MLflow's model links: test_registry.py
    page.wait_for_selector("h1:text-is('Page not found')")
    clean_page.check()
