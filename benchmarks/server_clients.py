"""The client side of ``tracking_server.py``: one workload, one kind of client, one process.

``tracking_server.py`` runs each phase as a fresh process (``python server_clients.py
PHASE --via CLIENT --targets floor=URL,modelyard=URL,mlflow=URL``), so no client state
leaks from one phase to the next. Within a phase the targets are *interleaved* — a block
of calls to one, then the next, in rotating order — with one client object per target:
on a shared machine whose load drifts by the minute, every target sees the same load,
and the ratios stay meaningful. A phase prints one JSON object, keyed by target.

``scale.py`` instead starts its 16 or 64 client processes once (``python server_clients.py
worker --via CLIENT``) and hands each phase to all of them at once (``ingest``: batched
points into a run of its own; ``create``: runs with their first params and metrics).

Clients (``--via``):

* ``mlflow``: the unmodified ``MlflowClient`` (or the fluent API) — what users run;
* ``raw``: the leanest keep-alive HTTP/1.1 client (``http.client``) sending the same
  MLflow REST JSON to every target: what a *server* costs, without the mlflow client's
  own overhead (protobuf conversion: ~50 ms of client time per 1,000-point batch);
* ``ours``: modelyard's ``TrackingClient`` with ``tracking_uri`` (synchronous), and
  ``ours-async``, its background logging mode.

The target named ``floor`` is a trivial server answering canned bodies at once: what the
client costs by itself. Ids in its answers are not real, so nothing is read back from it.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import shutil
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

FILTER = "metrics.rmse < 0.5 and params.model = 'gbm'"
API = "/api/2.0/mlflow"
MODELS = ("gbm", "ridge", "rf", "lasso")
METRIC_NAMES = ("rmse", "mae", "r2", "mape", "loss")
FAKE_RUN = "0" * 32
BLOCK = 50  # calls to one target before moving to the next
Targets = list[tuple[str, str]]


def search_body(experiment_id: str) -> dict[str, Any]:
    """What ``MlflowClient.search_runs([e], FILTER, max_results=1000)`` sends."""
    return {
        "experiment_ids": [experiment_id],
        "filter": FILTER,
        "run_view_type": "ACTIVE_ONLY",
        "max_results": 1000,
        "order_by": [],
    }


class RawClient:
    """One keep-alive connection, JSON in and out, Nagle off; raises on any non-200."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80)
        self.conn.connect()
        self.conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def send(self, method: str, path: str, body: bytes | None = None) -> Any:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        self.conn.request(method, path, body=body, headers=headers)
        response = self.conn.getresponse()
        data = response.read()
        if response.status != 200:
            raise RuntimeError(f"{method} {path}: {response.status} {data[:300]!r}")
        return json.loads(data) if data else {}

    def post(self, path: str, body: dict[str, Any]) -> Any:
        return self.send("POST", API + path, json.dumps(body).encode())


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples) or [0.0]
    return {
        "p50_ms": ordered[len(ordered) // 2] * 1000,
        "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
    }


def rotations(targets: Targets, rounds: int) -> list[list[tuple[str, str]]]:
    """The target order of each round, rotated so no target always goes first."""
    return [targets[r % len(targets) :] + targets[: r % len(targets)] for r in range(rounds)]


def in_blocks(targets: Targets, n: int, block: int) -> list[tuple[int, tuple[str, str]]]:
    """``(index, target)`` for ``n`` operations per target, ``block`` at a time per target,
    the target order rotating each round: load drift is shared, while one server's
    after-work (MLflow's 15 processes settling) does not land on the other's every call."""
    out = []
    rounds = -(-n // block)
    for r, order in enumerate(rotations(targets, rounds)):
        for target in order:
            out.extend((i, target) for i in range(r * block, min(n, (r + 1) * block)))
    return out


def interleaved(targets: Targets, calls: dict[str, Callable[[int], Any]], n: int) -> dict:
    """Time ``n`` calls per target, ``BLOCK`` at a time per target, rotating."""
    samples: dict[str, list[float]] = {name: [] for name, _ in targets}
    rounds = max(1, n // BLOCK)
    for r, order in enumerate(rotations(targets, rounds)):
        for name, _ in order:
            call = calls[name]
            for i in range(r * BLOCK, (r + 1) * BLOCK):
                start = time.perf_counter()
                call(i)
                samples[name].append(time.perf_counter() - start)
    return {name: percentiles(s) for name, s in samples.items()}


# --------------------------------------------------------------------------- clients
def mlflow_client(url: str) -> Any:
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=url)


def our_client(url: str, home: Path) -> Any:
    from modelyard.config import Settings
    from modelyard.tracking.client import TrackingClient

    port = urlsplit(url).port
    return TrackingClient.from_settings(Settings(home=home / f"client-{port}", tracking_uri=url))


def new_run(via: str, client: Any, name: str, label: str) -> str:
    if name == "floor":
        return FAKE_RUN
    if via == "raw":
        experiment = client.post("/experiments/create", {"name": f"{label}-{time.time_ns()}"})
        return raw_run(client, experiment["experiment_id"])
    experiment = client.create_experiment(f"{label}-{time.time_ns()}")
    return str(client.create_run(experiment).info.run_id)


def raw_run(raw: RawClient, experiment_id: str) -> str:
    created = raw.post(
        "/runs/create",
        {"experiment_id": experiment_id, "user_id": "bench", "start_time": time.time_ns() // 10**6},
    )
    return str(created["run"]["info"]["run_id"])


def trial_run(via: str, client: Any, experiment: str, i: int, *, floor: bool = False) -> str:
    """Create run ``i`` with what a sweep's trial logs first, one batch of 5 metrics and 5
    params; its id. The ``floor`` stores nothing: the mlflow client's batch goes to
    ``FAKE_RUN`` there (the raw client sends the id the floor answered)."""
    metrics = [(k, ((i * 7919 + j) % 1000) / 1000) for j, k in enumerate(METRIC_NAMES)]
    params = [("model", MODELS[i % 4])] + [(f"p{j}", str(i % (j + 3))) for j in range(4)]
    if via == "mlflow":
        from mlflow.entities import Metric, Param

        run_id = str(client.create_run(experiment).info.run_id)
        client.log_batch(
            FAKE_RUN if floor else run_id,
            metrics=[Metric(k, v, 1, 0) for k, v in metrics],
            params=[Param(k, v) for k, v in params],
        )
        return run_id
    run_id = raw_run(client, experiment)
    client.post("/runs/log-batch", {
        "run_id": run_id,
        "metrics": [{"key": k, "value": v, "timestamp": 1, "step": 0} for k, v in metrics],
        "params": [{"key": k, "value": v} for k, v in params],
    })  # fmt: skip
    return run_id


def clients_for(via: str, targets: Targets, home: Path) -> dict[str, Any]:
    if via == "mlflow":
        return {name: mlflow_client(url) for name, url in targets}
    if via == "raw":
        return {name: RawClient(url) for name, url in targets}
    return {name: our_client(url, home) for name, url in targets}


# --------------------------------------------------------------------------- phases
def per_call(via: str, sizes: dict[str, Any], targets: Targets) -> dict[str, Any]:
    """One ``log_metric`` per request, durable when it returns (except ``ours-async``)."""
    home = Path(tempfile.mkdtemp(prefix="modelyard-bench-client-"))
    try:
        clients = clients_for(via, targets, home)
        runs = {name: new_run(via, clients[name], name, "per-call") for name, _ in targets}
        calls: dict[str, Callable[[int], Any]] = {}
        for name, _ in targets:
            client, run_id = clients[name], runs[name]
            if via == "mlflow":
                calls[name] = lambda i, c=client, r=run_id: c.log_metric(
                    r, f"m{i % 10}", i * 0.1, step=i // 10
                )
            elif via == "raw":
                calls[name] = lambda i, c=client, r=run_id: c.post("/runs/log-metric", {
                    "run_id": r, "key": f"m{i % 10}", "value": i * 0.1,
                    "timestamp": 1_700_000_000_000 + i, "step": i // 10,
                })  # fmt: skip
            else:
                calls[name] = lambda i, c=client, r=run_id: c.log_metric(
                    r, f"m{i % 10}", i * 0.1, step=i // 10, synchronous=via == "ours"
                )
        for name, _ in targets:  # warm every connection and code path
            for i in range(sizes["warmup"]):
                calls[name](10**6 + i)
        out = interleaved(targets, calls, sizes["per_call"])
        if via == "ours-async":
            for name, _ in targets:
                start = time.perf_counter()
                clients[name].flush()
                out[name]["flush_s"] = time.perf_counter() - start
        return out
    finally:
        shutil.rmtree(home, ignore_errors=True)


def batch(via: str, sizes: dict[str, Any], targets: Targets) -> dict[str, Any]:
    """``log_batch`` of 1,000 points a call, targets alternating batch by batch."""
    n = sizes["batch_points"]
    rows = [(f"m{i % 10}", i * 0.1, 1_700_000_000_000 + i, i // 10) for i in range(n)]
    home = Path(tempfile.mkdtemp(prefix="modelyard-bench-client-"))
    clients = clients_for(via, targets, home)
    runs = {name: new_run(via, clients[name], name, "batch") for name, _ in targets}
    send: dict[str, Callable[[int], Any]] = {}
    for name, _ in targets:
        client, run_id = clients[name], runs[name]
        if via == "mlflow":
            from mlflow.entities import Metric

            points = [Metric(*row) for row in rows]
            send[name] = lambda o, c=client, r=run_id, p=points: c.log_batch(
                r, metrics=p[o : o + 1000]
            )
        elif via == "raw":
            bodies = {  # serialised up front: this measures the server
                o: json.dumps({"run_id": run_id, "metrics": [
                    {"key": k, "value": v, "timestamp": t, "step": s}
                    for k, v, t, s in rows[o : o + 1000]
                ]}).encode()
                for o in range(0, n, 1000)
            }  # fmt: skip
            send[name] = lambda o, c=client, b=bodies: c.send("POST", f"{API}/runs/log-batch", b[o])
        else:
            from modelyard.tracking.entities import Metric as OurMetric

            points = [OurMetric(*row) for row in rows]
            send[name] = lambda o, c=client, r=run_id, p=points: c.log_batch(
                r, metrics=p[o : o + 1000]
            )
    spent = dict.fromkeys(send, 0.0)
    for r, (name, _) in in_blocks(targets, n // 1000, 10):
        start = time.perf_counter()
        send[name](r * 1000)
        spent[name] += time.perf_counter() - start
    out = {}
    for name, _ in targets:
        stored = None if name == "floor" else len(stored_history(via, clients[name], runs[name]))
        out[name] = {"points_per_s": n / spent[name], "stored_m0": stored, "expected_m0": n // 10}
    shutil.rmtree(home, ignore_errors=True)
    return out


def stored_history(via: str, client: Any, run_id: str, key: str = "m0") -> list[Any]:
    if via == "raw":
        path = f"{API}/metrics/get-history?run_id={run_id}&metric_key={key}&max_results=10000000"
        return list(client.send("GET", path).get("metrics", []))
    return list(client.get_metric_history(run_id, key))


def runs(via: str, sizes: dict[str, Any], targets: Targets) -> dict[str, Any]:
    """Create runs (each: create + one batch of 5 metrics, 5 params), then search them.

    The floor cannot search what it never stored: it is given the modelyard answer to
    replay (``/__canned``), so its figure is what the client spends on that answer.
    """
    clients = clients_for(via, targets, Path(tempfile.gettempdir()))
    experiments: dict[str, str] = {}
    for name, _ in targets:
        label = f"search-{time.time_ns()}"
        client = clients[name]
        if via == "mlflow":
            experiments[name] = str(client.create_experiment(label))
        else:
            experiments[name] = client.post("/experiments/create", {"name": label})["experiment_id"]

    spent = {name: 0.0 for name, _ in targets}
    for i, (name, _) in in_blocks(targets, sizes["runs"], BLOCK):
        start = time.perf_counter()
        trial_run(via, clients[name], experiments[name], i, floor=name == "floor")
        spent[name] += time.perf_counter() - start

    def search(name: str) -> int:
        client = clients[name]
        if via == "mlflow":
            return len(client.search_runs([experiments[name]], FILTER, max_results=1000))
        body = json.dumps(search_body(experiments[name])).encode()
        return len(client.send("POST", f"{API}/runs/search", body).get("runs", []))

    # The first search of the new runs, timed on its own before anything else searches
    # them (modelyard keeps each run's rendered JSON until the run changes, and renders
    # runs written through it in the background). The floor is then handed the answer.
    hits, first = {}, {}
    order = [name for name, _ in targets if name != "floor"] + ["floor"]
    urls = dict(targets)
    for name in order:
        if name not in urls:
            continue
        if name == "floor" and "modelyard" in urls:
            body = json.dumps(search_body(experiments["modelyard"])).encode()
            answer = RawClient(urls["modelyard"]).send("POST", f"{API}/runs/search", body)
            canned = json.dumps(answer).encode()
            RawClient(urls["floor"]).send("POST", "/__canned/runs/search", canned)
        start = time.perf_counter()
        hits[name] = search(name)
        first[name] = time.perf_counter() - start
    samples: dict[str, list[float]] = {name: [] for name, _ in targets}
    for _, (name, _) in in_blocks(targets, sizes["search_repeats"], 5):
        start = time.perf_counter()
        search(name)
        samples[name].append(time.perf_counter() - start)
    return {
        name: {
            "create_s": spent[name],
            "search_ms": statistics.median(samples[name]) * 1000,
            "search_first_ms": first[name] * 1000,
            "hits": hits[name],
        }
        for name, _ in targets
    }


def empty_run(via: str, sizes: dict[str, Any], targets: Targets) -> dict[str, Any]:
    """``with mlflow.start_run(): pass`` — every request a fluent run makes."""
    import mlflow

    experiments = {}
    for name, url in targets:
        mlflow.set_tracking_uri(url)
        experiments[name] = mlflow.set_experiment(f"empty-{time.time_ns()}").experiment_id
    samples: dict[str, list[float]] = {name: [] for name, _ in targets}
    for i, order in enumerate(rotations(targets, 5 + sizes["empty_runs"])):
        for name, url in order:
            mlflow.set_tracking_uri(url)
            start = time.perf_counter()
            with mlflow.start_run(experiment_id=experiments[name]):
                pass
            if i >= 5:
                samples[name].append(time.perf_counter() - start)
    return {name: {"median_ms": statistics.median(s) * 1000} for name, s in samples.items()}


def concurrent(via: str, sizes: dict[str, Any], targets: Targets) -> dict[str, Any]:
    """One of the concurrent clients: log per call until the deadline, after a "go"."""
    ((_, url),) = targets
    client = mlflow_client(url)
    print("ready", flush=True)  # imported and built: the slow part of starting
    sys.stdin.readline()  # "go"
    deadline = time.perf_counter() + sizes["concurrent_s"]
    # Created after "go", so no connection sits idle across the server's keep-alive
    # timeout while the others start (a stale connection is a client-side error when
    # retries are off).
    run_id = client.create_run(os.environ["BENCH_EXPERIMENT_ID"]).info.run_id
    failed: list[int] = []
    messages: list[str] = []
    samples: list[float] = []
    step = 0
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        try:
            client.log_metric(run_id, "m", step * 0.5, step=step, timestamp=1)
            samples.append(time.perf_counter() - start)
        except Exception as exc:
            failed.append(step)
            if len(messages) < 3:
                messages.append(f"step {step}: {type(exc).__name__}: {str(exc)[:300]}")
        step += 1
    return {
        "run_id": run_id,
        "calls": step,
        "failed": failed,
        "messages": messages,
        **percentiles(samples),
    }


def verify(via: str, sizes: dict[str, Any], targets: Targets) -> dict[str, Any]:
    """Stored steps of metric ``m`` of each run in ``BENCH_RUN_IDS``."""
    ((_, url),) = targets
    raw = RawClient(url)
    return {
        "stored": {
            run_id: sorted({int(p.get("step", 0)) for p in stored_history("raw", raw, run_id, "m")})
            for run_id in os.environ["BENCH_RUN_IDS"].split(",")
        }
    }


# --------------------------------------------------------------------------- scale.py
def worker(via: str) -> None:
    """A long-lived client process of ``scale.py``: imports and builds once, then runs
    one command a line from stdin (JSON: ``phase`` "ingest" or "create", ``url``,
    ``experiment_id``, ``start_at`` (epoch seconds), ``seconds``) and prints one JSON line
    each. Every worker of a phase is handed the same ``start_at``, so they start together
    however long it took to hand the commands out."""
    if via == "mlflow":
        import mlflow.entities  # noqa: F401  (the slow part of starting: before "ready")
        from mlflow.tracking import MlflowClient  # noqa: F401
    print("ready", flush=True)
    for line in sys.stdin:
        command = json.loads(line)
        work = SCALE_PHASES[command["phase"]]
        print(json.dumps(work(via, command)), flush=True)


def scale_client(via: str, url: str) -> Any:
    if via == "mlflow":
        return mlflow_client(url)
    client = RawClient(url)
    client.conn.timeout = 300.0  # a slow answer is a latency, not an error
    client.conn.sock.settimeout(300.0)
    return client


def _wait_until(start_at: float) -> float:
    time.sleep(max(0.0, start_at - time.time()))
    return time.perf_counter()


def _failure(messages: list[str], what: str, exc: Exception) -> None:
    if len(messages) < 3:
        messages.append(f"{what}: {type(exc).__name__}: {str(exc)[:300]}")


#: A batch of ``scale.py``'s ingest: 100 steps of each of 10 keys, 1,000 points.
SCALE_KEYS = tuple(f"m{k}" for k in range(10))
SCALE_STEPS = 100


def scale_points(b: int) -> list[tuple[str, float, int, int]]:
    """Batch ``b``'s points ``(key, value, timestamp, step)``: steps ``b*100 .. b*100+99``."""
    steps = range(b * SCALE_STEPS, (b + 1) * SCALE_STEPS)
    return [
        (k, s * 0.5 + j, 1_700_000_000_000 + s, s) for j, k in enumerate(SCALE_KEYS) for s in steps
    ]


def ingest(via: str, command: dict[str, Any]) -> dict[str, Any]:
    """Create a run, then ``log_batch`` 1,000 points a call until the deadline; every
    acknowledged batch's index is returned, for the count afterwards.

    With ``interval_s`` a batch starts every ``interval_s`` (as a training loop logs one
    every so many steps; the first at a random offset, so the clients do not beat in
    step); if an answer comes late the next batch goes at once. Without it, each batch
    goes as soon as the last one is answered (what the server can take at most)."""
    client = scale_client(via, command["url"])
    interval = command.get("interval_s") or 0.0
    start = _wait_until(command["start_at"])
    deadline = start + command["seconds"]
    due = start + random.Random(os.getpid()).uniform(0, interval)
    acked: list[int] = []
    samples: list[float] = []
    messages: list[str] = []
    failed = 0
    try:
        if via == "mlflow":
            run_id = client.create_run(command["experiment_id"]).info.run_id
        else:
            run_id = raw_run(client, command["experiment_id"])
    except Exception as exc:
        _failure(messages, "create_run", exc)
        return {"run_id": None, "acked": [], "failed": 1, "messages": messages, "samples": []}
    b = 0
    while time.perf_counter() < deadline:
        if interval:
            if due >= deadline:
                break
            time.sleep(max(0.0, due - time.perf_counter()))
            due += interval
        points = scale_points(b)
        if via == "mlflow":
            from mlflow.entities import Metric

            payload: Any = [Metric(*p) for p in points]
        else:
            payload = json.dumps({"run_id": run_id, "metrics": [
                {"key": k, "value": v, "timestamp": t, "step": s} for k, v, t, s in points
            ]}).encode()  # fmt: skip
        began = time.perf_counter()
        try:
            if via == "mlflow":
                client.log_batch(run_id, metrics=payload)
            else:
                client.send("POST", f"{API}/runs/log-batch", payload)
            samples.append(time.perf_counter() - began)
            acked.append(b)
        except Exception as exc:
            failed += 1
            _failure(messages, f"batch {b}", exc)
            if via == "raw":  # the connection may be broken: a fresh one
                client = scale_client(via, command["url"])
        b += 1
    return {
        "run_id": run_id,
        "acked": acked,
        "failed": failed,
        "messages": messages,
        "samples": [round(x * 1000, 3) for x in samples],
        "elapsed_s": time.perf_counter() - start,
    }


def create(via: str, command: dict[str, Any]) -> dict[str, Any]:
    """Create runs until the deadline, each followed by a batch of 5 metrics and 5 params
    (what a sweep's trial logs first); the ids of the runs acknowledged are returned."""
    client = scale_client(via, command["url"])
    experiment = command["experiment_id"]
    start = _wait_until(command["start_at"])
    deadline = start + command["seconds"]
    acked: list[str] = []
    samples: list[float] = []
    messages: list[str] = []
    failed, i = 0, 0
    while time.perf_counter() < deadline:
        began = time.perf_counter()
        try:
            run_id = trial_run(via, client, experiment, i)
            samples.append(time.perf_counter() - began)
            acked.append(run_id)
        except Exception as exc:
            failed += 1
            _failure(messages, f"run {i}", exc)
            if via == "raw":
                client = scale_client(via, command["url"])
        i += 1
    return {
        "acked": acked,
        "failed": failed,
        "messages": messages,
        "samples": [round(x * 1000, 3) for x in samples],
        "elapsed_s": time.perf_counter() - start,
    }


SCALE_PHASES: dict[str, Callable[[str, dict[str, Any]], dict[str, Any]]] = {
    "ingest": ingest,
    "create": create,
}


PHASES = {
    "per_call": per_call,
    "batch": batch,
    "runs": runs,
    "empty_run": empty_run,
    "concurrent": concurrent,
    "verify": verify,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("phase", choices=[*sorted(PHASES), "worker"])
    parser.add_argument("--via", default="mlflow", choices=["mlflow", "raw", "ours", "ours-async"])
    parser.add_argument("--targets", help="name=url,name=url")
    parser.add_argument("--sizes", help="JSON of the sizes")
    args = parser.parse_args()
    if args.phase == "worker":
        worker(args.via)
        return
    if not args.targets or not args.sizes:
        parser.error("--targets and --sizes are required for a phase")
    targets = [tuple(item.split("=", 1)) for item in args.targets.split(",")]
    print(json.dumps(PHASES[args.phase](args.via, json.loads(args.sizes), targets)))  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
