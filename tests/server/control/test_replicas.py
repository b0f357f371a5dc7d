"""Many replicas on one database stay consistent: three ``modelyard server`` processes
(one with ``--workers 2``) and a writer outside them that writes through the store.

After each acknowledged write — through server A, through server B, or straight into the
store — every server, each worker (the one with two workers is asked several times, each on
a fresh connection, so both answer), answers ``runs/get`` and ``runs/search`` with the new
state, never an older revision: the rendered-run caches of four processes, and the
background renderer of the server that took the write, must all notice it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from tests.server.conftest import start_server, stop_server
from tests.server.control.test_run_json_cache import cached_answer, fresh_answer

from modelyard.config import Settings
from modelyard.errors import InvalidState
from modelyard.server.control.run_json_cache import RunJsonCache
from modelyard.store.engine import Database
from modelyard.tracking import revisions
from modelyard.tracking.client import TrackingClient

MLFLOW = "/api/2.0/mlflow"
#: Kinds of write: six to one run (``write``), then the experiment's deletion or restore.
KINDS = 7
WRITES = 3 * KINDS * 2  # each writer makes each kind of write twice
RUNS = 3
#: Reads per server after each write, each on a fresh connection: the server with two
#: workers gets more, so that both of them answer.
READS = (1, 1, 3)


#: Tags the writers set themselves, left out of what is compared (they never change).
SYSTEM = ("mlflow.", "modelyard.")


@dataclass(frozen=True)
class State:
    """What a run looks like to a client, as far as the writes here change it."""

    name: str
    stage: str = "active"
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)


def state_of(run: dict[str, Any]) -> State:
    data = run.get("data", {})
    return State(
        name=run["info"]["run_name"],
        stage=run["info"]["lifecycle_stage"],
        params={p["key"]: p["value"] for p in data.get("params", [])},
        tags={
            t["key"]: t["value"] for t in data.get("tags", []) if not t["key"].startswith(SYSTEM)
        },
        metrics={m["key"]: m["value"] for m in data.get("metrics", [])},
    )


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_uri(request, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'meta.db'}"
    return str(request.getfixturevalue("postgres_uri"))


@pytest.fixture
def three_servers(store_uri: str, tmp_path: Path) -> Iterator[list[str]]:
    """Servers A, B and C (two workers) on one store. A and B start at once on the empty
    database (and race to create the schema); C then, as a later replica would (starting
    all three at once on two loaded cores could outlast the start-up timeout)."""
    args = ("--store-uri", store_uri, "--artifacts-uri", str(tmp_path / "artifacts"))
    started: list[tuple[str, Path, Any]] = []
    try:
        with ThreadPoolExecutor(2) as pool:
            futures = [pool.submit(start_server, tmp_path / f"yard-{i}", *args) for i in (0, 1)]
        errors = []
        for future in futures:
            try:
                started.append(future.result())
            except Exception as exc:  # the other must still be stopped
                errors.append(exc)
        if errors:
            raise errors[0]
        started.append(start_server(tmp_path / "yard-2", *args, "--workers", "2"))
        yield [url for url, _, _ in started]
    finally:
        for _, _, process in started:
            stop_server(process)


class HttpWriter:
    """Writes through one server's MLflow API; each answer must be a 200."""

    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=url, timeout=60.0)

    def post(self, path: str, body: dict[str, Any]) -> None:
        answer = self.http.post(f"{MLFLOW}/{path}", json=body)
        assert answer.status_code == 200, (path, answer.text)

    def log_metric(self, run_id: str, key: str, value: float, step: int) -> None:
        body = {"run_id": run_id, "key": key, "value": value, "timestamp": 1, "step": step}
        self.post("runs/log-metric", body)

    def log_param(self, run_id: str, key: str, value: str) -> None:
        self.post("runs/log-parameter", {"run_id": run_id, "key": key, "value": value})

    def set_tag(self, run_id: str, key: str, value: str) -> None:
        self.post("runs/set-tag", {"run_id": run_id, "key": key, "value": value})

    def delete_tag(self, run_id: str, key: str) -> None:
        self.post("runs/delete-tag", {"run_id": run_id, "key": key})

    def rename(self, run_id: str, name: str) -> None:
        self.post("runs/update", {"run_id": run_id, "run_name": name})

    def delete_run(self, run_id: str) -> None:
        self.post("runs/delete", {"run_id": run_id})

    def restore_run(self, run_id: str) -> None:
        self.post("runs/restore", {"run_id": run_id})

    def set_experiment_stage(self, experiment_id: str, stage: str) -> None:
        verb = "delete" if stage == "deleted" else "restore"
        self.post(f"experiments/{verb}", {"experiment_id": experiment_id})


