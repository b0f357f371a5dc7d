"""The lineage routes of a real ``modelyard server`` process: questions as documents,
OpenLineage events in from the real ``openlineage-python`` HTTP transport (joining the
graph at the file a dataset version was snapshotted from), bad events refused naming the
field, and the server's own runs sent out as OpenLineage events to the configured file."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from modelyard import json_codec

from ...lineage.lineage_yard import REQUEST_ID, Story, write_story
from ..conftest import assert_error, start_server, stop_server

pytest.importorskip("openlineage.client")


@dataclass
class Yard:
    url: str
    story: Story
    events: Path
    sales: Path


@pytest.fixture(scope="module")
def yard(tmp_path_factory) -> Iterator[Yard]:
    root = tmp_path_factory.mktemp("lineage-api")
    story = write_story(root)
    events = root / "openlineage" / "events.ndjson"
    # the server reads .env in its working directory (root): its OpenLineage sink
    (root / ".env").write_text(
        f"MODELYARD_OPENLINEAGE_FILE={events}\nMODELYARD_OPENLINEAGE_FOLLOW_S=0.2\n"
    )
    url, _, process = start_server(root / "yard")
    try:
        yield Yard(url, story, events, root / "sales.parquet")
    finally:
        stop_server(process)
        story.close()


@pytest.fixture
def http(yard) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=yard.url, timeout=30.0) as client:
        yield client


def test_upstream_of_a_request_id_is_the_whole_chain(http, yard):
    body = http.get(f"/api/v1/lineage/{REQUEST_ID}").json()
    assert body["start"] == f"prediction:{REQUEST_ID}" and body["direction"] == "upstream"
    kinds = {n["kind"] for n in body["nodes"]}
    assert {"prediction", "deployment_revision", "model", "run", "training_set"} <= kinds
    assert {"feature_view", "dataset"} <= kinds
    assert yard.story.dataset_node in {n["id"] for n in body["nodes"]}


def test_downstream_of_a_dataset_version_carries_the_impact(http, yard):
    body = http.get("/api/v1/lineage/sales@1", params={"direction": "downstream"}).json()
    assert body["impact"]["model_versions"] == ["models:/demand/1"]
    assert body["impact"]["live_deployments"] == ["web"]


def test_a_model_uri_with_slashes_and_a_depth(http):
    body = http.get("/api/v1/lineage/models:/demand/1", params={"depth": 1}).json()
    assert body["start"] == "model:demand/1"
    assert {e["depth"] for e in body["edges"]} == {1}


@pytest.mark.parametrize(
    ("path", "params", "status", "code", "field"),
    [
        ("/api/v1/lineage/nothing-called-this", {}, 404, "RESOURCE_DOES_NOT_EXIST", "id"),
        (
            "/api/v1/lineage/sales@1",
            {"direction": "both"},
            400,
            "INVALID_PARAMETER_VALUE",
            "direction",
        ),
        ("/api/v1/lineage/sales@1", {"depth": "deep"}, 400, "INVALID_PARAMETER_VALUE", "depth"),
        ("/api/v1/lineage/sales@1", {"depth": "0"}, 400, "INVALID_PARAMETER_VALUE", "depth"),
        (
            "/api/v1/lineage/req-1",
            {"since_ms": "9" * 17},
            400,
            "INVALID_PARAMETER_VALUE",
            "since_ms",
        ),
        ("/api/v1/lineage/req-1", {"since_ms": "-1"}, 400, "INVALID_PARAMETER_VALUE", "since_ms"),
    ],
)
def test_bad_questions(http, path, params, status, code, field):
    assert_error(http.get(path, params=params), status, code, field)


def _client(url: str):
    from openlineage.client import OpenLineageClient
    from openlineage.client.transport.http import HttpConfig, HttpTransport

    return OpenLineageClient(transport=HttpTransport(HttpConfig(url=url)))


def test_an_upstream_job_that_wrote_the_file_joins_the_graph(http, yard):
    from openlineage.client.event_v2 import (
        InputDataset,
        Job,
        OutputDataset,
        Run,
        RunEvent,
        RunState,
    )

    client = _client(yard.url)
    event = RunEvent(
        eventType=RunState.COMPLETE,
        eventTime="2026-12-06T08:00:00+00:00",
        run=Run(runId=str(uuid.uuid4())),
        job=Job(namespace="airflow", name="etl.load_sales"),
        inputs=[InputDataset("s3://supplier", "feeds/sales.csv")],
        outputs=[OutputDataset("file", str(yard.sales.absolute()))],
        producer="https://github.com/apache/airflow",
    )
    client.emit(event)  # raises on anything but a 2xx
    client.close()
    body = http.get("/api/v1/lineage/sales@1").json()
    ids = {n["id"] for n in body["nodes"]}
    assert "job:airflow/etl.load_sales" in ids
    assert "location:s3://supplier/feeds/sales.csv" in ids
    edges = {(e["src"], e["dst"], e["relation"]) for e in body["edges"]}
    place = f"location:file://{yard.sales.absolute()}"
    assert (place, yard.story.dataset_node, "snapshot_of") in edges
    assert ("job:airflow/etl.load_sales", place, "output") in edges


GOOD = {
    "eventType": "COMPLETE",
    "eventTime": "2026-12-06T08:00:00Z",
    "run": {"runId": "0193a5e2-6d9b-7c42-9b1e-3d5c8f0a1b2c"},
    "job": {"namespace": "dbt", "name": "model.orders"},
    "inputs": [{"namespace": "postgres://db:5432", "name": "shop.orders"}],
    "outputs": [],
    "producer": "https://github.com/dbt-labs/dbt-core",
    "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
}


def _with(path: str, value):
    event = json_codec.loads_strict(json_codec.dumps(GOOD))
    *parents, last = path.split(".")
    target = event
    for key in parents:
        target = target[key]
    if value is _DROP:
        del target[last]
    else:
        target[last] = value
    return event


_DROP = object()


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        ("eventType", "DONE", "eventType"),
        ("eventTime", "yesterday", "eventTime"),
        ("run.runId", "run-1", "run.runId"),
        ("run.runId", _DROP, "run.runId"),
        ("run", "r", "run"),
        ("job.name", "", "job.name"),
        ("job.namespace", 7, "job.namespace"),
        ("inputs", {"namespace": "x"}, "inputs"),
        ("inputs", [{"namespace": "x"}], "inputs[0].name"),
        ("outputs", ["file"], "outputs[0]"),
    ],
)
def test_bad_events_are_refused_naming_the_field(http, path, value, field):
    response = http.post("/api/v1/lineage", json=_with(path, value))
    assert_error(response, 400, "INVALID_PARAMETER_VALUE", field)


def test_values_nothing_can_store_are_refused_naming_the_field(http):
    body = b'{"eventType": "COMPLETE", "job": {"name": "\\ud800"}}'
    assert_error(
        http.post("/api/v1/lineage", content=body), 400, "INVALID_PARAMETER_VALUE", "job.name"
    )


def test_a_body_that_is_not_json_is_a_bad_request(http):
    response = http.post("/api/v1/lineage", content=b"{not json")
    assert_error(response, 400, "BAD_REQUEST")
    assert_error(http.post("/api/v1/lineage", json=[GOOD]), 400, "INVALID_PARAMETER_VALUE", "event")


def test_a_good_event_answers_201_with_its_edges(http):
    response = http.post("/api/v1/lineage", json=GOOD)
    assert response.status_code == 201, response.text
    assert response.json()["edges"] == [
        {
            "src": "location:postgres://db:5432/shop.orders",
            "dst": "job:dbt/model.orders",
            "relation": "input",
        }
    ]


def _events(path: Path, run_id: str) -> list[dict]:
    if not path.exists():
        return []
    found = [json_codec.loads_strict(line) for line in path.read_text().splitlines() if line]
    return [e for e in found if e["run"]["runId"] == str(uuid.UUID(run_id))]


def test_the_servers_runs_go_out_as_openlineage_events(http, yard):
    mlflow = "/api/2.0/mlflow"
    run = http.post(f"{mlflow}/runs/create", json={"experiment_id": "0"}).json()["run"]
    run_id = run["info"]["run_id"]
    http.post(
        f"{mlflow}/runs/update",
        json={"run_id": run_id, "status": "FINISHED", "end_time": int(time.time() * 1000)},
    ).raise_for_status()
    deadline = time.monotonic() + 20
    while len(_events(yard.events, run_id)) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    events = _events(yard.events, run_id)
    assert [e["eventType"] for e in events] == ["START", "COMPLETE"]
    assert events[0]["job"] == {
        "namespace": "modelyard",
        "name": "experiments/Default",
        "facets": {},
    }
    assert events[1]["producer"].startswith("https://")


def test_the_server_follows_what_others_write_to_the_store(http, yard):
    import pandas as pd

    from ...lineage.lineage_yard import BASE

    entities = pd.DataFrame({"store_id": [1], "event_timestamp": [BASE]})
    ts = yard.story.features.get_training_set(entities, ["sales:units"], name="later")
    run_id = ts.training_set_id  # a UUID already: the OpenLineage runId
    deadline = time.monotonic() + 20
    while len(_events(yard.events, run_id)) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    events = _events(yard.events, run_id)
    assert [e["eventType"] for e in events] == ["START", "COMPLETE"]
    assert events[1]["job"]["name"] == "training_set/later"


def test_the_cli_asks_the_server_when_a_tracking_uri_is_set(http, yard, tmp_path):
    from typer.testing import CliRunner

    from modelyard.cli.main import app

    env = {"MODELYARD_TRACKING_URI": yard.url, "MODELYARD_HOME": str(tmp_path / "client")}
    out = CliRunner().invoke(app, ["lineage", "sales@1", "--downstream", "--json"], env=env)
    assert out.exit_code == 0, out.output
    assert (
        json_codec.loads_strict(out.output)
        == http.get("/api/v1/lineage/sales@1", params={"direction": "downstream"}).json()
    )
    out = CliRunner().invoke(app, ["lineage", REQUEST_ID], env={**env, "COLUMNS": "200"})
    assert out.exit_code == 0, out.output
    assert "web revision 1" in out.output and "feature view sales v1" in out.output
    out = CliRunner().invoke(app, ["lineage", "nothing-called-this"], env=env)
    assert out.exit_code == 2 and "nothing in the lineage graph" in out.output


def test_with_auth_viewers_read_and_editors_send_events(tmp_path):
    from openlineage.client import OpenLineageClient
    from openlineage.client.transport.http import HttpConfig, HttpTransport

    from modelyard.auth.service import AuthService
    from modelyard.config import Settings
    from modelyard.tracking.backends import database_for

    home = tmp_path / "yard"
    url, _, process = start_server(home, "--auth")
    try:
        auth = AuthService(database_for(Settings(home=home)))
        auth.create_user("alice", "editor")
        auth.create_user("victor", "viewer")
        editor, viewer = auth.create_token("alice").token, auth.create_token("victor").token
        with httpx.Client(base_url=url, timeout=30.0) as client:
            assert client.get("/api/v1/lineage/web").status_code == 401
            seen = client.get("/api/v1/lineage/web", headers={"Authorization": f"Bearer {viewer}"})
            assert_error(seen, 404, "RESOURCE_DOES_NOT_EXIST", "id")  # read, found nothing
            sent = client.post(
                "/api/v1/lineage", json=GOOD, headers={"Authorization": f"Bearer {viewer}"}
            )
            assert sent.status_code == 403, sent.text
        # an integration configured with an API key (OpenLineage's own auth option)
        config = HttpConfig.from_dict({"url": url, "auth": {"type": "api_key", "apiKey": editor}})
        ol = OpenLineageClient(transport=HttpTransport(config))
        from openlineage.client.event_v2 import Job, Run, RunEvent, RunState

        ol.emit(
            RunEvent(
                eventType=RunState.START,
                eventTime="2026-12-06T08:00:00+00:00",
                run=Run(runId=str(uuid.uuid4())),
                job=Job(namespace="airflow", name="nightly"),
                producer="https://github.com/apache/airflow",
            )
        )
        ol.close()
    finally:
        stop_server(process)
