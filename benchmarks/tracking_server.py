"""Tracking over HTTP: ``modelyard server`` vs ``mlflow server``, side by side.

Both servers run on a local SQLite store, on this machine, in one invocation, driven by
the same clients (``server_clients.py``, each phase a fresh process, so no client state
leaks between phases). Measured:

1. start-up (spawn until ``/health`` answers) and the RSS of each server's whole process
   tree, idle and at its peak while the workloads run;
2. per-call ``log_metric`` latency (p50, p99) through the unmodified mlflow client, through
   a lean raw HTTP client, and through modelyard's own ``TrackingClient``;
3. ``log_batch`` throughput (1,000 points a batch); creating runs (each with 5 params and
   5 metrics); a filtered ``search_runs`` over them; an empty ``start_run``/``end_run``;
4. 16 client processes logging per call at once for 30 s: errors, and points lost (every
   acknowledged point is looked up afterwards). The mlflow client's retries are off in
   this phase, so a 5xx counts as an error instead of being retried for minutes.

Every workload also runs against a *floor*: a trivial server that answers at once with
canned bodies (modelyard's recorded search answer included) — what the client costs by
itself, which bounds what any server can show through it. The mlflow client spends
~50 ms of its own per 1,000-point batch, so server capacity is compared through the raw
client; both are printed.

The three servers run at the same time and each phase interleaves them (a block of calls
to one, then the next, in rotating order): on a shared machine whose load drifts, each
sees the same load, so the ratios hold even when absolute figures move.

    python benchmarks/tracking_server.py            # full size
    python benchmarks/tracking_server.py --quick    # smaller sizes, 8 s of concurrency
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from servers import Server, client_env, start_floor, start_mlflow, start_modelyard

FILTER = "metrics.rmse < 0.5 and params.model = 'gbm'"
TARGETS = {
    "per_call_vs_floor": 1.35,
    "our_client_p50_ms": 0.5,
    "batch_ratio": 20.0,
    "create_runs_ratio": 10.0,
    "search_ratio": 15.0,
    "startup_s": 2.0,
    "rss_mb": 300.0,
}


# --------------------------------------------------------------------------- phases
CLIENTS = Path(__file__).with_name("server_clients.py")


def phase(name: str, servers: list[Server], sizes: dict[str, Any], via: str = "mlflow", **env):
    """Run a client phase against ``servers`` (interleaved); results keyed by server."""
    targets = ",".join(f"{s.name}={s.url}" for s in servers)
    cmd = [sys.executable, str(CLIENTS), name, "--via", via, "--targets", targets]
    proc = subprocess.run(
        [*cmd, "--sizes", json.dumps(sizes)],
        env=client_env(**env),
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        sys.exit(f"{name} --via {via} against {targets} failed:\n{proc.stderr[-4000:]}")
    print(f"  {name} via {via}: done", file=sys.stderr)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_concurrent(server: Server, sizes: dict[str, Any]) -> dict[str, Any]:
    """``clients`` processes log per call at once for ``concurrent_s``; then every
    acknowledged point is looked up."""
    import httpx

    name = f"concurrent-{time.time_ns()}"
    created = httpx.post(f"{server.url}/api/2.0/mlflow/experiments/create", json={"name": name})
    env = client_env(
        BENCH_EXPERIMENT_ID=created.json()["experiment_id"], MLFLOW_HTTP_REQUEST_MAX_RETRIES="0"
    )
    cmd = [sys.executable, str(CLIENTS), "concurrent", "--sizes", json.dumps(sizes)]
    cmd += ["--targets", f"{server.name}={server.url}"]
    procs = [
        subprocess.Popen(cmd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        for _ in range(sizes["clients"])
    ]
    for proc in procs:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    results = []
    for proc in procs:
        out, _ = proc.communicate(timeout=sizes["concurrent_s"] + 600)
        if proc.returncode != 0:
            sys.exit(f"a concurrent client failed against {server.name}")
        results.append(json.loads(out.strip().splitlines()[-1]))
    run_ids = ",".join(r["run_id"] for r in results)
    stored = phase("verify", [server], sizes, BENCH_RUN_IDS=run_ids)["stored"]
    lost = 0
    for r in results:
        acked = set(range(r["calls"])) - set(r["failed"])
        lost += len(acked - set(stored[r["run_id"]]))
    acked_total = sum(r["calls"] - len(r["failed"]) for r in results)
    return {
        "acked": acked_total,
        "errors": sum(len(r["failed"]) for r in results),
        "lost": lost,
        "points_per_s": acked_total / sizes["concurrent_s"],
        "p50_ms": statistics.median(r["p50_ms"] for r in results),
        "messages": [m for r in results for m in r["messages"]][:5],
    }


class MemorySampler:
    """Samples the servers' tree RSS twice a second in the background (for the peak)."""

    def __init__(self, servers: list[Server]) -> None:
        self.servers = servers
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            for server in self.servers:
                server.rss()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def measure(servers: dict[str, Server], sizes: dict[str, Any]) -> dict[str, Any]:
    """Every workload, each client against floor, modelyard and mlflow interleaved."""
    my, ml, fl = servers["modelyard"], servers["mlflow"], servers["floor"]
    out: dict[str, Any] = {}
    for via in ("mlflow", "raw"):
        out[f"per_call_{via}"] = phase("per_call", [fl, my, ml], sizes, via)
        out[f"batch_{via}"] = phase("batch", [fl, my, ml], sizes, via)
        out[f"runs_{via}"] = phase("runs", [fl, my, ml], sizes, via)
    out["per_call_ours"] = phase("per_call", [fl, my], sizes, "ours")
    out["per_call_ours-async"] = phase("per_call", [my], sizes, "ours-async")
    out["batch_ours"] = phase("batch", [fl, my], sizes, "ours")
    out["empty_run"] = phase("empty_run", [fl, my, ml], sizes)
    for server in (my, ml):
        out[f"concurrent_{server.name}"] = run_concurrent(server, sizes)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    parser.add_argument("--clients", type=int, default=16, help="concurrent client processes")
    parser.add_argument("--seconds", type=float, help="concurrent logging time (30; quick 8)")
    parser.add_argument(
        "--mlflow-workers", type=int, help="mlflow server --workers (default: mlflow's own)"
    )
    parser.add_argument("--workdir", type=Path, help="where stores and logs go (a temp dir)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()

    sizes = {
        "warmup": 100,
        "per_call": 500 if args.quick else 3_000,
        "batch_points": 20_000 if args.quick else 100_000,
        "runs": 200 if args.quick else 2_000,
        "search_repeats": 5 if args.quick else 15,
        "empty_runs": 20 if args.quick else 100,
        "clients": args.clients,
        "concurrent_s": args.seconds or (8.0 if args.quick else 30.0),
    }
    work = args.workdir or Path(tempfile.mkdtemp(prefix="modelyard-bench-server-"))
    work.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"sizes": sizes, "load_before": os.getloadavg()}
    servers: dict[str, Server] = {}
    try:
        # Started one at a time, so each start-up and idle footprint is its own.
        servers["modelyard"] = start_modelyard(work)
        servers["mlflow"] = start_mlflow(work, args.mlflow_workers)
        servers["floor"] = start_floor(work)
        time.sleep(1.0)  # let them settle before reading idle memory
        for name in ("modelyard", "mlflow"):
            server = servers[name]
            mb, count = server.rss()
            results[name] = {"startup_s": server.startup_s, "idle_rss_mb": mb, "processes": count}
        sampler = MemorySampler([servers["modelyard"], servers["mlflow"]])
        try:
            results["runs"] = measure(servers, sizes)
        finally:
            sampler.stop()
        for name in ("modelyard", "mlflow"):
            results[name]["peak_rss_mb"] = servers[name].peak_rss_mb
    finally:
        for server in servers.values():
            server.stop()
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    results["load_after"] = os.getloadavg()
    report(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


def ratio(mine: float, theirs: float, better: str) -> float:
    if better == "higher":
        return mine / theirs if theirs else float("inf")
    return theirs / mine if mine else float("inf")


def report(r: dict[str, Any]) -> None:
    m, my, ml = r["runs"], r["modelyard"], r["mlflow"]
    n_runs = f"{r['sizes']['runs']:,}"
    hits = m["runs_mlflow"]["modelyard"]["hits"]

    def row(label: str, key: str, field: str, better: str, with_mlflow: bool = True):
        got = m[key]
        theirs = got["mlflow"][field] if with_mlflow and "mlflow" in got else None
        floor = got["floor"][field] if "floor" in got else None
        return (label, got["modelyard"][field], theirs, floor, better)

    rows = [
        row("per-call log_metric p50 (ms), mlflow client", "per_call_mlflow", "p50_ms", "lower"),
        row("per-call log_metric p99 (ms), mlflow client", "per_call_mlflow", "p99_ms", "lower"),
        row("per-call log_metric p50 (ms), raw HTTP client", "per_call_raw", "p50_ms", "lower"),
        row("per-call log_metric p50 (ms), our client", "per_call_ours", "p50_ms", "lower"),
        row("  our client, background mode (ms a call)", "per_call_ours-async", "p50_ms", "lower"),
        row("log_batch (points/s), mlflow client", "batch_mlflow", "points_per_s", "higher"),
        row("log_batch (points/s), raw HTTP client", "batch_raw", "points_per_s", "higher"),
        row("log_batch (points/s), our client", "batch_ours", "points_per_s", "higher"),
        row(f"create {n_runs} runs (s), mlflow client", "runs_mlflow", "create_s", "lower"),
        row(f"create {n_runs} runs (s), raw HTTP client", "runs_raw", "create_s", "lower"),
        row(f"search_runs, {hits} hits (ms), mlflow client", "runs_mlflow", "search_ms", "lower"),
        row(f"search_runs, {hits} hits (ms), raw HTTP client", "runs_raw", "search_ms", "lower"),
        row("  first search of the new runs (ms), raw", "runs_raw", "search_first_ms", "lower"),
        row("empty start_run/end_run (ms), mlflow client", "empty_run", "median_ms", "lower"),
        ("start-up until /health (s)", my["startup_s"], ml["startup_s"], None, "lower"),
        ("server RSS idle, whole tree (MB)", my["idle_rss_mb"], ml["idle_rss_mb"], None, "lower"),
        ("server RSS peak, whole tree (MB)", my["peak_rss_mb"], ml["peak_rss_mb"], None, "lower"),
        ("server processes", my["processes"], ml["processes"], None, "lower"),
    ]
    c_my, c_ml = m["concurrent_modelyard"], m["concurrent_mlflow"]
    clients, seconds = r["sizes"]["clients"], r["sizes"]["concurrent_s"]
    rows += [
        (f"{clients} clients × {seconds:g} s: points/s", c_my["points_per_s"],
         c_ml["points_per_s"], None, "higher"),
        (f"{clients} clients × {seconds:g} s: per-call p50 (ms)", c_my["p50_ms"],
         c_ml["p50_ms"], None, "lower"),
    ]  # fmt: skip
    print(f"{'workload':50} {'modelyard':>10} {'mlflow':>10} {'ratio':>7} {'floor':>10}")
    for name, mine, theirs, floor, better in rows:
        shown = f"{theirs:10.4g} {ratio(mine, theirs, better):6.1f}×" if theirs else f"{'':18}"
        print(f"{name:50} {mine:10.4g} {shown} {'' if floor is None else f'{floor:10.4g}'}")
    for name, c in (("modelyard", c_my), ("mlflow", c_ml)):
        print(f"{clients} clients against {name}: {c['acked']:,} points acknowledged, "
              f"{c['errors']} errors, {c['lost']} lost")  # fmt: skip
        for message in c.get("messages", []):
            print(f"    {message}")
    print(f"load average before {r['load_before'][0]:.2f}, after {r['load_after'][0]:.2f} "
          f"({os.cpu_count()} CPUs); floor = the same client against a server that answers "
          "at once")  # fmt: skip

    def vs(key: str, field: str, better: str, other: str = "mlflow") -> float:
        return ratio(m[key]["modelyard"][field], m[key][other][field], better)

    per_call_over_floor = 1 / vs("per_call_mlflow", "p50_ms", "lower", "floor")
    checks = [
        (f"per-call (mlflow client) ≤ {TARGETS['per_call_vs_floor']}× its floor",
         per_call_over_floor, TARGETS["per_call_vs_floor"], "≤"),
        (f"per-call (our client) ≤ {TARGETS['our_client_p50_ms']} ms",
         m["per_call_ours"]["modelyard"]["p50_ms"], TARGETS["our_client_p50_ms"], "≤"),
        ("batched ≥ 20× (raw client: server capacity)",
         vs("batch_raw", "points_per_s", "higher"), TARGETS["batch_ratio"], "≥"),
        ("batched ≥ 20× (mlflow client)",
         vs("batch_mlflow", "points_per_s", "higher"), TARGETS["batch_ratio"], "≥"),
        ("creating runs ≥ 10× (raw client)",
         vs("runs_raw", "create_s", "lower"), TARGETS["create_runs_ratio"], "≥"),
        ("creating runs ≥ 10× (mlflow client)",
         vs("runs_mlflow", "create_s", "lower"), TARGETS["create_runs_ratio"], "≥"),
        ("filtered search ≥ 15× (raw client)",
         vs("runs_raw", "search_ms", "lower"), TARGETS["search_ratio"], "≥"),
        ("filtered search ≥ 15× (mlflow client)",
         vs("runs_mlflow", "search_ms", "lower"), TARGETS["search_ratio"], "≥"),
        ("start-up ≤ 2 s", my["startup_s"], TARGETS["startup_s"], "≤"),
        ("server memory ≤ 300 MB (peak, whole tree)", my["peak_rss_mb"], TARGETS["rss_mb"], "≤"),
        ("concurrent clients: errors + points lost = 0", c_my["errors"] + c_my["lost"], 0, "≤"),
    ]  # fmt: skip
    for name, value, target, op in checks:
        met = value <= target if op == "≤" else value >= target
        print(f"  {'met   ' if met else 'MISSED'}  {name}: {value:.3g}")
    assert m["runs_mlflow"]["modelyard"]["hits"] == m["runs_mlflow"]["mlflow"]["hits"], (
        "the two searches disagree"
    )
    for via in ("mlflow", "raw", "ours"):
        got = m[f"batch_{via}"]["modelyard"]
        assert got["stored_m0"] == got["expected_m0"], f"modelyard lost points ({via})"


if __name__ == "__main__":
    main()
