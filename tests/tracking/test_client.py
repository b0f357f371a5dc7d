"""The tracking client's contract, run on every metadata backend (SQLite, PostgreSQL)."""

from __future__ import annotations

import math
import random

import pytest

from modelyard.errors import AlreadyExists, InvalidParameter, InvalidState, NotFound
from modelyard.tracking.entities import Metric, Param, RunStatus, RunTag, ViewType


def new_run(client, experiment="exp", **kwargs):
    found = client.get_experiment_by_name(experiment)
    experiment_id = found.experiment_id if found else client.create_experiment(experiment)
    return client.create_run(experiment_id, **kwargs)


class TestExperiments:
    def test_create_get_by_id_and_name(self, client):
        experiment_id = client.create_experiment("demand", tags={"team": "retail"})
        by_id = client.get_experiment(experiment_id)
        by_name = client.get_experiment_by_name("demand")
        assert by_id == by_name
        assert by_id.name == "demand"
        assert by_id.tags == {"team": "retail"}
        assert by_id.lifecycle_stage == "active"
        assert by_id.artifact_location == f"mlflow-artifacts:/{experiment_id}"

    def test_a_default_experiment_exists(self, client):
        assert client.get_experiment("0").name == "Default"

    def test_duplicate_name_is_refused(self, client):
        client.create_experiment("demand")
        with pytest.raises(AlreadyExists, match="demand"):
            client.create_experiment("demand")

    def test_rename(self, client):
        experiment_id = client.create_experiment("old")
        client.rename_experiment(experiment_id, "new")
        assert client.get_experiment(experiment_id).name == "new"
        assert client.get_experiment_by_name("old") is None

    def test_delete_hides_runs_and_restore_brings_them_back(self, client):
        run = new_run(client, "doomed")
        experiment_id = run.info.experiment_id
        client.delete_experiment(experiment_id)
        assert client.get_experiment(experiment_id).lifecycle_stage == "deleted"
        assert client.get_run(run.info.run_id).info.lifecycle_stage == "deleted"
        names = [e.name for e in client.search_experiments()]
        assert "doomed" not in names
        deleted = [e.name for e in client.search_experiments(view_type=ViewType.DELETED_ONLY)]
        assert deleted == ["doomed"]
        client.restore_experiment(experiment_id)
        assert client.get_run(run.info.run_id).info.lifecycle_stage == "active"

    def test_list_pages(self, client):
        for i in range(5):
            client.create_experiment(f"e{i}")
        first = client.search_experiments(max_results=4)
        assert len(first) == 4 and first.next_page_token
        second = client.search_experiments(max_results=4, page_token=first.next_page_token)
        assert len(second) == 2 and second.next_page_token is None

    def test_unknown_experiment(self, client):
        with pytest.raises(NotFound, match="12345"):
            client.get_experiment("12345")
        with pytest.raises(InvalidParameter, match="experiment id"):
            client.get_experiment("abc")


