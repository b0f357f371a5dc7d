"""Our own ``TrackingClient`` against a live server (``Settings(tracking_uri=...)``): the same
behaviour and the same exception classes as local use."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from modelyard.errors import (
    AlreadyExists,
    InvalidParameter,
    InvalidState,
    NotFound,
    NotImplementedFeature,
)
from modelyard.tracking.client import TrackingClient
from modelyard.tracking.entities import Metric, Param, RunTag, ViewType


@pytest.fixture
def remote(live_server, tmp_path) -> Iterator[TrackingClient]:
    with TrackingClient.from_settings(live_server.remote_settings(tmp_path)) as client:
        yield client


@pytest.fixture
def experiment_id(remote, unique) -> str:
    return remote.create_experiment(f"remote-{unique}", tags={"team": "retail"})


def test_the_remote_backends_are_chosen_by_the_tracking_uri(remote):
    assert type(remote.store).__name__ == "RestTrackingStore"
    assert type(remote.artifacts).__name__ == "RemoteArtifactRepository"


def test_closing_the_client_closes_its_connections_and_a_later_call_reconnects(remote):
    remote.get_experiment("0")
    conn, reused = remote.store.http._connection()
    assert reused
    remote.close()
    assert conn.sock is None
    assert remote.get_experiment("0").name == "Default"


def test_the_fluent_client_that_configure_replaces_is_closed(live_server, tmp_path, fluent):
    first = fluent.configure(live_server.remote_settings(tmp_path))
    first.get_experiment("0")
    conn, _ = first.store.http._connection()
    fluent.configure(live_server.remote_settings(tmp_path))
    assert conn.sock is None


def test_experiments(remote, experiment_id, unique):
    experiment = remote.get_experiment(experiment_id)
    assert experiment.name == f"remote-{unique}" and experiment.tags == {"team": "retail"}
    assert remote.get_experiment_by_name(f"remote-{unique}") == experiment
    assert remote.get_experiment_by_name(f"absent-{unique}") is None
    with pytest.raises(AlreadyExists, match=f"remote-{unique}") as info:
        remote.create_experiment(f"remote-{unique}")
    assert info.value.field == "name"
    assert [e.name for e in remote.search_experiments(name_like=f"REMOTE-{unique}")] == [
        f"remote-{unique}"
    ]
    remote.delete_experiment(experiment_id)
    deleted = remote.search_experiments(view_type=ViewType.DELETED_ONLY)
    assert experiment_id in [e.experiment_id for e in deleted]
    remote.restore_experiment(experiment_id)
    with pytest.raises(NotFound):
        remote.get_experiment("987654")


def test_a_run_records_its_origin_and_its_parent(remote, experiment_id):
    parent = remote.create_run(experiment_id, run_name="parent", tags={"stage": "dev"})
    tags = parent.data.tags
    assert parent.info.run_name == "parent" and tags["stage"] == "dev"
    assert tags["modelyard.host"] and tags["modelyard.python.version"]  # the caller's machine
    child = remote.create_run(experiment_id, parent_run_id=parent.info.run_id)
    assert child.info.parent_run_id == parent.info.run_id
    assert remote.get_run(child.info.run_id).info.parent_run_id == parent.info.run_id
    info = remote.set_terminated(parent.info.run_id, "FAILED")
    assert info.status == "FAILED" and info.end_time >= info.start_time


def test_log_batch_history_and_large_batches(remote, experiment_id):
    run_id = remote.create_run(experiment_id).info.run_id
    remote.log_batch(
        run_id,
        metrics=[Metric("loss", 0.5, 10, 0), Metric("loss", 0.25, 20, 1)],
        params=[Param("lr", "0.1")],
        tags=[RunTag("team", "a")],
    )
    remote.log_metric(run_id, "nan", float("nan"))
    data = remote.get_run(run_id).data
    assert data.params == {"lr": "0.1"} and data.tags["team"] == "a"
    assert data.metrics["loss"] == 0.25
    assert [(m.step, m.value) for m in remote.get_metric_history(run_id, "loss")] == [
        (0, 0.5),
        (1, 0.25),
    ]
    # 5,000 points and 150 params: split into requests the server accepts.
    remote.log_batch(
        run_id,
        metrics=[Metric(f"m{i % 5}", float(i), 1, i // 5) for i in range(5000)],
        params=[Param(f"p{i}", "x" * 5000) for i in range(150)],
    )
    assert len(remote.get_metric_history(run_id, "m3")) == 1000
    assert len(remote.get_run(run_id).data.params) == 151


def test_a_changed_param_is_invalid_parameter_and_changes_nothing(remote, experiment_id):
    run_id = remote.create_run(experiment_id).info.run_id
    remote.log_param(run_id, "depth", 6)
    with pytest.raises(InvalidParameter, match=r"'depth'.*immutable") as info:
        remote.log_batch(
            run_id,
            metrics=[Metric("m", 1.0, 1, 0)],
            params=[Param("other", "x"), Param("depth", "7")],
        )
    assert info.value.field == "params.depth"
    data = remote.get_run(run_id).data
    assert data.params == {"depth": "6"} and data.metrics == {}


def test_bad_values_fail_before_the_round_trip_and_on_the_server(remote, experiment_id):
    run_id = remote.create_run(experiment_id).info.run_id
    with pytest.raises(InvalidParameter, match="bad key!"):
        remote.log_metric(run_id, "bad key!", 1.0)
    # Bypass the client's checks: the server's client applies the same rules.
    with pytest.raises(InvalidParameter, match="bad key!"):
        remote.store.log_batch(run_id, params=[Param("bad key!", "1")])


def test_unknown_and_deleted_runs(remote, experiment_id):
    with pytest.raises(NotFound, match="0123456789abcdef"):
        remote.get_run("0123456789abcdef")
    run_id = remote.create_run(experiment_id).info.run_id
    remote.delete_run(run_id)
    with pytest.raises(InvalidState, match="deleted"):
        remote.log_metric(run_id, "m", 1.0)
    remote.restore_run(run_id)
    remote.log_metric(run_id, "m", 1.0)


def test_search_runs(remote, experiment_id):
    for name, rmse in [("a", 0.3), ("b", 0.7), ("c", 0.2)]:
        run_id = remote.create_run(experiment_id, run_name=name).info.run_id
        remote.log_metric(run_id, "rmse", rmse)
    found = remote.search_runs([experiment_id], "metrics.rmse < 0.5", order_by=["metrics.rmse"])
    assert [r.info.run_name for r in found] == ["c", "a"]
    first = remote.search_runs([experiment_id], order_by=["metrics.rmse DESC"], max_results=2)
    rest = remote.search_runs(
        [experiment_id],
        order_by=["metrics.rmse DESC"],
        max_results=2,
        page_token=first.next_page_token,
    )
    assert [r.info.run_name for r in (*first, *rest)] == ["b", "a", "c"]
    assert rest.next_page_token is None
    with pytest.raises(InvalidParameter, match=r"position \d+"):
        remote.search_runs([experiment_id], "metrics.rmse < 0.5 or params.x = 'y'")


def test_artifacts_round_trip(remote, experiment_id, tmp_path):
    run_id = remote.create_run(experiment_id).info.run_id
    source = tmp_path / "source"
    (source / "sub").mkdir(parents=True)
    (source / "a.txt").write_text("A")
    (source / "sub" / "b.bin").write_bytes(b"\x00\x01" * 70_000)
    remote.log_artifact(run_id, source / "a.txt")
    remote.log_artifacts(run_id, source, "tree")
    remote.log_dict(run_id, {"k": 1}, "config.json")

    assert [(e.path, e.is_dir) for e in remote.list_artifacts(run_id)] == [
        ("a.txt", False),
        ("config.json", False),
        ("tree", True),
    ]
    assert [(e.path, e.file_size) for e in remote.list_artifacts(run_id, "tree/sub")] == [
        ("tree/sub/b.bin", 140_000)
    ]
    assert remote.read_artifact(run_id, "tree/a.txt") == b"A"
    out = remote.download_artifacts(run_id, "tree", tmp_path / "dl")
    assert (tmp_path / "dl" / "tree" / "sub" / "b.bin").read_bytes() == b"\x00\x01" * 70_000
    assert out == str(tmp_path / "dl" / "tree")
    with pytest.raises(NotFound, match="nope"):
        remote.read_artifact(run_id, "nope")
    with pytest.raises(NotFound, match="nope"):
        remote.download_artifacts(run_id, "nope", tmp_path / "dl2")


def test_dataset_inputs(remote, experiment_id):
    pd = pytest.importorskip("pandas")
    run_id = remote.create_run(experiment_id).info.run_id
    described = remote.log_input(run_id, pd.DataFrame({"a": [1, 2]}), name="sales")
    (seen,) = remote.get_run(run_id).inputs
    assert (seen.name, seen.digest, seen.context) == ("sales", described.digest, "training")
    assert seen.schema == described.schema


def test_garbage_collection_is_a_server_side_job(remote):
    with pytest.raises(NotImplementedFeature, match="modelyard gc"):
        remote.gc()


def test_modelyard_tags_are_refused_from_clients_but_the_clients_own_report(remote, experiment_id):
    from modelyard.errors import PermissionDenied

    run = remote.create_run(experiment_id)  # sends modelyard.host, .packages, … : allowed
    run_id = run.info.run_id
    attempts = [
        lambda: remote.set_tag(run_id, "modelyard.pipeline.step", "forged"),
        lambda: remote.set_tag(run_id, "MODELYARD.anything", "forged"),
        lambda: remote.log_batch(run_id, tags=[RunTag("modelyard.lineage.x", "forged")]),
        lambda: remote.create_run(experiment_id, tags={"modelyard.gate.status": "passed"}),
        lambda: remote.delete_tag(run_id, "modelyard.pipeline.step"),
        lambda: remote.set_experiment_tag(experiment_id, "modelyard.owner", "x"),
    ]
    for attempt in attempts:
        with pytest.raises(PermissionDenied, match="reserved"):
            attempt()
    tags = remote.get_run(run_id).data.tags
    assert not any(key.casefold().startswith("modelyard.pipeline") for key in tags)
    assert tags["modelyard.host"]  # the client's report stays
    remote.set_tag(run_id, "team.modelyard.note", "fine")  # only the prefix is reserved
