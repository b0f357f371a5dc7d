"""Live performance: served predictions joined with their feedback, as metrics with counts
and 95 % confidence intervals, per variant, model version, slice (and time bucket).

Feedback (``serving_feedback``, ground truth sent later by request id and row) is read
from the metadata database for one deployment and time range only, straight into a
DuckDB table; the prediction log's rows that have feedback are joined to it inside DuckDB
(``log_windows`` builds that relation), and every metric is computed there from a few
sums per group, so nothing row-sized reaches Python. The relation this module reads has
the columns ``variant, version, slice, bucket`` (the group), ``o`` (the row's logged
prediction as JSON: a number, a label, or a list of class scores), and ``value, label``
(the feedback).

Metrics and their intervals (closed forms, no bootstrap; quantiles from
``scipy.special``):

* regression: ``mae``, ``rmse``, ``mape`` (a fraction; rows whose actual value is zero
  are skipped, and the metric's note says how many), ``bias`` (mean of prediction −
  actual). Student-t intervals on the mean of ``|e|``, ``e`` and ``|e|/|y|``; for
  ``rmse`` the t interval of the mean squared error, square-rooted (its variance from
  the sum of ``e⁴``).
* classification: ``accuracy``, ``precision`` and ``recall`` (of the positive class when
  binary, macro-averaged over classes otherwise: classes without predictions count 0, as
  in scikit-learn) with Wilson intervals (binary) or a normal interval of the mean of
  per-class proportions (macro); ``roc_auc`` (binary, when scores are logged; the
  Mann-Whitney statistic with average ranks for ties; Hanley & McNeil's standard error);
  ``ece``, the expected calibration error of the top-label confidence over 10 equal-width
  bins (Guo et al. 2017): it has no closed-form interval, so its interval is ``None``.

Classification needs feedback labels (or 0/1 values). Predictions are labels, or scores:
a list of class probabilities per row (the predicted class is the index of the largest,
the positive score of a binary model the second), or a single probability in [0, 1] of
the class ``1`` when the labels are 0/1. The positive class of a binary problem is
``positive_label`` or else ``1``, ``true``, or the last class in sorted order.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from modelyard.errors import InvalidParameter, MissingExtra
from modelyard.monitoring.observations import Observation, labels_of
from modelyard.monitoring.prediction_rows import records
from modelyard.serving.tables import serving_feedback
from modelyard.store.engine import Database

REGRESSION = ("mae", "rmse", "mape", "bias")
CLASSIFICATION = ("accuracy", "precision", "recall", "roc_auc", "ece")
METRICS = REGRESSION + CLASSIFICATION
ECE_BINS = 10
#: Feedback rows moved from the metadata database to DuckDB per round trip.
FEEDBACK_CHUNK = 50_000
#: Feedback may be stamped by a receiver whose clock runs behind the data plane's.
CLOCK_SKEW_MS = 5 * 60 * 1000

_GROUP = ("variant", "version", "slice", "bucket")


@dataclass(frozen=True, slots=True)
class LiveMetric:
    """One metric of one group. ``value`` is ``None`` when it cannot be computed, with
    ``note`` saying why; ``note`` also says what was skipped (zero actuals for MAPE)."""

    name: str
    value: float | None
    count: int
    ci_low: float | None
    ci_high: float | None
    variant: str
    version: int
    slice: str | None = None
    bucket_ms: int | None = None
    note: str | None = None

    def observation(self) -> Observation:
        return Observation(
            "metric",
            self.value,
            labels_of(
                metric=self.name, variant=self.variant, version=self.version, slice=self.slice
            ),
            count=self.count,
            ci_low=self.ci_low,
            ci_high=self.ci_high,
            reason=self.note if self.value is None else None,
        )


@dataclass(frozen=True, slots=True)
class Coverage:
    """How many of a group's served rows have feedback yet."""

    variant: str
    version: int
    slice: str | None
    bucket_ms: int | None
    predictions: int
    with_feedback: int

    @property
    def share(self) -> float | None:
        return self.with_feedback / self.predictions if self.predictions else None

    def observation(self) -> Observation:
        low, high = wilson(self.with_feedback, self.predictions)
        return Observation(
            "feedback_coverage",
            self.share,
            labels_of(variant=self.variant, version=self.version, slice=self.slice),
            count=self.predictions,
            ci_low=low,
            ci_high=high,
            reason=None if self.predictions else "no predictions in the window",
        )


