"""Model-version, registered-model, experiment and dataset search at 100,000 rows, on SQLite
and PostgreSQL (issue 20, item 1: ≤ 20 ms server time, first page and a deep page).

The yard: 100,000 registered models, the first 1,000 of which hold 100 versions each
(100,000 model versions); every model has a ``team`` tag (5 values) and 0.1 % a ``tier``
tag, 0.1 % are prompts (MLflow hides them); every version has ``dataset`` (100 values) and
``validated`` tags, the newest is in Production, the one before it in Staging, and the two
carry the ``champion`` and ``challenger`` aliases. 100,000 experiments (2 % deleted) with a
``team`` tag and 0.1 % a ``project`` tag. 100,000 dataset versions (1,000 names × 100).
100,000 MLflow 3 logged models in one experiment, each with a ``team`` tag.
Rows are written in bulk into the real tables after ``ensure_schema`` (SQLite: one
transaction; PostgreSQL: COPY), then statistics are refreshed as the product does after a
bulk load (``modelyard.store.statistics.refresh_statistics``).

Each search runs ``--repeat`` times through the store (``SqlRegistryStore``,
``SqlTrackingStore.search_experiments``, ``DataClient.search_versions``,
``LoggedModelStore.search``: the query and loading the page of 100 with its tags, aliases
and latest versions — the server time without the JSON) and, for the MLflow-shaped
endpoints, through the server's ASGI app in-process (request parsing, the store, the JSON;
no socket). The deep page is the page after half the matches (at most 50,000), reached
with the token a client walking there would hold. ``--explain`` prints each query's plan
(``EXPLAIN ANALYZE`` on PostgreSQL, ``EXPLAIN QUERY PLAN`` on SQLite).

The peer (``--mlflow``, PostgreSQL): MLflow's own ``SqlAlchemyStore`` (tracking and model
registry) on its own schema with the same rows, loaded the same way
(``databases.bulk_insert``); the same searches through its store, first page and the deep
page its offset token reaches.

    python benchmarks/search_entities.py                 # both databases, with MLflow
    python benchmarks/search_entities.py --postgres none --explain
"""

from __future__ import annotations

import argparse
import base64
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from databases import bulk_insert, p95, postgres_database, timed  # benchmarks/databases.py
from sqlalchemy import Select, create_engine, event, func, select

from modelyard.config import Settings
from modelyard.data.client import DataClient
from modelyard.data.tables import dataset_versions
from modelyard.registry import tables as rt
from modelyard.registry.logged_model_search import (
    LOGGED_MODELS,
    ModelOrder,
    logged_models_statement,
)
from modelyard.registry.logged_models import LoggedModelStore
from modelyard.registry.search import (
    MODEL_VERSIONS,
    REGISTERED_MODELS,
    model_versions_statement,
    registered_models_statement,
)
from modelyard.registry.sql_store import SqlRegistryStore
from modelyard.store.engine import Database, open_database
from modelyard.store.keyset import SortKey, encode_token
from modelyard.store.migrations import ensure_schema
from modelyard.store.statistics import refresh_statistics
from modelyard.tracking import tables as tt
from modelyard.tracking.entities import ViewType
from modelyard.tracking.search_filter import EXPERIMENTS, parse_filter, parse_order_by
from modelyard.tracking.sql_experiments import experiment_search_statement, stages_for
from modelyard.tracking.sql_store import SqlTrackingStore

N = 100_000
MODELS_WITH_VERSIONS, VERSIONS_EACH = 1_000, 100
DATASETS, DATASET_VERSIONS_EACH = 1_000, 100
TEAMS = ("search", "ads", "pricing", "supply", "growth")
T0 = 1_700_000_000_000

