"""Point-in-time-correct training sets, joined in DuckDB.

For each entity row at time T and each feature view, the value is that of the feature row
with the same join keys and the latest ``event_ts <= T`` — never a later one — provided
``event_ts >= T - ttl`` (no TTL: no lower bound). Several rows at that event time are
decided by the highest created timestamp (a missing one counts as oldest), then — so the
choice is deterministic, and the same online — by the largest hash of the feature values.
With ``exclude_created_after=True`` rows created after T are not eligible either, so a
backfill written later cannot leak into the past.

Every entity row comes back, in the caller's order, with nulls where no value qualifies
(Feast drops such rows). The join is DuckDB's ASOF join over the sources (Parquet, CSV,
DataFrames), never per-row Python.

>>> ts = get_training_set(session, catalog.select(["sales:units"]), entities)  # doctest: +SKIP
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from modelyard.errors import InvalidParameter
from modelyard.features.catalog import Selection
from modelyard.features.definitions import (
    DEFAULT_TIMESTAMP_COLUMN,
    FeatureView,
    OnDemandFeatureView,
)
from modelyard.features.relations import Session, ViewRelation, arrow_table, quote

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

_ROW = "__row"


@dataclass
class TrainingSet:
    """A point-in-time-correct training frame and what it was built from.

    ``views`` maps each feature view to the version and digest used; ``sources`` lists the
    source dataset versions (name and content digest) read. ``training_set_id`` is set
    once the set is recorded in the metadata store.
    """

    frame: pd.DataFrame
    refs: tuple[str, ...]
    views: dict[str, dict[str, Any]] = field(default_factory=dict)
    sources: list[dict[str, str]] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    name: str = "training_set"
    training_set_id: str | None = None
    entity_digest: str = ""

    def to_df(self) -> pd.DataFrame:
        return self.frame

    def __len__(self) -> int:
        return len(self.frame)


def _arrow_entities(entity_df: Any, wanted: Sequence[str]) -> pa.Table:
    """The entity columns the join reads, as Arrow (the rest are never converted)."""
    import pyarrow as pa

    if isinstance(entity_df, pa.Table):
        return entity_df.select([c for c in wanted if c in entity_df.column_names])
    if hasattr(entity_df, "columns") and hasattr(entity_df, "dtypes"):
        present = [c for c in dict.fromkeys(wanted) if c in entity_df.columns]
        # One thread: for a few columns a thread pool costs more than the conversion.
        return pa.Table.from_pandas(entity_df, columns=present, preserve_index=False, nthreads=1)
    raise InvalidParameter(
        f"entity_df must be a pandas DataFrame or a pyarrow Table, got {type(entity_df).__name__}",
        field="entity_df",
    )


def check_entity_table(
    table: pa.Table, selection: Selection, timestamp_column: str, all_columns: Sequence[str]
) -> None:
    """Refuse entity rows that cannot be joined: missing keys, timestamp or request fields,
    or columns of the wrong type — naming the column."""
    import pyarrow as pa

    names = set(table.column_names)
    listed = sorted(map(str, all_columns))
    if timestamp_column not in names:
        raise InvalidParameter(
            f"entity rows have no timestamp column {timestamp_column!r}; add it or pass "
            f"timestamp_column= (columns: {listed})",
            field=timestamp_column,
        )
    ts_type = table.schema.field(timestamp_column).type
    if not (pa.types.is_timestamp(ts_type) or pa.types.is_date(ts_type)):
        raise InvalidParameter(
            f"entity timestamp column {timestamp_column!r} is {ts_type}, not a timestamp; "
            "convert it with pandas.to_datetime",
            field=timestamp_column,
        )
    for view, _ in selection.views:
        for key in view.join_keys:
            if key not in names:
                raise InvalidParameter(
                    f"entity rows are missing join key {key!r} of feature view {view.name} "
                    f"(columns: {listed})",
                    field=key,
                )
            arrow_type = table.schema.field(key).type
            ok = (
                pa.types.is_integer(arrow_type)
                if view.key_dtypes[key] == "int64"
                else pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type)
            )
            if not ok and not pa.types.is_null(arrow_type):
                raise InvalidParameter(
                    f"join key {key!r} is {arrow_type} in the entity rows but "
                    f"{view.key_dtypes[key]} in feature view {view.name}",
                    field=key,
                )
    for name in selection.request_fields:
        if name not in names:
            raise InvalidParameter(
                f"entity rows are missing request field {name!r}, which an on-demand feature needs",
                field=name,
            )


def tie_break(view: FeatureView, prefix: str = "") -> str:
    """ORDER BY terms deciding between rows at the same event time (shared with
    materialisation so that offline and online pick the same row)."""
    feats = ", ".join(prefix + quote(f) for f in view.feature_names)
    created = f"{prefix}__created DESC NULLS LAST, " if view.source.created_timestamp_field else ""
    return f"{created}hash({feats}) DESC"


def point_in_time_sql(
    relations: Sequence[ViewRelation],
    selection: Selection,
    entity_rel: str,
    timestamp_column: str,
    *,
    apply_ttl: bool = True,
    exclude_created_after: bool = False,
) -> str:
    """One query joining every view onto the entity rows (prepared views, see
    ``Session.prepare``); rows come back in any order, with ``__row``."""
    keys = selection.join_keys
    dtypes = {k: t for v, _ in selection.views for k, t in v.key_dtypes.items()}
    cast = {"int64": "BIGINT", "string": "VARCHAR"}
    key_cols = ", ".join(f"CAST({quote(k)} AS {cast[dtypes[k]]}) AS {quote(k)}" for k in keys)
    ctes = [
        f"e AS (SELECT {_ROW}, {key_cols}, CAST({quote(timestamp_column)} AS TIMESTAMPTZ) "
        f"AS __T FROM {entity_rel})"
    ]
    joins = []
    selects = [f"e.{_ROW}"]
    wanted = {(v, f): c for v, f, c in selection.outputs}
    for i, (rel, (view, features)) in enumerate(zip(relations, selection.views, strict=True)):
        alias = f"v{i}"
        ttl_us = int(view.ttl.total_seconds() * 1_000_000) if view.ttl and apply_ttl else 0
        if exclude_created_after:
            window = f" AND r.__ts >= e.__T - to_microseconds({ttl_us})" if ttl_us else ""
            r_on = " AND ".join(f"e.{quote(k)} = r.{quote(k)}" for k in view.join_keys)
            created_ok = (
                " AND (r.__created IS NULL OR r.__created <= e.__T)" if rel.has_created else ""
            )
            ctes.append(
                f"{alias} AS (SELECT e.{_ROW}, r.* FROM e JOIN {rel.table} r ON {r_on} "
                f"AND r.__ts <= e.__T{created_ok}{window} "
                f"QUALIFY row_number() OVER (PARTITION BY e.{_ROW} ORDER BY r.__ts DESC, "
                f"{tie_break(view, 'r.')}) = 1)"
            )
            joins.append(f"LEFT JOIN {alias} ON e.{_ROW} = {alias}.{_ROW}")
            valid = None
        else:
            # ASOF over the narrow keys table, then the features by row id (see prepare).
            k_alias = f"k{i}"
            k_on = " AND ".join(f"e.{quote(k)} = {k_alias}.{quote(k)}" for k in view.join_keys)
            joins.append(
                f"ASOF LEFT JOIN {rel.keys_table} AS {k_alias} ON {k_on} "
                f"AND e.__T >= {k_alias}.__ts "
                f"LEFT JOIN {rel.deduplicated} AS {alias} ON {alias}.__rid = {k_alias}.__rid"
            )
            valid = f"{k_alias}.__ts >= e.__T - to_microseconds({ttl_us})" if ttl_us else None
        for feature in features:
            column = wanted.get((view.name, feature))
            if column is None:  # read only for an on-demand view
                column = f"__in_{view.name}__{feature}"
            value = f"{alias}.{quote(feature)}"
            if valid:
                value = f"CASE WHEN {valid} THEN {value} END"
            selects.append(f"{value} AS {quote(column)}")
    return f"WITH {', '.join(ctes)} SELECT {', '.join(selects)} FROM e {' '.join(joins)}"


def get_training_set(
    session: Session,
    selection: Selection,
    entity_df: Any,
    *,
    timestamp_column: str = DEFAULT_TIMESTAMP_COLUMN,
    exclude_created_after: bool = False,
    apply_ttl: bool = True,
) -> TrainingSet:
    """Join the selected features onto ``entity_df`` point-in-time correctly.

    ``entity_df`` has the join keys, ``timestamp_column`` and any request fields that
    on-demand features need. The result keeps every entity row and column, in order, and
    adds one column per feature (nulls where no value qualifies).
    """
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    keep = [*selection.join_keys, timestamp_column, *selection.request_fields]
    table = _arrow_entities(entity_df, keep)
    columns = entity_df.column_names if isinstance(entity_df, pa.Table) else entity_df.columns
    check_entity_table(table, selection, timestamp_column, list(columns))
    slim = table.select(keep[: len(selection.join_keys) + 1])
    slim = slim.append_column(_ROW, pa.array(np.arange(table.num_rows)))
    entity_rel = session.register(slim, "entities")
    relations = [session.prepare(session.view(view)) for view, _ in selection.views]
    sql = point_in_time_sql(
        relations,
        selection,
        entity_rel,
        timestamp_column,
        apply_ttl=apply_ttl,
        exclude_created_after=exclude_created_after,
    )
    session.con.execute("SET preserve_insertion_order = false")  # rows are put back below
    try:
        joined = arrow_table(session.con, sql)
    finally:
        session.con.execute("SET preserve_insertion_order = true")
    # Put rows back in the caller's order: __row is a permutation, so invert it (O(n))
    # instead of sorting in SQL.
    order = np.empty(joined.num_rows, dtype=np.int64)
    order[joined.column(_ROW).to_numpy()] = np.arange(joined.num_rows)
    # pandas keeps same-typed columns in one 2-D block: one take, not one per column.
    features = joined.drop_columns([_ROW]).to_pandas().take(order).reset_index(drop=True)
    base = entity_df if isinstance(entity_df, pd.DataFrame) else entity_df.to_pandas()
    frame = pd.concat([base.reset_index(drop=True), features], axis=1)
    for odfv, wanted in selection.on_demand:
        outputs = run_on_demand(odfv, frame, selection)
        for feature in wanted:
            frame[_output_column(selection, odfv.name, feature)] = outputs[feature]
    hidden = [c for c in frame.columns if isinstance(c, str) and c.startswith("__in_")]
    frame = frame.drop(columns=hidden)
    sources = [
        {"view": rel.view.name, "name": rel.view.source.name or "", "digest": rel.source_digest}
        for rel in relations
    ]
    options = {
        "timestamp_column": timestamp_column,
        "exclude_created_after": exclude_created_after,
        "apply_ttl": apply_ttl,
    }
    ts = TrainingSet(frame, selection.refs, sources=sources, options=options)
    ts.entity_digest = _table_digest(table.select(keep))
    return ts


def _table_digest(table: pa.Table) -> str:
    """sha256 over the entity columns' names, types and Arrow buffers (cheap: no pandas)."""
    import hashlib

    h = hashlib.sha256()
    for name, column in zip(table.column_names, table.columns, strict=True):
        h.update(f"{name}:{column.type}\0".encode())
        for chunk in column.chunks:
            for buffer in chunk.buffers():
                if buffer is not None:
                    h.update(buffer)
    return h.hexdigest()