def check_metrics(metrics: Sequence[str] | None) -> tuple[str, ...] | None:
    """The requested metric names, each known; ``None`` (choose from the feedback) stays."""
    if metrics is None:
        return None
    if isinstance(metrics, str):
        metrics = [metrics]
    for name in metrics:
        if name not in METRICS:
            raise InvalidParameter(
                f"unknown live metric {name!r}; choose from {', '.join(METRICS)}",
                field="metrics",
            )
    return tuple(metrics)


# -- feedback ------------------------------------------------------------------------------


def load_feedback(con: Any, db: Database, deployment: str, since_ms: int) -> int:
    """Copy ``deployment``'s feedback created since ``since_ms`` (less a clock skew) into
    the DuckDB table ``feedback(request_id, row, value, label)``, one row per
    ``(request_id, row)`` (the latest item wins, as a correction would). Streams in
    chunks; returns the rows copied."""
    import pyarrow as pa

    con.execute(
        "CREATE OR REPLACE TEMP TABLE feedback_items (id BIGINT, request_id VARCHAR, "
        '"row" INTEGER, value DOUBLE, label VARCHAR)'
    )
    c = serving_feedback.c
    query = (
        select(c.id, c.request_id, c.row, c.value, c.label)
        .where(c.deployment == deployment, c.created_at >= since_ms - CLOCK_SKEW_MS)
        .execution_options(yield_per=FEEDBACK_CHUNK)
    )
    schema = pa.schema(
        [
            ("id", pa.int64()),
            ("request_id", pa.string()),
            ("row", pa.int32()),
            ("value", pa.float64()),
            ("label", pa.string()),
        ]
    )
    total = 0
    with db.read() as conn:
        result = conn.execution_options(stream_results=True).execute(query)
        for part in result.partitions():
            chunk = pa.Table.from_arrays(
                [pa.array([r._mapping[f.name] for r in part], type=f.type) for f in schema],
                schema=schema,
            )
            con.register("feedback_chunk", chunk)
            con.execute("INSERT INTO feedback_items SELECT * FROM feedback_chunk")
            con.unregister("feedback_chunk")
            total += len(part)
    con.execute(
        'CREATE OR REPLACE TEMP TABLE feedback AS SELECT request_id, "row", value, label '
        'FROM feedback_items QUALIFY row_number() OVER (PARTITION BY request_id, "row" '
        "ORDER BY id DESC) = 1"
    )
    con.execute("DROP TABLE feedback_items")
    return total


# -- metrics -------------------------------------------------------------------------------


def compute_metrics(
    con: Any,
    relation: str,
    metrics: Sequence[str] | None = None,
    *,
    positive_label: str | None = None,
) -> list[LiveMetric]:
    """The metrics of every group of ``relation`` (see the module docstring for its
    columns). ``metrics=None`` chooses regression or classification from the feedback:
    classification when any item has a label."""
    names = check_metrics(metrics)
    con.execute(f"CREATE OR REPLACE TEMP VIEW live_rows AS SELECT {_PREPARED} FROM {relation}")
    if names is None:
        has_label = con.execute("SELECT count(label) FROM live_rows").fetchone()[0]
        names = CLASSIFICATION if has_label else REGRESSION
    out: list[LiveMetric] = []
    wanted_regression = [n for n in names if n in REGRESSION]
    wanted_classification = [n for n in names if n in CLASSIFICATION]
    if wanted_regression:
        out += _regression(con, wanted_regression)
    if wanted_classification:
        out += _classification(con, wanted_classification, positive_label)
    return out


_PREPARED = (
    "variant, version, slice, bucket, value, label, "
    "TRY_CAST(o AS DOUBLE) AS p_num, "
    "CASE WHEN json_type(o) = 'ARRAY' THEN try(from_json(o, '[\"DOUBLE\"]')) END AS p_scores, "
    "json_extract_string(o, '$') AS p_text"
)


def _key(row: dict[str, Any]) -> tuple[str, int, str | None, int | None]:
    return (
        str(row["variant"]),
        int(row["version"]),
        row["slice"],
        None if row["bucket"] is None else int(row["bucket"]),
    )


