"""Load that holds: ``modelyard server`` vs ``mlflow server`` on PostgreSQL, 16 and 64 clients.

Both servers run at once, each on a fresh PostgreSQL database of its own (created here,
dropped afterwards) with the same ``--workers`` (2 by default: this machine has 2 cores,
and the client processes share them with the servers and PostgreSQL — so every figure is
what one 2-core machine does when it runs clients, server and database together). The
clients are separate processes, started once per kind of client and handed each phase
at the same instant (``server_clients.py worker``):

* ``raw``: the leanest keep-alive HTTP client sending MLflow REST JSON — what a server
  sustains; ``mlflow``: the unmodified ``MlflowClient`` (retries off, so a failure counts
  as an error instead of being retried for minutes) — what users run, its own CPU cost
  included (~50 ms per 1,000-point batch, which on 2 shared cores caps what it can send).

Workloads, each for ``--seconds`` (30; ``--quick`` 8) with 16 and then 64 clients:

* ``ingest``: each client creates a run and logs 1,000-point batches (10 keys × 100
  steps) into it, each as soon as the last is answered, until the deadline: what a
  server takes at most (acknowledged points/s) — with every client always waiting, a
  call's latency is then the queue (64 clients / the rate), not the server's speed;
  afterwards every acknowledged point is looked up (each key's whole history) — lost
  points are acknowledged ones that are not there;
* ``paced``: the same, but each client sends a batch every ``clients × 1,000 / --rate``
  seconds (``--rate`` 32,000 points/s offered in all, as training loops log every so
  many steps): the latency a job sees (p50/p99) while the server holds that load;
* ``create``: each client creates runs, each followed by a batch of 5 params and 5
  metrics: runs created/s, p50/p99 of the pair of calls, errors; afterwards the
  experiment is searched — every acknowledged run must be there with its 5 params.

Server CPU: the user + system time of the server's whole process tree
(``/proc/<pid>/stat``) before and after each phase, per 1,000 acknowledged points (or
per run); PostgreSQL's share likewise, from the backends serving that server's database
(sampled twice a second, so a connection that lives less than that is missed). The two
servers take turns phase by phase, the order alternating, so load drift is shared.

    python benchmarks/scale.py                 # 30 s phases, 16 and 64 clients, both clients
    python benchmarks/scale.py --quick         # 8 s phases (a smoke run)
    python benchmarks/scale.py --via raw --clients 64 --profile   # py-spy on our server
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from databases import postgres_database
from server_clients import (
    SCALE_KEYS,
    SCALE_STEPS,
    RawClient,
    percentiles,
    stored_history,
)
from servers import (
    BIN,
    Server,
    client_env,
    cpu_seconds,
    cpu_spent,
    start_mlflow,
    start_modelyard,
)

CLIENTS = Path(__file__).with_name("server_clients.py")
#: ingest: batches back to back (capacity); paced: a batch from each client every so often,
#: ``--rate`` points/s offered in all; create: runs back to back.
WORKLOADS = ("ingest", "paced", "create")
TARGETS = {"points_per_s": 30_000.0, "p99_ms": 250.0, "ratio": 6.0}


# --------------------------------------------------------------------------- databases
class BackendCpu:
    """CPU seconds of the PostgreSQL backends serving one database, sampled every 0.5 s
    in the background (the last reading of each backend is kept, so a pooled connection
    closed mid-phase still counts up to its last sample)."""

    def __init__(self, uri: str) -> None:
        import psycopg

        self.database = uri.rsplit("/", 1)[1]
        self._conn = psycopg.connect(uri.replace("+psycopg", ""), autocommit=True)
        self.seen: dict[int, float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.sample()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def sample(self) -> dict[int, float]:
        rows = self._conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s", (self.database,)
        ).fetchall()
        found = cpu_seconds([pid for (pid,) in rows])
        with self._lock:
            self.seen.update(found)
            return dict(self.seen)

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            self.sample()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._conn.close()


# --------------------------------------------------------------------------- clients
class Workers:
    """``n`` client processes of one kind, started once; each phase goes to the first
    ``k`` of them with the same start instant."""

    def __init__(self, via: str, n: int) -> None:
        env = client_env(MLFLOW_HTTP_REQUEST_MAX_RETRIES="0", MLFLOW_HTTP_REQUEST_TIMEOUT="300")
        cmd = [sys.executable, str(CLIENTS), "worker", "--via", via]
        self.via = via
        self.procs = [
            subprocess.Popen(cmd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            for _ in range(n)
        ]
        for proc in self.procs:
            assert proc.stdout is not None
            if proc.stdout.readline().strip() != "ready":
                self.close()
                sys.exit(f"a {via} client process did not start")

    def cpu(self, k: int) -> dict[int, float]:
        return cpu_seconds([p.pid for p in self.procs[:k]])

    def run(self, k: int, command: dict[str, Any]) -> list[dict[str, Any]]:
        start_at = time.time() + 0.2 + 0.005 * k  # time to hand every command out
        line = json.dumps({**command, "start_at": start_at}) + "\n"
        for proc in self.procs[:k]:
            assert proc.stdin is not None
            proc.stdin.write(line)
            proc.stdin.flush()
        out = []
        for proc in self.procs[:k]:
            assert proc.stdout is not None
            answer = proc.stdout.readline()
            if not answer:
                self.close()
                sys.exit(f"a {self.via} client process died during {command['phase']}")
            out.append(json.loads(answer))
        return out

    def close(self) -> None:
        for proc in self.procs:
            if proc.stdin is not None:
                proc.stdin.close()
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


# --------------------------------------------------------------------------- verifying
def lost_points(url: str, results: list[dict[str, Any]]) -> tuple[int, int]:
    """(acknowledged points missing, points stored) over every run and key of an ingest."""

    def check(result: dict[str, Any], key: str) -> tuple[int, int]:
        steps = {
            int(p.get("step", 0))
            for p in stored_history("raw", RawClient(url), result["run_id"], key)
        }
        expected = {b * SCALE_STEPS + s for b in result["acked"] for s in range(SCALE_STEPS)}
        return len(expected - steps), len(steps)

    jobs = [(r, k) for r in results if r["run_id"] for k in SCALE_KEYS]
    with ThreadPoolExecutor(4) as pool:
        found = list(pool.map(lambda job: check(*job), jobs))
    return sum(lost for lost, _ in found), sum(stored for _, stored in found)


def lost_runs(url: str, experiment_id: str, results: list[dict[str, Any]]) -> tuple[int, int]:
    """(acknowledged runs missing or without their 5 params, runs found)."""
    raw = RawClient(url)
    params: dict[str, int] = {}
    token = None
    while True:
        body: dict[str, Any] = {"experiment_ids": [experiment_id], "max_results": 1000}
        if token:
            body["page_token"] = token
        page = raw.post("/runs/search", body)
        for run in page.get("runs", []):
            params[run["info"]["run_id"]] = len(run.get("data", {}).get("params", []))
        token = page.get("next_page_token")
        if not token:
            break
    acked = [run_id for r in results for run_id in r["acked"]]
    return sum(1 for run_id in acked if params.get(run_id) != 5), len(params)


# --------------------------------------------------------------------------- phases
def new_experiment(server: Server, label: str) -> str:
    raw = RawClient(server.url)
    name = f"{label}-{time.time_ns()}"
    return str(raw.post("/experiments/create", {"name": name})["experiment_id"])


def profiler(server: Server, seconds: float, out: Path) -> subprocess.Popen[bytes]:
    """py-spy sampling the server's whole process tree for the phase (collapsed stacks)."""
    cmd = [
        str(BIN / "py-spy"), "record", "--pid", str(server.process.pid), "--subprocesses",
        "--duration", str(int(seconds)), "--rate", "200", "--format", "raw",
        "--nonblocking", "--output", str(out),
    ]  # fmt: skip
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)


