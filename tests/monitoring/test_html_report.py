"""HTML reports: one self-contained file, every user-supplied name shown as text, charts
drawn from the numbers — checked in the markup and, where Chromium is installed, in a
headless browser that refuses every request leaving the file."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from modelyard.monitoring.html_report import (
    histogram_svg,
    render_drift_report,
    render_monitor_report,
    time_series_svg,
)
from modelyard.monitoring.results import ColumnDrift, DriftReport, Histogram

CHROMIUM = Path("/usr/bin/chromium")
SCRIPT_NAME = "<script>window.__pwned = 1</script>"
IMG_NAME = '<img src="x" onerror="window.__pwned = 2">'
HOUR_MS = 3_600_000
T0 = 1_765_000_000_000
WHEN = datetime(2026, 12, 6, 8, 0, tzinfo=UTC)


def numerical_histogram(bins: int) -> Histogram:
    edges = tuple(float(i) for i in range(bins + 1))
    labels = tuple(f"[{edges[i]:g}, {edges[i + 1]:g})" for i in range(bins))
    current = tuple((i + 1) / (bins * (bins + 1) / 2) for i in range(bins))
    return Histogram("numerical", labels, edges, tuple([1 / bins] * bins), current)


def categorical_histogram(*categories: str) -> Histogram:
    n = len(categories)
    return Histogram("categorical", categories, None, tuple([1 / n] * n), tuple([1 / n] * n))


def column(
    name: str,
    *,
    drifted: bool,
    histogram: Histogram | None,
    method: str = "wasserstein",
    score: float = 0.3,
    verdict: str = "mean moved 0.52 σ",
) -> ColumnDrift:
    kind = "numerical" if histogram is None else histogram.kind
    return ColumnDrift(
        column=name, kind=kind, method=method, score=score, threshold=0.1, drifted=drifted,
        values_drifted=drifted, missing_drifted=False, reference_rows=1_000, current_rows=1_200,
        reference_missing=0.0, current_missing=0.02, scores={"psi": 0.4}, verdict=verdict,
        histogram=histogram,
    )  # fmt: skip


def report(*columns: ColumnDrift, errors: dict[str, str] | None = None) -> DriftReport:
    errors = errors or {}
    drifted = sum(c.drifted for c in columns) + len(errors)
    share = drifted / max(len(columns) + len(errors), 1)
    return DriftReport(
        {c.column: c for c in columns}, share, share >= 0.5, 0.5, 1_000, 1_200, errors
    )


@pytest.fixture
def hostile_report() -> DriftReport:
    """Names from users' data that are markup: a script, an image with a handler."""
    return report(
        column("price", drifted=True, histogram=numerical_histogram(10)),
        column("qty", drifted=False, histogram=numerical_histogram(30), score=0.02),
        column(
            SCRIPT_NAME,
            drifted=True,
            method="chi2",
            score=1e-9,
            histogram=categorical_histogram("north", IMG_NAME, "(unseen)"),
            verdict=f"new category {IMG_NAME} took 15 % of rows",
        ),
        column("empty", drifted=False, histogram=None, score=math.nan, verdict="all null"),
        errors={"<b>promo</b>": "missing from the current data"},
    )


def monitor_page(latest: DriftReport | None) -> str:
    points = [(T0 + i * HOUR_MS, 0.05 + 0.01 * i) for i in range(12)]
    gap = [(T0 + i * HOUR_MS, None if i == 5 else 0.1) for i in range(12)]
    band = [(T0 + i * HOUR_MS, 10.0 + i, 9.0 + i, 11.0 + i) for i in range(12)]
    return render_monitor_report(
        title="monitor <demand>",
        drift_over_time={"drift share": points, SCRIPT_NAME: {"wasserstein": gap}},
        metrics_over_time={"mae": {"region=north": band, IMG_NAME: points}},
        latest_drift=latest,
        alerts=[
            {"rule": "input drift", "state": "firing", "started_ms": T0, "labels": [("f", "p")]},
            {"rule": SCRIPT_NAME, "state": "resolved", "value": 0.123456, IMG_NAME: "x"},
        ],
        drift_thresholds={"drift share": 0.3},
        generated_at=WHEN,
    )


