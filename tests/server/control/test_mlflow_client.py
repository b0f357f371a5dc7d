"""The unmodified ``mlflow`` client, pointed at a live ``modelyard server``, end to end.

``MLFLOW_HTTP_REQUEST_MAX_RETRIES=0`` makes a wrongly answered 5xx fail at once instead of
being retried for minutes.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import pytest

mlflow = pytest.importorskip("mlflow")

from mlflow import MlflowClient  # noqa: E402
from mlflow.entities import Metric, Param, RunTag, ViewType  # noqa: E402
from mlflow.exceptions import MlflowException  # noqa: E402

from modelyard.tracking.client import TrackingClient  # noqa: E402


@pytest.fixture(autouse=True)
def mlflow_env(live_server, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", live_server.url)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.setenv("DO_NOT_TRACK", "true")
    # mlflow.set_experiment keeps the experiment in a module global and in the
    # environment; both go back to what they were, so no later test inherits it.
    monkeypatch.delenv("MLFLOW_EXPERIMENT_ID", raising=False)
    monkeypatch.setattr(mlflow.tracking.fluent, "_active_experiment_id", None)
    yield
    while mlflow.active_run() is not None:
        mlflow.end_run()


@pytest.fixture
def client() -> MlflowClient:
    return MlflowClient()


def test_fluent_run_with_params_metrics_tags_and_a_nested_run(client, unique):
    experiment_id = mlflow.set_experiment(f"fluent-{unique}").experiment_id
    with mlflow.start_run(run_name="parent") as parent:
        mlflow.log_param("C", 1.0)
        mlflow.log_params({"model": "gbm", "depth": 6})
        for step in range(3):
            mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
        mlflow.log_metrics({"acc": 0.75, "unstable": float("nan")}, step=1)
        mlflow.set_tag("team", "retail")
        mlflow.set_tags({"objective": "stock-outs", "empty": ""})
        with mlflow.start_run(run_name="child", nested=True) as child:
            mlflow.log_metric("inner", 2.5)

    run = client.get_run(parent.info.run_id)
    assert run.info.experiment_id == experiment_id
    assert run.info.run_name == "parent"
    assert run.info.status == "FINISHED" and run.info.end_time >= run.info.start_time
    assert run.info.artifact_uri == f"mlflow-artifacts:/{experiment_id}/{run.info.run_id}/artifacts"
    assert run.data.params == {"C": "1.0", "model": "gbm", "depth": "6"}
    assert math.isclose(run.data.metrics["loss"], 1 / 3, rel_tol=1e-12)  # latest = step 2
    assert run.data.metrics["acc"] == 0.75 and math.isnan(run.data.metrics["unstable"])
    assert run.data.tags["team"] == "retail" and run.data.tags["objective"] == "stock-outs"
    assert run.data.tags["empty"] == ""
    history = client.get_metric_history(run.info.run_id, "loss")
    assert [(m.step, m.value) for m in history] == [(0, 1.0), (1, 0.5), (2, 1 / 3)]
    assert math.isnan(client.get_metric_history(run.info.run_id, "unstable")[0].value)

    nested = client.get_run(child.info.run_id)
    assert nested.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert nested.info.status == "FINISHED" and nested.data.metrics == {"inner": 2.5}


def test_latest_metric_values_keep_full_precision(client, unique):
    mlflow.set_experiment(f"precision-{unique}")
    with mlflow.start_run() as run:
        mlflow.log_metric("third", 1 / 3)
    assert client.get_run(run.info.run_id).data.metrics["third"] == 1 / 3


def test_log_batch_with_non_finite_values(client, unique):
    experiment_id = client.create_experiment(f"batch-{unique}")
    run = client.create_run(experiment_id)
    now = int(time.time() * 1000)
    client.log_batch(
        run.info.run_id,
        metrics=[
            Metric("rmse", 0.5, now, 0),
            Metric("rmse", 0.25, now + 1, 1),
            Metric("big", float("inf"), now, 0),
            Metric("small", float("-inf"), now, 0),
        ],
        params=[Param("lr", "0.1")],
        tags=[RunTag("stage", "tuning")],
    )
    client.set_terminated(run.info.run_id)
    data = client.get_run(run.info.run_id).data
    assert data.params == {"lr": "0.1"}
    assert data.tags["stage"] == "tuning"
    assert data.metrics["rmse"] == 0.25
    assert [m.value for m in client.get_metric_history(run.info.run_id, "rmse")] == [0.5, 0.25]
    assert client.get_metric_history(run.info.run_id, "big")[0].value == math.inf
    assert client.get_metric_history(run.info.run_id, "small")[0].value == -math.inf


def test_a_changed_param_is_refused_with_a_4xx(client, unique):
    run = client.create_run(client.create_experiment(f"params-{unique}"))
    client.log_param(run.info.run_id, "depth", "6")
    client.log_param(run.info.run_id, "depth", "6")  # the same value again is fine
    with pytest.raises(MlflowException, match="immutable") as info:
        client.log_param(run.info.run_id, "depth", "7")
    assert info.value.error_code == "INVALID_PARAMETER_VALUE"


def test_artifacts_log_list_and_download(client, unique, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    source = tmp_path / "source"
    (source / "sub").mkdir(parents=True)
    (source / "notes.txt").write_text("hello")
    (source / "sub" / "deep.bin").write_bytes(bytes(range(256)) * 40)
    mlflow.set_experiment(f"artifacts-{unique}")
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(source / "notes.txt"))
        mlflow.log_artifacts(str(source), artifact_path="tree")
        mlflow.log_dict({"alpha": 0.5, "layers": [1, 2]}, "config/params.json")
        figure, axes = plt.subplots()
        axes.plot([1, 2, 3])
        mlflow.log_figure(figure, "plots/curve.png")
        plt.close(figure)
    run_id = run.info.run_id

    assert [(a.path, a.is_dir) for a in client.list_artifacts(run_id)] == [
        ("config", True),
        ("notes.txt", False),
        ("plots", True),
        ("tree", True),
    ]
    listed = {a.path: a for a in client.list_artifacts(run_id, "tree")}
    assert set(listed) == {"tree/notes.txt", "tree/sub"}
    assert listed["tree/notes.txt"].file_size == 5 and listed["tree/sub"].is_dir
    assert client.list_artifacts(run_id, "nothing-here") == []

    out = Path(client.download_artifacts(run_id, "tree", str(tmp_path / "dl")))
    assert (out / "notes.txt").read_text() == "hello"
    assert (out / "sub" / "deep.bin").read_bytes() == bytes(range(256)) * 40
    uri = f"runs:/{run_id}/notes.txt"
    single = Path(mlflow.artifacts.download_artifacts(uri, dst_path=str(tmp_path / "one")))
    assert single.read_text() == "hello"
    assert mlflow.artifacts.load_dict(f"{run.info.artifact_uri}/config/params.json") == {
        "alpha": 0.5,
        "layers": [1, 2],
    }
    png = Path(client.download_artifacts(run_id, "plots/curve.png", str(tmp_path / "png")))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_search_runs_filter_order_and_pages(client, unique):
    experiment_id = client.create_experiment(f"search-{unique}")
    for name, model, rmse in [
        ("a", "gbm", 0.3),
        ("b", "gbm", 0.7),
        ("c", "ridge", 0.2),
        ("d", "gbm", 0.4),
    ]:
        run = client.create_run(experiment_id, run_name=name)
        client.log_batch(
            run.info.run_id,
            metrics=[Metric("rmse", rmse, 1, 0)],
            params=[Param("model", model)],
        )
        client.set_terminated(run.info.run_id)

    found = client.search_runs(
        [experiment_id], "metrics.rmse < 0.5 and params.model = 'gbm'", order_by=["metrics.rmse"]
    )
    assert [r.info.run_name for r in found] == ["a", "d"]

    first = client.search_runs([experiment_id], order_by=["metrics.rmse DESC"], max_results=3)
    assert [r.info.run_name for r in first] == ["b", "d", "a"] and first.token
    rest = client.search_runs(
        [experiment_id], order_by=["metrics.rmse DESC"], max_results=3, page_token=first.token
    )
    assert [r.info.run_name for r in rest] == ["c"] and not rest.token

    frame = mlflow.search_runs([experiment_id], filter_string="params.model = 'ridge'")
    assert list(frame["tags.mlflow.runName"]) == ["c"]
    assert list(frame["metrics.rmse"]) == [0.2]

    with pytest.raises(MlflowException, match=r"OR|position") as info:
        client.search_runs([experiment_id], "metrics.rmse < 1 or params.model = 'x'")
    assert info.value.error_code == "INVALID_PARAMETER_VALUE"


def test_search_experiments_and_delete_restore(client, unique):
    ids = [client.create_experiment(f"exp-{unique}-{i}") for i in range(3)]
    client.set_experiment_tag(ids[0], "team", "retail")

    named = client.search_experiments(filter_string=f"name LIKE 'exp-{unique}-%'")
    assert sorted(e.experiment_id for e in named) == sorted(ids)
    tagged = client.search_experiments(filter_string="tags.team = 'retail'")
    assert ids[0] in [e.experiment_id for e in tagged]
    paged = client.search_experiments(
        filter_string=f"name LIKE 'exp-{unique}-%'", max_results=2, order_by=["name DESC"]
    )
    assert [e.name for e in paged] == [f"exp-{unique}-2", f"exp-{unique}-1"] and paged.token

    run = client.create_run(ids[1])
    client.delete_experiment(ids[1])
    assert client.get_experiment(ids[1]).lifecycle_stage == "deleted"
    assert client.get_run(run.info.run_id).info.lifecycle_stage == "deleted"
    deleted = client.search_experiments(view_type=ViewType.DELETED_ONLY)
    assert ids[1] in [e.experiment_id for e in deleted]
    client.restore_experiment(ids[1])
    assert client.get_experiment(ids[1]).lifecycle_stage == "active"

    client.rename_experiment(ids[2], f"renamed-{unique}")
    assert client.get_experiment_by_name(f"renamed-{unique}").experiment_id == ids[2]
    assert client.get_experiment_by_name(f"missing-{unique}") is None


def test_delete_and_restore_a_run(client, unique):
    experiment_id = client.create_experiment(f"lifecycle-{unique}")
    run = client.create_run(experiment_id)
    client.delete_run(run.info.run_id)
    assert client.get_run(run.info.run_id).info.lifecycle_stage == "deleted"
    assert client.search_runs([experiment_id]) == []
    assert len(client.search_runs([experiment_id], run_view_type=ViewType.DELETED_ONLY)) == 1
    with pytest.raises(MlflowException, match="deleted"):
        client.log_metric(run.info.run_id, "m", 1.0)
    client.restore_run(run.info.run_id)
    client.log_metric(run.info.run_id, "m", 1.0)
    assert client.get_run(run.info.run_id).data.metrics == {"m": 1.0}


def test_an_unknown_run_is_a_404_not_a_retry(client):
    started = time.monotonic()
    with pytest.raises(MlflowException) as info:
        client.get_run("0123456789abcdef0123456789abcdef")
    assert info.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert time.monotonic() - started < 5


def test_runs_logged_with_mlflow_are_visible_to_our_client(live_server, unique, tmp_path):
    mlflow.set_experiment(f"shared-{unique}")
    with mlflow.start_run(run_name="from-mlflow") as run:
        mlflow.log_param("alpha", 0.5)
        mlflow.log_metric("rmse", 0.125, step=3)
        mlflow.log_text("hi", "notes.txt")

    for ours in (
        TrackingClient.from_settings(live_server.local_settings()),
        TrackingClient.from_settings(live_server.remote_settings(tmp_path)),
    ):
        seen = ours.get_run(run.info.run_id)
        assert seen.info.run_name == "from-mlflow" and seen.info.status == "FINISHED"
        assert seen.data.params == {"alpha": "0.5"}
        assert seen.data.metrics == {"rmse": 0.125}
        assert [(m.step, m.value) for m in ours.get_metric_history(run.info.run_id, "rmse")] == [
            (3, 0.125)
        ]
        assert ours.read_artifact(run.info.run_id, "notes.txt") == b"hi"


def test_server_info_and_health(http):
    assert http.get("/health").text == "OK"
    info = http.get("/api/3.0/mlflow/server-info").json()
    assert info["multipart_uploads_enabled"] is False
    default = json.loads(http.get("/api/2.0/mlflow/experiments/get?experiment_id=0").text)
    assert default["experiment"]["name"] == "Default"
