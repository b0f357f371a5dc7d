"""Run search as SQL: which runs each filter, view type and ordering returns, in which order.

Every test runs on SQLite and, when the server at 127.0.0.1:5432 answers, on PostgreSQL,
so that case sensitivity and NULL ordering are the same on both.
"""

from __future__ import annotations

import os
import random
import time
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine, insert, text

import modelyard.artifacts.tables  # noqa: F401  (registers its tables on the metadata)
from modelyard.errors import InvalidParameter
from modelyard.store.engine import Database, open_database
from modelyard.store.schema import metadata
from modelyard.tracking import tables
from modelyard.tracking.search_filter import OrderKey, parse_filter, parse_order_by
from modelyard.tracking.search_query import run_search_statement

POSTGRES_URI = "postgresql+psycopg://postgres@127.0.0.1:5432/test"

# run_id, experiment, run_name, user_id, status, start_time, end_time, lifecycle_stage
RUNS = [
    ("a1", 1, "alpha", "ann", "FINISHED", 100, 200, "active"),
    ("b2", 1, "Beta", "bob", "FAILED", 300, None, "active"),
    ("c3", 1, "gamma", "ann", "RUNNING", 200, 250, "active"),
    ("d4", 1, "delta", "bob", "FINISHED", 400, 450, "deleted"),
    ("e5", 2, "alpha", "eve", "FINISHED", 500, 600, "active"),
]
PARAMS = {
    "a1": {"lr": "0.1", "model": "ResNet", "model.depth": "8", "pct": "50%", "glob": "a*b[1]?"},
    "b2": {"lr": "0.01", "model": "resnet"},
    "c3": {"lr": "0.1", "model": "ResNeXt", "pct": "50x", "glob": "axb1y"},
    "d4": {"lr": "0.1"},
    "e5": {"lr": "0.1", "model": "ResNet"},
}
TAGS = {
    "a1": {"mlflow.note": "Best run", "team": "vision"},
    "b2": {"team": "Vision"},
    "c3": {"my tag": "x"},
    "d4": {"team": "vision"},
    "e5": {"team": "vision"},
}
NAN = float("nan")
METRICS = {
    "a1": {"rmse": 0.5, "acc": 0.9, "my metric": 1.0},
    "b2": {"rmse": NAN, "acc": 0.7},
    "c3": {"rmse": 0.3},
    "d4": {"rmse": 0.1},
    "e5": {"rmse": 0.2},
}
DATASETS = {
    "a1": [("iris", "abc", "training")],
    "b2": [("wine", "abc", "training")],
    "c3": [("iris", "def", "eval"), ("wine", "abc", "training")],
}


