"""Running pipelines in this process: tracked runs and nested step runs, outputs stored as
artifacts with lineage, the cache (and its reason), retries, timeouts, failures that skip
only what depends on them, and resume re-running only what did not finish."""

from __future__ import annotations

import pandas as pd
import pytest
from sqlalchemy import select

from modelyard.errors import InvalidState
from modelyard.pipelines import PipelineFailed, load_output, pipelines_store, resume, run_pipeline
from modelyard.pipelines.tables import pipeline_step_cache
from modelyard.store.lineage import edges_of, node
from modelyard.tracking.backends import database_for
from modelyard.tracking.client import TrackingClient

from . import pipeline_yard as yard


@pytest.fixture
def marker(tmp_path) -> str:
    folder = tmp_path / "marker"
    folder.mkdir()
    return str(folder)


def run(pipeline, settings, **params):
    return run_pipeline(pipeline, params, settings=settings, executor="local")


def statuses(record) -> dict[str, str]:
    return {s.step_key: s.status for s in record.steps}


def test_a_run_is_a_tracked_run_and_each_step_a_nested_run_with_its_tags(settings, marker):
    record = run(yard.branches, settings, marker=marker, rows=6)
    assert record.status == "FINISHED" and record.error is None
    assert statuses(record) == dict.fromkeys(
        ["make_table", "column_sum", "gate", "split", "column_sum_2"], "COMPLETED"
    )
    with TrackingClient.from_settings(settings) as client:
        parent = client.get_run(record.run_id)
        assert parent.info.status == "FINISHED"
        assert parent.data.tags["modelyard.pipeline.name"] == "branches"
        assert parent.data.params == {"marker": f'"{marker}"', "rows": "6"}
        for s in record.steps:
            child = client.get_run(s.step_run_id)
            tags = child.data.tags
            assert tags["mlflow.parentRunId"] == record.run_id
            assert tags["modelyard.step.name"] == s.step_name
            assert tags["modelyard.step.status"] == "COMPLETED"
            assert tags["modelyard.step.cache_key"] == s.cache_key
            assert int(tags["modelyard.step.duration_ms"]) == s.duration_ms
            assert child.info.status == "FINISHED"
        files = [f.path for f in client.list_artifacts(record.steps[0].step_run_id, "outputs")]
    assert files == ["outputs/return"]


def test_numeric_outputs_are_metrics_of_the_step_and_of_the_pipeline_run(settings, marker):
    record = run(yard.branches, settings, marker=marker, rows=6)
    by_key = {s.step_key: s for s in record.steps}
    with TrackingClient.from_settings(settings) as client:
        parent = client.get_run(record.run_id).data.metrics
        step_metrics = client.get_run(by_key["column_sum_2"].step_run_id).data.metrics
    assert parent == {"column_sum": 15.0, "column_sum_2": 6.0}
    assert step_metrics == {"column_sum": 6.0}


def test_outputs_are_artifacts_read_back_by_value(settings, marker):
    record = run(yard.branches, settings, marker=marker, rows=6)
    table = load_output(record, "make_table", settings=settings)
    pd.testing.assert_frame_equal(
        table, pd.DataFrame({"a": range(6), "b": [i / 2 for i in range(6)]})
    )
    assert load_output(record, "column_sum", settings=settings) == 15.0
    assert load_output(record, "split", "high", settings=settings)["a"].tolist() == [3, 4, 5]
    assert load_output(record, "gate", settings=settings) == {"total": 15.0, "passed": True}
    by_key = {s.step_key: s for s in record.steps}
    assert by_key["make_table"].outputs["return"]["kind"] == "parquet"
    assert by_key["gate"].outputs["return"]["kind"] == "json"


def test_lineage_links_step_to_artifact_to_step(settings, marker):
    record = run(yard.branches, settings, marker=marker, rows=4)
    by_key = {s.step_key: s for s in record.steps}
    table_node = node("artifact", by_key["make_table"].outputs["return"]["path"])
    producer = node("step", by_key["make_table"].step_run_id)
    consumers = {node("step", by_key[k].step_run_id) for k in ("column_sum", "split")}
    with database_for(settings).read() as conn:
        edges = set(edges_of(conn, table_node))
        parent_edges = set(edges_of(conn, node("run", record.run_id)))
    assert (producer, table_node, "output") in edges
    assert {(table_node, c, "input") for c in consumers} <= edges
    assert (node("run", record.run_id), producer, "step") in parent_edges


