"""Serving latency, throughput, memory and start-up: ``modelyard serve`` vs ``mlflow models serve``.

The same fitted scikit-learn model (GradientBoostingRegressor, 50 trees, 10 features) is
served by both, one worker each, on loopback, and driven by the same load generator, wrk,
a separate process (so the generator does not starve the server of the GIL), with the same
MLflow ``/invocations`` request body — the one protocol both speak:

1. one row per request at concurrency 1 (latency p50/p99) and at concurrency 16
   (throughput, p99);
2. 100 rows per request at concurrency 4 (rows per second);
3. resident memory of the whole server process tree after the load; start-up from spawn
   to the first 200 on the health endpoint.

modelyard also runs without micro-batching, and without the compiled (ONNX) path, to
measure what each contributes. Targets (issue #7): p50 ≤ 1.2 ms and p99 ≤ 2.5 ms at
concurrency 1; at concurrency 16 ≥ 8× MLflow's throughput; 100-row requests ≥ 3× MLflow's
rows/s; ≤ 250 MB per worker; start-up ≤ 2 s.

    python benchmarks/serving.py              # 10 s per measurement
    python benchmarks/serving.py --quick      # 3 s per measurement
    python benchmarks/serving.py --only modelyard
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

FEATURES = [f"f{i}" for i in range(10)]
TARGETS = {
    "c1_p50_ms": 1.2,
    "c1_p99_ms": 2.5,
    "c16_ratio": 8.0,
    "rows_ratio": 3.0,
    "rss_mb": 250.0,
    "startup_s": 2.0,
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def train(folder: Path) -> tuple[Any, Any]:
    import pandas as pd
    from sklearn.ensemble import GradientBoostingRegressor

    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(5000, 10)), columns=FEATURES)
    y = X["f0"] * 3 + np.sin(X["f1"]) + X["f2"] * X["f3"] + rng.normal(scale=0.1, size=5000)
    model = GradientBoostingRegressor(n_estimators=50, max_depth=3, random_state=0).fit(X, y)
    return model, X


def prepare_modelyard(home: Path, model: Any, X: Any) -> None:
    from modelyard.config import Settings
    from modelyard.registry.client import RegistryClient
    from modelyard.registry.formats.flavors import save_model
    from modelyard.serving.compiled import compile_version
    from modelyard.serving.deployments import DeploymentService
    from modelyard.tracking.client import TrackingClient

    settings = Settings(home=home, user="bench")
    tracking = TrackingClient.from_settings(settings)
    run_id = tracking.create_run(tracking.get_or_create_experiment("bench").experiment_id)
    run_id = run_id.info.run_id
    save_model(model, home / "saved", input_example=X.head(20), run_id=run_id)
    tracking.log_artifacts(run_id, home / "saved", "model")
    registry = RegistryClient.from_settings(settings)
    registry.register_model(f"runs:/{run_id}/model", "gbm")
    check = compile_version(registry, "gbm", 1, holdout=X.tail(1000))
    print(f"compiled path: {'on' if check.enabled else 'off'} ({check.reason})", flush=True)
    DeploymentService(registry.db, registry).create("gbm", "models:/gbm/1")


def prepare_mlflow(folder: Path, model: Any, X: Any) -> None:
    import mlflow.sklearn
    import skops.io

    # MLflow 3 saves scikit-learn models with skops too, and wants the tree types trusted.
    trusted = skops.io.get_untrusted_types(data=skops.io.dumps(model))
    mlflow.sklearn.save_model(
        model, str(folder), input_example=X.head(5), skops_trusted_types=trusted
    )


def tree_rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` and all its descendants, in MB."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                children.setdefault(int(fields[1]), []).append(int(entry.name))
            except (OSError, IndexError):
                continue
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        todo.extend(children.get(current, []))
        try:
            status = Path(f"/proc/{current}/status").read_text()
            total += int(re.search(r"VmRSS:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
        except (OSError, AttributeError):
            continue
    return total / 1024


def start(command: list[str], env: dict[str, str], port: int, health: str, log: Path):
    started = time.perf_counter()
    process = subprocess.Popen(
        command, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True
    )
    import urllib.request

    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{command[0]} exited:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{health}", timeout=1) as r:
                if r.status == 200:
                    return process, time.perf_counter() - started
        except OSError:
            pass
        if time.perf_counter() - started > 120:
            raise RuntimeError(f"{command[0]} did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.02)


def stop(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(30)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(process.pid, signal.SIGKILL)


WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = io.open("{body}"):read()
done = function(summary, latency, requests)
  io.write(string.format("JSON {{\\"requests\\": %d, \\"errors\\": %d, \\"non2xx\\": %d, "
    .. "\\"seconds\\": %f, \\"p50_us\\": %d, \\"p99_us\\": %d, \\"mean_us\\": %f}}\\n",
    summary.requests, summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.timeout, summary.errors.status, summary.duration / 1e6,
    latency:percentile(50), latency:percentile(99), latency.mean))
end
"""


def wrk(port: int, body: Path, connections: int, seconds: float, workdir: Path) -> dict:
    script = workdir / f"wrk-{body.stem}.lua"
    script.write_text(WRK_SCRIPT.format(body=body))
    threads = 1 if connections == 1 else 2
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "30s",
         "-s", str(script), f"http://127.0.0.1:{port}/invocations"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    line = next(x for x in out.splitlines() if x.startswith("JSON "))
    stats = json.loads(line[5:])
    stats["req_per_s"] = stats["requests"] / stats["seconds"]
    return stats


