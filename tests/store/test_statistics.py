"""Planner statistics are refreshed without the user's help: a table that grew past
``MIN_ROWS`` with no (or outdated) statistics is found stale by one cheap look, and the
keeper analyses it in the background — on SQLite and PostgreSQL."""

from __future__ import annotations

import time

from sqlalchemy import insert

from modelyard.store import statistics
from modelyard.store.statistics import StatisticsKeeper, refresh_statistics, stale_tables
from modelyard.tracking import tables as t
from modelyard.tracking.sql_store import SEARCHED_TABLES, SqlTrackingStore


def _add_runs(db, count: int, offset: int = 0) -> None:
    store = SqlTrackingStore(db)
    experiment = int(store.create_experiment(f"bulk-{offset}"))
    rows = [
        dict(
            run_id=f"{offset + i:032x}",
            experiment_id=experiment,
            run_name=f"r{i}",
            user_id="u",
            status="FINISHED",
            start_time=i,
            end_time=None,
            lifecycle_stage="active",
            artifact_uri="x",
            parent_run_id=None,
            deleted_time=None,
        )
        for i in range(count)
    ]
    with db.write() as conn:
        conn.execute(insert(t.runs), rows)


def eventually_stale(db) -> bool:
    """PostgreSQL's backends report their row counts at most once a second."""
    for _ in range(100):
        if "runs" in stale_tables(db, SEARCHED_TABLES):
            return True
        time.sleep(0.1)
    return False


def test_small_tables_are_never_stale(metadata_db):
    _add_runs(metadata_db, 10)
    assert stale_tables(metadata_db, SEARCHED_TABLES) == []


def test_a_bulk_load_is_stale_until_analysed_then_again_after_it_grows(metadata_db, monkeypatch):
    monkeypatch.setattr(statistics, "MIN_ROWS", 50)
    _add_runs(metadata_db, 200)
    assert eventually_stale(metadata_db)
    refresh_statistics(metadata_db, SEARCHED_TABLES)
    assert "runs" not in stale_tables(metadata_db, SEARCHED_TABLES)
    _add_runs(metadata_db, 200, offset=10_000)
    assert eventually_stale(metadata_db)


def test_the_keeper_analyses_stale_tables_in_the_background_once_an_interval(
    metadata_db, monkeypatch
):
    monkeypatch.setattr(statistics, "MIN_ROWS", 50)
    _add_runs(metadata_db, 200)
    assert eventually_stale(metadata_db)
    keeper = StatisticsKeeper(metadata_db, SEARCHED_TABLES, interval=3600)
    keeper.maybe_refresh()
    keeper.wait(30)
    assert "runs" not in stale_tables(metadata_db, SEARCHED_TABLES)
    _add_runs(metadata_db, 200, offset=10_000)
    keeper.maybe_refresh()  # within the interval: no look
    keeper.wait(30)
    assert eventually_stale(metadata_db)


def test_an_upgrade_leaves_fresh_statistics(tmp_path, monkeypatch):
    from modelyard.store.engine import open_database
    from modelyard.store.migrations import downgrade, ensure_schema

    monkeypatch.setattr(statistics, "MIN_ROWS", 50)
    db = open_database(f"sqlite:///{tmp_path / 'old.db'}")
    try:
        ensure_schema(db)
        _add_runs(db, 200)
        downgrade(db, "0014")
        ensure_schema(db)  # upgrades to head, then analyses
        assert stale_tables(db, SEARCHED_TABLES) == []
    finally:
        db.dispose()


def test_a_tables_size_is_estimated_without_counting_it(metadata_db):
    """What run search sizes its driving lists by (``search_plan.driving_limit``): the
    largest rowid on SQLite, the statistics collector's live rows on PostgreSQL (flushed
    within about a second of a transaction's end)."""
    _add_runs(metadata_db, 1_500)
    deadline = time.monotonic() + 10
    while True:
        found = statistics.estimated_rows(metadata_db, "runs")
        if found == 1_500 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert found == 1_500