def _load(db: Database) -> None:
    with db.write() as conn:
        conn.execute(
            insert(tables.experiments),
            [
                {"experiment_id": e, "name": f"exp{e}", "artifact_location": f"/a/{e}",
                 "lifecycle_stage": "active", "creation_time": 0, "last_update_time": 0}
                for e in (1, 2)
            ],
        )  # fmt: skip
        conn.execute(
            insert(tables.runs),
            [
                {"run_id": r, "experiment_id": e, "run_name": n, "user_id": u, "status": s,
                 "start_time": st, "end_time": et, "lifecycle_stage": lc,
                 "artifact_uri": f"/a/{e}/{r}"}
                for r, e, n, u, s, st, et, lc in RUNS
            ],
        )  # fmt: skip
        for table, rows in ((tables.params, PARAMS), (tables.tags, TAGS)):
            conn.execute(
                insert(table),
                [
                    {"run_id": r, "key": k, "value": v}
                    for r, kv in rows.items()
                    for k, v in kv.items()
                ],
            )
        conn.execute(
            insert(tables.latest_metrics),
            [
                # NaN is stored as a placeholder 0 with is_nan set, so 0 must never match.
                {"run_id": r, "key": k, "step": 0, "timestamp": 0,
                 "value": 0.0 if v != v else v, "is_nan": v != v}
                for r, kv in METRICS.items() for k, v in kv.items()
            ],
        )  # fmt: skip
        conn.execute(
            insert(tables.dataset_inputs),
            [
                {"run_id": r, "name": n, "digest": d, "context": c, "source_type": "local",
                 "source": "/data"}
                for r, inputs in DATASETS.items() for n, d, c in inputs
            ],
        )  # fmt: skip


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Database]:
    if request.param == "sqlite":
        database = open_database("sqlite:///" + str(tmp_path_factory.mktemp("search") / "t.db"))
        metadata.create_all(database.engine)
        _load(database)
        yield database
        database.dispose()
        return
    schema = f"search_{uuid.uuid4().hex[:12]}"
    admin = _postgres_admin()
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    base = admin.url.render_as_string(hide_password=False)
    database = open_database(f"{base}?options=-csearch_path%3D{schema}")
    try:
        metadata.create_all(database.engine)
        _load(database)
        yield database
    finally:
        database.dispose()
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def _postgres_admin() -> Engine:
    """An engine on the server's ``test`` database, as ``postgres`` or else the OS user.

    Skips when the server is unreachable, except under CI, which must run these tests.
    """
    errors = []
    for uri in (POSTGRES_URI, POSTGRES_URI.replace("postgres@", "")):
        engine = create_engine(uri)
        try:
            with engine.connect():
                return engine
        except Exception as exc:  # no server, no such role, no driver
            engine.dispose()
            errors.append(str(exc).splitlines()[0])
    reason = f"PostgreSQL at {POSTGRES_URI} is not available: {'; '.join(errors)}"
    if os.environ.get("CI"):
        pytest.fail(f"{reason}, and CI must run the PostgreSQL tests")
    pytest.skip(reason)


def search(
    db: Database,
    filter_string: str = "",
    order_by: list[str] | None = None,
    *,
    view: str = "ACTIVE_ONLY",
    experiments: tuple[int, ...] = (1,),
    offset: int = 0,
    limit: int | None = 100,
) -> list[str]:
    stmt = run_search_statement(
        list(experiments),
        parse_filter(filter_string),
        view,
        parse_order_by(order_by),
        offset,
        limit,
    )
    with db.read() as conn:
        return list(conn.execute(stmt).scalars())


# --- filters ---------------------------------------------------------------------------


def test_no_filter_returns_active_runs_newest_first(db: Database) -> None:
    assert search(db) == ["b2", "c3", "a1"]


@pytest.mark.parametrize(
    ("filter_string", "expected"),
    [
        ("metrics.rmse < 0.4", ["c3"]),  # b2's NaN (stored as 0) is not < 0.4
        ("metrics.rmse >= 0.3", ["c3", "a1"]),
        ("metrics.rmse > -1", ["c3", "a1"]),
        ("metrics.rmse != 0.5", ["c3"]),  # NaN matches no comparison, not even !=
        ("metrics.rmse = 0", []),
        ("metrics.rmse <= 0.5 AND metrics.acc > 0.5", ["a1"]),
        ("metrics.acc > 0", ["b2", "a1"]),  # c3 has no acc
        ("metrics.`my metric` = 1", ["a1"]),
        ("metrics.missing > 0", []),
    ],
)
def test_metric_filters_compare_the_latest_value(
    db: Database, filter_string: str, expected: list[str]
) -> None:
    assert search(db, filter_string) == expected


