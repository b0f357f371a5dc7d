"""Run a contract over a table: every expectation is one vectorised pass over a column.

Each column is turned once into a ``ColumnView`` — NumPy values plus a null mask for
numbers and times, the Arrow array for strings (regular expressions run in Arrow's RE2,
far faster than Python's ``re`` per value), codes plus categories for categoricals (a
rule is evaluated once per category, then looked up by code) — and every check of that
column reuses it. A check yields a boolean "offending" mask whose ``count_nonzero`` is the
exact number of offending rows, and whose first positions give the sample.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Callable
from typing import Any

from modelyard.data.contracts import distribution as dist
from modelyard.data.contracts.expressions import parse
from modelyard.data.contracts.result import CheckResult, ValidationResult
from modelyard.data.contracts.spec import Column, Contract
from modelyard.data.contracts.views import ColumnView, view_of
from modelyard.errors import InvalidParameter

#: Which declared types accept which observed kinds (ints are valid floats, and so on).
ACCEPTS: dict[str, frozenset[str]] = {
    "int": frozenset({"int"}),
    "float": frozenset({"float", "int"}),
    "number": frozenset({"float", "int"}),
    "string": frozenset({"string", "category"}),
    "category": frozenset({"category", "string"}),
    "bool": frozenset({"bool"}),
    "datetime": frozenset({"datetime"}),
    "date": frozenset({"date", "datetime"}),
}
_NUMERIC = frozenset({"int", "float", "bool", "datetime"})


class _Run:
    """The state of one validation: the frame, its views, results, sample size."""

    def __init__(self, frame: Any, sample: int, reference: Any, now: Any) -> None:
        self.frame = frame
        self.n = len(frame)
        self.sample = sample
        self.reference = reference
        self.now = now
        self.views: dict[str, ColumnView] = {}
        self.results: list[CheckResult] = []
        self._profiles: dict[str, Any] = {}

    def view(self, name: str) -> ColumnView:
        if name not in self.views:
            self.views[name] = view_of(self.frame[name], name)
        return self.views[name]

    def rows(
        self,
        check: str,
        column: str | None,
        expected: str,
        bad: Any,
        cols: list[str],
        severity: str = "error",
        observed: Any = None,
    ) -> None:
        """Record a row-level check from its offending mask."""
        import numpy as np

        count = int(np.count_nonzero(bad)) if bad is not None else 0
        sample: tuple[dict[str, Any], ...] = ()
        if count and self.sample:
            positions = np.flatnonzero(bad)[: self.sample]
            sample = self.sample_rows(positions, cols)
        self.results.append(
            CheckResult(
                check, column, expected, count == 0, count, self.n, observed, sample, severity
            )
        )

    def table(
        self,
        check: str,
        column: str | None,
        expected: str,
        passed: bool,
        observed: Any,
        severity: str = "error",
        failed_rows: int | None = None,
        sample: tuple[dict[str, Any], ...] = (),
    ) -> None:
        self.results.append(
            CheckResult(
                check,
                column,
                expected,
                passed,
                failed_rows,
                self.n if failed_rows is not None else None,
                observed,
                sample,
                severity,
            )
        )

    def skip(self, check: str, column: str | None, expected: str, why: str, severity: str) -> None:
        self.results.append(
            CheckResult(check, column, expected, False, None, None, None, (), severity, skipped=why)
        )

    def sample_rows(self, positions: Any, cols: list[str]) -> tuple[dict[str, Any], ...]:
        import pandas as pd

        keep = [c for c in dict.fromkeys(cols) if c in self.frame.columns]
        where = [self.frame.columns.get_loc(c) for c in keep]
        part = self.frame.iloc[positions, where]
        out = []
        labelled = not isinstance(self.frame.index, pd.RangeIndex)
        for pos, (label, row) in zip(positions.tolist(), part.iterrows(), strict=True):
            record: dict[str, Any] = {"row": int(pos)}
            if labelled:
                record["index"] = _plain(label)
            record.update({k: _plain(v) for k, v in row.items()})
            out.append(record)
        return tuple(out)

    def reference_profile(self, ref: str | None, column: str) -> dict[str, Any] | None:
        """The reference profile of ``column`` (resolved once per reference)."""
        key = ref or ""
        if key not in self._profiles:
            self._profiles[key] = _resolve_reference(self.reference, ref)
        profile = self._profiles[key]
        return None if profile is None else profile.get("columns", {}).get(column)


def run_contract(
    contract: Contract, data: Any, *, reference: Any = None, sample: int = 5, now: Any = None
) -> ValidationResult:
    started = time.perf_counter()
    frame, label = as_frame(data)
    run = _Run(frame, sample, reference, now)
    if contract.rows is not None:
        _row_count(run, contract)
    if contract.strict:
        extra = [str(c) for c in frame.columns if str(c) not in contract.columns]
        run.table("columns.strict", None, "no undeclared columns", not extra, extra or None)
    for name, col in contract.columns.items():
        if name not in frame.columns:
            run.table(f"{name}.exists", name, "column present", False, "missing", col.severity)
            continue
        _column_checks(run, name, col, contract)
    for key in contract.unique:
        _compound_unique(run, key)
    for rule in contract.rules:
        _rule(run, rule.expr, rule.label, rule.severity)
    if contract.freshness is not None:
        _freshness(run, contract)
    return ValidationResult(
        contract.name, run.n, tuple(run.results), time.perf_counter() - started, label
    )


def as_frame(data: Any) -> tuple[Any, str]:
    """A pandas DataFrame for any table input, and a label saying what it was."""
    import os

    if hasattr(data, "iloc") and hasattr(data, "columns"):
        return data, "DataFrame"
    if isinstance(data, (str, os.PathLike)):
        from modelyard.data.sources import open_source

        return open_source(data).read_all().to_pandas(), str(data)
    from modelyard.data.sources import to_arrow

    return to_arrow(data).to_pandas(), type(data).__name__


def _row_count(run: _Run, contract: Contract) -> None:
    rows = contract.rows
    assert rows is not None
    low, high = rows.min, rows.max
    parts = [f">= {low:,}" if low is not None else "", f"<= {high:,}" if high is not None else ""]
    ok = (low is None or run.n >= low) and (high is None or run.n <= high)
    run.table("rows", None, " and ".join(p for p in parts if p), ok, run.n)


def _column_checks(run: _Run, name: str, col: Column, contract: Contract) -> None:
    import numpy as np

    view = run.view(name)
    sev = col.severity
    type_ok = True
    if col.type is not None:
        type_ok = view.kind in ACCEPTS[col.type]
        run.table(f"{name}.type", name, col.type, type_ok, _describe_kind(view), sev)
    if not col.nullable:
        run.rows(f"{name}.not_null", name, "no nulls", view.null, [name], sev)
    if col.max_null_fraction is not None:
        nulls = view.null_count()
        fraction = nulls / run.n if run.n else 0.0
        ok = fraction <= col.max_null_fraction
        sample = (
            ()
            if ok or not run.sample
            else run.sample_rows(np.flatnonzero(view.null_mask())[: run.sample], [name])
        )
        run.table(
            f"{name}.null_fraction",
            name,
            f"<= {col.max_null_fraction:.2%} nulls",
            ok,
            round(fraction, 6),
            sev,
            None if ok else nulls,
            sample,
        )
    if col.min is not None or col.max is not None:
        expected = _range_text(col)
        if not type_ok or view.kind not in _NUMERIC:
            run.skip(f"{name}.range", name, expected, f"column is {view.kind}", sev)
        else:
            run.rows(f"{name}.range", name, expected, _out_of_range(view, col), [name], sev)
    if col.allowed is not None:
        run.rows(
            f"{name}.allowed",
            name,
            f"in {_short(col.allowed)}",
            _not_allowed(view, col.allowed),
            [name],
            sev,
        )
    if col.pattern is not None:
        expected = f"matches {col.pattern!r}"
        if view.kind not in ("string", "category", "object"):
            run.skip(f"{name}.pattern", name, expected, f"column is {view.kind}", sev)
        else:
            run.rows(f"{name}.pattern", name, expected, _no_match(view, col.pattern), [name], sev)
    if col.min_length is not None or col.max_length is not None:
        top = col.max_length if col.max_length is not None else "∞"
        expected = f"length in [{col.min_length or 0}, {top}]"
        if view.kind not in ("string", "category"):
            run.skip(f"{name}.length", name, expected, f"column is {view.kind}", sev)
        else:
            run.rows(f"{name}.length", name, expected, _bad_length(view, col), [name], sev)
    if col.unique:
        run.rows(f"{name}.unique", name, "unique values", _duplicated(view), [name], sev)
    if col.distribution is not None:
        _distribution(run, view, col, contract)


def _describe_kind(view: ColumnView) -> str:
    return f"{view.kind} ({view.series.dtype})"


def _range_text(col: Column) -> str:
    lo = "-∞" if col.min is None else _plain(col.min)
    hi = "∞" if col.max is None else _plain(col.max)
    return f"in [{lo}, {hi}]"


def _out_of_range(view: ColumnView, col: Column) -> Any:
    import numpy as np

    values = view.values
    lo, hi = col.min, col.max
    if view.kind == "datetime":
        lo = None if lo is None else _ns(lo)
        hi = None if hi is None else _ns(hi)
    bad = None
    if lo is not None:
        bad = values < lo
    if hi is not None:
        above = values > hi
        bad = above if bad is None else np.logical_or(bad, above, out=bad)
    if view.null is not None and bad is not None:
        bad &= ~view.null
    return bad


def _ns(value: Any) -> int:
    import pandas as pd

    stamp = pd.Timestamp(value)
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return int(stamp.value)


def _not_allowed(view: ColumnView, allowed: tuple[Any, ...]) -> Any:
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    if view.kind == "category":
        return _by_category(view, lambda cats: ~cats.isin(list(allowed)))
    if view.kind == "string":
        values = pa.array([str(a) for a in allowed], type=pa.large_string())
        found = pc.is_in(view.arrow.cast(pa.large_string()), value_set=values, skip_nulls=True)
        bad = ~np.asarray(found.fill_null(True))
        if view.null is not None:  # skip_nulls makes a null "not found": nulls are not judged
            bad &= ~view.null
        return bad
    if view.kind in _NUMERIC and view.kind != "datetime":
        bad = ~np.isin(view.values, np.asarray(allowed))
    else:
        bad = ~view.series.isin(list(allowed)).to_numpy()
    if view.null is not None:
        bad &= ~view.null
    return bad


def _by_category(view: ColumnView, rule: Callable[[Any], Any]) -> Any:
    """Evaluate ``rule`` once per category, then map it onto rows by code."""
    import numpy as np

    per_category = np.asarray(rule(view.categories), dtype=bool)
    lookup = np.append(per_category, False)  # code -1 (null) → not offending
    return lookup[view.codes]


def _no_match(view: ColumnView, pattern: str) -> Any:
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    anchored = f"^(?:{pattern})$"
    if view.kind == "category":
        return _by_category(
            view, lambda cats: ~cats.astype(str).str.fullmatch(pattern).to_numpy(dtype=bool)
        )
    if view.kind == "string":
        try:
            matched = pc.match_substring_regex(view.arrow, anchored)
            return ~np.asarray(matched.fill_null(True))
        except pa.ArrowInvalid:  # a pattern RE2 cannot run (look-around, back-references)
            pass
    matched = view.series.astype("string").str.fullmatch(pattern)
    return ~matched.fillna(True).to_numpy(dtype=bool)


def _bad_length(view: ColumnView, col: Column) -> Any:
    import numpy as np
    import pyarrow.compute as pc

    def bad_lengths(lengths: Any) -> Any:
        bad = np.zeros(len(lengths), dtype=bool)
        if col.min_length is not None:
            bad |= lengths < col.min_length
        if col.max_length is not None:
            bad |= lengths > col.max_length
        return bad

    if view.kind == "category":
        return _by_category(view, lambda cats: bad_lengths(cats.astype(str).str.len().to_numpy()))
    lengths = np.asarray(pc.utf8_length(view.arrow).fill_null(0))
    bad = bad_lengths(lengths)
    if view.null is not None:
        bad &= ~view.null
    return bad


def _duplicated(view: ColumnView) -> Any:
    """Rows whose value occurs more than once (every copy counts); nulls are not compared."""
    import numpy as np

    if view.kind in ("int", "float", "datetime") and view.values is not None:
        values = view.values if view.null is None else view.values[~view.null]
        ordered = np.sort(values)
        if not np.any(ordered[1:] == ordered[:-1]):  # the common case: no duplicates at all
            return None
    if view.kind == "category":
        dup = _pandas_duplicated(view.codes)
    else:
        dup = view.series.duplicated(keep=False).to_numpy()
    if view.null is not None:
        dup &= ~view.null
    return dup


def _pandas_duplicated(values: Any) -> Any:
    import pandas as pd

    return pd.Series(values).duplicated(keep=False).to_numpy()


def _compound_unique(run: _Run, key: tuple[str, ...]) -> None:
    """Rows whose key occurs more than once; rows with a null in the key are not compared.

    The columns' value hashes are combined per row and sorted: when no two rows share a
    combined hash (the usual case) no two share a key, and the check is done without
    pandas' hash table; otherwise ``DataFrame.duplicated`` gives the exact rows.
    """
    import numpy as np

    missing = [c for c in key if c not in run.frame.columns]
    label = f"unique({', '.join(key)})"
    if missing:
        run.skip(label, None, "unique key", f"missing column(s) {missing}", "error")
        return
    nulls = np.zeros(run.n, dtype=bool)
    for column in key:
        view = run.view(column)
        if view.null is not None:
            nulls |= view.null
    combined = _row_key_hashes(run, key)
    ordered = np.sort(combined[~nulls] if nulls.any() else combined)
    if not np.any(ordered[1:] == ordered[:-1]):
        run.rows(label, None, "no duplicate keys", None, list(key))
        return
    dup = run.frame.duplicated(subset=list(key), keep=False).to_numpy()
    run.rows(label, None, "no duplicate keys", dup & ~nulls, list(key))


def _row_key_hashes(run: _Run, key: tuple[str, ...]) -> Any:
    import numpy as np
    import pandas as pd

    from modelyard.data.digest import column_hashes, mix

    acc = np.zeros(run.n, dtype=np.uint64)
    for i, column in enumerate(key):
        view = run.view(column)
        if view.kind in ("int", "float", "bool", "datetime") and view.values is not None:
            values = view.values
            bits = (
                values.astype(np.float64) if values.dtype.kind == "f" else values.astype(np.int64)
            )
            h = mix(bits.view(np.uint64))
        elif view.kind == "category":
            h = mix(view.codes.astype(np.int64).view(np.uint64))
        elif view.kind == "string":
            h = column_hashes(view.arrow)
        else:
            h = pd.util.hash_pandas_object(view.series, index=False).to_numpy()
        acc = mix(acc * np.uint64(0x100000001B3) ^ h ^ np.uint64(i + 1))
    return acc


def _rule(run: _Run, text: str, label: str, severity: str) -> None:
    import numpy as np

    expr = parse(text)
    check = f"rule:{label}"
    missing = [c for c in expr.columns if c not in run.frame.columns]
    if missing:
        run.skip(check, None, text, f"missing column(s) {missing}", severity)
        return
    columns: dict[str, Any] = {}
    applicable = np.ones(run.n, dtype=bool)
    for name in expr.columns:
        view = run.view(name)
        if view.kind in ("int", "float"):
            values = view.values
            if view.null is not None:
                values = np.where(view.null, np.nan, values.astype(np.float64))
            columns[name] = values
        else:
            columns[name] = view.series.to_numpy() if view.kind == "bool" else view.series
        if view.null is not None and not expr.handles_nulls:
            applicable &= ~view.null
    try:
        holds = np.asarray(expr.evaluate(columns), dtype=bool)
    except (TypeError, ValueError) as exc:
        raise InvalidParameter(
            f"rule {text!r} cannot be evaluated on this data: {exc}", field="rules"
        ) from None
    if holds.shape != (run.n,):
        holds = np.broadcast_to(holds, (run.n,))
    run.rows(check, None, text, ~holds & applicable, list(expr.columns), severity)


def _freshness(run: _Run, contract: Contract) -> None:
    import numpy as np

    fresh = contract.freshness
    assert fresh is not None
    expected = f"newest {fresh.column} within {fresh.text or f'{fresh.max_age_s:g}s'}"
    check = f"{fresh.column}.freshness"
    if fresh.column not in run.frame.columns:
        run.table(check, fresh.column, expected, False, "column missing")
        return
    view = run.view(fresh.column)
    if view.kind not in ("datetime", "date"):
        run.skip(check, fresh.column, expected, f"column is {view.kind}, not a time", "error")
        return
    values = view.values if view.null is None else view.values[~view.null]
    if not len(values):
        run.table(check, fresh.column, expected, False, "no values")
        return
    newest = int(values.max())
    now = _ns(run.now) if run.now is not None else time.time_ns()
    age_s = (now - newest) / 1e9
    observed = f"{np.datetime64(newest, 'ns').astype('datetime64[s]')} ({_age(age_s)} old)"
    run.table(check, fresh.column, expected, age_s <= fresh.max_age_s, observed)


def _age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if abs(seconds) >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"


def _distribution(run: _Run, view: ColumnView, col: Column, contract: Contract) -> None:
    import numpy as np

    assert col.distribution is not None
    ref = col.distribution.reference or contract.reference
    check = f"{view.name}.distribution"
    expected = f"PSI <= {col.distribution.max_psi:g} vs {ref or 'reference'}"
    profile = run.reference_profile(ref, view.name)
    if profile is None:
        raise InvalidParameter(
            f"the distribution check of column {view.name!r} needs the reference "
            f"{ref or '(none named)'!r}, which has no profile of that column; name a reference "
            "dataset version (reference: NAME@VERSION) and validate through DataClient.check "
            "or pass reference=",
            field=f"columns.{view.name}.distribution.reference",
        )
    bins = dist.reference_bins(profile)
    if bins is None:
        run.skip(check, view.name, expected, "the reference profile has no bins", col.severity)
        return
    kind, edges, expected_counts = bins
    if kind == "numeric" and view.kind in ("int", "float", "datetime"):
        values = view.values if view.null is None else view.values[~view.null]
        actual = dist.numeric_counts(values, edges)
    elif kind == "categorical":
        series = view.series if view.null is None else view.series[~view.null]
        actual = dist.categorical_counts(series, edges)
    else:
        run.skip(
            check, view.name, expected, f"reference is {kind}, column is {view.kind}", col.severity
        )
        return
    value = dist.psi(np.asarray(expected_counts), actual)
    run.table(
        check, view.name, expected, value <= col.distribution.max_psi, round(value, 6), col.severity
    )


def _resolve_reference(reference: Any, ref: str | None) -> dict[str, Any] | None:
    """A table profile for ``ref`` from what the caller passed as ``reference``."""
    if reference is None:
        return None
    if callable(reference):
        if ref is None:
            return None
        return reference(ref)
    if isinstance(reference, dict):
        return reference if "columns" in reference else None
    from modelyard.data.profile import profile_table

    return profile_table(reference)


def _short(values: tuple[Any, ...], limit: int = 6) -> str:
    shown = ", ".join(str(v) for v in values[:limit])
    return f"{{{shown}{', …' if len(values) > limit else ''}}}"


def _plain(value: Any) -> Any:
    """A JSON-friendly scalar for samples and reports."""
    import numpy as np
    import pandas as pd

    if value is None:
        return None
    if isinstance(value, (pd.Timestamp, dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if value is pd.NA or value is pd.NaT:
        return None
    return value