def test_a_second_run_with_the_same_code_and_inputs_is_answered_from_the_cache(settings, marker):
    first = run(yard.branches, settings, marker=marker, rows=6)
    second = run(yard.branches, settings, marker=marker, rows=6)
    assert set(statuses(second).values()) == {"CACHED"}
    assert yard.executions(marker, "make_table") == 1
    source = {s.step_key: s.step_run_id for s in first.steps}
    stored = {s.step_key: s.outputs for s in first.steps}
    for s in second.steps:
        assert s.reason.startswith(
            f"cache hit: same code and inputs as step run {source[s.step_key]}"
        )
        assert s.outputs == stored[s.step_key]  # the first run's files, not copies
        assert s.step_run_id != source[s.step_key]  # still a nested run of its own
    assert load_output(second, "column_sum_2", settings=settings) == load_output(
        first, "column_sum_2", settings=settings
    )
    with TrackingClient.from_settings(settings) as client:
        tags = client.get_run(second.steps[0].step_run_id).data.tags
    assert tags["modelyard.step.status"] == "CACHED"
    assert tags["modelyard.step.cached_from"] == source["make_table"]


def test_changed_inputs_miss_the_cache_only_where_they_reach(settings, marker):
    run(yard.branches, settings, marker=marker, rows=6)
    changed = run(yard.branches, settings, marker=marker, rows=8)
    assert set(statuses(changed).values()) == {"COMPLETED"}
    assert yard.executions(marker, "make_table") == 2


def test_a_failed_step_fails_the_run_skips_its_downstream_and_lets_other_branches_finish(
    settings, marker, tmp_path
):
    (tmp_path / "marker" / "broken").touch()
    with pytest.raises(
        PipelineFailed, match="step 'gate' failed: RuntimeError: the gate refused"
    ) as err:
        run(yard.branches, settings, marker=marker)
    record = err.value.run
    assert record.status == "FAILED"
    assert record.error.startswith("step 'gate' failed: RuntimeError")
    assert statuses(record) == {
        "make_table": "COMPLETED",
        "column_sum": "COMPLETED",
        "gate": "FAILED",
        "split": "COMPLETED",
        "column_sum_2": "COMPLETED",
    }
    gate = next(s for s in record.steps if s.step_key == "gate")
    assert "Traceback" in gate.reason and gate.outputs is None
    with TrackingClient.from_settings(settings) as client:
        assert client.get_run(record.run_id).info.status == "FAILED"
        assert client.get_run(gate.step_run_id).info.status == "FAILED"


def test_resume_re_runs_only_what_did_not_finish(settings, marker, tmp_path):
    broken = tmp_path / "marker" / "broken"
    broken.touch()
    with pytest.raises(PipelineFailed) as err:
        run(yard.branches, settings, marker=marker)
    run_id = err.value.run.run_id
    before = {s.step_key: s.step_run_id for s in err.value.run.steps}
    broken.unlink()
    resumed = resume(run_id, settings=settings)
    assert resumed.run_id == run_id and resumed.status == "FINISHED"
    assert resumed.attempts == 2
    assert set(statuses(resumed).values()) == {"COMPLETED"}
    assert yard.executions(marker, "gate") == 2  # once failed, once resumed
    assert yard.executions(marker, "make_table") == 1
    assert yard.executions(marker, "column_sum") == 2  # the two sums, once each
    after = {s.step_key: s.step_run_id for s in resumed.steps}
    assert {k for k in after if after[k] != before[k]} == {"gate"}
    with pytest.raises(InvalidState, match="already finished"):
        resume(run_id, settings=settings)


def test_downstream_of_a_failure_is_skipped_with_the_reason(settings, marker):
    with pytest.raises(PipelineFailed) as err:
        run(yard.unsafe, settings, marker=marker)
    record = err.value.run
    assert statuses(record) == {"opaque": "FAILED", "unwrap": "SKIPPED"}
    skipped = next(s for s in record.steps if s.step_key == "unwrap")
    assert skipped.reason == "not run: upstream step 'opaque' did not finish"


def test_an_unstorable_output_fails_its_step_by_name_without_retrying_or_storing(settings, marker):
    with pytest.raises(PipelineFailed, match="step 'opaque' failed: step 'opaque': output"):
        run(yard.unsafe, settings, marker=marker)
    record = pipelines_store(settings).list_runs()[0]
    failed = pipelines_store(settings).get_run(record.run_id).steps[0]
    assert "trusted_outputs=True" in failed.reason and failed.outputs is None
    assert yard.executions(marker, "opaque") == 1  # a deterministic failure: not retried
    with TrackingClient.from_settings(settings) as client:
        assert client.list_artifacts(failed.step_run_id, "outputs") == []
    with database_for(settings).read() as conn:
        assert conn.execute(select(pipeline_step_cache)).all() == []


def test_a_trusted_step_passes_any_value_on(settings, marker):
    record = run(yard.trusted, settings, marker=marker)
    assert load_output(record, "unwrap", settings=settings) == 7
    stored = next(s for s in record.steps if s.step_key == "trusted_opaque")
    assert stored.outputs["return"]["kind"] == "cloudpickle"


def test_retries_back_off_until_an_attempt_succeeds(settings, marker):
    record = run(yard.retrying, settings, marker=marker, failures=2)
    (step,) = record.steps
    assert step.status == "COMPLETED" and step.attempts == 3
    assert load_output(record, "flaky", settings=settings) == 3


