"""A window of the prediction log, evaluated: drift, latency, errors and live metrics.

``evaluate_window`` reads one deployment's predictions logged in ``[start_ms, end_ms)``
and answers, per variant and model version (and per slice value of the input columns
named in ``slices``): input drift per feature against the version's reference profile,
prediction drift against its predictions profile, request and row counts, latency p50 and
p99, the error rate, live metrics from feedback with 95 % intervals, and the share of
predictions that have feedback yet — as ``Observation``s that rules read, plus the
``DriftReport``s and metric rows behind them.

How it scales: DuckDB reads only the window's hour partitions of the Parquet log
(``prediction_rows``), explodes the logged JSON and streams Arrow record batches into
the drift summaries (``window_drift``), which hold bins and bounded samples only: the
window itself is never in memory, and never in pandas. Feedback is read from the
metadata database for this deployment and time range only, and joined inside DuckDB
(``live_metrics``).

Bad input gets a plain verdict, never a crash and never a silent "no drift": an empty
window gives observations whose value is ``None`` with the reason; requests whose logged
JSON does not parse are counted (``malformed_inputs``) and skipped; a reference column no
sampled request logged, or one logged as text where the reference is numerical, is named
in the drift report's ``errors``.

>>> start_ms, end_ms = window_bounds("1h")                              # doctest: +SKIP
>>> result = evaluate_window(artifacts, db, "demand", start_ms, end_ms,  # doctest: +SKIP
...                          reference=inputs_profile, prediction_reference=predictions_profile,
...                          slices=["region"], metrics=["mae", "rmse"])
>>> [o for o in result.observations if o.name == "feature_drift"]       # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import TYPE_CHECKING

from modelyard.durations import parse_duration
from modelyard.errors import InvalidParameter
from modelyard.features.relations import arrow_reader, literal
from modelyard.monitoring import live_metrics
from modelyard.monitoring.live_metrics import Coverage, LiveMetric
from modelyard.monitoring.observations import Observation, labels_of
from modelyard.monitoring.prediction_rows import (
    DEFAULT_MEMORY_LIMIT,
    DEFAULT_THREADS,
    Extraction,
    LogWindow,
    RequestStats,
    exploded_select,
    records,
    request_stats,
    window_bounds,
)
from modelyard.monitoring.window_drift import (
    MAX_SLICE_VALUES,
    PREDICTION,
    GroupDrift,
    WindowSummaries,
    plan_columns,
)
from modelyard.store.engine import Database

if TYPE_CHECKING:
    from modelyard.artifacts.repository import ArtifactRepository
    from modelyard.monitoring.profiles import ReferenceProfile
    from modelyard.monitoring.results import DriftReport

__all__ = [
    "RollingMetrics",
    "WindowResult",
    "evaluate_window",
    "observations_of",
    "rolling_metrics",
    "window_bounds",
]

#: Rows per Arrow record batch streamed from DuckDB into the summaries.
BATCH_ROWS = 65_536
NO_PREDICTIONS = "no predictions in the window"


# -- the window ---------------------------------------------------------------------------


@dataclass
class WindowResult:
    """What one evaluation of a window found.

    ``observations`` are what rules read. ``input_drift`` and ``prediction_drift`` are the
    reports of the group that served most rows (the primary variant, overall); every
    group's, per variant, version and slice, are in ``drift``. ``live`` holds the metric
    rows, ``coverage`` the feedback coverage per group, ``requests`` the request counts,
    latency and errors per variant and version. ``notes`` are plain sentences about what
    was skipped or capped."""

    deployment: str
    start_ms: int
    end_ms: int
    observations: list[Observation]
    input_drift: DriftReport | None
    prediction_drift: DriftReport | None
    drift: list[GroupDrift]
    live: list[LiveMetric]
    coverage: list[Coverage]
    requests: list[RequestStats]
    rows: int
    feedback_rows: int
    notes: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return self.rows == 0 and not self.requests


def evaluate_window(
    artifacts: ArtifactRepository,
    db: Database,
    deployment: str,
    start_ms: int,
    end_ms: int,
    *,
    reference: ReferenceProfile | Mapping[int, ReferenceProfile] | None,
    prediction_reference: ReferenceProfile | Mapping[int, ReferenceProfile] | None,
    slices: Sequence[str] = (),
    metrics: Sequence[str] | None = None,
    share: float = 0.5,
    positive_label: str | None = None,
    memory_limit: str = DEFAULT_MEMORY_LIMIT,
    threads: int = DEFAULT_THREADS,
) -> WindowResult:
    """Evaluate ``deployment``'s predictions logged in ``[start_ms, end_ms)``.

    ``reference`` and ``prediction_reference`` are the inputs and predictions profiles of
    the version served (or a mapping version → profile when several versions serve);
    ``slices`` name logged input columns to break everything down by; ``metrics`` the
    live metrics to compute (``None``: regression or classification, chosen from the
    feedback; name them to get explicit "unknown" observations when there is none)."""
    slices = _check_slices(slices)
    wanted = live_metrics.check_metrics(metrics)
    with LogWindow(
        artifacts, deployment, start_ms, end_ms, memory_limit=memory_limit, threads=threads
    ) as window:
        streaming = reference is not None or prediction_reference is not None
        # The drift stream parses every request's inputs: it counts those that do not.
        stats = request_stats(window, validate_inputs=not streaming)
        rows = sum(s.rows for s in stats)
        drift: list[GroupDrift] = []
        capped: list[str] = []
        if rows and streaming:
            plan = plan_columns(window, reference, prediction_reference)
            summaries = WindowSummaries(reference, prediction_reference, plan, slices)
            extraction = Extraction(
                plan.columns, slices, plan.prediction, plan.scores, _has_records(stats)
            )
            # A relation's reader streams; a DB-API result would be materialised first.
            reader = arrow_reader(window.con, exploded_select(extraction), BATCH_ROWS)
            for batch in reader:
                summaries.update(batch)
            drift = summaries.reports(share)
            stats = [
                replace(
                    s,
                    malformed_inputs=s.logged_inputs
                    - summaries.requests.get((s.variant, s.version), 0),
                )
                for s in stats
            ]
            capped = [
                f"slice column {c!r} has more than {MAX_SLICE_VALUES} values in the window; "
                f"the rest are grouped as {c}=(other)"
                for c in sorted(summaries.capped)
            ]
        # The drift stream counted every group's rows: coverage needs no second count.
        served: dict[tuple[str, int, str | None, int | None], int] | None = None
        if drift:
            served = {
                (v, version, label, None): n for (v, version, label), n in summaries.rows.items()
            }
        notes = _malformed_notes(stats) + capped
        live, coverage, feedback_rows = _live(
            window, db, stats, slices, wanted, positive_label, served=served
        )
    top = _top_group(drift)
    result = WindowResult(
        deployment,
        int(start_ms),
        int(end_ms),
        [],
        top.input_drift if top else None,
        top.prediction_drift if top else None,
        drift,
        live,
        coverage,
        stats,
        rows,
        feedback_rows,
        notes,
    )
    result.observations = observations_of(result, metrics=wanted)
    return result


def _check_slices(slices: Sequence[str]) -> list[str]:
    if isinstance(slices, str):
        slices = [slices]
    out = []
    for name in slices:
        if not isinstance(name, str) or not name:
            raise InvalidParameter(f"slices must name input columns, got {name!r}", field="slices")
        if name not in out:
            out.append(name)
    return out


def _malformed_notes(stats: list[RequestStats]) -> list[str]:
    bad_inputs = sum(s.malformed_inputs for s in stats)
    bad_outputs = sum(s.malformed_outputs for s in stats)
    notes = []
    if bad_inputs:
        notes.append(f"{bad_inputs} requests whose logged inputs are not valid JSON were skipped")
    if bad_outputs:
        notes.append(
            f"{bad_outputs} requests whose logged outputs are not valid JSON have no predictions"
        )
    return notes


def _has_records(stats: list[RequestStats]) -> bool:
    return any(s.record_requests for s in stats)


def _int(value: object) -> int | None:
    return None if value is None else int(value)  # type: ignore[call-overload]


def _top_group(drift: list[GroupDrift]) -> GroupDrift | None:
    overall = [g for g in drift if g.slice is None]
    return max(overall, key=lambda g: g.rows) if overall else None


def _live(
    window: LogWindow,
    db: Database,
    stats: list[RequestStats],
    slices: Sequence[str],
    metrics: tuple[str, ...] | None,
    positive_label: str | None,
    step_ms: int | None = None,
    served: dict[tuple[str, int, str | None, int | None], int] | None = None,
) -> tuple[list[LiveMetric], list[Coverage], int]:
    """Feedback joined to the window's predictions: metric rows, coverage, feedback rows
    joined."""
    con = window.con
    if window.empty:
        return [], [], 0
    live_metrics.load_feedback(con, db, window.deployment, window.start_ms)
    extraction = Extraction({}, slices, "JSON", records=_has_records(stats))
    joined = exploded_select(
        extraction,
        step_ms=step_ms,
        extra="AND request_id IN (SELECT request_id FROM feedback)",
    )
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE labelled AS
        SELECT j.*, f.value, f.label FROM ({joined}) j
        JOIN feedback f ON f.request_id = j.request_id AND f."row" = j._row"""
    )
    parts = [
        "SELECT variant, version, NULL::VARCHAR AS slice, bucket, prediction AS o, value, "
        "label FROM labelled"
    ]
    for i, column in enumerate(slices):
        parts.append(
            f"SELECT variant, version, {literal(column + '=')} || coalesce(_s{i}, '(missing)') "
            "AS slice, bucket, prediction AS o, value, label FROM labelled"
        )
    con.execute(f"CREATE OR REPLACE TEMP VIEW labelled_long AS {' UNION ALL '.join(parts)}")
    (feedback_rows,) = con.execute("SELECT count(*) FROM labelled").fetchall()[0]
    live = (
        live_metrics.compute_metrics(con, "labelled_long", metrics, positive_label=positive_label)
        if feedback_rows
        else []
    )
    coverage = _coverage(window, stats, slices, step_ms, served)
    # Every group gets every metric: one without feedback says so, rather than vanishing.
    names = list(metrics) if metrics else list(dict.fromkeys(m.name for m in live))
    have = {(m.name, m.variant, m.version, m.slice, m.bucket_ms) for m in live}
    live += [
        LiveMetric(
            name,
            None,
            0,
            None,
            None,
            c.variant,
            c.version,
            c.slice,
            c.bucket_ms,
            "no feedback joined these predictions yet",
        )
        for c in coverage
        for name in names
        if (name, c.variant, c.version, c.slice, c.bucket_ms) not in have
    ]
    return live, coverage, feedback_rows