@pytest.mark.parametrize(
    ("filter_string", "expected"),
    [
        ("params.lr = '0.1'", ["c3", "a1"]),
        ("params.model = 'resnet'", ["b2"]),  # = is case-sensitive
        ("params.model != 'ResNet'", ["b2", "c3"]),
        ("params.model LIKE 'Res%'", ["c3", "a1"]),  # LIKE is case-sensitive, even on SQLite
        ("params.model LIKE 'res%'", ["b2"]),
        ("params.model ILIKE 'RES%'", ["b2", "c3", "a1"]),
        ("params.model ILIKE 'resnet'", ["b2", "a1"]),
        ("params.model LIKE 'ResNe_'", ["a1"]),
        ("params.model LIKE '%Ne%'", ["c3", "a1"]),
        ("params.pct LIKE '50_'", ["c3", "a1"]),
        ("params.pct LIKE '50\\%'", ["a1"]),  # a backslash makes % literal
        ("params.pct LIKE '50\\_'", []),
        ("params.glob LIKE 'a*b[1]?'", ["a1"]),  # GLOB's own wildcards are literal
        ("params.glob LIKE 'a%'", ["c3", "a1"]),
        ("params.glob ILIKE 'A*B[1]?'", ["a1"]),
        ("params.`model.depth` = '8'", ["a1"]),
        ("params.model.depth IS NOT NULL", ["a1"]),
        ("params.model.depth IS NULL", ["b2", "c3"]),
        ("params.lr = '0.1' AND params.model LIKE '%X%'", ["c3"]),
    ],
)
def test_param_filters(db: Database, filter_string: str, expected: list[str]) -> None:
    assert search(db, filter_string) == expected


@pytest.mark.parametrize(
    ("filter_string", "expected"),
    [
        ("tags.team = 'vision'", ["a1"]),
        ("tags.team ILIKE 'VISION'", ["b2", "a1"]),
        ("tags.team LIKE 'V%'", ["b2"]),
        ("tags.team != 'vision'", ["b2"]),  # a run without the tag matches no comparison
        ("tags.team IS NULL", ["c3"]),
        ("tags.`mlflow.note` LIKE '%run'", ["a1"]),
        ("tags.\"my tag\" = 'x'", ["c3"]),
    ],
)
def test_tag_filters(db: Database, filter_string: str, expected: list[str]) -> None:
    assert search(db, filter_string) == expected


@pytest.mark.parametrize(
    ("filter_string", "expected"),
    [
        ("attributes.run_name = 'alpha'", ["a1"]),
        ("run_name LIKE 'b%'", []),
        ("run_name ILIKE 'b%'", ["b2"]),
        ("attributes.status IN ('FINISHED', 'RUNNING')", ["c3", "a1"]),
        ("attributes.status NOT IN ('FINISHED', 'RUNNING')", ["b2"]),
        ("run_id IN ('a1', 'c3', 'd4', 'zz')", ["c3", "a1"]),
        ("run_id IN ('A1')", []),
        ("run_id NOT IN ('a1')", ["b2", "c3"]),
        ("user_id != 'ann'", ["b2"]),
        ("artifact_uri LIKE '/a/1/%'", ["b2", "c3", "a1"]),
        ("start_time >= 200", ["b2", "c3"]),
        ("created < 200", ["a1"]),
        ("end_time > 0", ["c3", "a1"]),  # b2 has not ended
        ("end_time != 200", ["c3"]),
        ("lifecycle_stage = 'active'", ["b2", "c3", "a1"]),
    ],
)
def test_attribute_filters(db: Database, filter_string: str, expected: list[str]) -> None:
    assert search(db, filter_string) == expected


@pytest.mark.parametrize(
    ("filter_string", "expected"),
    [
        ("datasets.name = 'iris'", ["c3", "a1"]),
        ("datasets.name LIKE 'IRIS'", []),
        ("datasets.name ILIKE 'IRIS'", ["c3", "a1"]),
        ("datasets.digest IN ('abc')", ["b2", "c3", "a1"]),
        ("datasets.context = 'eval'", ["c3"]),
        ("datasets.name != 'iris'", ["b2", "c3"]),  # c3 also used wine
        ("datasets.name NOT IN ('iris', 'wine')", []),
        # each clause is tested on its own: c3 used iris (for eval) and wine for training
        ("datasets.name = 'iris' AND datasets.context = 'training'", ["c3", "a1"]),
    ],
)
def test_dataset_filters(db: Database, filter_string: str, expected: list[str]) -> None:
    assert search(db, filter_string) == expected