class StoreWriter:
    """Writes straight into the store, as a training script on the database would: no
    server hears of it."""

    def __init__(self, client: TrackingClient) -> None:
        self.client = client

    def log_metric(self, run_id: str, key: str, value: float, step: int) -> None:
        self.client.log_metric(run_id, key, value, step=step, timestamp=1)

    def log_param(self, run_id: str, key: str, value: str) -> None:
        self.client.log_param(run_id, key, value)

    def set_tag(self, run_id: str, key: str, value: str) -> None:
        self.client.set_tag(run_id, key, value)

    def delete_tag(self, run_id: str, key: str) -> None:
        self.client.delete_tag(run_id, key)

    def rename(self, run_id: str, name: str) -> None:
        self.client.update_run(run_id, name=name)

    def delete_run(self, run_id: str) -> None:
        self.client.delete_run(run_id)

    def restore_run(self, run_id: str) -> None:
        self.client.restore_run(run_id)

    def set_experiment_stage(self, experiment_id: str, stage: str) -> None:
        if stage == "deleted":
            self.client.delete_experiment(experiment_id)
        else:
            self.client.restore_experiment(experiment_id)


Writer = HttpWriter | StoreWriter


def write(writer: Writer, run_id: str, was: State, i: int, kind: int) -> State:
    """The ``i``-th write, of ``kind`` (0–5), to a run that looks like ``was``; what the run
    looks like afterwards."""
    if was.stage == "deleted":  # only a rename or a restore reaches a deleted run
        if i % 2:
            writer.rename(run_id, f"name-{i}")
            return replace(was, name=f"name-{i}")
        writer.restore_run(run_id)
        return replace(was, stage="active")
    if kind == 0:
        writer.log_metric(run_id, "loss", float(i), step=i)
        return replace(was, metrics={**was.metrics, "loss": float(i)})
    if kind == 1:
        writer.log_param(run_id, f"p{i}", str(i))
        return replace(was, params={**was.params, f"p{i}": str(i)})
    if kind == 2:
        writer.set_tag(run_id, "seq", str(i))
        return replace(was, tags={**was.tags, "seq": str(i)})
    if kind == 3 and "seq" in was.tags:
        writer.delete_tag(run_id, "seq")
        return replace(was, tags={k: v for k, v in was.tags.items() if k != "seq"})
    if kind in (3, 4):
        writer.rename(run_id, f"name-{i}")
        return replace(was, name=f"name-{i}")
    writer.delete_run(run_id)
    return replace(was, stage="deleted")


def move_experiment(
    writer: Writer, experiment_id: str, runs: dict[str, State], stage: str
) -> dict[str, State]:
    """Delete or restore the experiment: its runs follow it, every one of them (a run
    deleted by itself is restored with its experiment, as in MLflow)."""
    writer.set_experiment_stage(experiment_id, stage)
    return {run_id: replace(state, stage=stage) for run_id, state in runs.items()}


def reader(url: str) -> httpx.Client:
    """A client that opens a fresh connection for every request (none is kept alive), so
    that the requests to a server with several workers spread over them."""
    limits = httpx.Limits(max_keepalive_connections=0)
    return httpx.Client(base_url=url, timeout=60.0, limits=limits)


def what_it_answers(http: httpx.Client, experiment_id: str, run_id: str) -> tuple[State, dict]:
    """``runs/get`` of ``run_id`` and ``runs/search`` of every run of the experiment."""
    got = http.get(f"{MLFLOW}/runs/get", params={"run_id": run_id})
    assert got.status_code == 200, got.text
    search = {"experiment_ids": [experiment_id], "run_view_type": "ALL"}
    found = http.post(f"{MLFLOW}/runs/search", json=search)
    assert found.status_code == 200, found.text
    runs = {r["info"]["run_id"]: state_of(r) for r in found.json().get("runs", [])}
    return state_of(got.json()["run"]), runs


