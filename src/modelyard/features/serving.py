"""Online feature reads: values by entity key, each with a status, TTL enforced on read.

A request is resolved once into a plan (tables, key layout, codec, which values to pick,
TTL in µs) and the plan is cached: a repeated request costs the store read plus a decode,
never a registry lookup (Feast's per-call registry and proto work is most of its 7 ms).
Definitions are refreshed when the registry changes, checked at most every
``refresh_interval_s`` seconds.

Each value has a status: ``present``; ``missing`` (never materialised for that entity);
or ``expired`` (older than the view's TTL at read time — the value is withheld, as the
training set would have withheld it). On-demand features run the same transform as
offline; their status is the worst status among their inputs.

>>> server.get_online_features([{"store_id": 7}], features=["sales:units"])  # doctest: +SKIP
"""

from __future__ import annotations

import operator
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, cast

from modelyard.errors import InvalidParameter
from modelyard.features.catalog import Catalog, Selection
from modelyard.features.definitions import FeatureView, OnDemandFeatureView
from modelyard.features.materialize import online_table
from modelyard.features.online.base import KEY_SEPARATOR, OnlineStore, OnlineTable, Record
from modelyard.features.online.codec import RowCodec, arrow_type


class FeatureStatus(StrEnum):
    PRESENT = "present"
    MISSING = "missing"
    EXPIRED = "expired"


PRESENT, MISSING, EXPIRED = FeatureStatus.PRESENT, FeatureStatus.MISSING, FeatureStatus.EXPIRED
_RANK = {PRESENT: 0, EXPIRED: 1, MISSING: 2}
_EVENT_TS, _BLOB = operator.itemgetter(0), operator.itemgetter(1)
_INT = {int}
#: Resolved request shapes kept; beyond it the cache starts over (ad-hoc requests).
_MAX_PLANS = 1024


class OnlineFeatures:
    """Columns of values (entity keys first, then features) and a status per value.

    Status lists of the features of one view are shared: treat them as read-only.
    """

    __slots__ = ("columns", "statuses")

    def __init__(self, columns: dict[str, list[Any]], statuses: dict[str, list[FeatureStatus]]):
        self.columns = columns
        self.statuses = statuses

    def __getitem__(self, name: str) -> list[Any]:
        return self.columns[name]

    def __len__(self) -> int:
        return len(next(iter(self.columns.values()), []))

    def to_dict(self) -> dict[str, list[Any]]:
        return dict(self.columns)

    def status_dict(self) -> dict[str, list[str]]:
        return {k: [str(s) for s in v] for k, v in self.statuses.items()}

    def rows(self) -> list[dict[str, Any]]:
        names = list(self.columns)
        return [
            dict(zip(names, values, strict=True))
            for values in zip(*self.columns.values(), strict=True)
        ]

    def to_df(self) -> Any:
        import pandas as pd

        return pd.DataFrame(self.columns)

    def __repr__(self) -> str:
        return f"OnlineFeatures({self.columns!r})"


@dataclass
class _ViewPlan:
    view: FeatureView
    table: OnlineTable
    keys: tuple[str, ...]
    int_keys: tuple[bool, ...]
    #: The Python type of the single join key (``int`` or ``str``); ``None`` if composite.
    key_type: type | None
    decode: Callable[[bytes], tuple[Any, ...]]
    decode_columns: Callable[[Sequence[bytes]], list[list[Any]]]
    #: ``RowCodec.unpack_simple`` (fixed-width features only) or ``None``.
    unpack: Callable[[bytes], tuple[Any, ...]] | None
    zero_mask: bytes
    picks: tuple[tuple[int, str], ...]
    names: tuple[str, ...]
    ttl_us: int


@dataclass
class _Plan:
    views: tuple[_ViewPlan, ...]
    on_demand: tuple[tuple[OnDemandFeatureView, tuple[str, ...]], ...]
    selection: Selection
    key_names: tuple[str, ...]
    hidden: tuple[str, ...]
    columns: tuple[str, ...]


