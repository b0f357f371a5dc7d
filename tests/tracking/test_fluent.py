"""The fluent API, as an MLflow user would read it."""

from __future__ import annotations

import pytest

from modelyard.errors import InvalidState, NotFound


def test_a_run_in_a_with_block_is_finished(fluent):
    fluent.set_experiment("demand")
    with fluent.start_run(run_name="r1") as run:
        fluent.log_param("model", "gbm")
        fluent.log_params({"depth": 3, "lr": 0.1})
        fluent.log_metric("rmse", 0.5, step=1)
        fluent.log_metrics({"mae": 0.4, "r2": 0.9}, step=1)
        fluent.set_tag("team", "retail")
        fluent.set_tags({"objective": "stock-outs"})
        assert fluent.active_run() is run
    stored = fluent.get_client().get_run(run.info.run_id)
    assert stored.info.status == "FINISHED"
    assert stored.data.params == {"model": "gbm", "depth": "3", "lr": "0.1"}
    assert stored.data.metrics == {"rmse": 0.5, "mae": 0.4, "r2": 0.9}
    assert stored.data.tags["team"] == "retail"
    assert fluent.active_run() is None
    assert fluent.last_active_run().info.run_id == run.info.run_id


def test_an_exception_marks_the_run_failed_and_propagates(fluent):
    with pytest.raises(ZeroDivisionError), fluent.start_run() as run:
        1 / 0  # noqa: B018
    assert fluent.get_client().get_run(run.info.run_id).info.status == "FAILED"


def test_keyboard_interrupt_marks_the_run_killed(fluent):
    with pytest.raises(KeyboardInterrupt), fluent.start_run() as run:
        raise KeyboardInterrupt
    assert fluent.get_client().get_run(run.info.run_id).info.status == "KILLED"


def test_nested_runs(fluent):
    with fluent.start_run() as parent:
        with fluent.start_run(nested=True) as child:
            assert child.info.parent_run_id == parent.info.run_id
        assert fluent.active_run() is parent


def test_a_second_run_needs_nested(fluent):
    with fluent.start_run(), pytest.raises(InvalidState, match="nested=True"):
        fluent.start_run()


def test_logging_without_a_run_says_what_to_do(fluent):
    with pytest.raises(InvalidState, match="start_run"):
        fluent.log_metric("m", 1.0)


def test_resume_a_run(fluent):
    with fluent.start_run() as run:
        fluent.log_metric("m", 1.0, step=0)
    with fluent.start_run(run_id=run.info.run_id):
        fluent.log_metric("m", 2.0, step=1)
    history = fluent.get_client().get_metric_history(run.info.run_id, "m")
    assert [m.value for m in history] == [1.0, 2.0]


def test_set_experiment_creates_it_once(fluent):
    first = fluent.set_experiment("demand")
    again = fluent.set_experiment("demand")
    assert first.experiment_id == again.experiment_id
    with fluent.start_run() as run:
        pass
    assert run.info.experiment_id == first.experiment_id


def test_search_runs_returns_a_dataframe_with_mlflow_columns(fluent):
    fluent.set_experiment("demand")
    for model, rmse in (("gbm", 0.3), ("ridge", 0.6), ("gbm", 0.8)):
        with fluent.start_run():
            fluent.log_param("model", model)
            fluent.log_metric("rmse", rmse)
    frame = fluent.search_runs(
        experiment_names=["demand"],
        filter_string="metrics.rmse < 0.7",
        order_by=["metrics.rmse DESC"],
    )
    assert list(frame["metrics.rmse"]) == [0.6, 0.3]
    assert list(frame["params.model"]) == ["ridge", "gbm"]
    assert {"run_id", "status", "start_time", "artifact_uri"} <= set(frame.columns)
    runs = fluent.search_runs(experiment_names=["demand"], output_format="list")
    assert len(runs) == 3


def test_search_runs_of_an_unknown_experiment(fluent):
    with pytest.raises(NotFound, match="nope"):
        fluent.search_runs(experiment_names=["nope"])


def test_async_logging_is_flushed_when_the_run_ends(fluent):
    with fluent.start_run(async_logging=True) as run:
        for step in range(500):
            fluent.log_metric("loss", 1.0 / (step + 1), step=step)
        fluent.log_param("p", 1)
    client = fluent.get_client()
    assert len(client.get_metric_history(run.info.run_id, "loss")) == 500
    assert client.get_run(run.info.run_id).data.params == {"p": "1"}


def test_async_errors_surface_when_the_run_ends(fluent):
    from modelyard.errors import InvalidParameter

    with pytest.raises(InvalidParameter, match="'p'"), fluent.start_run(async_logging=True):
        fluent.log_param("p", 1)
        fluent.log_param("p", 2)


def test_log_input_records_the_dataset(fluent):
    pd = pytest.importorskip("pandas")
    with fluent.start_run() as run:
        described = fluent.log_input(pd.DataFrame({"a": [1, 2]}), context="training", name="t")
    (stored,) = fluent.get_client().get_run(run.info.run_id).inputs
    assert stored.digest == described.digest and stored.context == "training"


def test_import_is_lazy():
    import subprocess
    import sys

    code = "import sys, modelyard; print('sqlalchemy' in sys.modules, 'pandas' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