# --- which runs are in view --------------------------------------------------------------


@pytest.mark.parametrize(
    ("view", "expected"),
    [
        ("ACTIVE_ONLY", ["b2", "c3", "a1"]),
        ("DELETED_ONLY", ["d4"]),
        ("ALL", ["d4", "b2", "c3", "a1"]),
        ("all", ["d4", "b2", "c3", "a1"]),
    ],
)
def test_view_type_selects_by_lifecycle_stage(db: Database, view: str, expected: list[str]) -> None:
    assert search(db, view=view) == expected


def test_deleted_runs_are_searched_only_when_asked_for(db: Database) -> None:
    assert search(db, "metrics.rmse < 0.2") == []
    assert search(db, "metrics.rmse < 0.2", view="DELETED_ONLY") == ["d4"]
    assert search(db, "lifecycle_stage = 'deleted'", view="ALL") == ["d4"]


def test_search_spans_the_given_experiments_only(db: Database) -> None:
    assert search(db, experiments=(1, 2)) == ["e5", "b2", "c3", "a1"]
    assert search(db, experiments=(2,)) == ["e5"]
    assert search(db, experiments=()) == []
    assert search(db, "run_name = 'alpha'", experiments=(1, 2)) == ["e5", "a1"]


def test_offset_and_limit_page_through_the_ordered_runs(db: Database) -> None:
    assert search(db, offset=1, limit=1) == ["c3"]
    assert search(db, offset=2, limit=10) == ["a1"]
    assert search(db, offset=3) == []
    assert search(db, limit=None) == ["b2", "c3", "a1"]
    assert search(db, limit=0) == []


@pytest.mark.parametrize(
    ("view", "offset", "limit"), [("LIVE", 0, 10), ("ALL", -1, 10), ("ALL", 0, -5)]
)
def test_bad_view_type_offset_or_limit_is_refused(view: str, offset: int, limit: int) -> None:
    with pytest.raises(InvalidParameter):
        run_search_statement([1], [], view, [], offset, limit)


# --- ordering ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("order_by", "expected"),
    [
        # numbers, then NaN, then runs without the metric, in both directions
        (["metrics.rmse ASC"], ["c3", "a1", "b2"]),
        (["metrics.rmse DESC"], ["a1", "c3", "b2"]),
        (["metrics.acc"], ["b2", "a1", "c3"]),
        (["metrics.acc DESC"], ["a1", "b2", "c3"]),
        # params and tags by their string value, runs lacking the key last
        (["params.lr"], ["b2", "c3", "a1"]),  # '0.01' < '0.1'; ties by start_time DESC
        (["params.lr DESC"], ["c3", "a1", "b2"]),
        (["params.model.depth"], ["a1", "b2", "c3"]),
        (["params.model.depth DESC"], ["a1", "b2", "c3"]),
        (["tags.`mlflow.note` DESC"], ["a1", "b2", "c3"]),
        # attributes by column; an unset end_time sorts last
        (["start_time"], ["a1", "c3", "b2"]),
        (["attributes.start_time DESC"], ["b2", "c3", "a1"]),
        (["created ASC"], ["a1", "c3", "b2"]),
        (["end_time"], ["a1", "c3", "b2"]),
        (["end_time DESC"], ["c3", "a1", "b2"]),
        (["user_id"], ["c3", "a1", "b2"]),
        (["run_id DESC"], ["c3", "b2", "a1"]),
        # several keys, left to right
        (["params.lr DESC", "metrics.rmse"], ["c3", "a1", "b2"]),
        (["user_id DESC", "metrics.rmse DESC"], ["b2", "a1", "c3"]),
    ],
)
def test_order_by(db: Database, order_by: list[str], expected: list[str]) -> None:
    assert search(db, order_by=order_by) == expected


