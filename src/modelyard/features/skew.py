"""Training-serving skew: compare online values with offline point-in-time values.

For a sample of entities in the online store, each view's offline value is computed at
the view's materialisation watermark — the time the online value describes — with the same
relation and tie-break the online value came from, and TTL left out on both sides (it
decides *whether* to serve a value, not what it is). Any difference means the two paths
disagree: late data added to the source after materialisation, a transformation changed
without re-materialising, or a bug. On-demand features (without request fields) are
recomputed both ways from the same inputs.

>>> report = store.check_skew("demand")  # doctest: +SKIP
>>> report.ok, report.by_feature  # doctest: +SKIP
(True, {'sales:units': 0})
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from modelyard.errors import InvalidParameter
from modelyard.features.catalog import Catalog
from modelyard.features.definitions import FeatureView
from modelyard.features.materialize import online_table, watermark
from modelyard.features.offline import get_training_set
from modelyard.features.online.base import KEY_SEPARATOR, OnlineStore
from modelyard.features.relations import Session
from modelyard.features.serving import FeatureServer
from modelyard.store.engine import Database

_TS = "__skew_ts"
#: Mismatches kept as examples per feature.
MAX_EXAMPLES = 5


@dataclass(frozen=True)
class Mismatch:
    feature: str
    entity: dict[str, Any]
    offline: Any
    online: Any


@dataclass
class SkewReport:
    """How many values were compared per feature, and which differed."""

    service: str
    sampled: int = 0
    compared: dict[str, int] = field(default_factory=dict)
    by_feature: dict[str, int] = field(default_factory=dict)
    examples: list[Mismatch] = field(default_factory=list)
    not_materialized: list[str] = field(default_factory=list)

    @property
    def mismatches(self) -> int:
        return sum(self.by_feature.values())

    @property
    def ok(self) -> bool:
        return self.mismatches == 0 and not self.not_materialized


def same_value(offline: Any, online: Any) -> bool:
    """Equal, treating None, NaN and NaT alike as "no value"."""
    a, b = _plain(offline), _plain(online)
    if a is None or b is None:
        return a is None and b is None
    return bool(a == b)


def _plain(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if type(value).__name__ in ("NaTType", "NAType"):
        return None
    if hasattr(value, "item") and not hasattr(value, "tz_localize"):
        return value.item()  # numpy scalar
    return value


def _entity_columns(view: FeatureView, keys: list[Any]) -> dict[str, list[Any]]:
    if len(view.join_keys) == 1:
        return {view.join_keys[0]: keys}
    split = [str(k).split(KEY_SEPARATOR) for k in keys]
    columns: dict[str, list[Any]] = {}
    for i, name in enumerate(view.join_keys):
        cast = int if view.key_dtypes[name] == "int64" else str
        columns[name] = [cast(parts[i]) for parts in split]
    return columns


def check_skew(
    *,
    db: Database,
    session: Session,
    catalog: Catalog,
    server: FeatureServer,
    store: OnlineStore,
    service: str,
    sample: int = 1000,
) -> SkewReport:
    """Compare ``sample`` entities' online values of ``service`` with offline values."""

    if not isinstance(sample, int) or isinstance(sample, bool) or sample < 1:
        raise InvalidParameter(f"sample must be a positive integer, got {sample!r}", field="sample")
    selection = catalog.select(service=service)
    report = SkewReport(service)
    marks: dict[str, int] = {}
    for view, features in selection.views:
        mark = watermark(db, store, view)
        if mark is None:
            report.not_materialized.append(view.name)
            continue
        marks[view.name] = mark
        keys = store.sample_keys(online_table(view), sample)
        report.sampled = max(report.sampled, len(keys))
        if not keys:
            continue
        entities = _entity_columns(view, keys)
        _compare_at(report, session, catalog, server, view.name, features, entities, mark)
    for odfv, features in selection.on_demand:
        if odfv.request_fields:
            continue  # needs request data, which a sample does not have
        inputs = [p.view for p in odfv.inputs]
        first = inputs[0]
        if not isinstance(first, FeatureView) or any(v.name not in marks for v in inputs):
            continue  # marks holds materialised views only
        keys = store.sample_keys(online_table(first), sample)
        if not keys:
            continue
        entities = _entity_columns(first, keys)
        at = min(marks[v.name] for v in inputs)
        _compare_at(report, session, catalog, server, odfv.name, features, entities, at)
    return report


def _compare_at(
    report: SkewReport,
    session: Session,
    catalog: Catalog,
    server: FeatureServer,
    name: str,
    features: Sequence[str],
    entities: dict[str, list[Any]],
    mark_us: int,
) -> None:
    """Compare the online values of ``name``'s ``features`` for ``entities`` with the
    offline point-in-time values at ``mark_us`` (the materialisation watermark)."""
    import pandas as pd

    refs = [f"{name}:{f}" for f in features]
    frame = pd.DataFrame(entities)
    frame[_TS] = pd.Timestamp(mark_us, unit="us", tz="UTC")
    offline = get_training_set(
        session, catalog.select(refs), frame, timestamp_column=_TS, apply_ttl=False
    ).frame
    online = server.get_online_features(entities, features=refs, enforce_ttl=False)
    for feature in features:
        _compare(report, f"{name}:{feature}", entities, offline[feature].tolist(), online[feature])


def _compare(
    report: SkewReport,
    ref: str,
    entities: dict[str, list[Any]],
    offline: list[Any],
    online: list[Any],
) -> None:
    report.compared[ref] = report.compared.get(ref, 0) + len(offline)
    report.by_feature.setdefault(ref, 0)
    for i, (a, b) in enumerate(zip(offline, online, strict=True)):
        if same_value(a, b):
            continue
        report.by_feature[ref] += 1
        if sum(1 for m in report.examples if m.feature == ref) < MAX_EXAMPLES:
            entity = {k: v[i] for k, v in entities.items()}
            report.examples.append(Mismatch(ref, entity, _plain(a), _plain(b)))