def warm_up(server: Server, workers: Workers, k: int) -> None:
    for workload in ("ingest", "create"):
        experiment = new_experiment(server, f"warm-{workload}")
        command = {"phase": workload, "url": server.url, "experiment_id": experiment}
        workers.run(k, {**command, "seconds": 2.0})


def distinct(messages: Iterable[str], most: int = 3) -> list[str]:
    """The first ``most`` different errors (batch and run numbers aside), shortened."""
    seen: dict[str, str] = {}
    for message in messages:
        seen.setdefault(message.split(": ", 1)[-1], message[:200])
    return list(seen.values())[:most]


def run_phase(
    workload: str,
    server: Server,
    db: BackendCpu,
    workers: Workers,
    k: int,
    seconds: float,
    profile_to: Path | None = None,
    rate: float = 0.0,
) -> dict[str, Any]:
    experiment = new_experiment(server, f"{workload}-{workers.via}-{k}")
    command = {"phase": workload, "url": server.url, "experiment_id": experiment}
    if workload == "paced":  # 1,000 points a batch: each client's share of ``rate``
        command.update(phase="ingest", interval_s=k * 1000 / rate)
    server_before, db_before, clients_before = server.cpu(), db.sample(), workers.cpu(k)
    spy = profiler(server, seconds, profile_to) if profile_to else None
    wall = time.perf_counter()
    results = workers.run(k, {**command, "seconds": seconds})
    wall = time.perf_counter() - wall
    server_s = cpu_spent(server_before, server.cpu())
    db_s = cpu_spent(db_before, db.sample())
    clients_s = cpu_spent(clients_before, workers.cpu(k))
    if spy is not None:
        spy.wait(timeout=seconds + 60)
    elapsed = max(r.get("elapsed_s", 0.0) for r in results) or seconds
    samples = [x / 1000 for r in results for x in r["samples"]]
    out: dict[str, Any] = {
        "errors": sum(r["failed"] for r in results),
        "messages": distinct(m for r in results for m in r["messages"]),
        "elapsed_s": elapsed,
        "wall_s": wall,
        "server_cpu_s": server_s,
        "db_cpu_s": db_s,
        "clients_cpu_s": clients_s,
        "calls": len(samples),
        **percentiles(samples),
    }
    if workload != "create":
        acked = sum(len(r["acked"]) for r in results) * len(SCALE_KEYS) * SCALE_STEPS
        lost, stored = lost_points(server.url, results)
        out.update(acked=acked, per_s=acked / elapsed, lost=lost, stored=stored)
    else:
        acked = sum(len(r["acked"]) for r in results)
        lost, stored = lost_runs(server.url, experiment, results)
        out.update(acked=acked, per_s=acked / elapsed, lost=lost, stored=stored)
    unit = acked / 1000 if workload != "create" else acked
    out["server_cpu_ms_per_unit"] = server_s * 1000 / unit if unit else float("nan")
    out["db_cpu_ms_per_unit"] = db_s * 1000 / unit if unit else float("nan")
    print(
        f"  {workload:6} {workers.via:6} {k:3} clients → {server.name:9}: "
        f"{out['per_s']:9,.0f}/s p50 {out['p50_ms']:7.1f} ms p99 {out['p99_ms']:7.1f} ms, "
        f"{out['errors']} errors, {lost} lost; CPU server {server_s:.1f} s, "
        f"db {db_s:.1f} s, clients {clients_s:.1f} s in {elapsed:.1f} s",
        file=sys.stderr,
        flush=True,
    )
    return out