class TestRuns:
    def test_start_records_where_it_came_from(self, client):
        run = new_run(client, run_name="first")
        tags = run.data.tags
        assert run.info.status == RunStatus.RUNNING
        assert run.info.run_name == "first"
        for key in (
            "modelyard.user",
            "modelyard.host",
            "modelyard.source.entry_point",
            "modelyard.python.version",
            "modelyard.packages",
        ):
            assert tags[key]
        assert "numpy" in tags["modelyard.packages"]
        assert tags["modelyard.source.git.dirty"] in {"true", "false"} or (
            "modelyard.source.git.commit" not in tags
        )

    def test_a_run_without_a_name_gets_a_readable_one(self, client):
        name = new_run(client).info.run_name
        assert len(name.split("-")) == 3

    def test_end_with_status(self, client):
        run = new_run(client)
        info = client.set_terminated(run.info.run_id, "FAILED")
        assert info.status == "FAILED" and info.end_time >= info.start_time

    def test_unknown_status_is_refused(self, client):
        run = new_run(client)
        with pytest.raises(InvalidParameter, match="BOGUS"):
            client.set_terminated(run.info.run_id, "BOGUS")

    def test_nested_runs_know_their_parent(self, client):
        parent = new_run(client)
        child = client.create_run(parent.info.experiment_id, parent_run_id=parent.info.run_id)
        assert child.info.parent_run_id == parent.info.run_id
        assert client.get_run(child.info.run_id).data.tags["mlflow.parentRunId"] == (
            parent.info.run_id
        )
        found = client.search_runs(
            [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
        )
        assert [r.info.run_id for r in found] == [child.info.run_id]

    def test_delete_and_restore(self, client):
        run = new_run(client)
        client.delete_run(run.info.run_id)
        assert client.get_run(run.info.run_id).info.lifecycle_stage == "deleted"
        with pytest.raises(InvalidState, match="deleted"):
            client.log_metric(run.info.run_id, "m", 1.0)
        client.restore_run(run.info.run_id)
        client.log_metric(run.info.run_id, "m", 1.0)

    def test_unknown_run(self, client):
        with pytest.raises(NotFound, match="0123456789abcdef"):
            client.get_run("0123456789abcdef")
        with pytest.raises(NotFound):
            client.log_metric("0123456789abcdef", "m", 1.0)


class TestParams:
    def test_params_are_stored_as_strings(self, client):
        run = new_run(client)
        client.log_param(run.info.run_id, "depth", 6)
        client.log_batch(run.info.run_id, params=[Param("lr", "0.1"), Param("model", "gbm")])
        assert client.get_run(run.info.run_id).data.params == {
            "depth": "6",
            "lr": "0.1",
            "model": "gbm",
        }

    def test_same_value_again_is_fine(self, client):
        run = new_run(client)
        client.log_param(run.info.run_id, "depth", 6)
        client.log_param(run.info.run_id, "depth", "6")

    def test_a_different_value_is_a_clear_error_and_changes_nothing(self, client):
        run = new_run(client)
        client.log_param(run.info.run_id, "depth", 6)
        with pytest.raises(InvalidParameter, match=r"'depth'.*immutable"):
            client.log_batch(
                run.info.run_id,
                metrics=[Metric("m", 1.0, 1, 0)],
                params=[Param("other", "x"), Param("depth", "7")],
            )
        data = client.get_run(run.info.run_id).data
        assert data.params == {"depth": "6"}
        assert data.metrics == {}


class TestMetrics:
    def test_full_history_is_kept_in_step_order(self, client):
        run = new_run(client)
        for step in (2, 0, 1):
            client.log_metric(run.info.run_id, "loss", 1.0 / (step + 1), step=step, timestamp=100)
        history = client.get_metric_history(run.info.run_id, "loss")
        assert [(m.step, m.value) for m in history] == [(0, 1.0), (1, 0.5), (2, 1 / 3)]

    def test_latest_value_is_the_highest_step(self, client):
        run = new_run(client)
        client.log_batch(
            run.info.run_id,
            metrics=[Metric("loss", 0.3, 10, 5), Metric("loss", 0.9, 20, 1)],
        )
        client.log_metric(run.info.run_id, "loss", 0.7, step=2, timestamp=30)
        assert client.get_run(run.info.run_id).data.metrics == {"loss": 0.3}

    def test_nan_and_infinity_are_stored_faithfully(self, client):
        run = new_run(client)
        client.log_metric(run.info.run_id, "nan", float("nan"))
        client.log_metric(run.info.run_id, "inf", float("inf"))
        client.log_metric(run.info.run_id, "ninf", float("-inf"))
        metrics = client.get_run(run.info.run_id).data.metrics
        assert math.isnan(metrics["nan"])
        assert metrics["inf"] == math.inf and metrics["ninf"] == -math.inf
        assert math.isnan(client.get_metric_history(run.info.run_id, "nan")[0].value)

    def test_replaying_a_batch_adds_nothing(self, client):
        run = new_run(client)
        batch = [Metric("loss", 1.0 / (i + 1), 1000 + i, i) for i in range(50)]
        client.log_batch(run.info.run_id, metrics=batch)
        client.log_batch(run.info.run_id, metrics=batch)
        assert len(client.get_metric_history(run.info.run_id, "loss")) == 50

    def test_large_batches(self, client):
        run = new_run(client)
        batch = [Metric(f"m{i % 10}", float(i), 1, i // 10) for i in range(20_000)]
        client.log_batch(run.info.run_id, metrics=batch)
        assert len(client.get_metric_history(run.info.run_id, "m3")) == 2000
        assert client.get_run(run.info.run_id).data.metrics["m9"] == 19_999.0


class TestTags:
    def test_set_overwrite_and_delete(self, client):
        run = new_run(client)
        client.set_tag(run.info.run_id, "team", "a")
        client.set_tag(run.info.run_id, "team", "b")
        assert client.get_run(run.info.run_id).data.tags["team"] == "b"
        client.delete_tag(run.info.run_id, "team")
        assert "team" not in client.get_run(run.info.run_id).data.tags
        with pytest.raises(NotFound, match="team"):
            client.delete_tag(run.info.run_id, "team")


class TestInputs:
    def test_dataset_inputs_are_recorded_with_digest_and_role(self, client):
        pd = pytest.importorskip("pandas")
        run = new_run(client)
        frame = pd.DataFrame({"store": [1, 2], "sales": [3.0, 4.0]})
        described = client.log_input(run.info.run_id, frame, context="training", name="sales")
        same = client.log_input(run.info.run_id, frame.copy(), context="training", name="sales")
        assert described.digest == same.digest and len(described.digest) == 64
        changed = frame.assign(sales=[3.0, 5.0])
        client.log_input(run.info.run_id, changed, context="validation", name="sales")
        inputs = client.get_run(run.info.run_id).inputs
        assert {(d.name, d.context) for d in inputs} == {
            ("sales", "training"),
            ("sales", "validation"),
        }
        assert len({d.digest for d in inputs}) == 2


class TestSearch:
    @pytest.fixture
    def runs(self, client):
        made = {}
        for name, model, rmse, team in [
            ("a", "gbm", 0.3, "x"),
            ("b", "gbm", 0.7, "x"),
            ("c", "ridge", 0.2, "y"),
            ("d", "gbm", 0.4, "y"),
        ]:
            run = new_run(client, "search", run_name=name)
            client.log_batch(
                run.info.run_id,
                metrics=[Metric("rmse", rmse, 1, 0)],
                params=[Param("model", model)],
                tags=[RunTag("team", team)],
            )
            client.set_terminated(run.info.run_id, "FINISHED" if name != "d" else "FAILED")
            made[name] = run.info.run_id
        return made

    def names(self, page):
        return [r.info.run_name for r in page]

    def test_the_issue_filter(self, client, runs):
        experiment = client.get_experiment_by_name("search").experiment_id
        page = client.search_runs(
            [experiment],
            "metrics.rmse < 0.5 and params.model = 'gbm' and tags.team = 'x' "
            "and attributes.status = 'FINISHED'",
        )
        assert self.names(page) == ["a"]

    def test_order_and_pages(self, client, runs):
        experiment = client.get_experiment_by_name("search").experiment_id
        first = client.search_runs([experiment], order_by=["metrics.rmse ASC"], max_results=3)
        assert self.names(first) == ["c", "a", "d"]
        rest = client.search_runs(
            [experiment],
            order_by=["metrics.rmse ASC"],
            max_results=3,
            page_token=first.next_page_token,
        )
        assert self.names(rest) == ["b"] and rest.next_page_token is None

    def test_results_carry_params_metrics_and_tags(self, client, runs):
        experiment = client.get_experiment_by_name("search").experiment_id
        (run,) = client.search_runs([experiment], "params.model = 'ridge'")
        assert run.data.metrics == {"rmse": 0.2}
        assert run.data.params == {"model": "ridge"}
        assert run.data.tags["team"] == "y"

    def test_an_invalid_filter_names_the_token_and_position(self, client, runs):
        with pytest.raises(InvalidParameter, match=r"position \d+") as info:
            client.search_runs(["0"], "metrics.rmse < 0.5 or params.model = 'gbm'")
        assert "OR" in str(info.value).upper()

    def test_invalid_max_results(self, client):
        with pytest.raises(InvalidParameter, match="max_results"):
            client.search_runs(["0"], max_results=0)


def test_latest_values_keep_full_double_precision(client):
    run = new_run(client)
    values = {"third": 1 / 3, "sum": 0.1 + 0.2, "tiny": 5e-324, "huge": 1.7976931348623157e308}
    for key, value in values.items():
        client.log_metric(run.info.run_id, key, value)
    assert client.get_run(run.info.run_id).data.metrics == values
    (found,) = client.search_runs([run.info.experiment_id])
    assert found.data.metrics == values
    rng = random.Random(7)
    sample = {f"r{i}": rng.random() * 10 ** rng.randint(-300, 300) for i in range(500)}
    client.log_batch(run.info.run_id, metrics=[Metric(k, v, 1, 0) for k, v in sample.items()])
    stored = client.get_run(run.info.run_id).data.metrics
    assert {k: stored[k] for k in sample} == sample


def test_experiment_ids_beyond_int64_are_refused(client):
    with pytest.raises(InvalidParameter, match="experiment id"):
        client.get_experiment(str(2**63))


def test_close_writes_background_logging_and_the_client_stays_usable(client):
    with client:
        run_id = new_run(client).info.run_id
        client.log_metric(run_id, "loss", 0.5, step=1, synchronous=False)
    assert [m.value for m in client.get_metric_history(run_id, "loss")] == [0.5]
    client.log_metric(run_id, "loss", 0.25, step=2, synchronous=False)
    client.close()
    assert len(client.get_metric_history(run_id, "loss")) == 2


class TestReservedTagsInBatches:
    """``modelyard.*`` tags are modelyard's own: a server's client (``system=False``) refuses
    them in a batch, writing nothing; modelyard itself (``system=True``) writes them."""

    @staticmethod
    def server_side(client):
        from modelyard.tracking.client import TrackingClient

        return TrackingClient(client.store, client.artifacts, client.settings, system=False)

    def test_a_client_cannot_set_a_reserved_tag_in_a_batch(self, local_client):
        from modelyard.errors import PermissionDenied

        run_id = new_run(local_client).info.run_id
        served = self.server_side(local_client)
        with pytest.raises(PermissionDenied, match=r"'modelyard\.gate' on a run is reserved"):
            served.log_batch(
                run_id,
                metrics=[Metric("rmse", 1.0, 0, 0)],
                tags=[RunTag("team", "retail"), RunTag("modelyard.gate", "passed")],
            )
        data = local_client.get_run(run_id).data
        assert data.metrics == {} and "team" not in data.tags  # the batch wrote nothing

    def test_modelyard_itself_writes_reserved_tags(self, local_client):
        run_id = new_run(local_client).info.run_id
        local_client.log_batch(run_id, tags=[RunTag("modelyard.gate", "passed")])
        assert local_client.get_run(run_id).data.tags["modelyard.gate"] == "passed"

    def test_only_a_checked_batch_has_its_tag_keys_gathered(self, local_client):
        class CountedTags(list):
            passes = 0

            def __iter__(self):
                CountedTags.passes += 1
                return super().__iter__()

        run_id = new_run(local_client).info.run_id
        local_client.log_batch(run_id, tags=CountedTags([RunTag("team", "retail")]))
        assert CountedTags.passes == 1  # validated and rebuilt only: no key check
        CountedTags.passes = 0
        self.server_side(local_client).log_batch(run_id, tags=CountedTags([RunTag("a", "b")]))
        assert CountedTags.passes == 2  # the reserved-key check, then the rebuild


def test_get_or_create_experiment_is_safe_when_threads_race_for_a_new_name(settings):
    """Pipelines started together (a scheduler's tick) all ask for their experiment at
    once: each gets the one experiment, none fails because another created it first."""
    import threading

    from modelyard.tracking.client import TrackingClient

    TrackingClient.from_settings(settings).search_experiments()  # the schema exists
    barrier, found, errors = threading.Barrier(4), [], []

    def ask() -> None:
        with TrackingClient.from_settings(settings) as client:
            barrier.wait()
            try:
                found.append(client.get_or_create_experiment("pipelines").experiment_id)
            except Exception as exc:  # the failure this test is about
                errors.append(exc)

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and len(set(found)) == 1