def measure(name: str, port: int, pid: int, bodies: dict[str, Path], seconds: float,
            workdir: Path) -> dict[str, Any]:  # fmt: skip
    wrk(port, bodies["one"], 4, 2, workdir)  # warm-up
    c1 = wrk(port, bodies["one"], 1, seconds, workdir)
    c16 = wrk(port, bodies["one"], 16, seconds, workdir)
    rows = wrk(port, bodies["hundred"], 4, seconds, workdir)
    result = {
        "c1_req_s": c1["req_per_s"],
        "c1_p50_ms": c1["p50_us"] / 1000,
        "c1_p99_ms": c1["p99_us"] / 1000,
        "c16_req_s": c16["req_per_s"],
        "c16_p99_ms": c16["p99_us"] / 1000,
        "rows_per_s": rows["req_per_s"] * 100,
        "errors": c1["errors"] + c16["errors"] + rows["errors"],
        "non2xx": c1["non2xx"] + c16["non2xx"] + rows["non2xx"],
        "rss_mb": tree_rss_mb(pid),
    }
    print(f"{name}: " + ", ".join(f"{k} {v:.4g}" for k, v in result.items()), flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 s per measurement")
    parser.add_argument("--only", choices=("modelyard", "mlflow"), default=None)
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install -y wrk")
    seconds = 3.0 if args.quick else 10.0
    workdir = Path(tempfile.mkdtemp(prefix="serve_bench_"))
    model, X = train(workdir)
    row = X.iloc[:1].to_numpy().tolist()
    bodies = {
        "one": workdir / "one.json",
        "hundred": workdir / "hundred.json",
    }
    bodies["one"].write_text(json.dumps({"dataframe_split": {"columns": FEATURES, "data": row}}))
    bodies["hundred"].write_text(
        json.dumps({"dataframe_split": {"columns": FEATURES, "data": X.iloc[:100].values.tolist()}})
    )
    results: dict[str, Any] = {"machine": {"cpus": os.cpu_count(), "load": os.getloadavg()}}
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("MODELYARD_", "MLFLOW_"))}
    # mlflow models serve runs `uvicorn` from PATH: the one beside this interpreter.
    base_env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{base_env.get('PATH', '')}"

    if args.only in (None, "mlflow"):
        folder = workdir / "mlflow-model"
        prepare_mlflow(folder, model, X)
        port = free_port()
        process, startup = start(
            [sys.executable, "-m", "mlflow", "models", "serve", "-m", str(folder), "-p",
             str(port), "-w", "1", "--env-manager", "local", "-h", "127.0.0.1"],
            base_env, port, "/ping", workdir / "mlflow.log",
        )  # fmt: skip
        try:
            results["mlflow"] = {**measure("mlflow", port, process.pid, bodies, seconds, workdir),
                                 "startup_s": startup}  # fmt: skip
        finally:
            stop(process)

    if args.only in (None, "modelyard"):
        home = workdir / "yard"
        prepare_modelyard(home, model, X)
        variants = {
            "modelyard": [],
            "modelyard-no-batching": ["--batch-max-size", "1"],
            "modelyard-native": ["--no-compiled"],
            "modelyard-native-no-batching": ["--no-compiled", "--batch-max-size", "1"],
        }
        for name, flags in variants.items():
            port = free_port()
            env = {**base_env, "MODELYARD_HOME": str(home), "MODELYARD_USER": "bench"}
            process, startup = start(
                [sys.executable, "-m", "modelyard.cli.serve", "gbm", "--port", str(port), *flags],
                env, port, "/v2/health/ready", workdir / f"{name}.log",
            )  # fmt: skip
            try:
                measured = measure(name, port, process.pid, bodies, seconds, workdir)
                results[name] = {**measured, "startup_s": startup}
            finally:
                stop(process)

    if "mlflow" in results and "modelyard" in results:
        ours, theirs = results["modelyard"], results["mlflow"]
        verdict = {
            "c1_p50_ms": (ours["c1_p50_ms"], ours["c1_p50_ms"] <= TARGETS["c1_p50_ms"]),
            "c1_p99_ms": (ours["c1_p99_ms"], ours["c1_p99_ms"] <= TARGETS["c1_p99_ms"]),
            "c16_ratio": (r := ours["c16_req_s"] / theirs["c16_req_s"], r >= TARGETS["c16_ratio"]),
            "rows_ratio": (q := ours["rows_per_s"] / theirs["rows_per_s"],
                           q >= TARGETS["rows_ratio"]),
            "rss_mb": (ours["rss_mb"], ours["rss_mb"] <= TARGETS["rss_mb"]),
            "startup_s": (ours["startup_s"], ours["startup_s"] <= TARGETS["startup_s"]),
        }  # fmt: skip
        results["verdict"] = {k: {"value": v, "target": TARGETS[k], "met": ok}
                              for k, (v, ok) in verdict.items()}  # fmt: skip
        print("\ntarget          value     target   met")
        for key, (value, ok) in verdict.items():
            print(f"{key:<14} {value:>8.3f} {TARGETS[key]:>9.3g}   {'yes' if ok else 'NO'}")
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
