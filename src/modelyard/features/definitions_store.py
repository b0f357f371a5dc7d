"""The feature registry: versioned definitions in the metadata database.

``apply`` compares each object's digest (definition + transformation code) with its latest
registered version and adds a version only when it changed, so applying the same file
twice is a no-op and changed code always gets a new version. ``diff`` shows what changed,
field by field and as a unified diff of the code.

>>> from modelyard.features.definitions import Entity, FeatureView, Field, FileSource
>>> from modelyard.store.engine import open_database
>>> from modelyard.store.migrations import ensure_schema
>>> db = open_database(f"sqlite:///{tmp_home / 'modelyard.db'}")
>>> ensure_schema(db)
>>> store = Entity("store", join_keys=["store_id"])
>>> sales = FeatureView("sales", entities=[store], schema=[Field("units", "int64")],
...                     source=FileSource("sales.parquet", timestamp_field="day"))
>>> registry = Registry(db)
>>> [c.action for c in registry.apply([store, sales])]
['created', 'created']
>>> [c.action for c in registry.apply([store, sales])]
['unchanged', 'unchanged']
"""

from __future__ import annotations

import builtins
import difflib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, func, insert, select

from modelyard.errors import InvalidParameter, NotFound
from modelyard.features.definitions import (
    Definition,
    FeatureService,
    FeatureView,
    OnDemandFeatureView,
    collect,
)
from modelyard.features.tables import feature_definitions
from modelyard.ids import now_ms
from modelyard.store.engine import Database
from modelyard.store.lineage import node, record_edges

KINDS = ("entity", "feature_view", "on_demand_feature_view", "feature_service")


@dataclass(frozen=True)
class DefinitionRecord:
    """One registered version of one definition."""

    kind: str
    name: str
    version: int
    digest: str
    data_digest: str
    spec: dict[str, Any]
    code: str
    origin: str
    created_at: int
    created_by: str

    @property
    def node(self) -> str:
        """Its lineage node id: ``feature_view:sales@3``."""
        return definition_node(self.kind, self.name, self.version)


@dataclass(frozen=True)
class ApplyChange:
    """What ``apply`` did to one object: ``created``, ``updated`` or ``unchanged``."""

    kind: str
    name: str
    action: str
    version: int
    previous_version: int | None = None


@dataclass(frozen=True)
class DefinitionDiff:
    """Differences between two versions (or a file and the registry) of one definition.

    ``changes`` holds ``(path, old, new)`` per changed spec field; ``code_diff`` is a
    unified diff of the transformation source ('' when the code is the same).
    """

    kind: str
    name: str
    old_version: int | None
    new_version: int | None
    changes: list[tuple[str, Any, Any]]
    code_diff: str

    @property
    def changed(self) -> bool:
        return bool(self.changes or self.code_diff)


def definition_node(kind: str, name: str, version: int) -> str:
    return node(kind, f"{name}@{version}")


def data_digest_of(obj: Definition) -> str:
    return obj.data_digest if isinstance(obj, FeatureView) else obj.digest


