"""An experiment's logged models, newest first, page by page: every model once, in MLflow's
order (``creation_time DESC, model_id``, ties included), on SQLite and PostgreSQL; on
SQLite the pages are read from ``ix_logged_models_experiment_creation_time`` rather than
a sort of the experiment's models."""

from __future__ import annotations

import pytest
from sqlalchemy import insert
from tests.registry.statements import statements_run

from modelyard.registry.logged_models import LoggedModelStore
from modelyard.registry.tables import logged_models


def fill(db) -> list[tuple[int, str]]:
    """60 models in experiment 1 (creation times with ties) and 20 in experiment 2;
    returns experiment 1's (creation_time, model_id)."""
    rows = []
    for i in range(80):
        experiment = 1 if i < 60 else 2
        created = 1_000 + (i * 7) % 25  # ties: 60 models over 25 times
        rows.append(
            {
                "model_id": f"m-{(i * 37) % 80:03d}",
                "experiment_id": experiment,
                "name": f"model-{i}",
                "status": "READY",
                "artifact_location": f"{experiment}/models/{i}/artifacts",
                "creation_time": created,
                "last_updated_time": created,
            }
        )
    with db.write() as conn:
        conn.execute(insert(logged_models), rows)
    return [(r["creation_time"], r["model_id"]) for r in rows if r["experiment_id"] == 1]


def test_pages_walk_an_experiment_newest_first_once(metadata_db):
    expected = [m for _, m in sorted(fill(metadata_db), key=lambda r: (-r[0], r[1]))]
    store = LoggedModelStore(metadata_db)
    seen, token = [], None
    while True:
        page = store.search(["1"], max_results=7, page_token=token)
        seen += [m.model_id for m in page]
        token = page.next_page_token
        if token is None:
            break
    assert seen == expected


def test_sqlite_reads_the_page_from_the_experiment_and_time_index(metadata_db):
    if not metadata_db.is_sqlite:
        pytest.skip("SQLite's plan; PostgreSQL's is in benchmarks/search_entities.py --explain")
    fill(metadata_db)
    store = LoggedModelStore(metadata_db)
    token = store.search(["1"], max_results=7).next_page_token
    with statements_run(metadata_db.engine, "FROM logged_models", "ORDER BY") as executed:
        store.search(["1"], max_results=7)
        store.search(["1"], max_results=7, page_token=token)
    assert len(executed) == 2
    for statement, parameters in executed:
        with metadata_db.read() as conn:
            plan = [
                row[-1]
                for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
            ]
        assert "INDEX ix_logged_models_experiment_creation_time (experiment_id=?" in plan[0], plan
        assert "USE TEMP B-TREE FOR ORDER BY" not in plan, plan  # only ties are sorted
