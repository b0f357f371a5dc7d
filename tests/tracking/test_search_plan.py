"""A run search's plan (``tracking/search_plan.py``) never changes its answer: a search driven
by a probe's runs, a page that seeks past the last run, and experiments searched one by one
and merged return exactly the runs, in exactly the order, of one plain scan — on SQLite and
PostgreSQL. And a page token is checked before it is used."""

from __future__ import annotations

import base64
import json
import random

import pytest

from modelyard.errors import InvalidParameter
from modelyard.tracking import search_plan, search_query
from modelyard.tracking.entities import Metric, Param, RunTag
from modelyard.tracking.search_filter import parse_filter, parse_order_by
from modelyard.tracking.search_query import run_search_statement
from modelyard.tracking.sql_store import SqlTrackingStore

LONG = "x" * 600
EDGE = "€" * 171  # 513 bytes: one past the whole-value index
JUST_FITS = "€" * 170 + "xx"  # 512 bytes
NOTES = ("short", LONG, EDGE, JUST_FITS, LONG + "y")

SEARCHES = [
    (None, []),
    ("params.model = 'xgb'", []),
    ("params.seed = '7'", []),
    ("params.model != 'xgb'", []),
    ("tags.team = 'ads'", []),
    ("metrics.rmse < 0.3", []),
    ("metrics.rmse >= 0.9", []),
    ("attributes.run_name = 'run-3'", []),
    ("params.model = 'xgb' and metrics.rmse < 0.5", []),
    (None, ["attributes.start_time ASC"]),
    (None, ["attributes.run_name DESC"]),
    ("tags.team = 'ads'", ["attributes.status ASC", "attributes.run_name ASC"]),
    (None, ["metrics.rmse ASC"]),
    (None, ["metrics.rmse DESC"]),
    ("tags.team = 'ads'", ["metrics.rmse DESC"]),
    ("params.seed = '7'", ["metrics.rmse ASC"]),
    ("params.model = 'xgb'", ["params.lr DESC"]),
    # Values past what PostgreSQL's value index holds whole (store.schema.VALUE_INDEX_BYTES):
    # found by their digest, alone and beside short ones.
    (f"params.note = '{LONG}'", []),
    (f"params.note = '{EDGE}'", []),
    (f"params.note = '{JUST_FITS}'", []),
]


@pytest.fixture
def yard(metadata_db):
    """60 runs over three experiments, with start times that tie in pairs."""
    store = SqlTrackingStore(metadata_db)
    rng = random.Random(7)
    experiments = [store.create_experiment(f"e{i}") for i in range(3)]
    for i in range(60):
        run = store.create_run(
            experiments[i % 3], "ann", start_time=1_000 + i // 2, run_name=f"run-{i}"
        )
        rid = run.info.run_id
        store.log_batch(
            rid,
            metrics=[Metric("rmse", float("nan") if i % 13 == 0 else rng.random(), 0, 0)]
            if i % 7
            else [],
            params=[
                Param("model", ("xgb", "linear", "lgbm")[i % 3 if i % 2 else 0]),
                Param("seed", str(i)),
                Param("lr", str(i % 5)),
                Param("note", NOTES[i % 5]),
            ],
            tags=[RunTag("team", ("ads", "search")[i % 4 == 0])],
        )
        if i % 11 == 0:
            store.delete_run(rid)
    return store, experiments


def every_page(store, experiments, filter_string, order_by, size):
    found, token = [], None
    while True:
        page = store.search_runs(
            experiments, filter_string, max_results=size, order_by=order_by, page_token=token
        )
        found += [run.info.run_id for run in page]
        token = page.next_page_token
        if token is None:
            return found


def plain_scan(store, experiments, filter_string, order_by):
    """The answer of the one-statement search every plan must agree with."""
    statement = run_search_statement(
        [int(e) for e in experiments],
        parse_filter(filter_string),
        "ACTIVE_ONLY",
        parse_order_by(order_by),
        0,
        None,
    )
    with store.db.read() as conn:
        return [row[0] for row in conn.execute(statement)]


def _as_many_as_allowed(*_: object) -> int:
    """However small the store, every probe within ``MAX_DRIVING_RUNS`` drives."""
    return search_plan.MAX_DRIVING_RUNS


