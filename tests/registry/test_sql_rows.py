"""Reading registry rows into entities in bulk (``registry/sql_rows.py``): a page's latest
versions, tags and aliases are the same whatever plan finds them, on SQLite and
PostgreSQL, and the latest versions come from the ``(name, stage, version)`` index."""

from __future__ import annotations

import random

import pytest
from sqlalchemy import insert, select
from tests.registry.statements import statements_run

from modelyard.registry import tables as t
from modelyard.registry.entities import Stage
from modelyard.registry.sql_rows import (
    _version_tag_rows,
    latest_versions_statement,
    models_from_rows,
    versions_from_rows,
)

STAGES = [stage.value for stage in Stage]


def fill(db, seed: int = 7) -> dict[str, list[tuple[int, str]]]:
    """Models with versions in random stages (gaps where versions were deleted, at most one
    in Production), tags and aliases; one model has none. Returns each model's versions."""
    rng = random.Random(seed)
    versions: dict[str, list[tuple[int, str]]] = {}
    with db.write() as conn:
        for m in range(12):
            name = f"m{m:02d}" if m != 5 else "it's 5%"
            conn.execute(
                insert(t.registered_models).values(
                    name=name,
                    next_version=1,
                    created_by="ana",
                    creation_time=m,
                    last_updated_time=m,
                )
            )
            conn.execute(
                insert(t.registered_model_tags),
                [{"name": name, "key": "team", "value": f"t{m % 3}"}],
            )
            numbers = sorted(rng.sample(range(1, 40), rng.randint(0, 15))) if m else []
            production = rng.choice(numbers) if numbers and rng.random() < 0.7 else None
            stages = [
                "Production" if n == production else rng.choice(["None", "Staging", "Archived"])
                for n in numbers
            ]
            versions[name] = list(zip(numbers, stages, strict=True))
            for n, stage in versions[name]:
                conn.execute(
                    insert(t.model_versions).values(
                        name=name,
                        version=n,
                        source=f"s3://b/{name}/{n}",
                        storage_location=f"models/{name}/{n}",
                        stage=stage,
                        status="READY",
                        created_by="ana",
                        creation_time=n,
                        last_updated_time=n,
                    )
                )
                conn.execute(
                    insert(t.model_version_tags),
                    [
                        {"name": name, "version": n, "key": "n", "value": str(n)},
                        {"name": name, "version": n, "key": "stage", "value": stage},
                    ],
                )
            if numbers:
                for alias, n in (("champion", numbers[-1]), ("a-first", numbers[0])):
                    conn.execute(insert(t.model_aliases).values(name=name, alias=alias, version=n))
    return versions


def newest_by_stage(versions: list[tuple[int, str]]) -> list[tuple[int, str]]:
    newest: dict[str, int] = {}
    for n, stage in versions:
        newest[stage] = max(n, newest.get(stage, 0))
    return sorted((n, stage) for stage, n in newest.items())


def test_latest_versions_are_the_newest_of_each_stage(metadata_db):
    versions = fill(metadata_db)
    names = sorted(versions)
    with metadata_db.read() as conn:
        statement = latest_versions_statement(conn.dialect.name)
        rows = conn.execute(statement, {"names": names}).all()
    found: dict[str, list[tuple[int, str]]] = {}
    for r in rows:
        found.setdefault(r.name, []).append((r.version, r.stage))
    expected = {name: newest_by_stage(v) for name, v in versions.items() if v}
    assert found == expected
    assert [(r.name, r.version) for r in rows] == sorted((r.name, r.version) for r in rows)


def test_a_page_of_models_carries_its_tags_aliases_and_latest_versions(metadata_db):
    versions = fill(metadata_db)
    with metadata_db.read() as conn:
        rows = conn.execute(select(t.registered_models).order_by(t.registered_models.c.name))
        models = models_from_rows(conn, rows.all())
    for model in models:
        numbers = [n for n, _ in versions[model.name]]
        assert model.tags == {"team": f"t{int(model.creation_time) % 3}"}
        expected_aliases = {"a-first": numbers[0], "champion": numbers[-1]} if numbers else {}
        assert model.aliases == expected_aliases
        assert list(model.aliases) == sorted(expected_aliases)
        latest = [(v.version, v.stage.value) for v in model.latest_versions]
        assert latest == newest_by_stage(versions[model.name])
        for v in model.latest_versions:
            assert v.tags == {"n": str(v.version), "stage": v.stage.value}
            assert v.aliases == tuple(
                a for a, n in sorted(expected_aliases.items()) if n == v.version
            )


def test_versions_read_alone_or_in_a_page_are_the_same(metadata_db):
    fill(metadata_db)
    c = t.model_versions.c
    with metadata_db.read() as conn:
        rows = conn.execute(select(t.model_versions).order_by(c.name, c.version)).all()
        page = versions_from_rows(conn, rows)
        alone = [versions_from_rows(conn, [row])[0] for row in rows]
    assert page == alone
    assert {v.stage for v in page} <= set(Stage)


def test_latest_versions_descend_the_stage_index_on_sqlite(metadata_db):
    """Each (model, stage) is one probe of ix_model_versions_latest, never a read of every
    version of the page's models (SQLite; PostgreSQL's plan is read in the benchmark)."""
    if not metadata_db.is_sqlite:
        pytest.skip("SQLite's plan; PostgreSQL's LATERAL plan is in the benchmark output")
    fill(metadata_db)
    with statements_run(metadata_db.engine, "in_stage_0") as executed, metadata_db.read() as conn:
        models_from_rows(conn, conn.execute(select(t.registered_models)).all())
    [(statement, parameters)] = executed
    with metadata_db.read() as conn:
        plan = [
            row[-1] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
        ]
    probes = [line for line in plan if "ix_model_versions_latest (name=? AND stage=?)" in line]
    assert len(probes) == len(STAGES), plan
    assert not [line for line in plan if line.startswith("SCAN") and "model_versions" in line]


def test_a_page_of_models_without_versions_has_no_latest_versions(metadata_db):
    fill(metadata_db)
    c = t.registered_models.c
    with metadata_db.read() as conn:
        [model] = models_from_rows(
            conn, conn.execute(select(t.registered_models).where(c.name == "m00")).all()
        )
    assert (model.name, model.latest_versions, model.aliases) == ("m00", (), {})


def test_tags_of_scattered_versions_are_read_by_their_pairs(metadata_db):
    """Versions of many models with different numbers (the API's default order, by time):
    their tags are read pair by pair, not by the cross product of names and numbers."""
    fill(metadata_db)
    c = t.model_versions.c
    with metadata_db.read() as conn:
        every = conn.execute(select(t.model_versions).order_by(c.name, c.version)).all()
        firsts = list({r.name: r for r in reversed(every)}.values())  # each model's first
        pairs = sorted((r.name, r.version) for r in firsts)
        assert len({n for _, n in pairs}) * len(pairs) > 4 * len(pairs)  # not crossed
        assert sorted(set(_version_tag_rows(conn, pairs))) == sorted(
            (r.name, r.version, key, value)
            for r in firsts
            for key, value in (("n", str(r.version)), ("stage", r.stage))
        )
        found = versions_from_rows(conn, firsts)
    assert [(v.name, v.version) for v in found] == [(r.name, r.version) for r in firsts]
    assert all(v.tags == {"n": str(v.version), "stage": v.stage.value} for v in found)
