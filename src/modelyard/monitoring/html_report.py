"""Drift and monitor reports as one self-contained HTML file: open it anywhere, offline.

Everything is inline: the CSS, the charts (SVG drawn here, from the numbers — no charting
library, no CDN, no web font) and one short script (the "only drifted columns" toggle).
A Content-Security-Policy in the page allows no network request at all and runs only that
script, by its hash: column names, slice values and alert texts come from users' data, and
every one is escaped; the policy is the second wall if an escape were ever missed.

Two pages:

* ``render_drift_report(report, title=...)`` — what ``modelyard drift --html`` writes: the
  dataset's verdict (share of columns drifted against the threshold), a table of columns
  (method, score, threshold, verdict, missing rates), columns that could not be compared,
  and per column a reference-vs-current histogram (``ColumnDrift.histogram``).
* ``render_monitor_report(title=..., drift_over_time=..., metrics_over_time=...,
  latest_drift=..., alerts=...)`` — what ``modelyard monitor report`` writes: time-series
  charts of drift scores and live metrics, the alerts, and the latest window's drift as
  above.

Time series come as ``ChartData``: chart title → either one series or ``{line name →
series}`` (one chart per metric with a line per slice, say). A series is a sequence of
``(timestamp_ms, value)`` points, or ``(timestamp_ms, value, low, high)`` to draw a
confidence band; a ``None`` or non-finite value is a gap in the line, never a zero.

>>> from modelyard.monitoring.results import DriftReport
>>> page = render_drift_report(
...     DriftReport({}, 0.0, False, 0.5, 10, 10, {"price": "missing from the current data"}),
...     title="<b>sales</b>",
... )
>>> "&lt;b&gt;sales&lt;/b&gt;" in page and "<b>sales" not in page
True
"""

from __future__ import annotations

import base64
import hashlib
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from html import escape
from typing import Any, TypeAlias

from modelyard.monitoring.results import CATEGORICAL, ColumnDrift, DriftReport, Histogram

#: ``(timestamp_ms, value)`` or ``(timestamp_ms, value, ci_low, ci_high)``.
Point: TypeAlias = tuple[int, float | None] | tuple[int, float | None, float | None, float | None]
Series: TypeAlias = Sequence[Point]
#: Chart title → one series, or line name → series.
ChartData: TypeAlias = Mapping[str, Series | Mapping[str, Series]]

#: Methods whose score is a p-value: drifted *below* the threshold (the others at or above).
P_VALUE_METHODS = frozenset({"ks", "chi2"})
REFERENCE_COLOUR = "#7f96ad"
CURRENT_COLOUR = "#e07b39"
PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
)  # fmt: skip
#: Bars beyond this many labels get every k-th label only, so the axis stays readable.
MAX_AXIS_LABELS = 16
#: Numerical bins: this many edge values under the axis at most (they are written level).
EDGE_LABELS = 7
LABEL_CHARS = 12

_STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1d232a;
  max-width:72rem;margin:1.5rem auto;padding:0 1rem}