def _plan(selection: Selection) -> _Plan:
    outputs = {(v, f): c for v, f, c in selection.outputs}
    views = []
    hidden = []
    for view, features in selection.views:
        if not view.online:
            raise InvalidParameter(
                f"feature view {view.name} is offline only (online=False); it has no online "
                "values to serve",
                field="features",
            )
        picks = []
        for feature in features:
            column = outputs.get((view.name, feature))
            if column is None:  # read only for an on-demand view
                column = f"__in_{view.name}__{feature}"
                hidden.append(column)
            picks.append((view.feature_names.index(feature), column))
        codec = RowCodec([f.dtype for f in view.schema])
        int_keys = tuple(view.key_dtypes[k] == "int64" for k in view.join_keys)
        views.append(
            _ViewPlan(
                view=view,
                table=online_table(view),
                keys=view.join_keys,
                int_keys=int_keys,
                key_type=(int if int_keys[0] else str) if len(int_keys) == 1 else None,
                decode=codec.decode,
                decode_columns=codec.decode_columns,
                unpack=codec.unpack_simple,
                zero_mask=codec.zero_mask,
                picks=tuple(picks),
                names=tuple(name for _, name in picks),
                ttl_us=int(view.ttl.total_seconds() * 1_000_000) if view.ttl else 0,
            )
        )
    return _Plan(
        tuple(views),
        selection.on_demand,
        selection,
        selection.join_keys,
        tuple(hidden),
        tuple(c for _, _, c in selection.outputs),
    )


def _key_column(rows: Any, name: str, columnar: bool, n: int) -> list[Any]:
    if columnar:
        values = rows.get(name)
        if values is None:
            raise InvalidParameter(f"entity rows are missing join key {name!r}", field=name)
        values = list(values)
        if len(values) != n:
            raise InvalidParameter(
                f"join key {name!r} has {len(values)} values for {n} entity rows", field=name
            )
        return values
    try:
        return [row[name] for row in rows]
    except KeyError:
        raise InvalidParameter(f"entity rows are missing join key {name!r}", field=name) from None
    except TypeError:
        raise InvalidParameter(
            "entity_rows must be a list of dicts ({'store_id': 1}) or a dict of lists",
            field="entity_rows",
        ) from None


def _check_keys(values: list[Any], name: str, is_int: bool) -> list[Any]:
    """Keys of the declared type (ints for int64 keys, str for string keys), or an error."""
    if is_int:
        if set(map(type, values)) <= _INT:  # no bools: they are ints to Python
            return values
        out = []
        for v in values:
            if isinstance(v, bool) or not hasattr(v, "__index__"):
                raise InvalidParameter(
                    f"join key {name!r} must be an integer, got {type(v).__name__} {v!r}",
                    field=name,
                )
            out.append(operator.index(v))
        return out
    for v in values:
        if type(v) is not str:
            raise InvalidParameter(
                f"join key {name!r} must be a string, got {type(v).__name__} {v!r}", field=name
            )
    return values