def test_pages_driven_or_scanned_list_the_same_runs_in_the_same_order(yard, monkeypatch):
    store, experiments = yard
    for filter_string, order_by in SEARCHES:
        for scope in (experiments[:1], experiments):
            search = f"{filter_string} ordered by {order_by} in {scope}"
            monkeypatch.setattr(search_plan, "driving_limit", _as_many_as_allowed)
            monkeypatch.setattr(search_plan, "MAX_DRIVING_RUNS", 10_000)
            monkeypatch.setattr(search_plan, "DRIVE_LIMIT", 10_000)  # driving runs looked up
            monkeypatch.setattr(search_plan, "WALK_MIN", 10_000)  # metric orders: sorted
            whole = every_page(store, scope, filter_string, order_by, 1000)
            assert whole == plain_scan(store, scope, filter_string, order_by), search
            assert every_page(store, scope, filter_string, order_by, 7) == whole, search
            monkeypatch.setattr(search_plan, "DRIVE_LIMIT", 0)  # kept while the index is walked
            assert every_page(store, scope, filter_string, order_by, 1000) == whole, search
            assert every_page(store, scope, filter_string, order_by, 7) == whole, search
            monkeypatch.setattr(search_plan, "MAX_DRIVING_RUNS", 0)  # every probe too big
            monkeypatch.setattr(search_plan, "WALK_MIN", 0)  # metric orders: index walked
            assert every_page(store, scope, filter_string, order_by, 1000) == whole, search
            assert every_page(store, scope, filter_string, order_by, 7) == whole, search
            monkeypatch.setattr(search_query, "MERGED_EXPERIMENTS", 1)  # one statement for all
            assert every_page(store, scope, filter_string, order_by, 7) == whole, search
            monkeypatch.setattr(search_query, "MERGED_EXPERIMENTS", 64)


def test_a_seek_token_holds_the_last_runs_sort_values_not_an_offset(yard):
    store, experiments = yard
    page = store.search_runs(experiments, max_results=5)
    body = json.loads(base64.urlsafe_b64decode(page.next_page_token))
    last = store.get_run(page.items[-1].info.run_id)
    assert body["after"] == [last.info.start_time, last.info.run_id]


def test_a_run_started_meanwhile_does_not_shift_the_next_page(yard):
    store, experiments = yard
    first = store.search_runs(
        experiments[:1], max_results=5, order_by=["attributes.start_time ASC"]
    )
    second = store.search_runs(
        experiments[:1],
        max_results=5,
        order_by=["attributes.start_time ASC"],
        page_token=first.next_page_token,
    )
    store.create_run(experiments[0], "ann", start_time=1, run_name="early")  # sorts first
    again = store.search_runs(
        experiments[:1],
        max_results=5,
        order_by=["attributes.start_time ASC"],
        page_token=first.next_page_token,
    )
    assert [r.info.run_id for r in again] == [r.info.run_id for r in second]


def test_an_offset_token_of_an_earlier_version_still_pages(yard):
    store, experiments = yard
    whole = every_page(store, experiments, None, [], 1000)
    token = base64.urlsafe_b64encode(json.dumps({"offset": 10}).encode()).decode()
    page = store.search_runs(experiments, max_results=5, page_token=token)
    assert [r.info.run_id for r in page] == whole[10:15]


def _token(body) -> str:
    return base64.urlsafe_b64encode(json.dumps(body).encode()).decode()


def test_forged_or_foreign_tokens_are_refused_naming_the_page_token(yard):
    store, experiments = yard
    token = store.search_runs(experiments, max_results=5).next_page_token
    digest = json.loads(base64.urlsafe_b64decode(token))["search"]
    forged = [
        "not base64!",
        _token({"offset": -1}),
        _token({"offset": True}),
        _token({"search": digest, "after": [1000]}),  # too few values
        _token({"search": digest, "after": ["1000", "abc"]}),  # start_time must be a number
        _token({"search": digest, "after": [1000, {"$ne": 1}]}),
        _token({"search": "0" * 16, "after": [1000, "abc"]}),
        _token([1, 2]),
        _token({"search": digest, "after": [1000, "a" * 100_000]}),  # too long to decode
    ]
    for bad in forged:
        with pytest.raises(InvalidParameter) as caught:
            store.search_runs(experiments, max_results=5, page_token=bad)
        assert caught.value.field == "page_token"
    with pytest.raises(InvalidParameter, match="another search"):
        store.search_runs(experiments, "params.model = 'xgb'", max_results=5, page_token=token)