def _coverage(
    window: LogWindow,
    stats: list[RequestStats],
    slices: Sequence[str],
    step_ms: int | None,
    served: dict[tuple[str, int, str | None, int | None], int] | None = None,
) -> list[Coverage]:
    """Rows with feedback over rows served, per group; ``served`` when already counted."""
    labelled = {
        (r["variant"], int(r["version"]), r["slice"], _int(r["bucket"])): int(r["n"])
        for r in records(
            window.con,
            "SELECT variant, version, slice, bucket, count(*) AS n FROM labelled_long GROUP BY ALL",
        )
    }
    if served is None and not slices:
        served = {(s.variant, s.version, None, s.bucket_ms): s.rows for s in stats}
    elif served is None:
        counted = exploded_select(
            Extraction({}, slices, records=_has_records(stats)), step_ms=step_ms
        )
        parts = ["SELECT variant, version, NULL::VARCHAR AS slice, bucket FROM counted"]
        parts += [
            f"SELECT variant, version, {literal(c + '=')} || coalesce(_s{i}, '(missing)'), "
            "bucket FROM counted"
            for i, c in enumerate(slices)
        ]
        sql = (
            f"WITH counted AS ({counted}) SELECT variant, version, slice, bucket, "
            f"count(*) AS n FROM ({' UNION ALL '.join(parts)}) GROUP BY ALL"
        )
        served = {
            (str(r["variant"]), int(r["version"]), r["slice"], _int(r["bucket"])): int(r["n"])
            for r in records(window.con, sql)
        }
    return [
        Coverage(*key, predictions=n, with_feedback=labelled.get(key, 0))
        for key, n in sorted(served.items(), key=lambda kv: str(kv[0]))
    ]


