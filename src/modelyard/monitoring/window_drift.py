"""Drift of a window's predictions, per variant, model version and slice, streamed.

The window's rows arrive as Arrow record batches from DuckDB (``prediction_rows``); each
batch is split by (variant, version) and by each slice column's value, and every part
updates that group's ``CurrentSummary`` (bins and bounded samples on the reference's own
bins): memory grows with the number of groups, never with the window. At the end each
group is compared with its version's reference profile.

Before streaming, a few sampled requests tell each reference column's logged type: a
column logged as text where the reference is numerical is read as text, and a column no
sampled request logged is left out, so the summary records either as an error that
``compare`` reports by name and counts as drifted (never a silent "no drift"); the
report's ``errors`` then say what the log showed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from modelyard.monitoring.prediction_rows import LogWindow, probe_types
from modelyard.monitoring.results import NUMERICAL

if TYPE_CHECKING:
    from modelyard.monitoring.profiles import CurrentSummary, ReferenceProfile
    from modelyard.monitoring.results import DriftReport

#: The column of a predictions profile (``monitoring.references``).
PREDICTION = "prediction"
#: Distinct values a slice column may have in one window; the rest are "(other)".
MAX_SLICE_VALUES = 50
_NUMERIC_JSON = frozenset({"BIGINT", "UBIGINT", "DOUBLE", "BOOLEAN"})

# -- drift per group ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GroupDrift:
    """Drift of one variant and version, overall (``slice`` None) or in one slice value
    (``"region=north"``). A report is ``None`` when there is no reference, ``reason`` says."""

    variant: str
    version: int
    slice: str | None
    rows: int
    input_drift: DriftReport | None
    prediction_drift: DriftReport | None
    reason: str | None = None


def _profile_for(reference: Any, version: int) -> ReferenceProfile | None:
    if reference is None:
        return None
    if isinstance(reference, Mapping):
        return reference.get(version)  # type: ignore[no-any-return]
    return reference  # type: ignore[no-any-return]


def _profiles(reference: Any) -> list[ReferenceProfile]:
    if reference is None:
        return []
    if isinstance(reference, Mapping):
        return list(reference.values())
    return [reference]


def _kind(profile: ReferenceProfile, column: str) -> str:
    return str(profile.columns[column].kind)


def _prediction_column(profile: ReferenceProfile) -> str:
    names = list(profile.columns)
    if PREDICTION in names or len(names) != 1:
        return PREDICTION
    return names[0]


@dataclass
class ColumnPlan:
    """Which columns the stream reads, and the verdicts found before reading it."""

    columns: dict[str, str]  # input column → DuckDB type
    errors: dict[str, str]  # input column → what the log showed (missing, changed type)
    prediction: str | None
    scores: bool


def plan_columns(window: LogWindow, reference: Any, prediction_reference: Any) -> ColumnPlan:
    kinds: dict[str, str] = {}
    for profile in _profiles(reference):
        for name in profile.columns:
            kinds.setdefault(name, _kind(profile, name))
    types, scores = probe_types(window, list(kinds))
    columns, errors = {}, {}
    for name, kind in kinds.items():
        seen = types.get(name, set())
        if not seen:
            errors[name] = (
                f"column {name!r} is missing from the prediction log: no sampled request "
                "in the window logged it"
            )
        elif kind == NUMERICAL and "VARCHAR" in seen and not seen & _NUMERIC_JSON:
            errors[name] = (
                f"column {name!r} changed type: logged as text, the reference is numerical"
            )
            columns[name] = "VARCHAR"
        else:
            columns[name] = "DOUBLE" if kind == NUMERICAL else "VARCHAR"
    prediction = None
    profiles = _profiles(prediction_reference)
    if profiles:
        column = _prediction_column(profiles[0])
        kind = _kind(profiles[0], column) if column in profiles[0].columns else NUMERICAL
        prediction = "DOUBLE" if kind == NUMERICAL or scores else "VARCHAR"
    return ColumnPlan(columns, errors, prediction, scores)


class WindowSummaries:
    """The streaming summaries of every (variant, version, slice) group of a window."""

    def __init__(
        self, reference: Any, prediction_reference: Any, plan: ColumnPlan, slices: Sequence[str]
    ) -> None:
        self.reference, self.prediction_reference = reference, prediction_reference
        self.plan, self.slices = plan, list(slices)
        self.inputs: dict[tuple[str, int, str | None], CurrentSummary | None] = {}
        self.predictions: dict[tuple[str, int, str | None], CurrentSummary | None] = {}
        self.rows: dict[tuple[str, int, str | None], int] = {}
        self.slice_values: list[dict[str, int]] = [{} for _ in self.slices]
        #: requests read per (variant, version): the log's others did not parse
        self.requests: dict[tuple[str, int], int] = {}
        self.capped: set[str] = set()

    def _summaries(self, key: tuple[str, int, str | None], slice_column: str | None) -> None:
        if key in self.rows:
            return
        self.rows[key] = 0
        profile = _profile_for(self.reference, key[1])
        # Every reference column, logged or not: one missing from the batches is an error
        # the summary records (and compare counts as drifted), not a column left out.
        columns = [c for c in (profile.columns if profile is not None else ()) if c != slice_column]
        self.inputs[key] = profile.summarizer(columns) if profile is not None else None
        predictions = _profile_for(self.prediction_reference, key[1])
        self.predictions[key] = (
            predictions.summarizer([_prediction_column(predictions)])
            if predictions is not None and self.plan.prediction is not None
            else None
        )

    def update(self, batch: Any) -> None:
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        table = pa.Table.from_batches([batch])
        if table.num_rows == 0:
            return
        group_keys = pc.binary_join_element_wise(
            table.column("variant"), pc.cast(table.column("version"), pa.string()), "\x1f"
        )
        encoded = pc.dictionary_encode(group_keys).combine_chunks()
        group_names = [tuple(k.split("\x1f")) for k in encoded.dictionary.to_pylist()]
        group_codes = np.asarray(encoded.indices)
        firsts = np.bincount(
            group_codes[np.asarray(table.column("_row")) == 0], minlength=len(group_names)
        )
        for (variant, version), n in zip(group_names, firsts.tolist(), strict=True):
            key = (variant, int(version))
            self.requests[key] = self.requests.get(key, 0) + n
        inputs = table.select(list(self.plan.columns))
        predictions = table.select(["prediction"]) if self.plan.prediction is not None else None
        self._feed(group_names, group_codes, None, None, inputs, predictions)
        for i, column in enumerate(self.slices):
            values = pc.fill_null(table.column(f"_s{i}"), "(missing)")
            sliced = pc.dictionary_encode(values).combine_chunks()
            local = [self._slice_label(i, column, v) for v in sliced.dictionary.to_pylist()]
            self._feed(
                group_names,
                group_codes,
                local,
                np.asarray(sliced.indices),
                inputs,
                predictions,
                column,
            )

    def _slice_label(self, i: int, column: str, value: str) -> str:
        known = self.slice_values[i]
        if value not in known:
            if len(known) >= MAX_SLICE_VALUES:
                self.capped.add(column)
                return f"{column}=(other)"
            known[value] = len(known)
        return f"{column}={value}"

    def _feed(
        self,
        group_names: list[tuple[str, ...]],
        group_codes: Any,
        slice_labels: list[str] | None,
        slice_codes: Any,
        inputs: Any,
        predictions: Any,
        slice_column: str | None = None,
    ) -> None:
        import numpy as np

        width = 1 if slice_labels is None else len(slice_labels)
        codes = group_codes.astype(np.int64) * width
        if slice_codes is not None:
            codes = codes + slice_codes
        order = np.argsort(codes, kind="stable")
        ordered = codes[order]
        starts = np.concatenate(([0], np.flatnonzero(np.diff(ordered)) + 1))
        ends = np.concatenate((starts[1:], [len(ordered)]))
        taken_inputs = inputs.take(order)
        taken_predictions = None if predictions is None else predictions.take(order)
        for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
            code = int(ordered[start])
            variant, version = group_names[code // width]
            label = None if slice_labels is None else slice_labels[code % width]
            key = (variant, int(version), label)
            self._summaries(key, slice_column)
            self.rows[key] += end - start
            summary = self.inputs[key]
            if summary is not None:
                part = taken_inputs.slice(start, end - start)
                if slice_column is not None and slice_column in part.column_names:
                    part = part.drop_columns([slice_column])
                summary.update(part)
            prediction_summary = self.predictions[key]
            if prediction_summary is not None and taken_predictions is not None:
                profile = _profile_for(self.prediction_reference, int(version))
                name = _prediction_column(profile)  # type: ignore[arg-type]
                part = taken_predictions.slice(start, end - start).rename_columns([name])
                prediction_summary.update(part)

    def reports(self, share: float) -> list[GroupDrift]:
        from modelyard.monitoring.profiles import compare

        out = []
        for key, rows in sorted(
            self.rows.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2] or "")
        ):
            variant, version, label = key
            summary, prediction_summary = self.inputs[key], self.predictions[key]
            reasons = []
            input_report = prediction_report = None
            profile = _profile_for(self.reference, version)
            if profile is None:
                reasons.append(f"no input reference profile for version {version}")
            elif summary is not None:
                input_report = compare(profile, summary, share=share)
                errors = {k: v for k, v in self.plan.errors.items() if k in input_report.errors}
                if errors:
                    input_report = replace(input_report, errors={**input_report.errors, **errors})
            predictions = _profile_for(self.prediction_reference, version)
            if predictions is None:
                reasons.append(f"no predictions reference profile for version {version}")
            elif prediction_summary is not None:
                prediction_report = compare(predictions, prediction_summary, share=share)
            out.append(
                GroupDrift(
                    variant,
                    version,
                    label,
                    rows,
                    input_report,
                    prediction_report,
                    "; ".join(reasons) or None,
                )
            )
        return out
