"""Several server processes share one PostgreSQL store (and one artifact folder): what is
written through one is at once visible through the others, concurrent writers lose
nothing, and races on unique names end in a clean 4xx for the loser, never a 5xx.

Two real ``modelyard server`` processes are started at the same time on a fresh database,
so they also race to create the schema (serialised by an advisory lock).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from tests.server.conftest import start_server, stop_server

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

V1 = "/api/v1"
MLFLOW = "/api/2.0/mlflow"
WRITERS = 8
RUNS_PER_WRITER = 4
PER_CALL_POINTS = 15
BATCH_POINTS = 200


@pytest.fixture
def two_servers(postgres_uri: str, tmp_path: Path) -> Iterator[list[str]]:
    artifacts = tmp_path / "shared-artifacts"
    args = ("--store-uri", postgres_uri, "--artifacts-uri", str(artifacts))
    with ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(start_server, tmp_path / f"yard-{i}", *args) for i in range(2)]
    started, errors = [], []
    for future in futures:
        try:
            started.append(future.result())
        except Exception as exc:  # the other one must still be stopped
            errors.append(exc)
    try:
        if errors:
            raise errors[0]
        yield [url for url, _, _ in started]
    finally:
        for _, _, process in started:
            stop_server(process)


def write_runs(urls: list[str], experiment_id: str, writer: int) -> list[str]:
    """Create runs through one server and log to them through both, alternating."""
    clients = [httpx.Client(base_url=url, timeout=60.0) for url in urls]
    run_ids = []
    try:
        for r in range(RUNS_PER_WRITER):
            home = clients[(writer + r) % 2]
            created = home.post(f"{V1}/runs", json={"experiment_id": experiment_id})
            assert created.status_code == 201, created.text
            run_id = created.json()["run_id"]
            for step in range(PER_CALL_POINTS):
                answer = clients[step % 2].post(
                    f"{MLFLOW}/runs/log-metric",
                    json={"run_id": run_id, "key": "per_call", "value": step, "timestamp": 1,
                          "step": step},
                )  # fmt: skip
                assert answer.status_code == 200, answer.text
            batch = {
                "metrics": [
                    {"key": "batched", "value": i / 7, "timestamp": 1, "step": i}
                    for i in range(BATCH_POINTS)
                ],
                "params": {"writer": str(writer), "run": str(r)},
                "tags": {"via": "both"},
            }
            for client in clients:  # the same batch through each server: stored once
                answer = client.post(f"{V1}/runs/{run_id}/batch", json=batch)
                assert answer.status_code == 200, answer.text
            run_ids.append(run_id)
    finally:
        for client in clients:
            client.close()
    return run_ids


def test_what_one_server_writes_the_other_reads_and_nothing_is_lost(two_servers, unique):
    a, b = (httpx.Client(base_url=url, timeout=60.0) for url in two_servers)
    with a, b:
        experiment = a.post(f"{V1}/experiments", json={"name": f"shared-{unique}"}).json()
        exp_id = experiment["experiment_id"]
        assert b.get(f"{V1}/experiments/{exp_id}").json() == experiment

        with ThreadPoolExecutor(WRITERS) as pool:
            futures = [pool.submit(write_runs, two_servers, exp_id, w) for w in range(WRITERS)]
            run_ids = {run_id for f in futures for run_id in f.result()}
        assert len(run_ids) == WRITERS * RUNS_PER_WRITER

        search = {"experiment_ids": [exp_id], "max_results": 1000}
        for client in (a, b):
            found = client.post(f"{V1}/runs/search", json=search).json()["runs"]
            assert {r["run_id"] for r in found} == run_ids
            for run in found:
                assert run["metrics"]["per_call"]["step"] == PER_CALL_POINTS - 1
                assert run["metrics"]["batched"]["step"] == BATCH_POINTS - 1
                assert run["tags"]["via"] == "both" and set(run["params"]) == {"writer", "run"}
        for run_id in run_ids:
            for key, count in (("per_call", PER_CALL_POINTS), ("batched", BATCH_POINTS)):
                history = b.get(f"{V1}/runs/{run_id}/metrics/{key}").json()
                assert [p["step"] for p in history["points"]] == list(range(count)), run_id
            assert a.get(f"{V1}/runs/{run_id}").json() == b.get(f"{V1}/runs/{run_id}").json()

        victim = sorted(run_ids)[0]
        assert a.delete(f"{V1}/runs/{victim}").status_code == 204
        assert b.get(f"{V1}/runs/{victim}").json()["lifecycle_stage"] == "deleted"


def test_racing_to_create_one_name_leaves_one_winner_and_no_5xx(two_servers, unique):
    barrier = threading.Barrier(8)
    name = f"race-{unique}"

    def create(i: int) -> httpx.Response:
        with httpx.Client(base_url=two_servers[i % 2], timeout=60.0) as client:
            barrier.wait()
            return client.post(f"{MLFLOW}/experiments/create", json={"name": name})

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(create, range(8)))
    statuses = sorted(r.status_code for r in answers)
    assert statuses == [200] + [400] * 7, [r.text for r in answers]
    assert {r.json()["error_code"] for r in answers if r.status_code == 400} == {
        "RESOURCE_ALREADY_EXISTS"
    }


def test_an_artifact_uploaded_through_one_server_downloads_through_the_other(two_servers):
    a, b = (httpx.Client(base_url=url, timeout=60.0) for url in two_servers)
    with a, b:
        run = a.post(f"{V1}/runs", json={"experiment_id": "0"}).json()
        root = run["artifact_uri"].split(":/", 1)[1]
        path = f"/api/2.0/mlflow-artifacts/artifacts/{root}/model/weights.bin"
        payload = bytes(range(256)) * 64
        assert a.put(path, content=payload).status_code == 200
        assert b.get(path).content == payload
        listing = b.get(f"{V1}/runs/{run['run_id']}/artifacts", params={"path": "model"}).json()
        assert listing["files"] == [
            {"path": "model/weights.bin", "is_dir": False, "file_size": len(payload)}
        ]