# -- observations ---------------------------------------------------------------------------


def observations_of(
    result: WindowResult,
    *,
    metrics: Sequence[str] | None = None,
) -> list[Observation]:
    """The observations rules read, from a window's result. An empty window yields the
    same names with value ``None`` and the reason, never a value that reads as "ok"."""
    if result.empty:
        return _empty_observations(metrics)
    out: list[Observation] = []
    for s in result.requests:
        where = {"variant": s.variant, "version": s.version}
        out.append(Observation("requests", float(s.requests), labels_of(**where), s.requests))
        out.append(Observation("rows", float(s.rows), labels_of(**where), s.rows))
        low, high = live_metrics.wilson(s.errors, s.requests)
        out.append(
            Observation("error_rate", s.error_rate, labels_of(**where), s.requests, low, high)
        )
        for name, value in (
            ("latency_p50_ms", s.latency_p50_ms),
            ("latency_p99_ms", s.latency_p99_ms),
        ):
            out.append(Observation(name, value, labels_of(**where), s.requests))
    for g in result.drift:
        out += _drift_observations(g)
    compared = {(g.variant, g.version) for g in result.drift}
    for s in result.requests:
        if (s.variant, s.version) not in compared:
            # No group was streamed (no reference given, or no row answered): say so.
            reason = "no reference profile given" if s.rows else "no rows answered"
            labels = labels_of(variant=s.variant, version=s.version)
            out.append(Observation("drift_share", None, labels, s.rows, reason=reason))
            out.append(Observation("prediction_drift", None, labels, s.rows, reason=reason))
    out += [c.observation() for c in result.coverage]
    out += [m.observation() for m in result.live]
    return out


