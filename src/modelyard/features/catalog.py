"""The resolved definitions one process works with, and feature selections over them.

Definitions come from the objects applied in this process or are rebuilt from the
registry: entities, file/SQL sources and SQL transformations from their JSON spec; Python
transformations by importing the definitions file they were applied from, checked against
the registered digest, so a process never runs code that differs from the registered
version. A catalog is built once and reused for every request (never per call).
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelyard.errors import InvalidParameter, InvalidState, NotFound
from modelyard.features.definitions import (
    DEFINITION_TYPES,
    Definition,
    Entity,
    FeatureService,
    FeatureView,
    OnDemandFeatureView,
    Projection,
)
from modelyard.features.definitions_store import DefinitionRecord
from modelyard.features.fields import Field
from modelyard.features.sources import DataFrameSource, FileSource, Source, SqlSource

#: Loads a DataFrame source's Parquet snapshot by content digest (from the artifact store).
FrameLoader = Callable[[str], Any]


def load_definitions_file(path: str | Path) -> list[Definition]:
    """Import a definitions file (``features.py``) and return the definitions it holds, at
    module level or in module-level lists and tuples."""
    file = Path(path).expanduser().absolute()
    if not file.is_file():
        raise NotFound(f"definitions file {str(file)!r} does not exist")
    module_name = "modelyard_features_" + hashlib.sha256(str(file).encode()).hexdigest()[:12]
    spec = importlib.util.spec_from_file_location(module_name, file)
    if spec is None or spec.loader is None:
        raise InvalidParameter(f"{str(file)!r} is not a Python file", field="path")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(module_name, None)
        raise InvalidParameter(
            f"importing {str(file)!r} failed: {type(exc).__name__}: {exc}", field="path"
        ) from exc
    found: list[Definition] = []
    for value in vars(module).values():
        items = value if isinstance(value, (list, tuple)) else [value]
        found += [v for v in items if isinstance(v, DEFINITION_TYPES)]
    return found


@dataclass(frozen=True)
class Selection:
    """Which features a request or training set wants, grouped by view.

    ``views`` lists each feature view once with the features to read (including those an
    on-demand view needs but nobody asked for); ``outputs`` are ``(view, feature, column)``
    in the order the caller listed them.
    """

    views: tuple[tuple[FeatureView, tuple[str, ...]], ...]
    on_demand: tuple[tuple[OnDemandFeatureView, tuple[str, ...]], ...]
    outputs: tuple[tuple[str, str, str], ...]
    refs: tuple[str, ...]

    @property
    def join_keys(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(k for v, _ in self.views for k in v.join_keys))

    @property
    def request_fields(self) -> dict[str, str]:
        return {k: t for odfv, _ in self.on_demand for k, t in odfv.request_fields.items()}


@dataclass
class Catalog:
    """Definitions by name, rebuilt lazily from registry records where not given live."""

    records: dict[tuple[str, str], DefinitionRecord]
    live: dict[tuple[str, str], Definition] = field(default_factory=dict)
    load_frame: FrameLoader | None = None
    _built: dict[tuple[str, str], Definition] = field(default_factory=dict)
    _files: dict[str, list[Definition]] = field(default_factory=dict)
    _selections: dict[Any, Selection] = field(default_factory=dict)

    # ------------------------------------------------------------------ lookup
    def get(self, kind: str, name: str) -> Any:
        key = (kind, name)
        built = self._built.get(key)
        if built is not None:
            return built
        record = self.records.get(key)
        if record is None:
            raise NotFound(f"no {kind.replace('_', ' ')} {name!r} is registered; apply it first")
        obj = self.live.get(key)
        if obj is None or obj.digest != record.digest:
            obj = self._rebuild(record)
        self._built[key] = obj
        return obj

    def version(self, kind: str, name: str) -> DefinitionRecord:
        return self.records[(kind, name)]

    def names(self, kind: str) -> list[str]:
        return sorted(n for k, n in self.records if k == kind)

    def view(self, name: str) -> FeatureView:
        return self.get("feature_view", name)  # type: ignore[no-any-return]

    def service(self, name: str) -> FeatureService:
        return self.get("feature_service", name)  # type: ignore[no-any-return]

    # ------------------------------------------------------------------ selections
    def select(
        self,
        features: Sequence[Any] | None = None,
        service: str | FeatureService | None = None,
        *,
        full_names: bool = False,
    ) -> Selection:
        """Resolve ``features`` ("view:feature", projections, views) or a ``service``.

        Cached per argument tuple, so repeated requests never resolve again.
        """
        if (features is None) == (service is None):
            raise InvalidParameter("give exactly one of features= or service=", field="features")
        if service is not None:
            name = service.name if isinstance(service, FeatureService) else service
            cache_key: Any = ("service", name, full_names)
        else:
            if isinstance(features, (str, Projection, FeatureView, OnDemandFeatureView)):
                features = [features]
            cache_key = ("features", tuple(ref_key(f) for f in features or ()), full_names)
        known = self._selections.get(cache_key)
        if known is not None:
            return known
        if service is not None:
            svc = self.service(cache_key[1])
            refs = svc.refs()
        else:
            refs = [r for f in features or () for r in _refs_of(f)]
        selection = self._resolve(refs, full_names)
        self._selections[cache_key] = selection
        return selection

    def _resolve(self, refs: list[str], full_names: bool) -> Selection:
        if not refs:
            raise InvalidParameter("no features were asked for", field="features")
        wanted: dict[str, list[str]] = {}
        odfv_wanted: dict[str, list[str]] = {}
        outputs: list[tuple[str, str, str]] = []
        for ref in refs:
            view_name, sep, feature = ref.partition(":")
            if not sep or not view_name or not feature:
                raise InvalidParameter(
                    f"feature reference {ref!r} is not 'view:feature'", field="features"
                )
            if ("feature_view", view_name) in self.records:
                view: Any = self.view(view_name)
                bucket = wanted.setdefault(view_name, [])
            elif ("on_demand_feature_view", view_name) in self.records:
                view = self.get("on_demand_feature_view", view_name)
                bucket = odfv_wanted.setdefault(view_name, [])
            else:
                raise NotFound(
                    f"unknown feature {ref!r}: no feature view {view_name!r} is registered "
                    f"(known: {', '.join(self.names('feature_view')) or 'none'})"
                )
            if feature not in view.dtypes:
                raise NotFound(
                    f"unknown feature {ref!r}: view {view_name} has {', '.join(view.feature_names)}"
                )
            if feature not in bucket:
                bucket.append(feature)
                column = f"{view_name}__{feature}" if full_names else feature
                outputs.append((view_name, feature, column))
        columns = [c for _, _, c in outputs]
        clash = sorted({c for c in columns if columns.count(c) > 1})
        if clash:
            raise InvalidParameter(
                f"features {clash} come from several views; ask with full_names=True to get "
                "'view__feature' columns",
                field="features",
            )
        for name in odfv_wanted:
            odfv = self.get("on_demand_feature_view", name)
            for p in odfv.inputs:
                bucket = wanted.setdefault(p.view.name, [])
                bucket += [f for f in p.features if f not in bucket]
        views = tuple((self.view(n), tuple(fs)) for n, fs in wanted.items())
        on_demand = tuple(
            (self.get("on_demand_feature_view", n), tuple(fs)) for n, fs in odfv_wanted.items()
        )
        return Selection(views, on_demand, tuple(outputs), tuple(refs))

    # ------------------------------------------------------------------ rebuilding
    def _rebuild(self, record: DefinitionRecord) -> Definition:
        spec = record.spec
        if record.kind == "entity":
            obj: Definition = Entity(
                record.name,
                spec["join_keys"],
                dtypes=spec["dtypes"],
                description=spec.get("description", ""),
            )
        elif record.kind == "feature_view" and spec.get("transform") is None:
            obj = self._view_from_spec(record)
        elif record.kind == "feature_service":
            projections: dict[str, list[str]] = {}
            for ref in spec["features"]:
                view_name, _, feature = ref.partition(":")
                projections.setdefault(view_name, []).append(feature)
            parts = []
            for view_name, feats in projections.items():
                kind = (
                    "feature_view"
                    if ("feature_view", view_name) in self.records
                    else "on_demand_feature_view"
                )
                parts.append(self.get(kind, view_name)[feats])
            obj = FeatureService(
                record.name,
                features=parts,
                description=spec.get("description", ""),
                tags=spec.get("tags"),
                owner=spec.get("owner", ""),
            )
        else:
            return self._from_origin(record)
        if obj.digest != record.digest:
            return self._from_origin(record)
        return obj

    def _view_from_spec(self, record: DefinitionRecord) -> FeatureView:
        spec = record.spec
        entities = [Entity(e["name"], e["join_keys"], dtypes=e["dtypes"]) for e in spec["entities"]]
        return FeatureView(
            record.name,
            entities=entities,
            source=self._source_from_spec(spec["source"]),
            schema=[Field(f["name"], f["dtype"]) for f in spec["schema"]],
            ttl=spec["ttl"],
            sql=spec.get("sql"),
            online=spec.get("online", True),
            description=spec.get("description", ""),
            tags=spec.get("tags"),
            owner=spec.get("owner", ""),
        )

    def _source_from_spec(self, spec: dict[str, Any]) -> Source:
        common = {
            "timestamp_field": spec["timestamp_field"],
            "created_timestamp_field": spec.get("created_timestamp_field"),
            "name": spec.get("name"),
        }
        kind = spec["type"]
        if kind == "FileSource":
            return FileSource(spec["path"], file_format=spec["file_format"], **common)
        if kind == "SqlSource":
            return SqlSource(
                spec["uri"], table=spec.get("table"), query=spec.get("query"), **common
            )
        if kind == "DataFrameSource":
            if self.load_frame is None:
                raise InvalidState("a DataFrame source needs the artifact store to be read back")
            source = DataFrameSource(self.load_frame(spec["digest"]), **common)
            source._content_digest = spec["digest"]  # content-addressed: the snapshot is it
            return source
        raise InvalidState(f"unknown source type {kind!r} in the registry")

    def _from_origin(self, record: DefinitionRecord) -> Definition:
        """Import the definitions file a Python transformation was applied from."""
        what = f"{record.kind.replace('_', ' ')} {record.name} (version {record.version})"
        if not record.origin:
            raise InvalidState(
                f"{what} has Python code but was applied from memory, not from a file; apply "
                "it in this process or with `modelyard features apply FILE`"
            )
        objects = self._files.get(record.origin)
        if objects is None:
            objects = load_definitions_file(record.origin)
            self._files[record.origin] = objects
        for obj in objects:
            for candidate in _with_dependencies(obj):
                if (candidate.kind, candidate.name) != (record.kind, record.name):
                    continue
                if candidate.digest == record.digest:
                    return candidate
                raise InvalidState(
                    f"{what} in {record.origin} has changed since it was applied; run "
                    f"`modelyard features apply {record.origin}` to register the new version"
                )
        raise InvalidState(f"{what} is no longer defined in {record.origin}")


def _with_dependencies(obj: Definition) -> Iterable[Definition]:
    yield obj
    if isinstance(obj, FeatureView):
        yield from obj.entities
    elif isinstance(obj, OnDemandFeatureView):
        for p in obj.inputs:
            yield from _with_dependencies(p.view)  # type: ignore[arg-type]
    elif isinstance(obj, FeatureService):
        for p in obj.projections:
            yield from _with_dependencies(p.view)


def ref_key(item: Any) -> Any:
    if isinstance(item, str):
        return item
    if isinstance(item, Projection):
        return (item.view.name, item.features)
    if isinstance(item, (FeatureView, OnDemandFeatureView)):
        return (item.name, item.feature_names)
    raise InvalidParameter(
        f"cannot ask for feature {item!r}; use 'view:feature', view[['a']] or a view",
        field="features",
    )


def _refs_of(item: Any) -> list[str]:
    if isinstance(item, str):
        return [item]
    if isinstance(item, Projection):
        return item.refs()
    return [f"{item.name}:{f}" for f in item.feature_names]