class Registry:
    """Definitions stored in the metadata database (SQLite or PostgreSQL)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # ------------------------------------------------------------------ writing
    def apply(
        self, objects: Iterable[Any], *, origin: str = "", user: str = ""
    ) -> list[ApplyChange]:
        """Register ``objects`` (and the entities and views they reference).

        One transaction: either every changed object gets its new version or none does.
        Lineage edges link each view version to the services and on-demand views using it.
        """
        definitions = collect(objects)
        if not definitions:
            raise InvalidParameter(
                "nothing to apply: pass Entity, FeatureView, OnDemandFeatureView or "
                "FeatureService objects",
                field="objects",
            )
        now = now_ms()
        changes: list[ApplyChange] = []
        with self.db.write() as conn:
            latest = self._latest(conn, [(d.kind, d.name) for d in definitions])
            versions: dict[tuple[str, str], int] = {}
            for obj in definitions:
                previous = latest.get((obj.kind, obj.name))
                if previous is not None and previous.digest == obj.digest:
                    versions[(obj.kind, obj.name)] = previous.version
                    changes.append(ApplyChange(obj.kind, obj.name, "unchanged", previous.version))
                    continue
                version = 1 if previous is None else previous.version + 1
                conn.execute(
                    insert(feature_definitions).values(
                        kind=obj.kind,
                        name=obj.name,
                        version=version,
                        digest=obj.digest,
                        data_digest=data_digest_of(obj),
                        spec=json.dumps(obj.spec(), sort_keys=True, default=str),
                        code=obj.code(),
                        origin=origin,
                        created_at=now,
                        created_by=user,
                    )
                )
                versions[(obj.kind, obj.name)] = version
                action = "created" if previous is None else "updated"
                changes.append(
                    ApplyChange(
                        obj.kind,
                        obj.name,
                        action,
                        version,
                        None if previous is None else previous.version,
                    )
                )
            record_edges(conn, _edges(definitions, versions))
        return changes

    # ------------------------------------------------------------------ reading
    def latest(self) -> dict[tuple[str, str], DefinitionRecord]:
        """The newest version of every definition, in one query."""
        with self.db.read() as conn:
            return self._latest(conn, None)

    def generation(self) -> tuple[int, int]:
        """A cheap fingerprint that changes whenever a definition is applied."""
        c = feature_definitions.c
        with self.db.read() as conn:
            row = conn.execute(
                select(func.count().label("definitions"), func.max(c.created_at).label("newest"))
            ).one()
        return int(row.definitions or 0), int(row.newest or 0)

    def list(self, kind: str | None = None) -> list[DefinitionRecord]:
        if kind is not None and kind not in KINDS:
            raise InvalidParameter(f"kind {kind!r} is not one of {', '.join(KINDS)}", field="kind")
        records = self.latest().values()
        return sorted(
            (r for r in records if kind is None or r.kind == kind),
            key=lambda r: (KINDS.index(r.kind), r.name),
        )

    def get(
        self, name: str, *, kind: str | None = None, version: int | None = None
    ) -> DefinitionRecord:
        """One definition by name (any kind unless given), its latest or a given version."""
        c = feature_definitions.c
        stmt = select(feature_definitions).where(c.name == name)
        if kind is not None:
            stmt = stmt.where(c.kind == kind)
        if version is not None:
            stmt = stmt.where(c.version == version)
        with self.db.read() as conn:
            rows = conn.execute(stmt.order_by(c.kind, c.version.desc())).all()
        if not rows:
            what = f"{name!r} version {version}" if version is not None else repr(name)
            raise NotFound(f"no feature definition {what} is registered; see `features list`")
        kinds = {r.kind for r in rows}
        if len(kinds) > 1:
            raise InvalidParameter(
                f"{name!r} names several kinds of definition ({', '.join(sorted(kinds))}); "
                "say which with kind=",
                field="kind",
            )
        return _record(rows[0])

    def versions(self, name: str, kind: str) -> builtins.list[DefinitionRecord]:
        c = feature_definitions.c
        with self.db.read() as conn:
            rows = conn.execute(
                select(feature_definitions)
                .where(c.kind == kind, c.name == name)
                .order_by(c.version)
            ).all()
        return [_record(r) for r in rows]

    # ------------------------------------------------------------------ diffs
    def diff(self, objects: Iterable[Any]) -> builtins.list[DefinitionDiff]:
        """What ``apply(objects)`` would change, without changing anything."""
        definitions = collect(objects)
        latest = self.latest()
        out = []
        for obj in definitions:
            old = latest.get((obj.kind, obj.name))
            new_spec = json.loads(json.dumps(obj.spec(), sort_keys=True, default=str))
            if old is None:
                out.append(DefinitionDiff(obj.kind, obj.name, None, None, [("", None, "new")], ""))
                continue
            if old.digest == obj.digest:
                continue
            out.append(
                DefinitionDiff(
                    obj.kind,
                    obj.name,
                    old.version,
                    None,
                    spec_changes(old.spec, new_spec),
                    code_diff(old.code, obj.code(), f"v{old.version}", "local"),
                )
            )
        return out

    def diff_versions(
        self, name: str, *, kind: str | None = None, old: int | None = None, new: int | None = None
    ) -> DefinitionDiff:
        """Differences between two registered versions (default: the last two)."""
        newest = self.get(name, kind=kind, version=new)
        if old is None:
            old = newest.version - 1
        if old < 1:
            raise InvalidParameter(
                f"{name!r} has only version {newest.version}; nothing to compare", field="version"
            )
        older = self.get(name, kind=newest.kind, version=old)
        return DefinitionDiff(
            newest.kind,
            name,
            older.version,
            newest.version,
            spec_changes(older.spec, newest.spec),
            code_diff(older.code, newest.code, f"v{older.version}", f"v{newest.version}"),
        )

    # ------------------------------------------------------------------ internals
    def _latest(
        self, conn: Connection, keys: Sequence[tuple[str, str]] | None
    ) -> dict[tuple[str, str], DefinitionRecord]:
        c = feature_definitions.c
        newest = select(c.kind, c.name, func.max(c.version).label("v")).group_by(c.kind, c.name)
        if keys is not None:
            newest = newest.where(c.name.in_(sorted({n for _, n in keys})))
        sub = newest.subquery()
        rows = conn.execute(
            select(feature_definitions).join(
                sub, and_(c.kind == sub.c.kind, c.name == sub.c.name, c.version == sub.c.v)
            )
        ).all()
        return {(r.kind, r.name): _record(r) for r in rows}


def _record(row: Any) -> DefinitionRecord:
    return DefinitionRecord(
        kind=row.kind,
        name=row.name,
        version=int(row.version),
        digest=row.digest,
        data_digest=row.data_digest,
        spec=json.loads(row.spec),
        code=row.code,
        origin=row.origin,
        created_at=int(row.created_at),
        created_by=row.created_by,
    )


def _edges(
    definitions: Sequence[Definition], versions: dict[tuple[str, str], int]
) -> list[tuple[str, str, str]]:
    """View version → service / on-demand view versions that use it."""
    edges = []
    for obj in definitions:
        dst = definition_node(obj.kind, obj.name, versions[(obj.kind, obj.name)])
        if isinstance(obj, FeatureService):
            users = [p.view for p in obj.projections]
        elif isinstance(obj, OnDemandFeatureView):
            users = [p.view for p in obj.inputs]
        else:
            continue
        for used in users:
            src = definition_node(used.kind, used.name, versions[(used.kind, used.name)])
            edges.append((src, dst, "feature"))
    return edges


def spec_changes(old: Any, new: Any, path: str = "") -> list[tuple[str, Any, Any]]:
    """Field-by-field differences between two JSON specs (``schema[1].dtype`` style paths)."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in sorted(set(old) | set(new)):
            sub = f"{path}.{key}" if path else str(key)
            out += spec_changes(old.get(key), new.get(key), sub)
        return out
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        out = []
        for i, (a, b) in enumerate(zip(old, new, strict=True)):
            out += spec_changes(a, b, f"{path}[{i}]")
        return out
    return [] if old == new else [(path, old, new)]


def code_diff(old: str, new: str, old_label: str, new_label: str) -> str:
    if old == new:
        return ""
    return "".join(
        difflib.unified_diff(
            old.splitlines(keepends=True),
            new.splitlines(keepends=True),
            fromfile=old_label,
            tofile=new_label,
        )
    )