def _metric(
    name: str,
    key: tuple[str, int, str | None, int | None],
    value: float | None,
    count: int,
    interval: tuple[float | None, float | None] = (None, None),
    note: str | None = None,
) -> LiveMetric:
    if value is not None and not math.isfinite(value):
        value, interval = None, (None, None)
    return LiveMetric(name, value, count, interval[0], interval[1], *key, note=note)


def _regression(con: Any, names: list[str]) -> list[LiveMetric]:
    sql = f"""
        SELECT {", ".join(_GROUP)},
            count(*) FILTER (WHERE e IS NOT NULL) AS n,
            count(*) FILTER (WHERE e IS NULL) AS unusable,
            sum(e) AS s1, sum(e * e) AS s2, sum(abs(e)) AS sa, sum(e * e * e * e) AS s4,
            count(*) FILTER (WHERE e IS NOT NULL AND value <> 0) AS n_ape,
            count(*) FILTER (WHERE e IS NOT NULL AND value = 0) AS zeros,
            sum(abs(e / value)) FILTER (WHERE value <> 0) AS sp,
            sum((e / value) * (e / value)) FILTER (WHERE value <> 0) AS sp2
        FROM (SELECT *, p_num - value AS e FROM live_rows WHERE value IS NOT NULL)
        GROUP BY ALL ORDER BY ALL"""
    out = []
    for g in records(con, sql):
        key, n = _key(g), int(g["n"])
        skipped = (
            f"{g['unusable']} rows with feedback but no numeric prediction skipped"
            if g["unusable"]
            else None
        )
        empty = "no feedback value joined a numeric prediction" if n == 0 else None
        for name in names:
            if n == 0:
                out.append(_metric(name, key, None, 0, note=empty))
            elif name == "mae":
                mean = g["sa"] / n
                out.append(_metric(name, key, mean, n, _t_interval(mean, g["s2"], n), skipped))
            elif name == "bias":
                mean = g["s1"] / n
                out.append(_metric(name, key, mean, n, _t_interval(mean, g["s2"], n), skipped))
            elif name == "rmse":
                mse = g["s2"] / n
                low, high = _t_interval(mse, g["s4"], n)
                interval = (
                    None if low is None else math.sqrt(max(low, 0.0)),
                    None if high is None else math.sqrt(high),
                )
                out.append(_metric(name, key, math.sqrt(mse), n, interval, skipped))
            elif name == "mape":
                m = int(g["n_ape"])
                note = (
                    f"{g['zeros']} rows with an actual value of 0 skipped" if g["zeros"] else None
                )
                if m == 0:
                    out.append(_metric(name, key, None, 0, note=note or "no non-zero actuals"))
                    continue
                mean = g["sp"] / m
                out.append(_metric(name, key, mean, m, _t_interval(mean, g["sp2"], m), note))
    return out


def _t_interval(mean: float, sum_squares: float, n: int) -> tuple[float | None, float | None]:
    """Student-t 95 % interval of a mean from the sum of the squared observations."""
    if n < 2:
        return None, None
    variance = max(sum_squares - n * mean * mean, 0.0) / (n - 1)
    half = _special().stdtrit(n - 1, 0.975) * math.sqrt(variance / n)
    return mean - float(half), mean + float(half)


def wilson(successes: int, n: int) -> tuple[float | None, float | None]:
    """Wilson's 95 % score interval of a proportion (stays inside [0, 1] on few rows)."""
    if n == 0:
        return None, None
    z = _z()
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return low, high


# -- classification ------------------------------------------------------------------------


