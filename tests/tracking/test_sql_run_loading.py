"""The SQLite fast path of run search: cached SQL on a raw cursor answers exactly what the
SQLAlchemy statement answers, sees new data at once, and keeps its cache bounded."""

from __future__ import annotations

import math

import pytest

from modelyard.tracking import sql_run_loading
from modelyard.tracking.entities import Metric, Param, RunTag
from modelyard.tracking.search_filter import parse_filter, parse_order_by
from modelyard.tracking.search_query import run_search_statement

FILTERS = [
    None,
    "metrics.rmse < 0.5",
    "metrics.rmse >= 0.5 and params.model = 'gbm'",
    "params.model != 'gbm'",
    "attributes.status IN ('RUNNING', 'FINISHED')",
    "attributes.status NOT IN ('FAILED')",
    "params.model LIKE 'G%'",
    "params.model LIKE 'g_m'",
    "params.model ILIKE 'G%'",
    "tags.team = 'vision'",
    "tags.team IS NULL",
    "params.depth IS NOT NULL",
    "attributes.status = 'RUNNING'",
    "attributes.run_name LIKE 'run-1%'",
    "metrics.loss > 0",
]
ORDERS: list[list[str]] = [
    [],
    ["metrics.rmse ASC"],
    ["metrics.rmse DESC", "params.model"],
    ["attributes.run_name"],
]


@pytest.fixture
def populated(local_client):
    experiment = local_client.create_experiment("search-fast-path")
    models = ("gbm", "GBM", "rf", "gam")
    for i in range(40):
        run_id = local_client.create_run(experiment, run_name=f"run-{i}").info.run_id
        metrics = [Metric("rmse", (i * 37 % 100) / 100, 1, 0)]
        if i % 5 == 0:
            metrics.append(Metric("loss", math.nan, 1, 0))
        elif i % 3:
            metrics.append(Metric("loss", i / 10, 1, 0))
        params = [Param("model", models[i % 4])]
        if i % 2:
            params.append(Param("depth", str(i % 7)))
        tags = [RunTag("team", "vision")] if i % 3 == 0 else []
        local_client.log_batch(run_id, metrics=metrics, params=params, tags=tags)
    return local_client, experiment


def _through_sqlalchemy(store, experiment: str, filter_string, order_by, limit: int) -> list[str]:
    stmt = run_search_statement(
        [int(experiment)],
        parse_filter(filter_string),
        "ACTIVE_ONLY",
        parse_order_by(order_by),
        0,
        limit,
    )
    with store.db.read() as conn:
        return list(conn.execute(stmt).scalars())


@pytest.mark.parametrize("order_by", ORDERS, ids=lambda o: ",".join(o) or "default")
@pytest.mark.parametrize("filter_string", FILTERS)
def test_the_cached_raw_search_returns_what_the_statement_returns(
    populated, filter_string, order_by
) -> None:
    client, experiment = populated
    store = client.store
    expected = _through_sqlalchemy(store, experiment, filter_string, order_by, 1000)
    page = store.search_runs([experiment], filter_string, max_results=1000, order_by=order_by)
    assert [run.info.run_id for run in page] == expected
    again = store.search_runs([experiment], filter_string, max_results=1000, order_by=order_by)
    assert [run.info.run_id for run in again] == expected  # served from the cache


def test_a_cached_search_sees_runs_logged_after_it(populated) -> None:
    client, experiment = populated
    query = "params.model = 'gbm' and metrics.rmse < 2"
    before = {r.info.run_id for r in client.search_runs([experiment], query)}
    run_id = client.create_run(experiment).info.run_id
    client.log_batch(run_id, metrics=[Metric("rmse", 1.5, 1, 0)], params=[Param("model", "gbm")])
    after = {r.info.run_id for r in client.search_runs([experiment], query)}
    assert after == before | {run_id}


def test_pages_of_a_cached_search_do_not_overlap(populated) -> None:
    client, experiment = populated
    seen: list[str] = []
    token = None
    while True:
        page = client.store.search_runs([experiment], None, max_results=7, page_token=token)
        seen.extend(r.info.run_id for r in page)
        token = page.next_page_token
        if not token:
            break
    assert len(seen) == len(set(seen)) == 40


def test_loaded_runs_carry_exact_values_nan_and_inputs(populated) -> None:
    client, experiment = populated
    run_id = client.create_run(experiment).info.run_id
    exact = 0.1 + 0.2  # 17 significant digits: more than SQLite's JSON keeps
    client.log_batch(run_id, metrics=[Metric("exact", exact, 1, 3), Metric("nan", math.nan, 1, 0)])
    (run,) = client.search_runs([experiment], "metrics.exact > 0")
    assert run.data.metrics["exact"] == exact
    assert run.data.metric_points["exact"].step == 3
    assert math.isnan(run.data.metrics["nan"])
    assert client.get_run(run_id).data.metrics["exact"] == exact


def test_the_compiled_search_cache_is_bounded(populated, monkeypatch) -> None:
    client, experiment = populated
    monkeypatch.setattr(sql_run_loading, "_COMPILED_CACHE_SIZE", 3)
    searches = client.store._searches
    for i in range(10):
        client.store.search_runs([experiment], f"metrics.rmse < {i / 10}")
    assert len(searches._compiled) == 3


def test_a_loaded_run_reads_back_every_value_exactly_on_both_databases(metadata_db) -> None:
    """The load statements aggregate a run into one JSON document on both databases;
    every float (infinities, NaN, the smallest subnormal, 17 digits), 64-bit step and
    timestamp, and text (quotes, backslashes, non-ASCII) must come back as logged."""
    from modelyard.tracking.sql_store import SqlTrackingStore

    store = SqlTrackingStore(metadata_db)
    experiment = store.create_experiment("exact")
    run_id = store.create_run(experiment, "ann", start_time=1).info.run_id
    values = {
        "sum": 0.1 + 0.2,
        "big": 1.7976931348623157e308,
        "tiny": 5e-324,
        "up": math.inf,
        "down": -math.inf,
    }
    metrics = [Metric(key, value, 2**53 + 1, 2**62) for key, value in values.items()]
    metrics.append(Metric("nan", math.nan, 0, 0))
    text = 'quote " backslash \\ tab \t ünïcødé 💡'
    store.log_batch(run_id, metrics=metrics, params=[Param("p", text)], tags=[RunTag("t", text)])
    for run in (store.get_runs([run_id])[0], store.search_runs([experiment]).items[0]):
        for key, value in values.items():
            assert run.data.metrics[key] == value, key
            assert run.data.metric_points[key].step == 2**62
            assert run.data.metric_points[key].timestamp == 2**53 + 1
        assert math.isnan(run.data.metrics["nan"])
        assert run.data.params["p"] == text and run.data.tags["t"] == text