def _output_column(selection: Selection, view: str, feature: str) -> str:
    for v, f, column in selection.outputs:
        if v == view and f == feature:
            return column
    return feature


def on_demand_inputs(
    odfv: OnDemandFeatureView, frame: pd.DataFrame, selection: Selection
) -> pd.DataFrame:
    """The columns an on-demand view reads, by plain feature name, from a joined frame."""
    import pandas as pd

    columns: dict[str, Any] = {}
    for projection in odfv.inputs:
        for feature in projection.features:
            hidden = f"__in_{projection.view.name}__{feature}"
            column = (
                hidden
                if hidden in frame.columns
                else _output_column(selection, projection.view.name, feature)
            )
            columns[feature] = frame[column].to_numpy()
    for name in odfv.request_fields:
        columns[name] = frame[name].to_numpy()
    return pd.DataFrame(columns)


def run_on_demand(
    odfv: OnDemandFeatureView, frame: pd.DataFrame, selection: Selection
) -> dict[str, list[Any] | Any]:
    """Run an on-demand transform on a frame's rows; outputs typed as declared, via Arrow,
    so that the online path (which does the same) sees identical values."""
    inputs = on_demand_inputs(odfv, frame, selection)
    return apply_on_demand(odfv, inputs, as_lists=False)


def apply_on_demand(
    odfv: OnDemandFeatureView, inputs: pd.DataFrame, *, as_lists: bool
) -> dict[str, Any]:
    """The one implementation of an on-demand transform, offline and online."""
    import pyarrow as pa

    from modelyard.features.online.codec import arrow_type

    if odfv.mode == "python":
        result = odfv.transform({c: inputs[c].tolist() for c in inputs.columns})
    else:
        result = odfv.transform(inputs)
    out: dict[str, Any] = {}
    for name in odfv.feature_names:
        try:
            values = result[name]
        except (KeyError, TypeError, IndexError):
            raise InvalidParameter(
                f"the transform of on-demand view {odfv.name} did not return column {name!r}",
                field=name,
            ) from None
        if hasattr(values, "to_numpy"):
            values = values.to_numpy()
        try:
            array = pa.array(values, type=arrow_type(odfv.dtypes[name]), from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError) as exc:
            raise InvalidParameter(
                f"on-demand feature {odfv.name}:{name} returned values that are not "
                f"{odfv.dtypes[name]}: {exc}",
                field=name,
            ) from exc
        if len(array) != len(inputs):
            raise InvalidParameter(
                f"on-demand feature {odfv.name}:{name} returned {len(array)} values for "
                f"{len(inputs)} rows",
                field=name,
            )
        out[name] = array.to_pylist() if as_lists else array.to_pandas()
    return out


def training_set_record(ts: TrainingSet) -> dict[str, str]:
    """JSON columns of the ``feature_training_sets`` row."""
    return {
        "features": json.dumps(list(ts.refs)),
        "views": json.dumps(ts.views, sort_keys=True),
        "sources": json.dumps(ts.sources, sort_keys=True),
        "options": json.dumps(ts.options, sort_keys=True),
    }
