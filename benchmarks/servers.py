"""The servers the HTTP benchmarks drive: ``modelyard server``, ``mlflow server`` and the floor.

Shared by ``tracking_server.py`` (SQLite, one client process per phase) and ``scale.py``
(PostgreSQL, 16 and 64 client processes): starting a server and timing its start-up,
stopping its whole process group, the resident memory and CPU time of its whole process
tree (Linux ``/proc``), and the environment the client processes get.

The *floor* is a trivial server answering canned bodies at once: what a client costs by
itself, which bounds what any server can show through it. ``python servers.py
--serve-floor PORT`` runs it (``start_floor`` does).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent
_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tree_pids(pid: int) -> list[int]:
    """A process and all its descendants (Linux ``/proc/<pid>/task/*/children``)."""
    pids, seen = [pid], 0
    while seen < len(pids):
        for children in Path(f"/proc/{pids[seen]}/task").glob("*/children"):
            try:
                pids += [int(child) for child in children.read_text().split()]
            except OSError:
                pass
        seen += 1
    return pids


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    """User + system CPU time of each live process in ``pids`` (``/proc/<pid>/stat``)."""
    out = {}
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
        out[pid] = (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime
    return out


def cpu_spent(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds spent between two ``cpu_seconds`` readings (a process that appeared
    in between counts from zero; one that ended in between is lost, so readings are
    taken while the server runs)."""
    return sum(t - before.get(pid, 0.0) for pid, t in after.items())


def tree_rss_mb(pid: int) -> tuple[float, int]:
    """Resident memory of a process and all its descendants (MB), and how many there are."""
    pids = tree_pids(pid)
    total = 0
    for each in pids:
        try:
            status = Path(f"/proc/{each}/status").read_text()
        except OSError:
            continue
        rss = [line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")]
        total += sum(int(kb) for kb in rss)
    return total / 1024, len(pids)


class Server:
    """A server subprocess, timed from spawn until ``/health`` answers 200."""

    def __init__(self, name: str, cmd: list[str], env: dict[str, str], log: Path, port: int):
        self.name, self.url = name, f"http://127.0.0.1:{port}"
        self.log = log
        start = time.perf_counter()
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.startup_s = self._await_health(start)
        self.peak_rss_mb = 0.0

    def _await_health(self, start: float, timeout_s: float = 300.0) -> float:
        # mlflow server took over 120 s to answer at a load average of 20 on 2 cores.
        import httpx

        while time.perf_counter() - start < timeout_s:
            if self.process.poll() is not None:
                sys.exit(f"{self.name} exited:\n{self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1.0).status_code == 200:
                    return time.perf_counter() - start
            except httpx.TransportError:
                pass
            time.sleep(0.02)
        self.stop()
        sys.exit(f"{self.name} did not answer /health in {timeout_s}s")

    def rss(self) -> tuple[float, int]:
        mb, count = tree_rss_mb(self.process.pid)
        self.peak_rss_mb = max(self.peak_rss_mb, mb)
        return mb, count

    def cpu(self) -> dict[int, float]:
        """CPU seconds so far of each process of the server's tree."""
        return cpu_seconds(tree_pids(self.process.pid))

    def stop(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.process.wait(timeout=20)


def start_modelyard(
    work: Path, store_uri: str | None = None, workers: int = 1, name: str = "modelyard"
) -> Server:
    """``modelyard server`` (its stores under ``work`` unless ``store_uri`` is given)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELYARD_")}
    env["MODELYARD_HOME"] = str(work / f"{name}-home")
    cmd = [str(BIN / "modelyard"), "server", "--port", str(port)]
    if store_uri:
        cmd += ["--store-uri", store_uri, "--artifacts-uri", str(work / f"{name}-artifacts")]
    if workers > 1:
        cmd += ["--workers", str(workers)]
    return Server(name, cmd, env, work / f"{name}-server.log", port)


def start_mlflow(
    work: Path, workers: int | None, store_uri: str | None = None, name: str = "mlflow"
) -> Server:
    """``mlflow server`` (SQLite under ``work`` unless ``store_uri`` is given)."""
    port = free_port()
    (work / name).mkdir(parents=True, exist_ok=True)
    cmd = [
        str(BIN / "mlflow"), "server",
        "--backend-store-uri", store_uri or f"sqlite:///{work / name / 'mlflow.db'}",
        "--default-artifact-root", str(work / name / "artifacts"),
        "--host", "127.0.0.1", "--port", str(port),
    ]  # fmt: skip
    if workers:
        cmd += ["--workers", str(workers)]
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    return Server(name, cmd, env, work / f"{name}-server.log", port)


def start_floor(work: Path) -> Server:
    port = free_port()
    cmd = [sys.executable, __file__, "--serve-floor", str(port)]
    return Server("floor", cmd, dict(os.environ), work / "floor-server.log", port)


def client_env(**extra: str) -> dict[str, str]:
    """What client processes get: no modelyard or mlflow settings of the caller's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODELYARD_", "MLFLOW_"))}
    # Telemetry off: no traffic to the internet, and mlflow 3.17's telemetry thread races
    # the first request of a client (KeyError '_MLFLOW_TELEMETRY_SESSION_ID' as an error).
    env.update(MLFLOW_ENABLE_ASYNC_LOGGING="false", MLFLOW_DISABLE_TELEMETRY="true", **extra)
    return env


def floor_app() -> Any:
    """The trivial server: answers at once with canned bodies, ``{}`` for anything else.

    ``POST /__canned/<path>`` sets the body replayed for ``<path>`` under the MLflow API
    (the search phase gives it modelyard's answer to replay).
    """
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route

    info = {
        "run_id": "0" * 32, "run_uuid": "0" * 32, "run_name": "floor", "experiment_id": "1",
        "user_id": "bench", "status": "RUNNING", "start_time": 1, "lifecycle_stage": "active",
        "artifact_uri": "mlflow-artifacts:/1/" + "0" * 32 + "/artifacts",
    }  # fmt: skip
    experiment = {
        "experiment_id": "1", "name": "floor", "artifact_location": "mlflow-artifacts:/1",
        "lifecycle_stage": "active", "creation_time": 1, "last_update_time": 1,
    }  # fmt: skip
    canned = {
        "/runs/create": {"run": {"info": info, "data": {}}},
        "/runs/get": {"run": {"info": info, "data": {}}},
        "/runs/update": {"run_info": {**info, "status": "FINISHED", "end_time": 2}},
        "/experiments/create": {"experiment_id": "1"},
        "/experiments/get": {"experiment": experiment},
        "/experiments/get-by-name": {"experiment": experiment},
    }
    bodies = {f"/api/2.0/mlflow{path}": json.dumps(body).encode() for path, body in canned.items()}

    async def answer(request: Any) -> Response:
        body = await request.body()
        path = request.url.path
        if path.startswith("/__canned/"):
            bodies["/api/2.0/mlflow/" + path.removeprefix("/__canned/")] = body
            return Response(b"{}", media_type="application/json")
        return Response(bodies.get(path, b"{}"), media_type="application/json")

    return Starlette(routes=[Route("/{path:path}", answer, methods=["GET", "POST"])])


if __name__ == "__main__":
    if sys.argv[1:2] != ["--serve-floor"]:
        sys.exit("usage: python servers.py --serve-floor PORT")
    import uvicorn

    uvicorn.run(floor_app(), host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