#: (name, filter, order_by)
MODEL_SEARCHES: list[tuple[str, str | None, list[str]]] = [
    ("no filter", None, []),
    ("name LIKE 'model-0004%' (0.1 %)", "name LIKE 'model-0004%'", []),
    ("name ILIKE '%42%' (UI box, 4 %)", "name ILIKE '%42%'", []),
    ("tags.team = ads (20 %)", "tags.team = 'ads'", []),
    ("tags.tier = gold (0.1 %)", "tags.tier = 'gold'", []),
    ("order by last_updated DESC", None, ["last_updated_timestamp DESC"]),
]
VERSION_SEARCHES: list[tuple[str, str | None, list[str]]] = [
    ("no filter", None, []),
    ("name = one model (100)", "name = 'model-00042'", []),
    ("run_id = one version", "run_id = 'r000000000000000000000000004242'", []),
    ("tags.validated = true (50 %)", "tags.validated = 'true'", []),
    ("tags.dataset = ds-7 (1 %)", "tags.dataset = 'ds-7'", []),
    ("version_number > 90 (10 %)", "version_number > 90", []),
    ("order by last_updated DESC", None, ["last_updated_timestamp DESC"]),
    ("one model, order by version", "name = 'model-00042'", ["version_number ASC"]),
]
EXPERIMENT_SEARCHES: list[tuple[str, str | None, list[str]]] = [
    ("no filter", None, []),
    ("name LIKE 'exp-0004%' (0.1 %)", "name LIKE 'exp-0004%'", []),
    ("tags.team = ads (20 %)", "tags.team = 'ads'", []),
    ("tags.project = p-7 (0.01 %)", "tags.project = 'p-7'", []),
    ("creation_time > half (50 %)", f"creation_time > {T0 + N // 2 * 1000}", []),
    ("order by creation_time DESC", None, ["creation_time DESC"]),
    ("order by name", None, ["name ASC"]),
]
#: 100,000 MLflow 3 logged models, all in this experiment (a team's one big experiment).
LOGGED_MODELS_EXPERIMENT = 1
#: (name, filter, order_by)
LOGGED_MODEL_SEARCHES: list[tuple[str, str | None, list[ModelOrder]]] = [
    ("one experiment, newest first", None, []),
    ("one experiment, tags.team = ads (20 %)", "tags.team = 'ads'", []),
]
#: (name, dataset name or None, newest first)
DATASET_SEARCHES: list[tuple[str, str | None, bool]] = [
    ("every version, by name", None, False),
    ("one dataset (100)", "ds-00042", False),
    ("newest first", None, True),
]


# -- the yard ------------------------------------------------------------------------------