def test_a_step_out_of_retries_fails_saying_how_many_attempts(settings, marker):
    with pytest.raises(PipelineFailed, match=r"ConnectionError: attempt 3 lost") as err:
        run(yard.retrying, settings, marker=marker, failures=5)
    (step,) = err.value.run.steps
    assert step.status == "FAILED" and step.attempts == 3
    assert step.reason.endswith("(after 3 attempts)")


def test_a_hanging_step_times_out_in_process(settings, marker, tmp_path):
    with pytest.raises(PipelineFailed, match=r"step 'hang' timed out after 1s") as err:
        run(yard.hanging, settings, marker=marker)
    (step,) = err.value.run.steps
    assert step.status == "FAILED" and step.attempts == 2
    (tmp_path / "marker" / "fixed").touch()  # the next attempt returns at once
    assert resume(err.value.run.run_id, settings=settings).status == "FINISHED"


def test_runs_are_listed_newest_first_and_record_their_cause(settings, marker):
    first = run_pipeline(
        yard.retrying, {"marker": marker, "failures": 0}, settings=settings, executor="local"
    )
    second = run_pipeline(
        yard.branches,
        {"marker": marker},
        settings=settings,
        executor="local",
        cause={"kind": "alert", "alert_id": 3},
    )
    store = pipelines_store(settings)
    assert [r.run_id for r in store.list_runs()] == [second.run_id, first.run_id]
    assert [r.run_id for r in store.list_runs("retrying")] == [first.run_id]
    assert store.get_run(second.run_id).cause == {"kind": "alert", "alert_id": 3}
    with TrackingClient.from_settings(settings) as client:
        tags = client.get_run(second.run_id).data.tags
    assert tags["modelyard.pipeline.cause"] == '{"alert_id": 3, "kind": "alert"}'


def test_a_running_run_is_resumed_only_with_force(settings, marker):
    record = run(yard.retrying, settings, marker=marker, failures=0)
    store = pipelines_store(settings)
    store.end_run(record.run_id, "RUNNING", None)  # as a coordinator killed mid-run leaves it
    with pytest.raises(InvalidState, match="is RUNNING"):
        resume(record.run_id, settings=settings)
    assert resume(record.run_id, settings=settings, force=True).status == "FINISHED"


def test_an_interrupted_run_is_marked_failed_and_resumes(settings, marker, tmp_path):
    with pytest.raises(KeyboardInterrupt):
        run(yard.interrupted, settings, marker=marker)
    (record,) = pipelines_store(settings).list_runs()
    record = pipelines_store(settings).get_run(record.run_id)
    assert record.status == "FAILED"
    assert record.error == "step 'interrupt' failed: interrupted: KeyboardInterrupt: "
    assert record.steps[0].status == "FAILED"
    with TrackingClient.from_settings(settings) as client:
        assert client.get_run(record.run_id).info.status == "FAILED"
    (tmp_path / "marker" / "fixed").touch()
    assert resume(record.run_id, settings=settings).status == "FINISHED"


def test_the_same_run_on_postgresql(backend_settings, marker):
    record = run(yard.branches, backend_settings, marker=marker, rows=6)
    assert set(statuses(record).values()) == {"COMPLETED"}
    again = run(yard.branches, backend_settings, marker=marker, rows=6)
    assert set(statuses(again).values()) == {"CACHED"}
    assert load_output(again, "column_sum", settings=backend_settings) == 15.0


def test_required_run_tags_are_given_once_and_carried_by_every_step(tmp_path, marker):
    from modelyard.config import Settings
    from modelyard.errors import ConventionViolation

    strict = Settings(
        home=tmp_path / "strict", required_run_tags=["team"], convention_mode="refuse"
    )
    with pytest.raises(ConventionViolation, match="'team'"):
        run(yard.branches, strict, marker=marker)
    (tmp_path / "marker" / "broken").touch()
    with pytest.raises(PipelineFailed) as err:
        run_pipeline(
            yard.branches, {"marker": marker}, settings=strict, executor="local",
            tags={"team": "demand"},
        )  # fmt: skip
    (tmp_path / "marker" / "broken").unlink()
    resumed = resume(err.value.run.run_id, settings=strict)  # the steps it re-runs too
    with TrackingClient.from_settings(strict) as client:
        for s in resumed.steps:
            assert client.get_run(s.step_run_id).data.tags["team"] == "demand"


def test_an_interrupt_ends_every_open_step_run_not_only_the_running_one(settings, marker):
    with pytest.raises(KeyboardInterrupt):
        run(yard.interrupted_pair, settings, marker=marker)
    (record,) = pipelines_store(settings).list_runs()
    record = pipelines_store(settings).get_run(record.run_id)
    assert statuses(record) == {"interrupt": "FAILED", "make_table": "FAILED"}
    with TrackingClient.from_settings(settings) as client:
        for s in record.steps:
            assert client.get_run(s.step_run_id).info.status == "FAILED", s.step_key
            assert s.reason.startswith("interrupted: KeyboardInterrupt")