# ------------------------------------------------------------------------------ markup
def test_every_user_supplied_name_is_escaped(hostile_report: DriftReport) -> None:
    for page in (
        render_drift_report(hostile_report, title=SCRIPT_NAME, generated_at=WHEN),
        monitor_page(hostile_report),
    ):
        assert "<script>window" not in page and "<img" not in page and "<b>promo" not in page
        assert "&lt;script&gt;window.__pwned = 1&lt;/script&gt;" in page
        assert "&lt;img src=&quot;x&quot; onerror=&quot;window.__pwned = 2&quot;&gt;" in page
        assert page.count("<script>") <= 1  # the page's own toggle only


def test_the_page_needs_no_network(hostile_report: DriftReport) -> None:
    page = monitor_page(hostile_report)
    assert not re.search(r"(?:https?:)?//[a-z]", page, re.IGNORECASE)
    assert not re.search(r"<(?:link|img|iframe|object|embed)\b|@import|url\(", page)
    assert not re.search(r"\bsrc=[\"']|\bhref=[\"'](?!#)", page)  # in-page anchors only
    policy = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', page)
    assert policy is not None and "default-src 'none'" in policy.group(1)
    assert "'unsafe-inline'" not in policy.group(1).split("script-src")[1].split(";")[0]


def test_a_drift_report_shows_the_verdict_the_columns_and_the_errors(
    hostile_report: DriftReport,
) -> None:
    page = render_drift_report(
        hostile_report, title="sales", reference_name="ref.csv", current_name="sales@3"
    )
    assert "dataset drifted" in page and "3 of 5" in page  # 2 columns + 1 error of 5
    assert "ref.csv (1,000 rows) against sales@3 (1,200 rows)" in page
    assert "missing from the current data" in page
    assert "1.00e-09" in page  # a tiny p-value stays readable
    assert "&lt; 0.1" in page and "≥ 0.1" in page  # p-values drift below, distances at/above
    rows = re.findall(r'<tr data-drifted="(true|false)">', page)
    assert rows == ["true", "true", "false", "false"]  # drifted columns first
    assert "no values to draw" in page  # a column without a histogram


def test_a_report_without_drift_says_so() -> None:
    calm = report(column("price", drifted=False, histogram=numerical_histogram(5), score=0.01))
    page = render_drift_report(calm, title="calm", generated_at=WHEN)
    assert "dataset not drifted" in page and "0 of 1" in page
    assert "generated 2026-12-06 08:00 UTC" in page


def test_histograms_draw_two_bars_per_bin_scaled_to_the_largest_share() -> None:
    svg = histogram_svg(numerical_histogram(10), title="price")
    assert svg.count('class="bar reference"') == 10 and svg.count('class="bar current"') == 10
    heights = [float(h) for h in re.findall(r'class="bar current"[^>]*height="([\d.]+)"', svg)]
    assert heights == sorted(heights) and heights[0] > 0  # shares 1/55 … 10/55, in order
    assert "[9, 10): reference 10.0 %, current 18.2 %" in svg  # the tooltip


def test_many_bins_get_a_few_axis_labels_and_every_tooltip() -> None:
    numerical = histogram_svg(numerical_histogram(50))
    assert numerical.count("<title>") == 100
    edges = re.findall(r'<text[^>]*text-anchor="middle">([^<]+)</text>', numerical)
    assert edges[:2] == ["0", "8"] and len(edges) <= 7  # every 8th edge value, level
    assert "rotate" not in numerical
    names = tuple(f"category {k}" for k in range(50))
    categorical = histogram_svg(categorical_histogram(*names))
    assert categorical.count("<title>") == 100
    assert 0 < len(re.findall(r"<text[^>]*rotate", categorical)) <= 16
    assert "category 49: reference 2.0 %" in categorical


