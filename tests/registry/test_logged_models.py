"""MLflow 3 logged models in the metadata store, on SQLite and PostgreSQL: names, search
(filter, datasets, order, pages), metrics linked to a model, runs' model inputs and
outputs, tags, and unresolved source runs in the lineage graph."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from modelyard.errors import InvalidFilter, InvalidParameter, NotFound
from modelyard.registry.entities import ModelMetric
from modelyard.registry.logged_model_search import DatasetRef, ModelOrder
from modelyard.registry.logged_models import PRODUCED, PRODUCED_UNRESOLVED
from modelyard.store.schema import lineage_edges


@pytest.fixture
def models(yard):
    return yard.registry.logged_models


@pytest.fixture
def experiment_id(yard) -> str:
    return yard.tracking.get_or_create_experiment("logged").experiment_id


def test_unnamed_models_get_distinct_names(models, experiment_id):
    names = {models.create(experiment_id).name for _ in range(5)}

    assert len(names) == 5 and "" not in names


def test_search_filters_on_attributes_tags_params_and_metrics(models, experiment_id, yard):
    run_id = yard.tracking.create_run(experiment_id).info.run_id
    clf = models.create(experiment_id, "clf", params={"depth": "6"}, tags={"team": "a"})
    models.create(experiment_id, "reg", params={"depth": "3"}, tags={"team": "b"})
    models.log_metrics(clf.model_id, run_id, [ModelMetric("acc", 0.9, 1, 0)])

    def names(filter_string: str) -> list[str]:
        return [m.name for m in models.search([experiment_id], filter_string=filter_string)]

    assert names("name = 'clf'") == ["clf"]
    assert names("name LIKE 'C%'") == []  # LIKE is case-sensitive, as in MLflow
    assert names("name ILIKE 'C%'") == ["clf"]
    assert names("tags.team = 'b'") == ["reg"]
    assert names("params.depth = '6'") == ["clf"]
    assert names("metrics.acc > 0.5") == ["clf"]
    with pytest.raises(InvalidFilter):
        names("name = 'clf' OR name = 'reg'")


def test_search_restricted_to_datasets_ordered_and_paged(models, experiment_id, yard):
    run_id = yard.tracking.create_run(experiment_id).info.run_id
    first = models.create(experiment_id, "first")
    time.sleep(0.002)  # created a millisecond later: newest first is then well defined
    second = models.create(experiment_id, "second")
    models.log_metrics(first.model_id, run_id, [ModelMetric("acc", 0.9, 1, 0, None, "d", "1")])

    on_d = models.search([experiment_id], datasets=[DatasetRef("d", "1")])
    on_any_d = models.search([experiment_id], datasets=[DatasetRef("d")])
    on_other = models.search([experiment_id], datasets=[DatasetRef("d", "2")])
    by_name = models.search([experiment_id], order_by=[ModelOrder("name", ascending=False)])
    page = models.search([experiment_id], max_results=1)
    rest = models.search([experiment_id], max_results=1, page_token=page.next_page_token)

    assert [m.model_id for m in on_d] == [m.model_id for m in on_any_d] == [first.model_id]
    assert list(on_other) == []
    assert [m.name for m in by_name] == ["second", "first"]
    assert [m.model_id for m in page] + [m.model_id for m in rest] == [
        second.model_id,
        first.model_id,
    ]
    assert rest.next_page_token is None
    with pytest.raises(InvalidParameter, match="Invalid order_by field name: 'size'"):
        models.search([experiment_id], order_by=[ModelOrder("size")])
    # a model_type may be NULL: that order pages by offset, with a token as strictly checked
    by_type = [ModelOrder("model_type")]
    typed = models.search([experiment_id], max_results=1, order_by=by_type)
    more = models.search(
        [experiment_id], max_results=1, order_by=by_type, page_token=typed.next_page_token
    )
    assert {m.model_id for m in typed} | {m.model_id for m in more} == {
        first.model_id,
        second.model_id,
    }
    for token in ("-1", page.next_page_token):  # no offset; another order's
        with pytest.raises(InvalidParameter) as caught:
            models.search([experiment_id], order_by=by_type, page_token=token)
        assert caught.value.field == "page_token"


def test_metrics_come_back_with_their_run_and_dataset(models, experiment_id, yard):
    run_id = yard.tracking.create_run(experiment_id).info.run_id
    model = models.create(experiment_id)
    point = ModelMetric("acc", 0.5, 123, 1, dataset_name="d", dataset_digest="1")

    models.log_metrics(model.model_id, run_id, [point])

    assert models.get(model.model_id).metrics == [ModelMetric("acc", 0.5, 123, 1, run_id, "d", "1")]


def test_a_runs_model_inputs_and_outputs(models, experiment_id, yard):
    run_id = yard.tracking.create_run(experiment_id).info.run_id
    used, produced = models.create(experiment_id), models.create(experiment_id)

    models.record_inputs(run_id, [used.model_id])
    models.record_outputs(run_id, [(produced.model_id, 3)])
    models.record_outputs(run_id, [(produced.model_id, 4)])  # a replay moves the step

    assert models.models_of_run(run_id) == ([used.model_id], [(produced.model_id, 4)])
    with pytest.raises(NotFound, match="Logged model with ID 'm-nope' not found"):
        models.record_outputs(run_id, [("m-nope", 0)])


def test_deleting_a_missing_tag_is_an_error(models, experiment_id):
    model = models.create(experiment_id, tags={"a": "1"})
    models.delete_tag(model.model_id, "a")

    with pytest.raises(NotFound, match="No tag with key 'a'"):
        models.delete_tag(model.model_id, "a")


def test_a_source_run_this_store_lacks_is_an_unresolved_lineage_edge(models, experiment_id, yard):
    run_id = yard.tracking.create_run(experiment_id).info.run_id
    known = models.create(experiment_id, source_run_id=run_id)
    unknown = models.create(experiment_id, source_run_id="123")

    c = lineage_edges.c
    with yard.registry.db.read() as conn:
        edges = set(conn.execute(select(c.src, c.dst, c.relation)).all())

    assert (f"run:{run_id}", f"logged_model:{known.model_id}", PRODUCED) in edges
    assert ("run:123", f"logged_model:{unknown.model_id}", PRODUCED_UNRESOLVED) in edges
    assert models.get(unknown.model_id).source_run_id == "123"