def yard_rows() -> dict[Any, Iterable[tuple[Any, ...]]]:
    """Every table's rows, as tuples in the table's column order."""

    def models() -> Iterator[tuple[Any, ...]]:
        for i in range(N):
            versions = VERSIONS_EACH if i < MODELS_WITH_VERSIONS else 0
            t = T0 + i * 1000
            yield (f"model-{i:05d}", None, versions + 1, "ana", t, t + (i * 7919) % N * 1000)

    def model_tags() -> Iterator[tuple[Any, ...]]:
        for i in range(N):
            name = f"model-{i:05d}"
            yield (name, "team", TEAMS[i % 5])
            if i % 1000 == 7:
                yield (name, "tier", "gold")
            if i % 1000 == 500:
                yield (name, "mlflow.prompt.is_prompt", "true")

    def versions() -> Iterator[tuple[Any, ...]]:
        k = 0
        for m in range(MODELS_WITH_VERSIONS):
            name = f"model-{m:05d}"
            for v in range(1, VERSIONS_EACH + 1):
                t = T0 + k * 1000
                stage = {VERSIONS_EACH: "Production", VERSIONS_EACH - 1: "Staging"}.get(v, "None")
                yield (
                    name,
                    v,
                    None,
                    f"runs:/r{k:031d}/model",
                    f"models/{name}/{v}",
                    f"r{k:031d}",
                    None,
                    None,
                    "sklearn",
                    None,
                    None,
                    stage,
                    "READY",
                    "ana",
                    t,
                    t + (k * 7919) % N * 1000,
                )
                k += 1

    def version_tags() -> Iterator[tuple[Any, ...]]:
        k = 0
        for m in range(MODELS_WITH_VERSIONS):
            for v in range(1, VERSIONS_EACH + 1):
                name = f"model-{m:05d}"
                yield (name, v, "dataset", f"ds-{k % 100}")
                yield (name, v, "validated", "true" if k % 2 else "false")
                k += 1

    def aliases() -> Iterator[tuple[Any, ...]]:
        for m in range(MODELS_WITH_VERSIONS):
            yield (f"model-{m:05d}", "champion", VERSIONS_EACH)
            yield (f"model-{m:05d}", "challenger", VERSIONS_EACH - 1)

    def experiments() -> Iterator[tuple[Any, ...]]:
        for i in range(1, N + 1):
            t = T0 + i * 1000
            stage = "deleted" if i % 50 == 0 else "active"
            yield (i, f"exp-{i:05d}", f"mlflow-artifacts:/{i}", stage, t, t + (i * 7919) % N)

    def experiment_tags() -> Iterator[tuple[Any, ...]]:
        for i in range(1, N + 1):
            yield (i, "team", TEAMS[i % 5])
            if i % 1000 == 7:
                yield (i, "project", f"p-{i // 1000 % 100}")

    def datasets() -> Iterator[tuple[Any, ...]]:
        schema = json.dumps([{"name": "price", "type": "double", "nullable": False}])
        profile = json.dumps({"num_rows": 1000, "columns": {"price": {"mean": 1.0}}})
        k = 0
        for d in range(DATASETS):
            for v in range(1, DATASET_VERSIONS_EACH + 1):
                digest = f"{k:064x}"
                files = json.dumps([["part-0.parquet", digest, 4096]])
                yield (
                    f"ds-{d:05d}",
                    v,
                    digest,
                    digest,
                    schema,
                    1000,
                    4096,
                    profile,
                    files,
                    f"datasets/ds-{d:05d}/{digest}",
                    "parquet",
                    "sales.parquet",
                    None,
                    "ana",
                    T0 + (k * 7919) % N * 1000,
                )
                k += 1

    def logged_models() -> Iterator[tuple[Any, ...]]:
        for i in range(N):
            model_id = f"m-{i:032x}"
            t = T0 + (i * 7919) % N * 1000
            yield (
                model_id,
                LOGGED_MODELS_EXPERIMENT,
                f"model-{i}",
                f"r{i:031d}",
                None,
                "READY",
                f"{LOGGED_MODELS_EXPERIMENT}/models/{model_id}/artifacts",
                t,
                t,
            )

    def logged_model_tags() -> Iterator[tuple[Any, ...]]:
        for i in range(N):
            yield (f"m-{i:032x}", "team", TEAMS[i % 5])

    return {
        rt.registered_models: models(),
        rt.registered_model_tags: model_tags(),
        rt.model_versions: versions(),
        rt.model_version_tags: version_tags(),
        rt.model_aliases: aliases(),
        tt.experiments: experiments(),
        tt.experiment_tags: experiment_tags(),
        dataset_versions: datasets(),
        rt.logged_models: logged_models(),
        rt.logged_model_tags: logged_model_tags(),
    }


def bulk_load(db: Database, tables: dict[Any, Iterable[tuple[Any, ...]]]) -> None:
    """Every table's rows, by its columns in definition order (``databases.bulk_insert``)."""
    named = {
        f"{table.name} ({', '.join(c.name for c in table.columns)})": rows
        for table, rows in tables.items()
    }
    bulk_insert(db.engine, named)


# -- deep pages and plans --------------------------------------------------------------------


def deep_token(
    db: Database, query: Select[Any], keys: list[SortKey], scope: str, depth: int
) -> str | None:
    """The token a client holds after walking ``depth`` matches (read here with one
    OFFSET query, outside the timing)."""
    ordered = query.order_by(*(k.order() for k in keys)).offset(depth - 1).limit(1)
    with db.read() as conn:
        row = conn.execute(ordered).first()
    if row is None:
        return None
    return encode_token(scope, keys, [row._mapping[k.column] for k in keys])


