"""Feature definitions, written once in Python in the user's repository (``features.py``).

An ``Entity`` names join keys; a source says where rows come from and which column holds
the event time; a ``FeatureView`` types the features of one entity, with a TTL and an
optional transformation (SQL over the relation ``source``, or a Python function over a
DataFrame); an ``OnDemandFeatureView`` computes features from request data and other
features at request time; a ``FeatureService`` is the named bundle a model version uses.

Every object has a ``spec()`` (plain JSON) and a ``code()`` (the transformation source).
Its version digest is the sha256 of both, so changing a transformation's code makes a new
version. A view also has a ``data_digest`` over only what changes stored *values* (source,
keys, timestamps, schema, transformation): the online store is laid out by it, so editing a
description or a TTL makes a new version without forcing a re-materialisation.

>>> store = Entity("store", join_keys=["store_id"])
>>> sales = FeatureView(
...     "store_sales", entities=[store], ttl="7d",
...     source=FileSource("sales.parquet", timestamp_field="event_ts"),
...     schema=[Field("units", "float64"), Field("promo", "bool")],
... )
>>> sales.ttl
datetime.timedelta(days=7)
"""

from __future__ import annotations

import hashlib
import inspect
import json
import textwrap
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from modelyard.durations import format_duration
from modelyard.errors import InvalidParameter
from modelyard.features.fields import (
    DUCKDB_TYPES,
    KEY_DTYPES,
    Field,
    check_name,
    normalize_dtype,
    parse_ttl,
)
from modelyard.features.sources import (
    DataFrameSource,
    FileSource,
    RequestSource,
    Source,
    SqlSource,
)

#: What ``from modelyard.features.definitions import *`` gives a definitions file.
__all__ = [
    "DUCKDB_TYPES",
    "DataFrameSource",
    "Entity",
    "FeatureService",
    "FeatureView",
    "Field",
    "FileSource",
    "OnDemandFeatureView",
    "Projection",
    "RequestSource",
    "Source",
    "SqlSource",
    "parse_ttl",
]


def code_of(fn: Callable[..., Any]) -> str:
    """The source text of a transformation, which its version digest covers.

    Only the function's own text counts: a helper it calls is not part of the digest, so
    keep transformations self-contained. Functions without retrievable source (defined in
    a REPL) fall back to their bytecode and constants.
    """
    try:
        return textwrap.dedent(inspect.getsource(fn))
    except (OSError, TypeError):
        code = fn.__code__
        return f"<bytecode {code.co_code.hex()} {code.co_consts!r}>"


