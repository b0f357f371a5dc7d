"""Reading registry rows into entities, in bulk: the read half of ``SqlRegistryStore``.

Listings load tags, aliases and latest versions for a whole page with one query per
table, never one per model or version (MLflow's slow registry searches, mlflow#13633).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Connection, Row, and_, func, or_, select

from modelyard.errors import InvalidParameter, NotFound
from modelyard.registry import tables as t
from modelyard.registry.entities import (
    Approval,
    Decision,
    GateVerdict,
    ModelVersion,
    RegisteredModel,
    Stage,
)

MAX_RESULTS = 10_000


def model_row(conn: Connection, name: str) -> Row[Any]:
    row = conn.execute(
        select(t.registered_models).where(t.registered_models.c.name == name)
    ).first()
    if row is None:
        raise NotFound(
            f"Registered Model with name={name} not found (`modelyard models list` shows them)",
            field="name",
        )
    return row


def version_row(conn: Connection, name: str, version: int) -> Row[Any]:
    c = t.model_versions.c
    row = conn.execute(select(t.model_versions).where(c.name == name, c.version == version)).first()
    if row is None:
        model_row(conn, name)
        raise NotFound(
            f"Model Version (name={name}, version={version}) not found "
            f"(`modelyard models versions {name}` lists them)",
            field="version",
        )
    return row


def versions_from_rows(conn: Connection, rows: Sequence[Row[Any]]) -> list[ModelVersion]:
    """Entities for ``rows``, with tags and aliases loaded in one query each."""
    if not rows:
        return []
    names = sorted({r.name for r in rows})
    wanted = {(r.name, int(r.version)) for r in rows}
    pairs = sorted(wanted)
    tags: dict[tuple[str, int], dict[str, str]] = {}
    tc = t.model_version_tags.c
    for r in conn.execute(select(t.model_version_tags).where(_of_versions(tc, pairs))):
        if (r.name, r.version) not in wanted:
            continue
        tags.setdefault((r.name, r.version), {})[r.key] = r.value
    aliases: dict[tuple[str, int], list[str]] = {}
    ac = t.model_aliases.c
    query = select(t.model_aliases).where(ac.name.in_(names)).order_by(ac.alias)
    for r in conn.execute(query):
        aliases.setdefault((r.name, r.version), []).append(r.alias)
    return [
        ModelVersion(
            name=r.name,
            version=int(r.version),
            source=r.source,
            storage_location=r.storage_location,
            stage=Stage(r.stage),
            status=r.status,
            created_by=r.created_by,
            creation_time=int(r.creation_time),
            last_updated_time=int(r.last_updated_time),
            description=r.description,
            run_id=r.run_id,
            model_id=r.model_id,
            run_link=r.run_link,
            flavor=r.flavor,
            signature=json.loads(r.signature) if r.signature else None,
            tags=tags.get((r.name, r.version), {}),
            aliases=tuple(aliases.get((r.name, r.version), ())),
            files_digest=r.files_digest,
        )
        for r in rows
    ]


def _of_versions(c: Any, pairs: Sequence[tuple[str, int]]) -> ColumnElement[bool]:
    """Rows of the versions ``pairs`` (``c``: a table's columns with ``name`` and
    ``version``), perhaps with a few more that the caller drops.

    Never by name alone: a page of 100 models would read the rows of every version they
    have. ``name IN (…) AND version IN (…)`` when that cross product is close to the pairs
    (one model's versions; many models' newest), else the pairs ORed — SQLite scans the
    whole table for ``(name, version) IN (VALUES …)`` but looks each ``name = ? AND
    version = ?`` up; building that OR costs ~0.05 ms a pair, so it is the fallback.
    """
    names = sorted({name for name, _ in pairs})
    versions = sorted({version for _, version in pairs})
    if len(names) * len(versions) <= 4 * len(pairs):
        return and_(c.name.in_(names), c.version.in_(versions))
    return or_(*(and_(c.name == name, c.version == version) for name, version in pairs))


def version_entity(conn: Connection, name: str, version: int) -> ModelVersion:
    return versions_from_rows(conn, [version_row(conn, name, version)])[0]


def models_from_rows(conn: Connection, rows: Sequence[Row[Any]]) -> list[RegisteredModel]:
    if not rows:
        return []
    names = [r.name for r in rows]
    tags: dict[str, dict[str, str]] = {}
    tc = t.registered_model_tags.c
    for r in conn.execute(select(t.registered_model_tags).where(tc.name.in_(names))):
        tags.setdefault(r.name, {})[r.key] = r.value
    aliases: dict[str, dict[str, int]] = {}
    ac = t.model_aliases.c
    for r in conn.execute(select(t.model_aliases).where(ac.name.in_(names))):
        aliases.setdefault(r.name, {})[r.alias] = int(r.version)
    vc = t.model_versions.c
    newest = (
        select(vc.name, vc.stage, func.max(vc.version).label("version"))
        .where(vc.name.in_(names))
        .group_by(vc.name, vc.stage)
        .subquery()
    )
    latest_rows = conn.execute(
        select(t.model_versions)
        .join(
            newest,
            (vc.name == newest.c.name) & (vc.version == newest.c.version),
        )
        .order_by(vc.name, vc.version)
    ).all()
    latest: dict[str, list[ModelVersion]] = {}
    for v in versions_from_rows(conn, latest_rows):
        latest.setdefault(v.name, []).append(v)
    return [
        RegisteredModel(
            name=r.name,
            created_by=r.created_by,
            creation_time=int(r.creation_time),
            last_updated_time=int(r.last_updated_time),
            description=r.description,
            tags=tags.get(r.name, {}),
            aliases=dict(sorted(aliases.get(r.name, {}).items())),
            latest_versions=tuple(latest.get(r.name, ())),
        )
        for r in rows
    ]


def approvals_of(conn: Connection, name: str, version: int) -> list[Approval]:
    c = t.approvals.c
    rows = conn.execute(
        select(t.approvals).where(c.name == name, c.version == version).order_by(c.id)
    ).all()
    return [
        Approval(r.name, int(r.version), r.actor, Decision(r.decision), int(r.created_at), r.reason)
        for r in rows
    ]


def latest_verdict(conn: Connection, name: str, version: int) -> GateVerdict | None:
    """The newest gate verdict on the version, or None when it was never gated."""
    c = t.gate_verdicts.c
    r = conn.execute(
        select(t.gate_verdicts)
        .where(c.name == name, c.version == version)
        .order_by(c.id.desc())
        .limit(1)
    ).first()
    if r is None:
        return None
    return GateVerdict(
        name=r.name,
        version=int(r.version),
        passed=bool(r.passed),
        files_digest=r.files_digest,
        policy=r.policy,
        summary=r.summary,
        created_by=r.created_by,
        created_at=int(r.created_at),
        report=r.report,
    )


def check_max_results(max_results: int) -> None:
    if type(max_results) is not int or not 1 <= max_results <= MAX_RESULTS:
        raise InvalidParameter(
            f"max_results must be an integer from 1 to {MAX_RESULTS}, got {max_results!r}",
            field="max_results",
        )