@pytest.mark.slow
def test_every_replica_answers_each_acknowledged_write_at_once(
    three_servers: list[str], store_uri: str, tmp_path: Path
) -> None:
    store = TrackingClient.from_settings(Settings(home=tmp_path / "writer", store_uri=store_uri))
    a, b = HttpWriter(three_servers[0]), HttpWriter(three_servers[1])
    experiment_id = store.create_experiment("replicas")
    expected: dict[str, State] = {}
    for r in range(RUNS):
        run_id = store.create_run(experiment_id, run_name=f"run-{r}").info.run_id
        expected[run_id] = State(name=f"run-{r}")
    writers: list[tuple[str, Writer]] = [("A", a), ("B", b), ("the store", StoreWriter(store))]
    readers = [reader(url) for url in three_servers]
    run_ids = sorted(expected)
    stage = "active"  # the experiment's
    try:
        for i in range(WRITES):
            # Each writer makes each kind of write, to every run in turn.
            by, writer = writers[i % 3]
            run_id = run_ids[(i + i // 3) % RUNS]
            kind = (i // 3) % KINDS
            if kind == KINDS - 1:  # the experiment, deleted at one turn, restored at the next
                stage = "active" if stage == "deleted" else "deleted"
                expected = move_experiment(writer, experiment_id, expected, stage)
            else:
                expected[run_id] = write(writer, run_id, expected[run_id], i, kind)
            for http, reads in zip(readers, READS, strict=True):
                for _ in range(reads):
                    got, found = what_it_answers(http, experiment_id, run_id)
                    where = f"write {i} by {by}, read from {http.base_url}"
                    assert got == expected[run_id], where
                    assert found == expected, where
    finally:
        for http in (a.http, b.http, *readers):
            http.close()
        store.close()


def wait_for_a_lock_wait(db: Database, sessions: int = 1, timeout_s: float = 60.0) -> None:
    """Until ``sessions`` sessions of this database wait on a lock (PostgreSQL)."""
    waiting = text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with db.engine.connect() as conn:
            if conn.execute(waiting).scalar() >= sessions:
                return
        time.sleep(0.01)
    raise AssertionError(f"fewer than {sessions} sessions waited on a lock within {timeout_s}s")


@pytest.mark.postgres
def test_a_run_created_while_its_experiment_is_deleted_is_never_served_stale(
    postgres_uri: str, tmp_path: Path
) -> None:
    """PostgreSQL reads each statement of a transaction afresh. Deleting an experiment
    marks its runs deleted and bumps their revisions in two statements: a run committed
    between them (created by a training job that had just checked the experiment) must be
    bumped if it is marked, or a cache that rendered it active keeps serving it so."""
    client = TrackingClient.from_settings(Settings(home=tmp_path / "yard", store_uri=postgres_uri))
    experiment_id = client.create_experiment("doomed")
    busy = client.create_run(experiment_id).info.run_id
    db: Database = client.store.db  # type: ignore[attr-defined]
    cache = RunJsonCache()
    with ThreadPoolExecutor(1) as pool:
        with db.write() as conn:  # a write to `busy` still under way: the deletion waits on it
            conn.execute(revisions.bump_run(db.dialect), {"run_id": busy})
            deleting = pool.submit(client.delete_experiment, experiment_id)
            wait_for_a_lock_wait(db)
            client.create_run(experiment_id)  # committed while the deletion is under way
            cached_answer(client, cache, experiment_id)  # the new run rendered as it is now
        deleting.result()
    assert cached_answer(client, cache, experiment_id) == fresh_answer(client, experiment_id)


@pytest.mark.postgres
@pytest.mark.parametrize("change", ["rename", "delete", "purge"])
def test_a_run_changed_while_its_experiment_is_deleted_never_deadlocks(
    postgres_uri: str, tmp_path: Path, change: str
) -> None:
    """Every write that changes a run's row and its revision takes them in one order (the
    run's row first), so a run renamed, deleted or purged while its experiment is deleted
    or restored waits for it instead of deadlocking with it (PostgreSQL would abort one),
    then does what it finds possible."""
    client = TrackingClient.from_settings(Settings(home=tmp_path / "yard", store_uri=postgres_uri))
    experiment_id = client.create_experiment("busy")
    run_ids = [client.create_run(experiment_id).info.run_id for _ in range(4)]
    if change == "purge":  # restoring the experiment moves the deleted run: purge races it
        for run_id in run_ids:
            client.delete_run(run_id)
        client.delete_experiment(experiment_id)
    moving = client.restore_experiment if change == "purge" else client.delete_experiment
    changes = {
        "rename": lambda run_id: client.update_run(run_id, name="renamed"),
        "delete": client.delete_run,
        "purge": client.store.purge_run,  # type: ignore[attr-defined]
    }
    db: Database = client.store.db  # type: ignore[attr-defined]
    with ThreadPoolExecutor(1 + len(run_ids)) as pool:
        with db.write() as conn:  # holds one run's revision: the move waits there
            conn.execute(revisions.bump_run(db.dialect), {"run_id": run_ids[0]})
            moved = pool.submit(moving, experiment_id)
            wait_for_a_lock_wait(db)
            changed = [pool.submit(changes[change], run_id) for run_id in run_ids[1:]]
            wait_for_a_lock_wait(db, sessions=len(run_ids))
        moved.result()
        for future in changed:
            if change == "purge":  # it waited for the restore, and the run is active now
                with pytest.raises(InvalidState, match="not deleted"):
                    future.result()
            else:
                future.result()  # not DeadlockDetected
