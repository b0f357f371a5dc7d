"""OpenLineage out and in, with the real ``openlineage-python`` client: events built from
what the rooms stored (runs, pipeline steps, training sets, materialisations) with their
facets, written by its file transport and read back; the observer the server installs;
events received from other tools recorded as edges, bad ones refused naming the field."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pandas as pd
import pytest

from modelyard.config import Settings
from modelyard.errors import InvalidParameter
from modelyard.lineage.openlineage_in import ingest, parse_event
from modelyard.lineage.openlineage_names import location_dataset, location_uri
from modelyard.store.lineage import edges_of, record_edges
from modelyard.tracking.observed_store import StoreWrite

from .lineage_yard import BASE, write_story

pytest.importorskip("openlineage.client")

from modelyard.lineage.openlineage_out import Emitter, open_clients


@pytest.fixture
def story(tmp_path):
    written = write_story(tmp_path, Settings(home=tmp_path / "yard", user="ana"))
    yield written
    written.close()


@pytest.fixture
def sink(tmp_path) -> Path:
    return tmp_path / "ol" / "events.ndjson"


@pytest.fixture
def emitter(story, sink):
    settings = Settings(home=story.settings.home, openlineage_file=sink)
    out = Emitter.from_settings(settings, story.registry.db)
    yield out
    out.close()


def read_back(sink: Path) -> list[dict]:
    return [json.loads(line) for line in sink.read_text().splitlines() if line]


def by_name(datasets: list[dict], name: str) -> dict:
    return next(d for d in datasets if d["name"] == name)


def test_a_finished_run_is_start_then_complete_with_its_inputs_and_facets(story, emitter, sink):
    story.tracking.set_terminated(story.run_id, "FINISHED")
    assert emitter.send(emitter.run_events(story.run_id)) == 2
    start, complete = read_back(sink)
    assert (start["eventType"], complete["eventType"]) == ("START", "COMPLETE")
    assert start["run"]["runId"] == complete["run"]["runId"] == str(uuid.UUID(story.run_id))
    assert complete["job"]["namespace"] == "modelyard"
    assert complete["job"]["name"] == "experiments/demand"
    assert complete["schemaURL"].startswith("https://openlineage.io/spec/")
    sales = by_name(complete["inputs"], "datasets/sales")
    assert sales["facets"]["version"]["datasetVersion"] == story.dataset_node.rpartition("@")[2]
    assert [f["name"] for f in sales["facets"]["schema"]["fields"]] == [
        "store_id", "event_ts", "units",
    ]  # fmt: skip
    assert sales["facets"]["dataSource"]["uri"].endswith("sales.parquet")
    quality = sales["inputFacets"]["dataQualityMetrics"]
    assert quality["rowCount"] == 4 and quality["columnMetrics"]["units"]["nullCount"] == 0
    assert quality["columnMetrics"]["units"]["min"] == 1.0
    assert quality["columnMetrics"]["units"]["max"] == 5.0
    assert by_name(complete["inputs"], "training_sets/demand-train")
    outputs = {o["name"]: o for o in complete["outputs"]}
    assert outputs["models/demand"]["facets"]["version"]["datasetVersion"] == "1"


def test_a_failed_run_says_so(story, emitter, sink):
    story.tracking.set_terminated(story.other_run_id, "FAILED")
    emitter.send(emitter.run_events(story.other_run_id))
    fail = read_back(sink)[-1]
    assert fail["eventType"] == "FAIL"
    assert "FAILED" in fail["run"]["facets"]["errorMessage"]["message"]


def test_a_pipeline_step_names_its_parent_and_its_artifacts(story, emitter, sink):
    experiment = story.tracking.get_experiment_by_name("demand").experiment_id
    step = story.tracking.create_run(experiment, run_name="train", parent_run_id=story.run_id)
    step_id = step.info.run_id
    with story.registry.db.write() as conn:  # as the pipelines room records a step
        record_edges(
            conn,
            [
                (f"run:{story.run_id}", f"step:{step_id}", "step"),
                ("artifact:pipelines/p1/features.parquet", f"step:{step_id}", "input"),
                (f"step:{step_id}", "artifact:pipelines/p1/model", "output"),
            ],
        )
    story.tracking.set_terminated(step_id, "FINISHED")
    emitter.send(emitter.run_events(step_id))
    complete = read_back(sink)[-1]
    assert complete["job"]["name"] == "experiments/demand/train"
    parent = complete["run"]["facets"]["parent"]
    assert parent["run"]["runId"] == str(uuid.UUID(story.run_id))
    assert [i["name"] for i in complete["inputs"]] == ["artifacts/pipelines/p1/features.parquet"]
    assert [o["name"] for o in complete["outputs"]] == ["artifacts/pipelines/p1/model"]


def test_a_period_covers_runs_training_sets_and_materialisations(story, emitter, sink):
    story.features.materialize(BASE, BASE + pd.Timedelta(hours=1))
    sent = emitter.emit_since(0)
    events = read_back(sink)
    assert sent == len(events)
    seen = {(e["job"]["name"], e["eventType"]) for e in events}
    assert ("experiments/demand", "START") in seen
    assert ("training_set/demand-train", "COMPLETE") in seen
    assert ("materialize/sales", "COMPLETE") in seen
    training = next(
        e
        for e in events
        if e["job"]["name"] == "training_set/demand-train" and e["eventType"] == "COMPLETE"
    )
    [output] = training["outputs"]
    assert [f["name"] for f in output["facets"]["schema"]["fields"]] == ["sales:units"]
    assert output["outputFacets"]["outputStatistics"]["rowCount"] == 2
    assert {i["name"] for i in training["inputs"]} >= {"feature_views/sales", "datasets/sales"}
    times = [e["eventTime"] for e in events]
    assert times == sorted(times)
    assert emitter.events_since(10**13 * 9) == []  # a period in the future: nothing


def test_the_observer_sends_each_runs_events_once_in_the_background(story, emitter, sink):
    emitter.on_write(StoreWrite("create_run", (story.other_run_id,)))
    emitter.on_write(StoreWrite("log_batch", (story.other_run_id,)))  # not a lifecycle write
    emitter.flush()
    assert [e["eventType"] for e in read_back(sink)] == ["START"]
    story.tracking.set_terminated(story.other_run_id, "KILLED")
    emitter.on_write(StoreWrite("update_run_info", (story.other_run_id,)))
    emitter.on_write(StoreWrite("update_run_info", (story.other_run_id,)))
    emitter.flush()
    assert [e["eventType"] for e in read_back(sink)] == ["START", "ABORT"]


def test_following_sends_what_others_wrote_once(story, emitter, sink):
    emitter.follow(interval_s=3600, since_ms=0)  # looks happen on flush in this test
    emitter.flush()
    first = read_back(sink)
    assert ("training_set/demand-train", "COMPLETE") in {
        (e["job"]["name"], e["eventType"]) for e in first
    }
    emitter.on_write(StoreWrite("create_run", (story.run_id,)))  # already sent: not again
    emitter.flush()
    assert read_back(sink) == first
    story.features.materialize(BASE, BASE + pd.Timedelta(hours=1))  # written by another
    story.tracking.set_terminated(story.other_run_id, "FINISHED")  # a run open at the look
    emitter.flush()
    added = read_back(sink)[len(first) :]
    assert sorted((e["job"]["name"], e["eventType"]) for e in added) == [
        ("experiments/demand", "COMPLETE"),
        ("materialize/sales", "COMPLETE"),
    ]
    assert {e["run"]["runId"] for e in added if e["eventType"] == "COMPLETE"} >= {
        str(uuid.UUID(story.other_run_id))
    }


def test_a_failing_sink_is_counted_not_raised(story, tmp_path):
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the folder should be")
    settings = Settings(home=story.settings.home, openlineage_file=tmp_path / "x" / "e.ndjson")
    emitter = Emitter.from_settings(settings, story.registry.db)
    emitter.clients[0].transport.config.log_file_path = str(blocked / "events.ndjson")
    emitter.on_write(StoreWrite("create_run", (story.run_id,)))
    emitter.flush()
    emitter.close()
    assert emitter.failures == 1


def test_no_sink_and_a_bad_url_are_refused_naming_the_setting(story):
    with pytest.raises(InvalidParameter) as err:
        Emitter.from_settings(Settings(home=story.settings.home), story.registry.db)
    assert err.value.field == "openlineage_url"
    with pytest.raises(InvalidParameter) as err:
        open_clients(Settings(openlineage_url="not a url"))
    assert err.value.field == "openlineage_url"


# -- in -----------------------------------------------------------------------------------


def event(event_type: str = "COMPLETE", **changes) -> dict:
    body = {
        "eventType": event_type,
        "eventTime": "2026-12-06T08:00:00.123Z",
        "run": {"runId": str(uuid.uuid4())},
        "job": {"namespace": "spark", "name": "clean_sales"},
        "inputs": [{"namespace": "s3://lake", "name": "raw/sales.csv"}],
        "outputs": [{"namespace": "file", "name": "/data/clean/sales.parquet"}],
    }
    body.update(changes)
    return body


def test_an_event_becomes_input_and_output_edges_of_its_job(story):
    accepted = ingest(story.registry.db, event())
    assert accepted.edges == [
        ("location:s3://lake/raw/sales.csv", "job:spark/clean_sales", "input"),
        ("job:spark/clean_sales", "location:file:///data/clean/sales.parquet", "output"),
    ]
    again = ingest(story.registry.db, event())  # idempotent: the same edges, stored once
    with story.registry.db.read() as conn:
        assert len(edges_of(conn, "job:spark/clean_sales")) == 2
    assert again.edges == accepted.edges


@pytest.mark.parametrize("event_type", ["START", "FAIL", "ABORT", "OTHER"])
def test_outputs_count_only_once_a_run_wrote_them(story, event_type):
    accepted = ingest(story.registry.db, event(event_type))
    assert [e[2] for e in accepted.edges] == ["input"]


def test_a_version_snapshotted_before_the_event_is_linked_to_the_file(story, tmp_path):
    sales = str((tmp_path / "sales.parquet").absolute())
    place = f"location:file://{sales}"
    with story.registry.db.write() as conn:  # as a store from before this link was written
        from sqlalchemy import delete

        from modelyard.store.schema import lineage_edges

        e = lineage_edges.c
        conn.execute(delete(lineage_edges).where(e.src == place))
    accepted = ingest(
        story.registry.db,
        event(outputs=[{"namespace": "file", "name": sales}]),
    )
    assert (place, story.dataset_node, "snapshot_of") in accepted.edges


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ("not an object", "event"),
        (event(eventType=None), "eventType"),
        (event(eventTime=12), "eventTime"),
        (event(eventTime="2026-13-45"), "eventTime"),
        (event(run={"runId": "42"}), "run.runId"),
        (event(run=None), "run"),
        (event(job={"namespace": "spark"}), "job.name"),
        (event(job={"namespace": "x" * 401, "name": "n"}), "job.namespace"),
        (event(inputs=[{"namespace": "s3://lake", "name": None}]), "inputs[0].name"),
        (event(outputs=[{"name": "x"}]), "outputs[0].namespace"),
        (event(outputs=[{"namespace": "n", "name": "x"}] * 1001), "outputs"),
    ],
)
def test_bad_events_name_the_field_and_record_nothing(story, body, field):
    with pytest.raises(InvalidParameter) as err:
        ingest(story.registry.db, body)
    assert err.value.field == field
    with story.registry.db.read() as conn:
        assert edges_of(conn, "job:spark/clean_sales") == []


def test_the_real_clients_events_parse(story):
    from openlineage.client.event_v2 import InputDataset, Job, Run, RunEvent, RunState
    from openlineage.client.serde import Serde

    built = RunEvent(
        eventType=RunState.RUNNING,
        eventTime="2026-12-06T08:00:00+00:00",
        run=Run(runId=str(uuid.uuid4())),
        job=Job(namespace="dbt", name="orders"),
        inputs=[InputDataset("postgres://db:5432", "shop.orders")],
        producer="https://github.com/dbt-labs/dbt-core",
    )
    event_type, _, job, inputs, outputs = parse_event(json.loads(Serde.to_json(built)))
    assert (event_type, job, inputs, outputs) == (
        "RUNNING", "job:dbt/orders", [("postgres://db:5432", "shop.orders")], [],
    )  # fmt: skip


@pytest.mark.parametrize(
    ("namespace", "name", "uri"),
    [
        ("file", "/data/sales.csv", "file:///data/sales.csv"),
        ("s3://lake", "raw/sales.csv", "s3://lake/raw/sales.csv"),
        ("hdfs://namenode:8020", "/warehouse/t", "hdfs://namenode:8020/warehouse/t"),
    ],
)
def test_dataset_names_and_locations_round_trip(namespace, name, uri):
    assert location_uri(namespace, name) == uri
    assert location_uri(*location_dataset(uri)) == uri
