"""Crashes and concurrency never lose acknowledged data or corrupt the store.

Each test drives real processes: several writers on one SQLite file, a writer killed with
SIGKILL mid-run, an artifact upload killed midway.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap

import pytest

from modelyard.config import Settings
from modelyard.tracking.client import TrackingClient

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="uses SIGKILL")


def spawn(code: str, home) -> subprocess.Popen:
    script = "from modelyard.config import Settings\n"
    script += "from modelyard.tracking.client import TrackingClient\n"
    script += f"client = TrackingClient.from_settings(Settings(home={str(home)!r}))\n"
    script += textwrap.dedent(code)
    return subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def test_four_processes_logging_to_one_sqlite_store_lose_nothing(tmp_path):
    home = tmp_path / "yard"
    client = TrackingClient.from_settings(Settings(home=home))
    experiment = client.create_experiment("concurrent")
    writer = f"""
        from modelyard.tracking.entities import Metric, Param
        run = client.create_run({experiment!r})
        rid = run.info.run_id
        for step in range(300):
            client.log_metric(rid, "single", float(step), step=step)
        for chunk in range(10):
            client.log_batch(rid, metrics=[Metric("batched", float(i), 1, chunk * 100 + i)
                                           for i in range(100)])
        client.log_batch(rid, params=[Param(f"p{{i}}", str(i)) for i in range(50)])
        client.set_terminated(rid)
        print(rid)
    """
    procs = [spawn(writer, home) for _ in range(4)]
    run_ids = []
    for proc in procs:
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err
        run_ids.append(out.strip())
    for run_id in run_ids:
        assert len(client.get_metric_history(run_id, "single")) == 300
        assert len(client.get_metric_history(run_id, "batched")) == 1000
        run = client.get_run(run_id)
        assert len(run.data.params) == 50 and run.info.status == "FINISHED"


def test_a_process_killed_mid_run_leaves_every_acknowledged_metric(tmp_path):
    home = tmp_path / "yard"
    client = TrackingClient.from_settings(Settings(home=home))
    run_id = client.create_run("0").info.run_id
    code = f"""
        import sys
        step = 0
        while True:
            client.log_metric({run_id!r}, "loss", 1.0 / (step + 1), step=step)
            print(step, flush=True)   # acknowledged: the call returned
            step += 1
    """
    acknowledged = []
    with spawn(code, home) as proc:  # leaving closes its pipes
        for line in proc.stdout:  # type: ignore[union-attr]
            acknowledged.append(int(line))
            if len(acknowledged) == 400:
                proc.send_signal(signal.SIGKILL)
                break
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    check = sqlite3.connect(home / "modelyard.db")
    assert check.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    check.close()
    stored = {m.step for m in client.get_metric_history(run_id, "loss")}
    assert set(acknowledged) <= stored
    latest = client.get_run(run_id).data.metric_points["loss"]
    assert latest.step == max(stored)


def test_an_artifact_upload_killed_midway_leaves_nothing_visible(tmp_path):
    home = tmp_path / "yard"
    client = TrackingClient.from_settings(Settings(home=home))
    run = client.create_run("0")
    root = run.info.artifact_root
    code = f"""
        import time
        class Slow:
            sent = 0
            def read(self, n=-1):
                self.sent += 1
                if self.sent == 5:
                    print("midway", flush=True)
                    time.sleep(60)
                return b"x" * 65536
        client.artifacts.log_stream({root + "/big.bin"!r}, Slow())
    """
    with spawn(code, home) as proc:  # leaving closes its pipes
        assert proc.stdout.readline().strip() == "midway"  # type: ignore[union-attr]
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert client.list_artifacts(run.info.run_id) == []
    blobs = home / "artifacts" / "blobs"
    assert not blobs.exists() or not any(p.is_file() for p in blobs.rglob("*"))
    # the next upload of the same path works and is complete
    client.log_text(run.info.run_id, "done", "big.bin")
    assert client.read_artifact(run.info.run_id, "big.bin") == b"done"