def _digest(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


# --------------------------------------------------------------------------- entities
class Entity:
    """What features describe, identified by join keys (``store_id``; or ``store_id, sku``).

    Key types are ``int64`` (the default) or ``string``; entity rows are checked against them.
    """

    kind = "entity"

    def __init__(
        self,
        name: str,
        join_keys: Sequence[str] | str | None = None,
        *,
        dtype: str | type = "int64",
        dtypes: Mapping[str, str | type] | None = None,
        description: str = "",
    ) -> None:
        self.name = check_name(name, "entity name")
        keys = [join_keys] if isinstance(join_keys, str) else list(join_keys or [name])
        if not keys:
            raise InvalidParameter(f"entity {name} needs at least one join key", field="join_keys")
        self.join_keys = tuple(check_name(k, "join key") for k in keys)
        default = normalize_dtype(dtype, f"entity {name} dtype")
        given = {k: normalize_dtype(v, f"join key {k} dtype") for k, v in (dtypes or {}).items()}
        unknown = set(given) - set(self.join_keys)
        if unknown:
            raise InvalidParameter(
                f"entity {name} has dtypes for {sorted(unknown)}, which are not its join keys "
                f"{list(self.join_keys)}",
                field="dtypes",
            )
        self.key_dtypes = {k: given.get(k, default) for k in self.join_keys}
        for key, kd in self.key_dtypes.items():
            if kd not in KEY_DTYPES:
                raise InvalidParameter(
                    f"join key {key} of entity {name} has type {kd}; keys are int64 or string",
                    field="dtype",
                )
        self.description = description

    def key_spec(self) -> dict[str, Any]:
        return {"name": self.name, "join_keys": list(self.join_keys), "dtypes": self.key_dtypes}

    def spec(self) -> dict[str, Any]:
        return {**self.key_spec(), "description": self.description}

    def code(self) -> str:
        return ""

    @property
    def digest(self) -> str:
        return _digest({"kind": self.kind, "spec": self.spec()})

    def __repr__(self) -> str:
        return f"Entity({self.name!r}, join_keys={list(self.join_keys)})"


# --------------------------------------------------------------------------- feature views
@dataclass(frozen=True)
class Projection:
    """A subset of a view's features: ``sales[["units"]]``, for services and requests."""

    view: FeatureView | OnDemandFeatureView
    features: tuple[str, ...]

    def refs(self) -> list[str]:
        return [f"{self.view.name}:{f}" for f in self.features]


class FeatureView:
    """Typed features of one or more entities, read from a source at event times.

    ``sql`` is a query over the relation ``source`` (executed by DuckDB); ``transform`` is
    a function ``DataFrame -> DataFrame``. Give at most one. Either must keep the join keys
    and the timestamp columns. A Python transform is applied to the source in chunks, so it
    must be row-local (window logic belongs in ``sql``, which sees the whole source).
    """

    kind = "feature_view"

    def __init__(
        self,
        name: str,
        *,
        entities: Sequence[Entity],
        source: Source,
        schema: Sequence[Field],
        ttl: str | timedelta | float | None = None,
        sql: str | None = None,
        transform: Callable[[Any], Any] | None = None,
        online: bool = True,
        description: str = "",
        tags: Mapping[str, str] | None = None,
        owner: str = "",
    ) -> None:
        self.name = check_name(name, "feature view name")
        if not entities or not all(isinstance(e, Entity) for e in entities):
            raise InvalidParameter(
                f"feature view {name} needs entities=[Entity(...)]", field="entities"
            )
        if not isinstance(source, Source):
            raise InvalidParameter(
                f"feature view {name} source must be a FileSource, DataFrameSource or "
                f"SqlSource, got {type(source).__name__}",
                field="source",
            )
        if sql is not None and transform is not None:
            raise InvalidParameter(
                f"feature view {name} takes sql= or transform=, not both", field="transform"
            )
        if transform is not None and not callable(transform):
            raise InvalidParameter(
                f"feature view {name} transform is not callable", field="transform"
            )
        self.entities = tuple(entities)
        self.source = source
        self.schema = tuple(schema)
        if not self.schema:
            raise InvalidParameter(f"feature view {name} has an empty schema", field="schema")
        self.ttl = parse_ttl(ttl, f"feature view {name} ttl")
        self.sql = sql
        self.transform = transform
        self.online = online
        self.description = description
        self.tags = dict(tags or {})
        self.owner = owner
        self.join_keys = tuple(k for e in self.entities for k in e.join_keys)
        self.key_dtypes = {k: v for e in self.entities for k, v in e.key_dtypes.items()}
        names = [f.name for f in self.schema]
        clash = {n for n in names if names.count(n) > 1} | (set(names) & set(self.join_keys))
        if clash:
            raise InvalidParameter(
                f"feature view {name} declares {sorted(clash)} twice (features must be "
                "unique and not join keys)",
                field="schema",
            )
        self.feature_names = tuple(names)
        self.dtypes = {f.name: f.dtype for f in self.schema}

    def __getitem__(self, features: Sequence[str] | str) -> Projection:
        wanted = (features,) if isinstance(features, str) else tuple(features)
        unknown = [f for f in wanted if f not in self.dtypes]
        if unknown:
            raise InvalidParameter(
                f"feature view {self.name} has no feature {unknown[0]!r}; it has "
                f"{list(self.feature_names)}",
                field="features",
            )
        return Projection(self, wanted)

    @property
    def ttl_seconds(self) -> float:
        return self.ttl.total_seconds() if self.ttl else 0.0

    def data_spec(self) -> dict[str, Any]:
        """What decides the stored values (not TTL, description, tags or owner)."""
        return {
            "entities": [e.key_spec() for e in self.entities],
            "source": self.source.spec(),
            "schema": [f.spec() for f in self.schema],
            "sql": self.sql,
            "transform": self.transform.__name__ if self.transform else None,
        }

    def spec(self) -> dict[str, Any]:
        return {
            **self.data_spec(),
            "ttl": format_duration(self.ttl),
            "online": self.online,
            "description": self.description,
            "tags": self.tags,
            "owner": self.owner,
        }

    def code(self) -> str:
        return code_of(self.transform) if self.transform else (self.sql or "")

    @property
    def data_digest(self) -> str:
        return _digest({"spec": self.data_spec(), "code": self.code()})

    @property
    def digest(self) -> str:
        return _digest({"kind": self.kind, "spec": self.spec(), "code": self.code()})

    def __repr__(self) -> str:
        return f"FeatureView({self.name!r}, features={list(self.feature_names)})"


class OnDemandFeatureView:
    """Features computed at request time from request data and other views' features.

    ``transform`` runs on a pandas DataFrame (``mode="pandas"``) or on a dict of column
    lists (``mode="python"``, cheaper per request); it returns the schema's columns. The
    same function runs on the training set and on every online request, so the values
    are the same in both.
    """

    kind = "on_demand_feature_view"

    def __init__(
        self,
        name: str,
        *,
        sources: Sequence[FeatureView | Projection | RequestSource],
        schema: Sequence[Field],
        transform: Callable[[Any], Any],
        mode: Literal["pandas", "python"] = "pandas",
        description: str = "",
        tags: Mapping[str, str] | None = None,
        owner: str = "",
    ) -> None:
        self.name = check_name(name, "on-demand feature view name")
        if not callable(transform):
            raise InvalidParameter(
                f"on-demand view {name} transform is not callable", field="transform"
            )
        if mode not in ("pandas", "python"):
            raise InvalidParameter(f"mode {mode!r} is not 'pandas' or 'python'", field="mode")
        self.mode = mode
        self.transform = transform
        self.schema = tuple(schema)
        self.feature_names = tuple(f.name for f in self.schema)
        self.dtypes = {f.name: f.dtype for f in self.schema}
        self.request_sources: list[RequestSource] = []
        self.inputs: list[Projection] = []
        for src in sources:
            if isinstance(src, RequestSource):
                self.request_sources.append(src)
            elif isinstance(src, FeatureView):
                self.inputs.append(Projection(src, src.feature_names))
            elif isinstance(src, Projection) and isinstance(src.view, FeatureView):
                self.inputs.append(src)
            else:
                raise InvalidParameter(
                    f"on-demand view {name} source {src!r} is not a FeatureView, a projection "
                    "of one, or a RequestSource",
                    field="sources",
                )
        self.request_fields = {f.name: f.dtype for r in self.request_sources for f in r.schema}
        self.description = description
        self.tags = dict(tags or {})
        self.owner = owner

    def __getitem__(self, features: Sequence[str] | str) -> Projection:
        wanted = (features,) if isinstance(features, str) else tuple(features)
        for f in wanted:
            if f not in self.dtypes:
                raise InvalidParameter(
                    f"on-demand view {self.name} has no feature {f!r}", field="features"
                )
        return Projection(self, wanted)

    def spec(self) -> dict[str, Any]:
        return {
            "inputs": [{"view": p.view.name, "features": list(p.features)} for p in self.inputs],
            "request_sources": [r.spec() for r in self.request_sources],
            "schema": [f.spec() for f in self.schema],
            "mode": self.mode,
            "transform": self.transform.__name__,
            "description": self.description,
            "tags": self.tags,
            "owner": self.owner,
        }

    def code(self) -> str:
        return code_of(self.transform)

    @property
    def digest(self) -> str:
        return _digest({"kind": self.kind, "spec": self.spec(), "code": self.code()})

    def __repr__(self) -> str:
        return f"OnDemandFeatureView({self.name!r}, features={list(self.feature_names)})"


class FeatureService:
    """A named bundle of features that a model version depends on.

    >>> # FeatureService("demand_model", features=[sales, prices[["price"]]])
    """

    kind = "feature_service"

    def __init__(
        self,
        name: str,
        *,
        features: Sequence[FeatureView | OnDemandFeatureView | Projection],
        description: str = "",
        tags: Mapping[str, str] | None = None,
        owner: str = "",
    ) -> None:
        self.name = check_name(name, "feature service name")
        self.projections: list[Projection] = []
        for item in features:
            if isinstance(item, Projection):
                self.projections.append(item)
            elif isinstance(item, (FeatureView, OnDemandFeatureView)):
                self.projections.append(Projection(item, item.feature_names))
            else:
                raise InvalidParameter(
                    f"feature service {name} lists {item!r}; give feature views, on-demand "
                    "views or projections like view[['a', 'b']]",
                    field="features",
                )
        if not self.projections:
            raise InvalidParameter(f"feature service {name} has no features", field="features")
        self.description = description
        self.tags = dict(tags or {})
        self.owner = owner

    def refs(self) -> list[str]:
        return [ref for p in self.projections for ref in p.refs()]

    def spec(self) -> dict[str, Any]:
        return {
            "features": self.refs(),
            "description": self.description,
            "tags": self.tags,
            "owner": self.owner,
        }

    def code(self) -> str:
        return ""

    @property
    def digest(self) -> str:
        return _digest({"kind": self.kind, "spec": self.spec()})

    def __repr__(self) -> str:
        return f"FeatureService({self.name!r}, features={self.refs()})"


Definition = Entity | FeatureView | OnDemandFeatureView | FeatureService
DEFINITION_TYPES: tuple[type[Definition], ...] = (
    Entity,
    FeatureView,
    OnDemandFeatureView,
    FeatureService,
)
#: The time column of an entity DataFrame (the "as of" of each training row) by default.
DEFAULT_TIMESTAMP_COLUMN = "event_timestamp"


def collect(objects: Iterable[Any]) -> list[Definition]:
    """The definitions among ``objects`` plus the entities and views they reference, in
    dependency order (entities, views, on-demand views, services), each once by name."""
    found: dict[tuple[str, str], Definition] = {}

    def add(obj: Definition) -> None:
        key = (obj.kind, obj.name)
        previous = found.get(key)
        if previous is not None and previous is not obj and previous.digest != obj.digest:
            raise InvalidParameter(
                f"two different {obj.kind.replace('_', ' ')}s are named {obj.name!r}",
                field="name",
            )
        found.setdefault(key, obj)
        if isinstance(obj, FeatureView):
            for e in obj.entities:
                add(e)
        elif isinstance(obj, OnDemandFeatureView):
            for p in obj.inputs:
                add(p.view)
        elif isinstance(obj, FeatureService):
            for p in obj.projections:
                add(p.view)

    for obj in objects:
        if isinstance(obj, DEFINITION_TYPES):
            add(obj)
    order = {cls.kind: i for i, cls in enumerate(DEFINITION_TYPES)}
    return sorted(found.values(), key=lambda o: (order[o.kind], o.name))