def measure(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    results: dict[str, Any] = {"phases": {}, "load_before": os.getloadavg()}
    names = ["modelyard", "mlflow"]
    with postgres_database() as mine, postgres_database() as theirs:
        if mine is None or theirs is None:
            sys.exit("scale.py needs PostgreSQL at 127.0.0.1:5432")
        uris = {"modelyard": mine, "mlflow": theirs}
        servers: dict[str, Server] = {}
        meters: dict[str, BackendCpu] = {}
        try:
            servers["modelyard"] = start_modelyard(work, uris["modelyard"], args.workers)
            servers["mlflow"] = start_mlflow(work, args.workers, uris["mlflow"])
            results["startup_s"] = {n: s.startup_s for n, s in servers.items()}
            for name in names:
                meters[name] = BackendCpu(uris[name])
            turn = 0
            for via in args.via:
                workers = Workers(via, max(args.clients))
                try:
                    for name in names:  # first calls (imports, caches, pools): not timed
                        warm_up(servers[name], workers, min(4, max(args.clients)))
                    for k in args.clients:
                        for workload in WORKLOADS:
                            order = names if turn % 2 == 0 else names[::-1]
                            turn += 1
                            for name in order:
                                spy = None
                                if args.profile and name == "modelyard" and workload != "create":
                                    spy = work / f"profile-{workload}-{via}-{k}.txt"
                                key = f"{workload}/{via}/{k}/{name}"
                                results["phases"][key] = run_phase(
                                    workload, servers[name], meters[name], workers, k,
                                    args.seconds, spy, args.rate,
                                )  # fmt: skip
                                if spy is not None:
                                    results["phases"][key]["profile"] = str(spy)
                finally:
                    workers.close()
        finally:
            for meter in meters.values():
                meter.close()
            for server in servers.values():
                server.stop()
    results["load_after"] = os.getloadavg()
    return results


# --------------------------------------------------------------------------- report
def report(r: dict[str, Any], args: argparse.Namespace) -> bool:
    phases = r["phases"]
    print(
        f"modelyard server vs mlflow server, both on PostgreSQL (fresh databases), "
        f"--workers {args.workers} each; {os.cpu_count()} CPUs shared by the servers, "
        f"PostgreSQL and the client processes; {args.seconds:g} s a phase"
    )
    print(f"{'workload':44} {'modelyard':>11} {'mlflow':>11} {'ratio':>7}")

    def row(label: str, mine: float, theirs: float, better: str = "higher") -> None:
        ratio = (mine / theirs if better == "higher" else theirs / mine) if mine and theirs else 0
        print(f"{label:44} {mine:11,.1f} {theirs:11,.1f} {ratio:6.1f}×")

    for via in args.via:
        for k in args.clients:
            for workload in WORKLOADS:
                my = phases[f"{workload}/{via}/{k}/modelyard"]
                ml = phases[f"{workload}/{via}/{k}/mlflow"]
                unit = "runs" if workload == "create" else "points"
                what = f"{workload}, {via}, {k} clients"
                if workload == "paced":
                    what += f" (offered {args.rate:,.0f})"
                row(f"{what}: {unit}/s", my["per_s"], ml["per_s"])
                row("  p50 per call (ms)", my["p50_ms"], ml["p50_ms"], "lower")
                row("  p99 per call (ms)", my["p99_ms"], ml["p99_ms"], "lower")
                per = "run" if workload == "create" else "1,000 points"
                row(f"  server CPU ms per {per}", my["server_cpu_ms_per_unit"],
                    ml["server_cpu_ms_per_unit"], "lower")  # fmt: skip
                row(f"  PostgreSQL CPU ms per {per}", my["db_cpu_ms_per_unit"],
                    ml["db_cpu_ms_per_unit"], "lower")  # fmt: skip
                for name, got in (("modelyard", my), ("mlflow", ml)):
                    print(
                        f"    {name}: {got['acked']:,} {unit} acknowledged, {got['stored']:,} "
                        f"stored, {got['errors']} errors, {got['lost']} lost; CPU s "
                        f"server {got['server_cpu_s']:.1f}, PostgreSQL {got['db_cpu_s']:.1f}, "
                        f"clients {got['clients_cpu_s']:.1f} in {got['elapsed_s']:.1f} s"
                    )
                    for message in got["messages"]:
                        print(f"      {message}")
    before, after = r["load_before"], r["load_after"]
    starts = r["startup_s"]
    print(
        f"start-up until /health: modelyard {starts['modelyard']:.1f} s, mlflow "
        f"{starts['mlflow']:.1f} s; load average before {before[0]:.2f}, after {after[0]:.2f}"
    )
    ok = True
    for via in args.via:
        for k in args.clients:
            for workload in WORKLOADS:
                got = phases[f"{workload}/{via}/{k}/modelyard"]
                ok &= check(f"{workload} {via} {k}: errors + lost = 0",
                            got["errors"] + got["lost"], 0, "≤")  # fmt: skip
    clients = max(args.clients)
    if "raw" in args.via:
        my, ml = (phases[f"ingest/raw/{clients}/{name}"] for name in ("modelyard", "mlflow"))
        paced = phases[f"paced/raw/{clients}/modelyard"]
        ok &= check(f"raw batched ingest, {clients} clients, back to back ≥ 30,000 points/s",
                    my["per_s"], TARGETS["points_per_s"], "≥")  # fmt: skip
        ok &= check("  ≥ 6× MLflow's (each back to back)", my["per_s"] / ml["per_s"],
                    TARGETS["ratio"], "≥")  # fmt: skip
        ok &= check(f"  paced at {args.rate:,.0f} offered: ≥ 30,000 points/s acknowledged",
                    paced["per_s"], TARGETS["points_per_s"], "≥")  # fmt: skip
        ok &= check("  paced: p99 ≤ 250 ms", paced["p99_ms"], TARGETS["p99_ms"], "≤")
    return ok


def check(name: str, value: float, target: float, op: str) -> bool:
    met = value <= target if op == "≤" else value >= target
    print(f"  {'met   ' if met else 'MISSED'}  {name}: {value:,.3g}")
    return met


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="8 s phases, for a smoke run")
    parser.add_argument("--seconds", type=float, help="length of each phase (30; quick 8)")
    parser.add_argument("--clients", default="16,64", help="client process counts (16,64)")
    parser.add_argument("--via", default="raw,mlflow", help="client kinds: raw,mlflow")
    parser.add_argument("--workers", type=int, default=2, help="--workers of both servers")
    parser.add_argument(
        "--rate", type=float, default=32_000, help="points/s offered in all, paced phases"
    )
    parser.add_argument(
        "--profile", action="store_true", help="py-spy our server in the ingest phases"
    )
    parser.add_argument("--workdir", type=Path, help="where logs and profiles go (a temp dir)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    args.seconds = args.seconds or (8.0 if args.quick else 30.0)
    args.clients = [int(n) for n in args.clients.split(",")]
    args.via = args.via.split(",")
    work = args.workdir or Path(tempfile.mkdtemp(prefix="modelyard-bench-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        results = measure(args, work)
    finally:
        if args.profile:
            print(f"profiles (py-spy, collapsed stacks) in {work}", file=sys.stderr)
        elif not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    ok = report(results, args)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