def _drift_observations(g: GroupDrift) -> list[Observation]:
    where = {"variant": g.variant, "version": g.version, "slice": g.slice}
    out = []
    report = g.input_drift
    if report is None:
        out.append(
            Observation(
                "drift_share",
                None,
                labels_of(**where),
                g.rows,
                reason=g.reason or "no input reference profile",
            )
        )
    else:
        out.append(
            Observation(
                "drift_share",
                report.share_drifted,
                labels_of(**where),
                report.current_rows,
                threshold=report.share_threshold,
            )
        )
        for name, column in report.columns.items():
            out.append(
                Observation(
                    "feature_drift",
                    column.score,
                    # ``drifted``: the column's verdict, its missing rate included (a
                    # column that only went missing has drifted, with or without a score).
                    labels_of(**where, feature=name, method=column.method, drifted=column.drifted),
                    column.current_rows,
                    threshold=column.threshold,
                )
            )
        for name, reason in report.errors.items():
            out.append(
                Observation("feature_drift", None, labels_of(**where, feature=name), reason=reason)
            )
    predictions = g.prediction_drift
    if predictions is None:
        out.append(
            Observation(
                "prediction_drift",
                None,
                labels_of(**where),
                g.rows,
                reason=g.reason or "no predictions reference profile",
            )
        )
    else:
        for name, column in predictions.columns.items():
            out.append(
                Observation(
                    "prediction_drift",
                    column.score,
                    labels_of(
                        **where,
                        method=column.method,
                        output=None if name == PREDICTION else name,
                        drifted=column.drifted,
                    ),
                    column.current_rows,
                    threshold=column.threshold,
                )
            )
        for name, reason in predictions.errors.items():
            out.append(
                Observation(
                    "prediction_drift", None, labels_of(**where, output=name), reason=reason
                )
            )
    return out


def _empty_observations(metrics: Sequence[str] | None) -> list[Observation]:
    names = ("requests", "rows")
    out = [Observation(name, 0.0, (), 0) for name in names]
    for name in (
        "drift_share",
        "prediction_drift",
        "error_rate",
        "latency_p50_ms",
        "latency_p99_ms",
        "feedback_coverage",
    ):
        out.append(Observation(name, None, (), 0, reason=NO_PREDICTIONS))
    for metric in metrics or ():
        out.append(Observation("metric", None, labels_of(metric=metric), 0, reason=NO_PREDICTIONS))
    return out


# -- rolling windows for charts -------------------------------------------------------------


@dataclass
class RollingMetrics:
    """Per time bucket (``bucket_ms``: its start): request stats, coverage, live metrics."""

    deployment: str
    start_ms: int
    end_ms: int
    step_ms: int
    requests: list[RequestStats]
    coverage: list[Coverage]
    live: list[LiveMetric]


def rolling_metrics(
    artifacts: ArtifactRepository,
    db: Database,
    deployment: str,
    start_ms: int,
    end_ms: int,
    *,
    step: str | timedelta = "1h",
    slices: Sequence[str] = (),
    metrics: Sequence[str] | None = None,
    positive_label: str | None = None,
    memory_limit: str = DEFAULT_MEMORY_LIMIT,
    threads: int = DEFAULT_THREADS,
) -> RollingMetrics:
    """Requests, latency, errors, coverage and live metrics in buckets of ``step``
    (hourly over 7 days, say) — what charts draw — in one pass over the window, not one
    window per bucket. Buckets are aligned to the epoch (``ts // step``)."""
    span = parse_duration(step, "step")
    step_ms = int(span / timedelta(milliseconds=1))
    if step_ms <= 0:
        raise InvalidParameter(f"step must be longer than zero, got {step!r}", field="step")
    slices = _check_slices(slices)
    wanted = live_metrics.check_metrics(metrics)
    with LogWindow(
        artifacts, deployment, start_ms, end_ms, memory_limit=memory_limit, threads=threads
    ) as window:
        stats = request_stats(window, step_ms=step_ms)
        live, coverage, _ = _live(window, db, stats, slices, wanted, positive_label, step_ms)
    return RollingMetrics(deployment, int(start_ms), int(end_ms), step_ms, stats, coverage, live)