def _classification(con: Any, names: list[str], positive_label: str | None) -> list[LiveMetric]:
    mode = _score_mode(con)
    truth = (
        "coalesce(label, CASE WHEN value = round(value) THEN CAST(CAST(value AS BIGINT) "
        "AS VARCHAR) ELSE CAST(value AS VARCHAR) END)"
    )
    text = (
        "CASE WHEN p_num IS NOT NULL AND p_num = round(p_num) THEN "
        "CAST(CAST(p_num AS BIGINT) AS VARCHAR) ELSE p_text END"
    )
    if mode == "scores":
        pred = "CAST(list_position(p_scores, list_max(p_scores)) - 1 AS VARCHAR)"
        score, confidence = "p_scores[2]", "list_max(p_scores)"
    elif mode == "probability":
        pred = "CASE WHEN p_num >= 0.5 THEN '1' ELSE '0' END"
        score, confidence = "p_num", "greatest(p_num, 1 - p_num)"
    else:
        pred, score, confidence = text, "NULL", "NULL"
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE live_classes AS
        SELECT {", ".join(_GROUP)}, truth, pred, score, confidence FROM (
            SELECT {", ".join(_GROUP)}, {truth} AS truth, {pred} AS pred,
                CAST({score} AS DOUBLE) AS score, CAST({confidence} AS DOUBLE) AS confidence
            FROM live_rows WHERE value IS NOT NULL OR label IS NOT NULL)
        WHERE truth IS NOT NULL AND pred IS NOT NULL"""
    )
    classes = sorted(
        {r[0] for r in con.execute("SELECT DISTINCT truth FROM live_classes").fetchall()}
        | {r[0] for r in con.execute("SELECT DISTINCT pred FROM live_classes").fetchall()}
    )
    binary = len(classes) <= 2
    positive = positive_label if positive_label is not None else _positive(classes)
    counts = {
        _key(g): g
        for g in records(
            con,
            f"SELECT {', '.join(_GROUP)}, count(*) AS n, count(*) FILTER (WHERE truth = pred) "
            "AS hits FROM live_classes GROUP BY ALL",
        )
    }
    per_class: dict[tuple[str, int, str | None, int | None], list[dict[str, Any]]] = {}
    for g in records(
        con,
        f"""SELECT {", ".join(_GROUP)}, c AS class,
            count(*) FILTER (WHERE truth = c AND pred = c) AS tp,
            count(*) FILTER (WHERE pred = c) AS predicted,
            count(*) FILTER (WHERE truth = c) AS actual
        FROM live_classes, (SELECT unnest(?::VARCHAR[]) AS c) GROUP BY ALL""".replace(
            "?", _sql_list([positive] if binary else classes)
        ),
    ):
        per_class.setdefault(_key(g), []).append(g)
    auc = _auc(con) if "roc_auc" in names and mode != "labels" and binary else {}
    ece = _ece(con) if "ece" in names and mode != "labels" else {}
    out = []
    for key, g in sorted(counts.items(), key=lambda kv: str(kv[0])):
        n = int(g["n"])
        for name in names:
            if name == "accuracy":
                hits = int(g["hits"])
                out.append(_metric(name, key, hits / n, n, wilson(hits, n)))
            elif name in ("precision", "recall"):
                out.append(_precision_recall(name, key, per_class.get(key, []), binary))
            elif name == "roc_auc":
                if mode == "labels":
                    out.append(
                        _metric(name, key, None, n, note="no scores logged: predictions are labels")
                    )
                elif not binary:
                    out.append(
                        _metric(
                            name,
                            key,
                            None,
                            n,
                            note="AUC is computed for binary "
                            f"problems; this one has {len(classes)} classes",
                        )
                    )
                else:
                    out.append(
                        auc.get(key)
                        or _metric(name, key, None, n, note="needs both classes among the labels")
                    )
            elif name == "ece":
                if mode == "labels":
                    out.append(
                        _metric(name, key, None, n, note="no scores logged: predictions are labels")
                    )
                else:
                    out.append(
                        ece.get(key)
                        or _metric(name, key, None, 0, note="no scores logged for these rows")
                    )
    return out


def _score_mode(con: Any) -> str:
    """``scores`` (a list of class probabilities per row), ``probability`` (one number in
    [0, 1] per row, not all whole, against 0/1 labels) or ``labels``."""
    arrays, numbers, unit, fractional, binary_truth = con.execute(
        """SELECT count(p_scores), count(p_num), coalesce(bool_and(p_num BETWEEN 0 AND 1), false),
            coalesce(bool_or(p_num <> round(p_num)), false),
            coalesce(bool_and(coalesce(label, CAST(value AS VARCHAR)) IN
                ('0', '1', '0.0', '1.0')), false)
        FROM live_rows WHERE value IS NOT NULL OR label IS NOT NULL"""
    ).fetchone()
    if arrays:
        return "scores"
    if numbers and unit and fractional and binary_truth:
        return "probability"
    return "labels"


def _positive(classes: list[str]) -> str:
    for candidate in ("1", "true", "True"):
        if candidate in classes:
            return candidate
    return classes[-1] if classes else "1"


def _sql_list(values: list[str]) -> str:
    return "[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]"


def _precision_recall(
    name: str,
    key: tuple[str, int, str | None, int | None],
    rows: list[dict[str, Any]],
    binary: bool,
) -> LiveMetric:
    den = "predicted" if name == "precision" else "actual"
    if binary:
        row = rows[0] if rows else {"tp": 0, den: 0}
        tp, total = int(row["tp"]), int(row[den])
        if total == 0:
            what = "predicted" if name == "precision" else "labelled"
            return _metric(name, key, None, 0, note=f"no row {what} as the positive class")
        return _metric(name, key, tp / total, total, wilson(tp, total))
    shares, variance, count = [], 0.0, 0
    for row in rows:
        tp, total = int(row["tp"]), int(row[den])
        share = tp / total if total else 0.0
        shares.append(share)
        variance += share * (1 - share) / total if total else 0.0
        count += total
    k = len(shares)
    value = sum(shares) / k
    half = _z() * math.sqrt(variance) / k
    return _metric(
        name,
        key,
        value,
        count,
        (max(0.0, value - half), min(1.0, value + half)),
        "macro average over classes",
    )


def _auc(con: Any) -> dict[tuple[str, int, str | None, int | None], LiveMetric]:
    sql = f"""
        WITH ranked AS (
            SELECT {", ".join(_GROUP)}, truth = ? AS positive,
                rank() OVER w + (count(*) OVER (PARTITION BY {", ".join(_GROUP)}, score) - 1)
                    / 2.0 AS r
            FROM live_classes WHERE score IS NOT NULL
            WINDOW w AS (PARTITION BY {", ".join(_GROUP)} ORDER BY score))
        SELECT {", ".join(_GROUP)}, count(*) FILTER (WHERE positive) AS n1,
            count(*) FILTER (WHERE NOT positive) AS n0,
            sum(r) FILTER (WHERE positive) AS ranks
        FROM ranked GROUP BY ALL"""
    positive = _positive_in_table(con)
    out = {}
    for g in records(con, sql.replace("?", _sql_list([positive])[1:-1])):
        key, n1, n0 = _key(g), int(g["n1"]), int(g["n0"])
        if n1 == 0 or n0 == 0:
            continue
        a = (float(g["ranks"]) - n1 * (n1 + 1) / 2) / (n1 * n0)
        q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
        se = math.sqrt(
            max(a * (1 - a) + (n1 - 1) * (q1 - a * a) + (n0 - 1) * (q2 - a * a), 0.0) / (n1 * n0)
        )
        half = _z() * se
        out[key] = _metric("roc_auc", key, a, n1 + n0, (max(0.0, a - half), min(1.0, a + half)))
    return out


def _positive_in_table(con: Any) -> str:
    classes = sorted(
        r[0] for r in con.execute("SELECT DISTINCT truth FROM live_classes").fetchall()
    )
    return _positive(classes)


def _ece(con: Any) -> dict[tuple[str, int, str | None, int | None], LiveMetric]:
    sql = f"""
        SELECT {", ".join(_GROUP)}, sum(m) AS n,
            list(abs(hits - conf) ORDER BY b) AS gaps, list(m ORDER BY b) AS sizes
        FROM (
            SELECT {", ".join(_GROUP)}, least(floor(confidence * {ECE_BINS}), {ECE_BINS - 1}) AS b,
                count(*) AS m, avg(CAST(truth = pred AS DOUBLE)) AS hits, avg(confidence) AS conf
            FROM live_classes WHERE confidence IS NOT NULL GROUP BY ALL)
        GROUP BY ALL"""
    out = {}
    for g in records(con, sql):
        n = int(g["n"])
        value = sum(gap * m for gap, m in zip(g["gaps"], g["sizes"], strict=True)) / n
        out[_key(g)] = _metric("ece", _key(g), value, n, note="no closed-form interval for the ECE")
    return out


@functools.cache
def _special() -> Any:
    try:
        from scipy import special
    except ImportError as exc:
        raise MissingExtra("scipy", "monitoring", "Confidence intervals of live metrics") from exc
    return special


@functools.cache
def _z() -> float:
    """The standard normal 97.5 % quantile (``scipy.stats.norm.ppf(0.975)``)."""
    return float(_special().ndtri(0.975))