def test_the_probes_are_answered_by_their_indexes_on_sqlite(sqlite_db):
    """A probe that scans its table costs what the probe is there to avoid."""
    from modelyard.store.statements import Compiled
    from modelyard.tracking.search_plan import RunSearch

    search = RunSearch(
        [1],
        "params.seed = '4' and tags.stage = 'prod' and metrics.rmse < 0.1 "
        "and attributes.run_name = 'r'",
        "ACTIVE_ONLY",
        [],
        100,
    )
    with sqlite_db.raw_read() as cur:
        for _, probe in search.probes():
            compiled = Compiled(probe, sqlite_db.engine.dialect)
            plan = cur.execute("EXPLAIN QUERY PLAN " + compiled.sql, compiled.args({})).fetchall()
            assert all(row[3].startswith("SEARCH") for row in plan), (compiled.sql, plan)


def test_a_few_driving_runs_are_looked_up_and_more_kept_while_the_index_is_walked(sqlite_db):
    """SQLite's plans of the two shapes of a driven search (``search_query.DrivingRuns``):
    by primary key for up to ``DRIVE_LIMIT`` runs, else the experiment's start-time index
    in order, each run tested against the list."""
    from modelyard.store.statements import Compiled
    from modelyard.tracking.search_plan import RunSearch

    search = RunSearch([1], "params.lr = '1'", "ACTIVE_ONLY", [], 100)
    plans = {}
    for count in (3, search_plan.DRIVE_LIMIT + 1):
        driven = search.drives(0, [f"{i:032x}" for i in range(count)])
        assert driven is not None
        (statement,) = search.statements(driven, with_revision=False)
        compiled = Compiled(statement, sqlite_db.engine.dialect)
        with sqlite_db.raw_read() as cur:
            explained = cur.execute("EXPLAIN QUERY PLAN " + compiled.sql, compiled.args({}))
            plans[count] = [row[3] for row in explained.fetchall()]
    looked_up, walked = plans.values()
    assert looked_up[0].startswith("SEARCH runs USING INDEX sqlite_autoindex_runs_1 (run_id=?)")
    assert walked[0] == "SEARCH runs USING COVERING INDEX ix_runs_search (experiment_id=?)"
    assert "USE TEMP B-TREE FOR ORDER BY" not in walked  # read in the page's order


def test_the_probes_are_index_only_ranges_on_postgresql(postgres_uri):
    """On PostgreSQL a probe reads no table row: the value index holds the run (``INCLUDE``)
    and the whole value (up to ``VALUE_INDEX_BYTES``), the metric index the run too. The
    tables are tiny here, so the planner is told to avoid other plans if it can — a probe
    whose form the index cannot answer still shows a different plan."""
    from sqlalchemy import text

    from modelyard.store.engine import open_database
    from modelyard.store.migrations import ensure_schema
    from modelyard.tracking.search_plan import RunSearch

    db = open_database(postgres_uri)
    ensure_schema(db)
    search = RunSearch(
        [1],
        "params.seed = '4' and tags.stage = 'prod' and metrics.rmse < 0.1",
        "ACTIVE_ONLY",
        [],
        100,
    )
    try:
        with db.engine.connect() as conn:
            for setting in ("enable_seqscan", "enable_bitmapscan", "enable_indexscan"):
                conn.execute(text(f"SET {setting} = off"))
            for _, probe in search.probes():
                compiled = probe.compile(db.engine)
                explained = conn.exec_driver_sql("EXPLAIN " + str(compiled), compiled.params)
                plan = "\n".join(row[0] for row in explained)
                assert "Index Only Scan using ix_" in plan, plan
    finally:
        db.dispose()