h1{font-size:1.5rem;margin:.2rem 0}h2{font-size:1.15rem;margin:1.8rem 0 .6rem}
h3{font-size:1rem;margin:0 0 .3rem}.sub{color:#5b6670}
.cards{display:flex;gap:.8rem;flex-wrap:wrap;margin:1rem 0}
.card{border:1px solid #d5dbe1;border-radius:6px;padding:.6rem .9rem;min-width:10rem}
.card b{display:block;font-size:1.25rem}
.bad{color:#b3261e}.good{color:#1e7b34}.warn{color:#9a6700}.muted{color:#5b6670}
table{border-collapse:collapse;width:100%;margin:.4rem 0}
th,td{border-bottom:1px solid #e3e7eb;padding:.3rem .5rem;text-align:left;vertical-align:top}
th{background:#f3f5f7;font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(21rem,1fr));gap:1rem}
.panel{border:1px solid #d5dbe1;border-radius:6px;padding:.6rem .8rem}
svg.chart{width:100%;height:auto;display:block}svg.chart text{font-size:11px;fill:#5b6670}
.legend{display:flex;flex-wrap:wrap;gap:.3rem .9rem;font-size:12px;color:#5b6670}
.swatch{display:inline-block;width:.8rem;height:.8rem;border-radius:2px;margin-right:.3rem;
  vertical-align:-1px}
.hidden{display:none}label.toggle{font-size:13px;color:#5b6670}
"""
#: The page's only script: hide the columns that did not drift.
_SCRIPT = (
    "document.getElementById('only-drifted').addEventListener('change',function(e){"
    "document.querySelectorAll('[data-drifted=\"false\"]').forEach(function(n){"
    "n.classList.toggle('hidden',e.target.checked);});});"
)


# ------------------------------------------------------------------------------ the pages
def render_drift_report(
    report: DriftReport,
    *,
    title: str,
    reference_name: str | None = None,
    current_name: str | None = None,
    generated_at: datetime | None = None,
) -> str:
    """The page ``modelyard drift --html`` writes, as a string (UTF-8 when saved).

    ``reference_name`` and ``current_name`` say what was compared (a path, ``sales@3``);
    ``generated_at`` defaults to now.
    """
    subtitle = _compared(report, reference_name, current_name)
    body = [_summary(report), _drift_sections(report)]
    return _page(title, subtitle, body, generated_at, script=bool(report.columns))


def render_monitor_report(
    *,
    title: str,
    drift_over_time: ChartData,
    metrics_over_time: ChartData,
    latest_drift: DriftReport | None,
    alerts: Sequence[Mapping[str, Any]],
    drift_thresholds: Mapping[str, float] | None = None,
    subtitle: str = "",
    generated_at: datetime | None = None,
) -> str:
    """The page ``modelyard monitor report`` writes.

    ``drift_over_time``: per feature (or for the dataset's drift share), the score of
    each evaluation; ``drift_thresholds`` draws a chart's threshold as a dashed line (by
    chart title). ``metrics_over_time``: per metric, a line per slice, with confidence
    bands when the points carry them. ``alerts``: one mapping per alert, shown as a table
    with the keys as columns in first-seen order (``*_ms`` integers read as UTC times, a
    ``state`` of firing / pending / resolved coloured). ``latest_drift``: the latest
    window's report, drawn as ``render_drift_report`` draws it.
    """
    thresholds = drift_thresholds or {}
    body = [
        "<h2>Alerts</h2>",
        _alerts_table(alerts),
        "<h2>Drift over time</h2>",
        _chart_grid(drift_over_time, thresholds),
        "<h2>Live metrics over time</h2>",
        _chart_grid(metrics_over_time, {}),
    ]
    if latest_drift is not None:
        body += [
            "<h2>Latest window: drift</h2>",
            _summary(latest_drift),
            _drift_sections(latest_drift),
        ]
    script = latest_drift is not None and bool(latest_drift.columns)
    return _page(title, subtitle, body, generated_at, script=script)


def _page(
    title: str, subtitle: str, body: list[str], generated_at: datetime | None, *, script: bool
) -> str:
    when = (generated_at or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC")
    digest = base64.b64encode(hashlib.sha256(_SCRIPT.encode()).digest()).decode()
    policy = (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
        f"script-src 'sha256-{digest}'; base-uri 'none'; form-action 'none'"
    )
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{policy}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f'<p class="sub">{escape(subtitle)}{" · " if subtitle else ""}generated {when}</p>',
        *body,
    ]
    if script:
        parts.append(f"<script>{_SCRIPT}</script>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


# ------------------------------------------------------------------------------ drift
def _compared(report: DriftReport, reference: str | None, current: str | None) -> str:
    ref = f"{reference} ({report.reference_rows:,} rows)" if reference else None
    cur = f"{current} ({report.current_rows:,} rows)" if current else None
    ref = ref or f"reference: {report.reference_rows:,} rows"
    cur = cur or f"current: {report.current_rows:,} rows"
    return f"{ref} against {cur}"


def _summary(report: DriftReport) -> str:
    compared = len(report.columns) + len(report.errors)
    drifted = len(report.drifted_columns)
    verdict = "dataset drifted" if report.dataset_drifted else "dataset not drifted"
    tone = "bad" if report.dataset_drifted else "good"
    rule = "≥" if report.dataset_drifted else "<"
    shares = f"{format_share(report.share_drifted)} {rule} {format_share(report.share_threshold)}"
    cards = [
        (verdict, f"share drifted {shares}", tone),
        (f"{drifted} of {compared}", "columns drifted", "bad" if drifted else "good"),
        (f"{report.reference_rows:,}", "reference rows", ""),
        (f"{report.current_rows:,}", "current rows", ""),
    ]  # fmt: skip
    html = ['<div class="cards">']
    for value, label, cls in cards:
        html.append(f'<div class="card"><b class="{cls}">{escape(value)}</b>{escape(label)}</div>')
    html.append("</div>")
    if report.errors:
        html.append('<h2>Columns that could not be compared</h2><table class="errors">')
        html.append("<tr><th>column</th><th>reason</th></tr>")
        for name, reason in report.errors.items():
            html.append(f'<tr><td>{escape(name)}</td><td class="bad">{escape(reason)}</td></tr>')
        html.append("</table>")
    return "\n".join(html)


def _drift_sections(report: DriftReport) -> str:
    if not report.columns:
        return '<p class="muted">No column could be compared.</p>'
    # Drifted columns first, each group in the report's order.
    ordered = sorted(report.columns.values(), key=lambda c: not c.drifted)
    html = [
        "<h2>Columns</h2>",
        '<label class="toggle"><input type="checkbox" id="only-drifted"> '
        "only drifted columns</label>",
        '<table class="columns"><tr><th></th><th>column</th><th>kind</th><th>method</th>'
        '<th class="num">score</th><th class="num">threshold</th><th>verdict</th>'
        '<th class="num">missing (ref → cur)</th></tr>',
    ]
    for index, col in enumerate(ordered):
        html.append(_column_row(index, col))
    html.append("</table><h2>Distributions: reference against current</h2>")
    html.append(_legend([("reference", REFERENCE_COLOUR), ("current", CURRENT_COLOUR)]))
    html.append('<div class="grid">')
    for index, col in enumerate(ordered):
        html.append(_column_panel(index, col))
    html.append("</div>")
    return "\n".join(html)


def _column_row(index: int, col: ColumnDrift) -> str:
    mark = '<span class="bad">✗ drifted</span>' if col.drifted else '<span class="good">✓</span>'
    rule = "<" if col.method in P_VALUE_METHODS else "≥"
    missing = f"{format_share(col.reference_missing)} → {format_share(col.current_missing)}"
    missing_cls = "num bad" if col.missing_drifted else "num"
    return (
        f'<tr data-drifted="{str(col.drifted).lower()}"><td>{mark}</td>'
        f'<td><a href="#col-{index}">{escape(col.column)}</a></td><td>{escape(col.kind)}</td>'
        f"<td>{escape(col.method)}</td>"
        f'<td class="num">{escape(format_number(col.score))}</td>'
        f'<td class="num">{escape(rule)} {escape(format_number(col.threshold))}</td>'
        f"<td>{escape(col.verdict)}</td>"
        f'<td class="{missing_cls}">{escape(missing)}</td></tr>'
    )


def _column_panel(index: int, col: ColumnDrift) -> str:
    tone = "bad" if col.drifted else "good"
    flag = str(col.drifted).lower()
    histogram = col.histogram
    if histogram is not None and histogram.labels:
        chart = histogram_svg(histogram, title=col.column)
        count = len(histogram.labels)
        bins = f"{count} {'categories' if histogram.kind == CATEGORICAL else 'bins'}"
    else:
        chart, bins = '<p class="muted">no values to draw</p>', "no histogram"
    return (
        f'<section class="panel feature" id="col-{index}" data-drifted="{flag}">'
        f'<h3>{escape(col.column)} <span class="{tone}">'
        f"{'drifted' if col.drifted else 'not drifted'}</span></h3>"
        f'<p class="sub">{escape(col.verdict)} · {bins}</p>{chart}</section>'
    )


def _alerts_table(alerts: Sequence[Mapping[str, Any]]) -> str:
    if not alerts:
        return '<p class="muted">No alerts in this period.</p>'
    keys: list[str] = []
    for alert in alerts:
        keys += [str(k) for k in alert if str(k) not in keys]
    html = ['<table class="alerts"><tr>', *(f"<th>{escape(k)}</th>" for k in keys), "</tr>"]
    for alert in alerts:
        html.append("<tr>")
        for key in keys:
            value = alert.get(key)
            cls = ""
            if key == "state" and isinstance(value, str):
                cls = {"firing": "bad", "pending": "warn", "resolved": "good"}.get(value, "")
            html.append(f'<td class="{cls}">{escape(_cell(key, value))}</td>')
        html.append("</tr>")
    html.append("</table>")
    return "".join(html)


def _cell(key: str, value: Any) -> str:
    if value is None:
        return "—"
    if key.endswith("_ms") and isinstance(value, int) and not isinstance(value, bool):
        return _time(value, "%Y-%m-%d %H:%M:%S UTC")
    if isinstance(value, float):
        return format_number(value)
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(
            "=".join(str(p) for p in v) if isinstance(v, (list, tuple)) else str(v) for v in value
        )
    return str(value)


# ------------------------------------------------------------------------------ charts
def histogram_svg(histogram: Histogram, *, title: str = "", width: int = 420) -> str:
    """Reference and current shares side by side per bin (or category), as inline SVG.

    Each bar carries a tooltip with its bin and both shares. Under the axis, numerical bins
    are labelled by their edges (a few of them, level), categories by name (rotated, every
    k-th when there are many); the tooltips keep every label whole.
    """
    n = len(histogram.labels)
    edges = (
        histogram.edges if histogram.edges is not None and len(histogram.edges) == n + 1 else None
    )
    height, right, top = 220, 8, 10
    left, bottom = (44, 30) if edges is not None else (64, 64)
    plot_w, plot_h = width - left - right, height - top - bottom
    shares = [v for v in (*histogram.reference, *histogram.current) if _finite(v)]
    ymax = _nice_ceiling(max(shares, default=0.0) or 1.0)
    group = plot_w / max(n, 1)
    bar = group * 0.4
    parts = [_svg_open(width, height, "histogram", title)]
    parts += _y_axis(left, top, plot_w, plot_h, ymax, percent=True)
    for i, label in enumerate(histogram.labels):
        x0 = left + i * group + group * 0.1
        ref, cur = histogram.reference[i], histogram.current[i]
        tip = f"{label}: reference {format_share(ref)}, current {format_share(cur)}"
        for offset, value, colour, cls in (
            (0.0, ref, REFERENCE_COLOUR, "reference"),
            (bar, cur, CURRENT_COLOUR, "current"),
        ):
            h = plot_h * (value / ymax) if _finite(value) else 0.0
            parts.append(
                f'<rect class="bar {cls}" x="{x0 + offset:.1f}" y="{top + plot_h - h:.1f}" '
                f'width="{bar:.1f}" height="{h:.1f}" fill="{colour}">'
                f"<title>{escape(tip)}</title></rect>"
            )
    axis_y = top + plot_h
    if edges is not None:
        step = max(1, math.ceil((n + 1) / EDGE_LABELS))
        for i in range(0, n + 1, step):
            parts.append(
                f'<text x="{left + i * group:.1f}" y="{axis_y + 14:.1f}" text-anchor="middle">'
                f"{escape(format_number(edges[i]))}</text>"
            )
    else:
        step = max(1, math.ceil(n / MAX_AXIS_LABELS))
        for i in range(0, n, step):
            cx, cy = left + (i + 0.5) * group, axis_y + 12
            parts.append(
                f'<text x="{cx:.1f}" y="{cy:.1f}" text-anchor="end" '
                f'transform="rotate(-35 {cx:.1f} {cy:.1f})">'
                f"{escape(_short(histogram.labels[i]))}</text>"
            )
    parts.append("</svg>")
    return "".join(parts)


def time_series_svg(
    lines: Mapping[str, Series],
    *,
    title: str = "",
    threshold: float | None = None,
    percent: bool = False,
    width: int = 420,
) -> str:
    """Lines over time (UTC), one colour per line in ``lines``' order; points carry
    tooltips; ``None`` values break a line; a 4-tuple point's ``(low, high)`` is drawn as
    a shaded band; ``threshold`` as a dashed line."""
    height, left, right, top, bottom = 200, 48, 10, 10, 36
    plot_w, plot_h = width - left - right, height - top - bottom
    times = [int(p[0]) for series in lines.values() for p in series]
    values = [
        float(v)
        for series in lines.values()
        for p in series
        for v in (p[1], *p[2:4])
        if v is not None and _finite(v)
    ]
    if threshold is not None and _finite(threshold):
        values.append(threshold)
    parts = [_svg_open(width, height, "timeseries", title)]
    if not times or not values:
        parts.append(
            f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle">no values yet</text>'
            "</svg>"
        )
        return "".join(parts)
    t0, t1 = min(times), max(times)
    if t0 == t1:
        t0, t1 = t0 - 1_800_000, t1 + 1_800_000
    low, high = min(0.0, min(values)), max(values)
    if high <= low:
        high = low + 1.0
    ymax = _nice_ceiling(high) if low == 0 else high + (high - low) * 0.05

    def x(ts: int) -> float:
        return left + plot_w * (ts - t0) / (t1 - t0)

    def y(v: float) -> float:
        return top + plot_h * (1 - (v - low) / (ymax - low))

    parts += _y_axis(left, top, plot_w, plot_h, ymax, percent=percent, low=low)
    parts += _time_axis(t0, t1, x, top + plot_h, height)
    if threshold is not None and _finite(threshold):
        parts.append(
            f'<line class="threshold" x1="{left}" x2="{left + plot_w}" y1="{y(threshold):.1f}" '
            f'y2="{y(threshold):.1f}" stroke="#b3261e" stroke-dasharray="4 3"/>'
        )
    for index, (name, series) in enumerate(lines.items()):
        colour = PALETTE[index % len(PALETTE)]
        points = sorted(series, key=lambda p: p[0])
        parts += _band(points, x, y, colour)
        parts.append(_path(points, x, y, colour))
        for p in points:
            value = p[1]
            if value is None or not _finite(value):
                continue
            tip = f"{name} at {_time(int(p[0]), '%Y-%m-%d %H:%M UTC')}: {format_number(value)}"
            if len(p) == 4 and p[2] is not None and p[3] is not None:
                tip += f" [{format_number(p[2])}, {format_number(p[3])}]"
            parts.append(
                f'<circle class="point" cx="{x(int(p[0])):.1f}" cy="{y(float(value)):.1f}" r="2.5" '
                f'fill="{colour}"><title>{escape(tip)}</title></circle>'
            )
    parts.append("</svg>")
    return "".join(parts)


def _chart_grid(charts: ChartData, thresholds: Mapping[str, float]) -> str:
    if not charts:
        return '<p class="muted">No evaluations in this period.</p>'
    html = ['<div class="grid">']
    for name, data in charts.items():
        lines = data if isinstance(data, Mapping) else {name: data}
        legend = (
            _legend([(line, PALETTE[i % len(PALETTE)]) for i, line in enumerate(lines)])
            if len(lines) > 1 or lines.keys() != {name}
            else ""
        )
        chart = time_series_svg(lines, title=name, threshold=thresholds.get(name))
        html.append(f'<section class="panel"><h3>{escape(name)}</h3>{chart}{legend}</section>')
    html.append("</div>")
    return "\n".join(html)


def _band(points: Sequence[Point], x: Any, y: Any, colour: str) -> list[str]:
    """The confidence band over each run of consecutive points with finite bounds."""
    bands: list[str] = []
    run: list[tuple[int, float, float]] = []
    for p in [*points, None]:
        low = p[2] if p is not None and len(p) == 4 else None
        high = p[3] if p is not None and len(p) == 4 else None
        if (
            p is not None
            and low is not None
            and high is not None
            and _finite(low)
            and _finite(high)
        ):
            run.append((int(p[0]), float(low), float(high)))
            continue
        if len(run) > 1:
            upper = [f"{x(ts):.1f},{y(hi):.1f}" for ts, _, hi in run]
            lower = [f"{x(ts):.1f},{y(lo):.1f}" for ts, lo, _ in reversed(run)]
            bands.append(
                f'<polygon class="band" points="{" ".join(upper + lower)}" fill="{colour}" '
                'fill-opacity="0.15" stroke="none"/>'
            )
        run = []
    return bands


def _path(points: Sequence[Point], x: Any, y: Any, colour: str) -> str:
    commands, pen_down = [], False
    for p in points:
        value = p[1]
        if value is None or not _finite(value):
            pen_down = False
            continue
        commands.append(f"{'L' if pen_down else 'M'}{x(int(p[0])):.1f},{y(float(value)):.1f}")
        pen_down = True
    return (
        f'<path class="line" d="{" ".join(commands)}" fill="none" stroke="{colour}" '
        'stroke-width="1.6"/>'
    )


def _svg_open(width: int, height: int, kind: str, title: str) -> str:
    label = f"{kind}: {title}" if title else kind
    return (
        f'<svg class="chart {kind}" role="img" '
        f'viewBox="0 0 {width} {height}" aria-label="{escape(label)}">'
    )


def _y_axis(
    left: float, top: float, plot_w: float, plot_h: float, ymax: float, *, percent: bool,
    low: float = 0.0,
) -> list[str]:  # fmt: skip
    parts = []
    for k in range(5):
        value = low + (ymax - low) * k / 4
        ty = top + plot_h * (1 - k / 4)
        text = format_share(value) if percent else format_number(value)
        parts.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{ty:.1f}" y2="{ty:.1f}" '
            f'stroke="{"#9aa5b1" if k == 0 else "#e3e7eb"}"/>'
            f'<text x="{left - 4}" y="{ty + 3:.1f}" text-anchor="end">{escape(text)}</text>'
        )
    return parts


def _time_axis(t0: int, t1: int, x: Any, axis_y: float, height: int) -> list[str]:
    span_days = (t1 - t0) / 86_400_000
    fmt = "%m-%d %H:%M" if span_days <= 2 else "%Y-%m-%d"
    parts = []
    for k in range(3):  # three labels fit a narrow chart without overlapping
        ts = t0 + (t1 - t0) * k // 2
        anchor = ("start", "middle", "end")[k]
        parts.append(
            f'<text x="{x(ts):.1f}" y="{axis_y + 14:.1f}" text-anchor="{anchor}">'
            f"{escape(_time(ts, fmt))}</text>"
        )
    parts.append(f'<text x="{x(t1):.1f}" y="{height - 2}" text-anchor="end">UTC</text>')
    return parts


def _legend(entries: Sequence[tuple[str, str]]) -> str:
    items = "".join(
        f'<span><span class="swatch" style="background:{colour}"></span>{escape(name)}</span>'
        for name, colour in entries
    )
    return f'<div class="legend">{items}</div>'


# ------------------------------------------------------------------------------ numbers
def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def format_number(value: float | None) -> str:
    """Four significant digits; small p-values in scientific notation; unknown as "—"."""
    if value is None or not math.isfinite(value):
        return "—"
    if value != 0 and abs(value) < 1e-3:
        return f"{value:.2e}"
    return f"{value:.4g}"


def format_share(value: float | None) -> str:
    """A share 0..1 as a percentage with one decimal; unknown as "—"."""
    if value is None or not math.isfinite(value):
        return "—"
    return f"{value * 100:.1f} %"


def _nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 × 10^k at or above ``value``: round axis ticks."""
    if value <= 0 or not math.isfinite(value):
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if step * power >= value * (1 - 1e-9):
            return step * power
    return 10 * power  # pragma: no cover - the loop ends at 10


def _time(ts_ms: int, fmt: str) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, tz=UTC).strftime(fmt)


def _short(label: str) -> str:
    return label if len(label) <= LABEL_CHARS else label[: LABEL_CHARS - 1] + "…"