def test_order_by_all_runs_across_experiments_puts_nan_after_numbers(db: Database) -> None:
    got = search(db, order_by=["metrics.rmse"], view="ALL", experiments=(1, 2))
    assert got == ["d4", "e5", "c3", "a1", "b2"]


def test_ordering_combines_with_filters_and_paging(db: Database) -> None:
    got = search(db, "params.lr = '0.1'", ["metrics.rmse DESC"], experiments=(1, 2), limit=2)
    assert got == ["a1", "c3"]
    got = search(db, "params.lr = '0.1'", ["metrics.rmse DESC"], experiments=(1, 2), offset=2)
    assert got == ["e5"]


def test_ordering_by_datasets_is_refused() -> None:
    with pytest.raises(InvalidParameter):
        run_search_statement([1], [], "ALL", [OrderKey("dataset", "name")], 0, 10)


# --- efficiency -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def big_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    """2,000 runs with 5 params and 5 metrics each."""
    database = open_database("sqlite:///" + str(tmp_path_factory.mktemp("big") / "t.db"))
    metadata.create_all(database.engine)
    rng = random.Random(7)
    run_ids = [f"r{i:05d}" for i in range(2000)]
    with database.write() as conn:
        conn.execute(
            insert(tables.experiments),
            [{"experiment_id": 1, "name": "big", "artifact_location": "/a",
              "lifecycle_stage": "active", "creation_time": 0, "last_update_time": 0}],
        )  # fmt: skip
        conn.execute(
            insert(tables.runs),
            [
                {"run_id": r, "experiment_id": 1, "run_name": r, "user_id": "u",
                 "status": "FINISHED", "start_time": i, "lifecycle_stage": "active",
                 "artifact_uri": "/a"}
                for i, r in enumerate(run_ids)
            ],
        )  # fmt: skip
        conn.execute(
            insert(tables.params),
            [{"run_id": r, "key": f"p{k}", "value": str(rng.randint(0, 9))}
             for r in run_ids for k in range(5)],
        )  # fmt: skip
        conn.execute(
            insert(tables.latest_metrics),
            [{"run_id": r, "key": f"m{k}", "step": 0, "timestamp": 0, "value": rng.random(),
              "is_nan": False} for r in run_ids for k in range(5)],
        )  # fmt: skip
    yield database
    database.dispose()


def test_filters_look_up_the_primary_key_indexes_instead_of_scanning(big_sqlite: Database) -> None:
    stmt = run_search_statement(
        [1], parse_filter("metrics.m1 < 0.5 AND params.p2 = '3'"), "ACTIVE_ONLY", [], 0, 100
    )
    sql = str(stmt.compile(big_sqlite.engine, compile_kwargs={"literal_binds": True}))
    with big_sqlite.read() as conn:
        plan = " | ".join(row[3] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql))
    assert "SCAN latest_metrics" not in plan and "SCAN params" not in plan, plan
    assert "(run_id=? AND key=?)" in plan, plan


def test_a_metric_and_param_filter_over_2000_runs_takes_milliseconds(
    big_sqlite: Database,
) -> None:
    stmt = run_search_statement(
        [1],
        parse_filter("metrics.m1 < 0.5 AND params.p2 = '3'"),
        "ACTIVE_ONLY",
        parse_order_by(["metrics.m0 DESC"]),
        0,
        100,
    )
    with big_sqlite.read() as conn:
        expected = conn.execute(stmt).scalars().all()
        timings = []
        for _ in range(5):
            started = time.perf_counter()
            assert conn.execute(stmt).scalars().all() == expected
            timings.append(time.perf_counter() - started)
    assert 0 < len(expected) <= 100
    assert min(timings) < 0.05, timings  # ~3 ms typically; generous for a busy CI machine