def count(db: Database, query: Select[Any]) -> int:
    with db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(query.subquery())).scalar_one())


def explain(db: Database, call: Callable[[], Any], marker: str) -> str:
    """The plan of the first statement ``call`` runs that contains ``marker``."""
    captured: list[tuple[str, Any]] = []

    def grab(_c: Any, _cur: Any, statement: str, parameters: Any, *_: Any) -> None:
        if not captured and marker in statement:
            captured.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", grab)
    try:
        call()
    finally:
        event.remove(db.engine, "before_cursor_execute", grab)
    if not captured:
        return "    (no statement captured)"
    statement, parameters = captured[0]
    prefix = "EXPLAIN QUERY PLAN " if db.is_sqlite else "EXPLAIN (ANALYZE, BUFFERS) "
    raw = db.engine.raw_connection()
    try:
        cur = raw.cursor()
        cur.execute(prefix + statement, parameters)
        lines = [" ".join(str(c) for c in row) for row in cur.fetchall()]
    finally:
        raw.close()
    return "\n".join("    " + line for line in lines)


# -- timing ----------------------------------------------------------------------------------


#: (database label, search) → (first page, deep page) median wall ms, for the peer's ratios.
RESULTS: dict[tuple[str, str], tuple[float, float | None]] = {}


class Report:
    def __init__(self, label: str, repeat: int, plans: bool) -> None:
        self.label, self.repeat, self.plans = label, repeat, plans
        self.lines: list[str] = []

    def time(
        self,
        what: str,
        first: Callable[[], Any],
        deep: Callable[[], Any] | None,
        depth: int,
        plan: Callable[[], str] | None = None,
    ) -> None:
        walls, cpus, answers = timed(first, self.repeat)
        first_ms, deep_ms = statistics.median(walls), None
        line = (
            f"  {self.label:<10} {what:<46} first {statistics.median(walls):6.2f} ms "
            f"p95 {p95(walls):6.2f} cpu {statistics.median(cpus):6.2f} ({len(answers[0])})"
        )
        if deep is not None:
            walls, cpus, answers = timed(deep, self.repeat)
            deep_ms = statistics.median(walls)
            line += (
                f"  deep@{depth:,} {statistics.median(walls):6.2f} ms "
                f"p95 {p95(walls):6.2f} cpu {statistics.median(cpus):6.2f} "
                f"({len(answers[0])})"
            )
        print(line, flush=True)
        self.lines.append(line)
        RESULTS[(self.label, what)] = (first_ms, deep_ms)
        if self.plans and plan is not None:
            print(plan(), flush=True)