class FeatureServer:
    """Reads online features for entity rows; holds the resolved definitions and plans."""

    def __init__(
        self,
        load_catalog: Callable[[], Catalog],
        store: OnlineStore,
        *,
        generation: Callable[[], Any] | None = None,
        refresh_interval_s: float | None = 60.0,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self._load_catalog = load_catalog
        self.store = store
        self._generation = generation
        self._refresh_interval_s = refresh_interval_s
        self.clock = clock
        self._catalog: Catalog | None = None
        self._seen: Any = None
        self._next_check = 0.0
        self._plans: dict[Any, _Plan] = {}

    def refresh(self) -> None:
        """Forget resolved definitions; the next request loads them again."""
        self._catalog = None
        self._plans = {}

    @property
    def catalog(self) -> Catalog:
        if self._refresh_interval_s is not None and self._generation is not None:
            now = time.monotonic()
            if now >= self._next_check:
                self._next_check = now + self._refresh_interval_s
                seen = self._generation()
                if seen != self._seen:
                    self._seen = seen
                    self.refresh()
        if self._catalog is None:
            self._catalog = self._load_catalog()
        return self._catalog

    def _plan_for(self, features: Any, service: Any, full_names: bool) -> _Plan:
        catalog = self.catalog  # checks (rarely) whether the registry changed
        try:
            key: Any = (
                service
                if features is None
                else tuple(features)
                if isinstance(features, (list, tuple))
                else features,
                service is not None,
                full_names,
            )
            plan = self._plans.get(key)
        except TypeError:  # unhashable: resolve by content, uncached
            key, plan = None, None
        if plan is None:
            if (features is None) == (service is None):
                catalog.select(features, service)  # raises, naming the problem
            plan = _plan(catalog.select(features, service, full_names=full_names))
            if key is not None:
                if len(self._plans) >= _MAX_PLANS:
                    self._plans.clear()
                self._plans[key] = plan
        return plan

    def get_online_features(
        self,
        entity_rows: Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Any]],
        features: Sequence[Any] | None = None,
        service: Any = None,
        *,
        request_data: Mapping[str, Sequence[Any]] | None = None,
        full_names: bool = False,
        enforce_ttl: bool = True,
    ) -> OnlineFeatures:
        """Feature values for ``entity_rows`` (``[{"store_id": 1}, ...]`` or
        ``{"store_id": [1, 2]}``), with a status per value."""
        plan = self._plan_for(features, service, full_names)
        kind = type(entity_rows)
        columnar = kind is dict or (kind is not list and isinstance(entity_rows, Mapping))
        if columnar:
            first = next(iter(entity_rows.values()), ())  # type: ignore[union-attr]
            n = len(first)
        else:
            n = len(entity_rows)
        if n == 1 and (kind is list or kind is tuple) and not plan.on_demand:
            return self._one_entity(plan, entity_rows[0], enforce_ttl)  # type: ignore[index]
        columns: dict[str, list[Any]] = {}
        statuses: dict[str, list[FeatureStatus]] = {}
        for name in plan.key_names:
            columns[name] = _key_column(entity_rows, name, columnar, n)
        now_us = self.clock() // 1000
        for vp in plan.views:
            if len(vp.keys) == 1:
                keys = _check_keys(columns[vp.keys[0]], vp.keys[0], vp.int_keys[0])
            else:
                parts = [
                    _check_keys(columns[k], k, is_int)
                    for k, is_int in zip(vp.keys, vp.int_keys, strict=True)
                ]
                keys = [KEY_SEPARATOR.join(map(str, t)) for t in zip(*parts, strict=True)]
            ttl_us = vp.ttl_us if enforce_ttl else 0
            if n == 1:
                self._read_one(vp, keys[0], ttl_us, now_us, columns, statuses)
            else:
                self._read_many(vp, keys, ttl_us, now_us, columns, statuses)
        if plan.on_demand:
            self._on_demand(plan, columns, statuses, request_data, n)
        return OnlineFeatures(columns, statuses)

    def _one_entity(self, plan: _Plan, row: Any, enforce_ttl: bool) -> OnlineFeatures:
        """The single-entity path: per view one primary-key read and one ``struct.unpack``,
        then the result's lists; no per-row loops, no batch decoding."""
        columns: dict[str, list[Any]] = {}
        try:
            for name in plan.key_names:
                columns[name] = [row[name]]
        except (KeyError, TypeError):
            for name in plan.key_names:
                _key_column([row], name, False, 1)  # raises, naming the problem
            raise
        statuses: dict[str, list[FeatureStatus]] = {}
        now_us = self.clock() // 1000
        for vp in plan.views:
            if vp.key_type is not None:
                key = columns[vp.keys[0]][0]
                if type(key) is not vp.key_type:
                    key = _check_keys([key], vp.keys[0], vp.int_keys[0])[0]
            else:
                key = KEY_SEPARATOR.join(
                    str(_check_keys(columns[k], k, is_int)[0])
                    for k, is_int in zip(vp.keys, vp.int_keys, strict=True)
                )
            self._read_one(vp, key, vp.ttl_us if enforce_ttl else 0, now_us, columns, statuses)
        return OnlineFeatures(columns, statuses)

    def _read_one(
        self,
        vp: _ViewPlan,
        key: Any,
        ttl_us: int,
        now_us: int,
        columns: dict[str, list[Any]],
        statuses: dict[str, list[FeatureStatus]],
    ) -> None:
        """One entity of one view: one primary-key read, one ``struct.unpack``."""
        record = self.store.read_one(vp.table, key)
        if record is None or (ttl_us and now_us - record[0] > ttl_us):
            status = [MISSING if record is None else EXPIRED]
            for name in vp.names:
                columns[name] = [None]
                statuses[name] = status
            return
        blob = record[1]
        values = vp.unpack(blob) if vp.unpack is not None else None
        if values is None or values[-1] != vp.zero_mask:  # strings, timestamps or nulls
            values = vp.decode(blob)
        status = [PRESENT]
        for index, name in vp.picks:
            columns[name] = [values[index]]
            statuses[name] = status

    def _read_many(
        self,
        vp: _ViewPlan,
        keys: list[Any],
        ttl_us: int,
        now_us: int,
        columns: dict[str, list[Any]],
        statuses: dict[str, list[FeatureStatus]],
    ) -> None:
        """Many entities: one store round trip, then a column-wise NumPy decode."""
        n = len(keys)
        records = self.store.read(vp.table, keys)
        whole = cast("list[Record]", records)  # when None is not in it
        if None not in records and (not ttl_us or now_us - min(map(_EVENT_TS, whole)) <= ttl_us):
            # The usual case, every value present: no per-row Python.
            decoded = vp.decode_columns(list(map(_BLOB, whole)))
            all_present = [PRESENT] * n
            for index, name in vp.picks:
                columns[name] = decoded[index]
                statuses[name] = all_present
            return
        status: list[FeatureStatus] = []
        positions: list[int] = []
        blobs: list[bytes] = []
        for i, record in enumerate(records):
            if record is None:
                status.append(MISSING)
            elif ttl_us and now_us - record[0] > ttl_us:
                status.append(EXPIRED)
            else:
                status.append(PRESENT)
                positions.append(i)
                blobs.append(record[1])
        decoded = vp.decode_columns(blobs)
        for index, name in vp.picks:
            values = decoded[index]
            if len(positions) != n:
                full: list[Any] = [None] * n
                for position, value in zip(positions, values, strict=True):
                    full[position] = value
                values = full
            columns[name] = values
            statuses[name] = status

    def _on_demand(
        self,
        plan: _Plan,
        columns: dict[str, list[Any]],
        statuses: dict[str, list[FeatureStatus]],
        request_data: Mapping[str, Sequence[Any]] | None,
        n: int,
    ) -> None:
        """Run on-demand transforms on the fetched values, as offline does (via Arrow)."""
        import pandas as pd
        import pyarrow as pa

        from modelyard.features.offline import apply_on_demand

        outputs = {(v, f): c for v, f, c in plan.selection.outputs}
        for odfv, wanted in plan.on_demand:
            inputs: dict[str, Any] = {}
            worst = [PRESENT] * n
            for projection in odfv.inputs:
                view = projection.view
                for feature in projection.features:
                    column = outputs.get((view.name, feature), f"__in_{view.name}__{feature}")
                    typed = pa.array(columns[column], type=arrow_type(view.dtypes[feature]))
                    inputs[feature] = typed.to_pandas().to_numpy()
                    worst = [
                        s if _RANK[s] > _RANK[w] else w
                        for s, w in zip(statuses[column], worst, strict=True)
                    ]
            for name, dtype in odfv.request_fields.items():
                values = (request_data or {}).get(name)
                if values is None:
                    raise InvalidParameter(
                        f"request data is missing {name!r}, which on-demand view {odfv.name} needs",
                        field=name,
                    )
                if len(values) != n:
                    raise InvalidParameter(
                        f"request field {name!r} has {len(values)} values for {n} entity rows",
                        field=name,
                    )
                try:
                    typed = pa.array(list(values), type=arrow_type(dtype))
                except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
                    raise InvalidParameter(
                        f"request field {name!r} must hold {dtype} values: {exc}", field=name
                    ) from exc
                inputs[name] = typed.to_pandas().to_numpy()
            result = apply_on_demand(odfv, pd.DataFrame(inputs), as_lists=True)
            for feature in wanted:
                column = outputs[(odfv.name, feature)]
                columns[column] = result[feature]
                statuses[column] = worst
        for column in plan.hidden:
            columns.pop(column, None)
            statuses.pop(column, None)
