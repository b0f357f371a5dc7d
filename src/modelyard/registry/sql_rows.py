"""Reading registry rows into entities, in bulk: the read half of ``SqlRegistryStore``.

Listings load tags, aliases and latest versions for a whole page with one query per
table, never one per model or version (MLflow's slow registry searches, mlflow#13633).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from operator import itemgetter
from typing import Any

from sqlalchemy import (
    Connection,
    Row,
    Select,
    String,
    and_,
    bindparam,
    column,
    func,
    or_,
    select,
    true,
    values,
)

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
    return _versions(conn, rows, _aliases_of(conn, sorted({r.name for r in rows})))


def _versions(conn: Connection, rows: Sequence[Row[Any]], aliases: _Aliases) -> list[ModelVersion]:
    """Entities for ``rows`` (``model_versions`` rows), their tags read in one query.

    The hot loop of every registry listing (a page of 100 models carries up to 400 latest
    versions): rows are fetched whole and unpacked as their SELECT names the columns, the
    statements are built once (their lists are expanding parameters), and a stage is
    looked up rather than parsed.
    """
    if not rows:
        return []
    tags: dict[tuple[str, int], dict[str, str]] = {(r.name, r.version): {} for r in rows}
    for name, version, key, value in _version_tag_rows(conn, sorted(tags)):
        found = tags.get((name, version))
        if found is not None:  # the rows may include a few more versions
            found[key] = value
    by_version = aliases.by_version
    entities = []
    # Each row's values by column name, looked up once for the result (an attribute of a
    # Row costs ~0.3 µs: 16 of them were half the time of a page of 400 versions).
    take = itemgetter(*(rows[0]._fields.index(column) for column in _VERSION_COLUMNS))
    for row in rows:
        (
            name,
            version,
            source,
            storage_location,
            stage,
            status,
            created_by,
            creation_time,
            last_updated_time,
            description,
            run_id,
            model_id,
            run_link,
            flavor,
            signature,
            files_digest,
        ) = take(row)
        entities.append(
            ModelVersion(
                name=name,
                version=version,
                source=source,
                storage_location=storage_location,
                stage=_STAGES.get(stage) or Stage(stage),
                status=status,
                created_by=created_by,
                creation_time=creation_time,
                last_updated_time=last_updated_time,
                description=description,
                run_id=run_id,
                model_id=model_id,
                run_link=run_link,
                flavor=flavor,
                signature=json.loads(signature) if signature else None,
                tags=tags[(name, version)],
                aliases=tuple(by_version.get((name, version), ())),
                files_digest=files_digest,
            )
        )
    return entities


#: The ``model_versions`` columns a ``ModelVersion`` is built from, in unpacking order.
_VERSION_COLUMNS = (
    "name",
    "version",
    "source",
    "storage_location",
    "stage",
    "status",
    "created_by",
    "creation_time",
    "last_updated_time",
    "description",
    "run_id",
    "model_id",
    "run_link",
    "flavor",
    "signature",
    "files_digest",
)


#: Stage values → members, for the listing loop (``Stage(value)`` costs ~1 µs a call).
_STAGES = {stage.value: stage for stage in Stage}


@dataclass(frozen=True, slots=True)
class _Aliases:
    """The aliases of some models, read once: by model (alias → version, by alias) and by
    version (its aliases, by alias)."""

    by_model: dict[str, dict[str, int]]
    by_version: dict[tuple[str, int], list[str]]


def _aliases_of(conn: Connection, names: Sequence[str]) -> _Aliases:
    by_model: dict[str, dict[str, int]] = {}
    by_version: dict[tuple[str, int], list[str]] = {}
    for name, alias, version in conn.execute(_aliases_query(), {"names": names}).all():
        by_model.setdefault(name, {})[alias] = version
        by_version.setdefault((name, version), []).append(alias)
    return _Aliases(by_model, by_version)


@cache
def _aliases_query() -> Select[Any]:
    ac = t.model_aliases.c
    return (
        select(ac.name, ac.alias, ac.version)
        .where(ac.name.in_(bindparam("names", expanding=True)))
        .order_by(ac.alias)
    )


@cache
def _model_tags_query() -> Select[Any]:
    tc = t.registered_model_tags.c
    return select(tc.name, tc.key, tc.value).where(tc.name.in_(bindparam("names", expanding=True)))


def _version_tag_rows(
    conn: Connection, pairs: Sequence[tuple[str, int]]
) -> Sequence[Row[str, int, str, str]]:
    """``(name, version, key, value)`` of the tags of the versions ``pairs``, perhaps with a
    few more that the caller drops.

    Never by name alone: a page of 100 models would read the rows of every version they
    have. ``name IN (…) AND version IN (…)`` when that cross product is close to the pairs
    (one model's versions; many models' newest), else the pairs ORed — SQLite scans the
    whole table for ``(name, version) IN (VALUES …)`` but looks each ``name = ? AND
    version = ?`` up. The ORed statement is built once per number of pairs (bound by
    position): built per page it cost ~0.04 ms a pair, 3.9 ms for a page of 100 versions
    of different models (the API's default order), 0.4 ms so.
    """
    names = sorted({name for name, _ in pairs})
    versions = sorted({version for _, version in pairs})
    if len(names) * len(versions) <= 4 * len(pairs):
        return conn.execute(_version_tags_query(), {"names": names, "versions": versions}).all()
    params: dict[str, Any] = {}
    for number, (name, version) in enumerate(pairs):
        params[f"name_{number}"] = name
        params[f"version_{number}"] = version
    return conn.execute(_version_tags_of_pairs(len(pairs)), params).all()


@cache
def _version_tags_query() -> Select[str, int, str, str]:
    tc = t.model_version_tags.c
    return select(tc.name, tc.version, tc.key, tc.value).where(
        tc.name.in_(bindparam("names", expanding=True)),
        tc.version.in_(bindparam("versions", expanding=True)),
    )


@lru_cache(maxsize=16)
def _version_tags_of_pairs(count: int) -> Select[str, int, str, str]:
    """The tags of ``count`` versions, each ``name_<n> AND version_<n>``, ORed."""
    tc = t.model_version_tags.c
    pairs = (
        and_(tc.name == bindparam(f"name_{n}"), tc.version == bindparam(f"version_{n}"))
        for n in range(count)
    )
    return select(tc.name, tc.version, tc.key, tc.value).where(or_(*pairs))


def version_entity(conn: Connection, name: str, version: int) -> ModelVersion:
    return versions_from_rows(conn, [version_row(conn, name, version)])[0]


def models_from_rows(conn: Connection, rows: Sequence[Row[Any]]) -> list[RegisteredModel]:
    """Entities for ``rows`` (``registered_models`` rows) with their tags, aliases and
    latest versions: four queries for the page, whatever its size."""
    if not rows:
        return []
    names = [r.name for r in rows]
    tags: dict[str, dict[str, str]] = {name: {} for name in names}
    for name, key, value in conn.execute(_model_tags_query(), {"names": names}).all():
        tags[name][key] = value
    aliases = _aliases_of(conn, names)
    newest = conn.execute(latest_versions_statement(conn.dialect.name), {"names": names}).all()
    latest: dict[str, list[ModelVersion]] = {}
    for v in _versions(conn, newest, aliases):
        latest.setdefault(v.name, []).append(v)
    return [
        RegisteredModel(
            name=r.name,
            created_by=r.created_by,
            creation_time=r.creation_time,
            last_updated_time=r.last_updated_time,
            description=r.description,
            tags=tags[r.name],
            aliases=dict(sorted(aliases.by_model.get(r.name, {}).items())),
            latest_versions=tuple(latest.get(r.name, ())),
        )
        for r in rows
    ]


@cache
def latest_versions_statement(dialect: str) -> Select[Any]:
    """``SELECT model_versions.*`` of the newest version in each stage of each model named
    in the expanding parameter ``names`` (MLflow's ``latest_versions``), by name and
    version.

    Each is one descent of ``ix_model_versions_latest`` (name, stage, version) to the end
    of its (name, stage) range, so a model's 10,000 versions cost what its 3 do; the ``GROUP
    BY name, stage`` before read every version of the page's models (10,000 index entries
    for 100 models of 100 versions; on PostgreSQL a hash of them, 6–25 ms). The databases
    take that plan said two ways:

    * PostgreSQL: a ``LATERAL`` ``ORDER BY version DESC LIMIT 1`` per model and stage (a
      correlated ``max()`` joined on became a sequential scan filtered by subplans);
    * SQLite, which has no ``LATERAL``: a ``max()`` per model and stage, answered from the
      end of the index range, in a derived table kept whole (``OFFSET 0``), then each
      version by its primary key.
    """
    m, vc = t.registered_models, t.model_versions.c
    names = m.c.name.in_(bindparam("names", expanding=True))
    stages = [stage.value for stage in Stage]
    if dialect == "postgresql":
        in_stage = values(column("stage", String), name="stages").data([(s,) for s in stages])
        newest = (
            select(t.model_versions)
            .where(vc.name == m.c.name, vc.stage == in_stage.c.stage)
            .order_by(vc.version.desc())
            .limit(1)
            .lateral("newest")
        )
        return (
            select(newest)
            .select_from(m)
            .join(in_stage, true())
            .join(newest, true())
            .where(names)
            .order_by(newest.c.name, newest.c.version)
        )
    v = t.model_versions.alias("v")
    per_stage = [
        select(func.max(v.c.version))
        .where(v.c.name == m.c.name, v.c.stage == stage)
        .scalar_subquery()
        .label(f"in_stage_{number}")
        for number, stage in enumerate(stages)
    ]
    latest = select(m.c.name, *per_stage).where(names).offset(0).subquery("latest")
    newest_of = [latest.c[f"in_stage_{number}"] for number in range(len(stages))]
    return (
        select(t.model_versions)
        .join(latest, and_(vc.name == latest.c.name, vc.version.in_(newest_of)))
        .order_by(vc.name, vc.version)
    )


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