def bench_ours(uri: str, label: str, repeat: int, plans: bool, http: bool) -> None:
    db = open_database(uri)
    try:
        ensure_schema(db)
        t0 = time.perf_counter()
        bulk_load(db, yard_rows())
        if not db.is_sqlite:
            with db.engine.connect() as conn:
                conn.exec_driver_sql(
                    "SELECT setval(pg_get_serial_sequence('experiments', 'experiment_id'), "
                    f"{N + 1})"
                )
                conn.commit()
        refresh_statistics(db)
        print(
            f"{label}: 100,000 models / versions / experiments / dataset versions loaded "
            f"and analysed in {time.perf_counter() - t0:.1f} s",
            flush=True,
        )
        report = Report(label, repeat, plans)
        registry = SqlRegistryStore(db)
        tracking = SqlTrackingStore(db)
        data = DataClient(db, artifacts=None, settings=Settings())
        for what, f, order in MODEL_SEARCHES:
            query, keys = registered_models_statement(
                parse_filter(f, REGISTERED_MODELS), parse_order_by(order, REGISTERED_MODELS)
            )
            depth = min(50_000, count(db, query) // 2)
            token = deep_token(db, query, keys, "registered_models", depth) if depth > 100 else None
            report.time(
                f"registered models: {what}",
                lambda f=f, o=order: registry.search_registered_models(f, 100, None, o),
                (lambda f=f, o=order, t=token: registry.search_registered_models(f, 100, t, o))
                if token
                else None,
                depth,
                lambda f=f, o=order, t=token: explain(
                    db,
                    lambda: registry.search_registered_models(f, 100, t, o),
                    "FROM registered_models",
                ),
            )
        if plans:  # the page's latest versions (``sql_rows.latest_versions_statement``)
            print("  the first page's latest versions:")
            marker = "in_stage_0" if db.is_sqlite else "LATERAL"
            print(explain(db, lambda: registry.search_registered_models(None, 100), marker))
        for what, f, order in VERSION_SEARCHES:
            query, keys = model_versions_statement(
                parse_filter(f, MODEL_VERSIONS), parse_order_by(order, MODEL_VERSIONS)
            )
            depth = min(50_000, count(db, query) // 2)
            token = deep_token(db, query, keys, "model_versions", depth) if depth > 100 else None
            report.time(
                f"model versions: {what}",
                lambda f=f, o=order: registry.search_model_versions(f, 100, None, o),
                (lambda f=f, o=order, t=token: registry.search_model_versions(f, 100, t, o))
                if token
                else None,
                depth,
                lambda f=f, o=order, t=token: explain(
                    db, lambda: registry.search_model_versions(f, 100, t, o), "FROM model_versions"
                ),
            )
        for what, f, order in EXPERIMENT_SEARCHES:
            query, keys = experiment_search_statement(
                parse_filter(f, EXPERIMENTS),
                stages_for(ViewType.ACTIVE_ONLY),
                parse_order_by(order, EXPERIMENTS),
            )
            depth = min(50_000, count(db, query) // 2)
            token = deep_token(db, query, keys, "experiments", depth) if depth > 100 else None

            def search(f: str | None = f, o: list[str] = order, t: str | None = None) -> Any:
                return tracking.search_experiments(ViewType.ACTIVE_ONLY, 100, f, t, o)

            report.time(
                f"experiments: {what}",
                search,
                (lambda s=search, t=token: s(t=t)) if token else None,
                depth,
                lambda s=search, t=token: explain(db, lambda: s(t=t), "FROM experiments"),
            )
        for what, name, newest in DATASET_SEARCHES:
            c = dataset_versions.c
            keys = [SortKey(c.name, True), SortKey(c.version, False)]
            if newest:
                keys.insert(0, SortKey(c.created_at, False))
            query = select(dataset_versions)
            if name is not None:
                query = query.where(c.name == name)
            scope = "dataset_versions" if name is None else "dataset_versions:name"
            depth = min(50_000, count(db, query) // 2)
            token = deep_token(db, query, keys, scope, depth) if depth > 100 else None
            report.time(
                f"dataset versions: {what}",
                lambda n=name, w=newest: data.search_versions(n, 100, None, w),
                (lambda n=name, w=newest, t=token: data.search_versions(n, 100, t, w))
                if token
                else None,
                depth,
                lambda n=name, w=newest, t=token: explain(
                    db, lambda: data.search_versions(n, 100, t, w), "FROM dataset_versions"
                ),
            )
        logged = LoggedModelStore(db)
        experiments = [str(LOGGED_MODELS_EXPERIMENT)]
        for what, f, order in LOGGED_MODEL_SEARCHES:
            clauses = parse_filter(f, LOGGED_MODELS) if f else []
            query, keys = logged_models_statement([LOGGED_MODELS_EXPERIMENT], clauses, (), order)
            depth = min(50_000, count(db, query) // 2)
            token = deep_token(db, query, keys, "logged_models", depth) if depth > 100 else None

            def find(f: str | None = f, o: Any = order, t: str | None = None) -> Any:
                return logged.search(experiments, 100, t, f, (), o)

            report.time(
                f"logged models: {what}",
                find,
                (lambda s=find, t=token: s(t=t)) if token else None,
                depth,
                lambda s=find, t=token: explain(db, lambda: s(t=t), "FROM logged_models"),
            )
        if http:
            bench_http(uri, label, repeat)
    finally:
        db.dispose()


def bench_http(uri: str, label: str, repeat: int) -> None:
    """The MLflow-shaped endpoints through the ASGI app, first page and the page after."""
    from starlette.testclient import TestClient

    from modelyard.registry.client import RegistryClient
    from modelyard.server.control.app import create_app
    from modelyard.tracking.client import TrackingClient

    with tempfile.TemporaryDirectory() as home:
        settings = Settings(home=Path(home), store_uri=uri)
        with TrackingClient.from_settings(settings) as tracking:
            app = create_app(settings, tracking, registry=RegistryClient.from_settings(settings))
            with TestClient(app) as http:
                base = "/api/2.0/mlflow"
                calls = [
                    ("registered-models/search", {"max_results": 100}),
                    (
                        "registered-models/search",
                        {"max_results": 100, "filter": "tags.team = 'ads'"},
                    ),
                    ("model-versions/search", {"max_results": 100}),
                    (
                        "model-versions/search",
                        {"max_results": 100, "filter": "tags.dataset = 'ds-7'"},
                    ),
                    ("experiments/search", {"max_results": 100}),
                    ("experiments/search", {"max_results": 100, "filter": "tags.team = 'ads'"}),
                ]
                for path, params in calls:

                    def get(p: dict[str, Any] = params, path: str = path) -> Any:
                        answer = http.get(f"{base}/{path}", params=p)
                        answer.raise_for_status()
                        return answer.json()

                    first = get()
                    after = {**params, "page_token": first.get("next_page_token")}
                    walls, cpus, _ = timed(get, repeat)
                    deep_walls, _, _ = timed(lambda a=after: get(a), repeat)
                    print(
                        f"  {label:<10} HTTP {path} {params.get('filter', ''):<22} first "
                        f"{statistics.median(walls):6.2f} ms p95 {p95(walls):6.2f} cpu "
                        f"{statistics.median(cpus):6.2f}  page 2 "
                        f"{statistics.median(deep_walls):6.2f} ms p95 {p95(deep_walls):6.2f}",
                        flush=True,
                    )


# -- the peer: MLflow's SqlAlchemyStore on its own schema ------------------------------------


def bench_mlflow(uri: str, repeat: int) -> None:
    """MLflow's tracking and registry stores over the same rows, in MLflow's tables."""
    import logging

    logging.getLogger("alembic").setLevel(logging.WARNING)
    from mlflow.store.model_registry.sqlalchemy_store import (
        SqlAlchemyStore as MlflowRegistry,
    )
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore as MlflowTracking

    t0 = time.perf_counter()
    tracking = MlflowTracking(uri, "/tmp/mlflow-bench-artifacts")
    registry = MlflowRegistry(uri)
    print(f"MLflow: schema created in {time.perf_counter() - t0:.1f} s", flush=True)
    rows = yard_rows()
    by_name = {table.name: table_rows for table, table_rows in rows.items()}

    def models() -> Iterator[tuple[Any, ...]]:
        for name, desc, _next, _by, created, updated in by_name["registered_models"]:
            yield (name, created, updated, desc)

    def versions() -> Iterator[tuple[Any, ...]]:
        for r in by_name["model_versions"]:
            name, v, desc, source, loc, run_id = r[:6]
            stage, status, user, created, updated = r[11:]
            yield (
                name,
                v,
                created,
                updated,
                desc,
                user,
                stage,
                source,
                run_id,
                None,
                status,
                None,
                loc,
            )

    mlflow_tables = {
        "registered_models (name, creation_time, last_updated_time, description)": models(),
        "registered_model_tags (name, key, value)": by_name["registered_model_tags"],
        "model_versions (name, version, creation_time, last_updated_time, description, "
        "user_id, current_stage, source, run_id, run_link, status, status_message, "
        "storage_location)": versions(),
        "model_version_tags (name, version, key, value)": by_name["model_version_tags"],
        "registered_model_aliases (name, alias, version)": (
            (n, a, v) for n, a, v in by_name["model_aliases"]
        ),
        "experiments (experiment_id, name, artifact_location, lifecycle_stage, creation_time, "
        "last_update_time)": by_name["experiments"],
        "experiment_tags (experiment_id, key, value)": (
            (i, k, v) for i, k, v in by_name["experiment_tags"]
        ),
    }
    t0 = time.perf_counter()
    engine = create_engine(uri)
    try:
        bulk_insert(engine, mlflow_tables)
        with engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE")
            conn.commit()
    finally:
        engine.dispose()
    print(
        f"MLflow: the same rows loaded and analysed in {time.perf_counter() - t0:.1f} s", flush=True
    )
    token = base64.b64encode(json.dumps({"offset": 50_000}).encode()).decode()
    cases: list[tuple[str, Callable[[str | None], Any]]] = [
        (
            "registered models: no filter",
            lambda t: registry.search_registered_models(None, 100, None, t),
        ),
        (
            "registered models: tags.team = ads (20 %)",
            lambda t: registry.search_registered_models("tags.team = 'ads'", 100, None, t),
        ),
        ("model versions: no filter", lambda t: registry.search_model_versions(None, 100, None, t)),
        (
            "model versions: tags.dataset = ds-7 (1 %)",
            lambda t: registry.search_model_versions("tags.dataset = 'ds-7'", 100, None, t),
        ),
        ("experiments: no filter", lambda t: tracking.search_experiments(1, 100, None, None, t)),
        (
            "experiments: tags.team = ads (20 %)",
            lambda t: tracking.search_experiments(1, 100, "tags.team = 'ads'", None, t),
        ),
    ]
    small = base64.b64encode(json.dumps({"offset": 500}).encode()).decode()
    for what, call in cases:
        walls, cpus, answers = timed(lambda c=call: c(None), repeat)
        line = (
            f"  {'MLflow':<10} {what:<46} first {statistics.median(walls):6.2f} ms "
            f"p95 {p95(walls):6.2f} cpu {statistics.median(cpus):6.2f} ({len(answers[0])})"
        )
        deep = token if "no filter" in what else small
        depth = 50_000 if deep is token else 500
        ours = RESULTS.get(("PostgreSQL", what))
        if ours is not None:
            line += (
                f"  [modelyard first {ours[0]:.1f} ms: {statistics.median(walls) / ours[0]:.1f}×]"
            )
        try:
            walls, cpus, answers = timed(lambda c=call, d=deep: c(d), max(3, repeat // 4))
            line += (
                f"  deep@{depth:,} {statistics.median(walls):6.2f} ms "
                f"p95 {p95(walls):6.2f} cpu {statistics.median(cpus):6.2f} "
                f"({len(answers[0])})"
            )
            if ours is not None and ours[1] is not None:
                ratio = statistics.median(walls) / ours[1]
                line += f"  [modelyard deep {ours[1]:.1f} ms: {ratio:.1f}×]"
        except Exception as exc:  # the peer's own limits, reported
            line += f"  deep: {type(exc).__name__}: {str(exc)[:80]}"
        print(line, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--postgres", default="auto", help="'auto', 'none' or a URI")
    parser.add_argument("--sqlite", default="yes", choices=("yes", "no"))
    parser.add_argument("--http", default="yes", choices=("yes", "no"))
    parser.add_argument("--mlflow", default="yes", choices=("yes", "no"))
    parser.add_argument("--explain", action="store_true")
    args = parser.parse_args(argv)
    http = args.http == "yes"
    if args.sqlite == "yes":
        with tempfile.TemporaryDirectory() as tmp:
            bench_ours(
                f"sqlite:///{Path(tmp) / 'search.db'}", "SQLite", args.repeat, args.explain, http
            )
    if args.postgres != "none":
        with postgres_database(args.postgres) as uri:
            if uri is not None:
                bench_ours(uri, "PostgreSQL", args.repeat, args.explain, http)
        if args.mlflow == "yes":
            with postgres_database(args.postgres) as uri:
                if uri is not None:
                    bench_mlflow(uri, args.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