@pytest.mark.parametrize(
    "values",
    [["short"], [LONG], ["short", LONG], [JUST_FITS, EDGE], [EDGE, "absent", LONG + "y"], []],
)
def test_a_value_probe_finds_values_of_every_length_alike(yard, values):
    """``ValueIn`` tests short values against the whole-value index and long ones by their
    digest (PostgreSQL); either way it finds exactly the rows holding one of the values."""
    from sqlalchemy import select

    from modelyard.tracking.tables import params

    store, _ = yard
    probe = select(params.c.run_id, params.c.value).where(
        params.c.key == "note", search_query.ValueIn(params.c.value, values)
    )
    every = select(params.c.run_id, params.c.value).where(params.c.key == "note")
    with store.db.read() as conn:
        found = sorted(conn.execute(probe).all())
        expected = sorted(row for row in conn.execute(every).all() if row.value in values)
    assert found == expected
    assert {value for _, value in found} == set(values) & set(NOTES)


def test_a_clause_that_matched_too_many_runs_is_not_probed_again_for_a_while(monkeypatch):
    from modelyard.tracking.search_filter import Clause

    crowded = search_plan.CrowdedClauses()
    clause = Clause("param", "model", "=", "xgb")
    now = [1_000.0]
    monkeypatch.setattr(search_plan.time, "monotonic", lambda: now[0])
    assert not crowded.holds(clause, 2_000)
    crowded.add(clause, 2_000)
    assert crowded.holds(clause, 2_000)
    assert not crowded.holds(clause, 20_000)  # too many for one limit, not for every limit
    assert not crowded.holds(Clause("param", "model", "=", "lgbm"), 2_000)
    now[0] += crowded.TTL_S + 1
    assert not crowded.holds(clause, 2_000)  # probed again: runs may have been deleted
    search = search_plan.RunSearch([1], "params.model = 'xgb'", "ACTIVE_ONLY", [], 10)
    crowded.add(clause, 2_000)
    assert search.probes(2_000, crowded) == []
    assert len(search.probes(20_000, crowded)) == 1


def test_a_crowded_clause_is_probed_once_and_still_answered_alike(yard, monkeypatch):
    store, experiments = yard
    monkeypatch.setattr(search_plan, "MAX_DRIVING_RUNS", 3)
    monkeypatch.setattr(search_plan, "driving_limit", _as_many_as_allowed)
    probed = []
    real_probes = search_plan.RunSearch.probes

    def counted(self, *args, **kwargs):
        found = real_probes(self, *args, **kwargs)
        probed.append(len(found))
        return found

    monkeypatch.setattr(search_plan.RunSearch, "probes", counted)
    expected = plain_scan(store, experiments, "params.model = 'xgb'", [])
    for _ in range(2):
        assert every_page(store, experiments, "params.model = 'xgb'", [], 1000) == expected
    if store.db.is_sqlite:  # its probes are compiled once per filter and skipped one by one
        return
    assert probed == [1, 0]


def test_how_many_runs_may_drive_grows_with_the_store():
    """Driving costs a list entry per match; scanning tests a page's worth of runs spread
    over the store — so the larger the store, the more matches are worth driving by."""
    limit = search_plan.driving_limit
    assert limit(None) == limit(0) == limit(60) == search_plan.DRIVE_LIMIT
    assert 6_000 <= limit(100_000) <= 6_500
    assert 15_000 <= limit(100_000, database="postgresql") <= 16_500  # dearer lookups there
    assert limit(1_000_000) == search_plan.MAX_DRIVING_RUNS
    assert limit(10**9) == search_plan.MAX_DRIVING_RUNS
    assert limit(100_000, page=1_000) > limit(100_000, page=10)


def test_run_ids_an_array_could_not_hold_do_not_drive():
    """PostgreSQL's driving ids travel as one comma-joined string: an id holding a comma
    (not one this store makes, but a row may come from elsewhere) would split in two, so
    such a probe leaves the search to scan instead of driving it wrongly."""
    search = search_plan.RunSearch([1], "params.lr = '1'", "ACTIVE_ONLY", [], 10)
    assert search.drives(0, ["a" * 32, "b,c"], as_array=True) is None
    assert search.drives(0, ["a" * 32, "b,c"], as_array=False) is not None  # SQLite: JSON
    driven = search.drives(0, ["a" * 32], as_array=True)
    assert driven is not None and driven.run_ids.as_array