def test_a_time_series_breaks_at_unknown_values_and_draws_bands_and_thresholds() -> None:
    gap = [(T0 + i * HOUR_MS, None if i in (3, 4) else float(i)) for i in range(8)]
    svg = time_series_svg({"score": gap}, threshold=2.5)
    path = re.search(r'class="line" d="([^"]+)"', svg)
    assert path is not None and path.group(1).count("M") == 2  # two runs: 0-2, 5-7
    assert svg.count('class="point"') == 6 and 'class="threshold"' in svg
    band = [(T0 + i * HOUR_MS, 1.0, 0.5, 1.5) for i in range(4)]
    assert time_series_svg({"mae": band}).count('class="band"') == 1
    assert "no values yet" in time_series_svg({"mae": [(T0, None), (T0 + 1, math.nan)]})


def test_a_monitor_report_has_alerts_and_one_chart_per_series(hostile_report) -> None:
    page = monitor_page(hostile_report)
    assert page.count('class="chart timeseries"') == 3
    assert '<td class="bad">firing</td>' in page and '<td class="good">resolved</td>' in page
    assert "2025-12-06 05:46:40 UTC" in page  # started_ms as a UTC time
    assert page.count('class="chart histogram"') == 3  # the latest window's columns
    quiet = render_monitor_report(
        title="quiet", drift_over_time={}, metrics_over_time={}, latest_drift=None, alerts=[]
    )
    assert "No alerts in this period." in quiet and "<script>" not in quiet


# ------------------------------------------------------------------------------ browser
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing (Debian package chromium): the browser checks")
    sync_api = pytest.importorskip("playwright.sync_api", reason="the dev extra's playwright")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            yield browser
        finally:
            browser.close()


def open_page(browser: Any, path: Path) -> tuple[Any, list[str], list[str]]:
    """The page, loaded from ``path`` with every request outside it refused; what the
    console said, and the requests that tried to leave the file."""
    page = browser.new_page()
    problems: list[str] = []
    left: list[str] = []

    def route(r: Any) -> None:
        if r.request.url == path.as_uri():
            r.continue_()
        else:
            left.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.on("console", lambda m: problems.append(f"{m.type}: {m.text}"))
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: left.append(r.url))
    page.goto(path.as_uri())
    return page, problems, left


def test_a_drift_report_opens_cleanly_in_chromium(
    browser: Any, hostile_report: DriftReport, tmp_path: Path
) -> None:
    path = tmp_path / "drift.html"
    path.write_text(render_drift_report(hostile_report, title=SCRIPT_NAME), encoding="utf-8")
    page, problems, left = open_page(browser, path)
    try:
        assert problems == [] and left == []
        assert page.evaluate("window.__pwned") is None  # no injected markup ran
        assert page.title() == SCRIPT_NAME
        headings = page.locator("section.feature h3").all_inner_texts()
        assert any(h.startswith(SCRIPT_NAME) for h in headings)  # shown as text
        assert page.locator("svg.chart.histogram").count() == 3
        assert page.locator("svg.chart.histogram rect.bar").count() == 2 * (10 + 30 + 3)
        box = page.locator("svg.chart.histogram").first.bounding_box()
        assert box is not None and box["width"] > 200 and box["height"] > 100
        # The toggle (the page's only script, allowed by its hash) hides calm columns.
        calm = page.locator('table.columns tr[data-drifted="false"]').first
        assert calm.is_visible()
        page.check("#only-drifted")
        assert not calm.is_visible()
        assert page.locator('section.feature[data-drifted="true"]').first.is_visible()
    finally:
        page.close()


def test_a_monitor_report_opens_cleanly_in_chromium(
    browser: Any, hostile_report: DriftReport, tmp_path: Path
) -> None:
    path = tmp_path / "monitor.html"
    path.write_text(monitor_page(hostile_report), encoding="utf-8")
    page, problems, left = open_page(browser, path)
    try:
        assert problems == [] and left == []
        assert page.evaluate("window.__pwned") is None
        assert page.locator("svg.chart.timeseries").count() == 3
        assert page.locator("svg.chart.timeseries path.line").count() == 4
        assert page.locator("svg.chart.timeseries polygon.band").count() == 1
        assert page.locator("table.alerts tr").count() == 3
        assert SCRIPT_NAME in page.locator("table.alerts").inner_text()
    finally:
        page.close()
