"""The control plane's manifests do what they say when their containers run: the commands,
arguments and environment written for Kubernetes, run here as processes on a fresh
PostgreSQL database and a real S3-compatible server (moto), Secrets resolved from a dict.

The init container waits and migrates nothing; the Job's container migrates; the init
container then lets the server start; the server is ready on ``/ready`` and stores an
artifact in the bucket with the keys it read from the "Secret"."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.artifacts import conftest as artifacts
from tests.artifacts.conftest import S3Server

from modelyard.server.control.k8s import ControlPlaneStores, control_plane_manifests
from modelyard.store.engine import open_database
from modelyard.store.migrations import SCHEMA_REVISION, current_revision

MODELYARD = str(Path(sys.executable).with_name("modelyard"))
s3_server = artifacts.s3_server  # the session's moto server, as the artifact tests use it


class Kubelet:
    """Just enough of a kubelet to run one container of a manifest as a local process:
    its command and arguments, its environment with Secret references looked up in
    ``secrets``, and the pod's ``/tmp`` volume in a folder of the test's."""

    def __init__(self, secrets: dict[tuple[str, str], str], tmp: Path) -> None:
        self.secrets, self.tmp = secrets, tmp

    def environment(self, container: dict[str, Any]) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MODELYARD_", "AWS_"))}
        for entry in container["env"]:
            if "valueFrom" in entry:
                ref = entry["valueFrom"]["secretKeyRef"]
                env[entry["name"]] = self.secrets[(ref["name"], ref["key"])]
            else:
                env[entry["name"]] = entry["value"].replace("/tmp", str(self.tmp))
        return env

    def start(self, container: dict[str, Any], **replace: str) -> subprocess.Popen[str]:
        assert container["command"] == ["modelyard"]
        args = [replace.get(arg, arg) for arg in container["args"]]
        return subprocess.Popen(
            [MODELYARD, *args],
            env=self.environment(container),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def finished(process: subprocess.Popen[str], timeout: float = 60) -> tuple[int, str]:
    output, _ = process.communicate(timeout=timeout)
    return process.returncode, output


def first_ready(
    server: subprocess.Popen[str], http: httpx.Client, seconds: float
) -> httpx.Response:
    """The server's first answer to ``/ready`` (it must not exit, nor take longer)."""
    deadline = time.monotonic() + seconds
    while True:
        assert server.poll() is None, finished(server)
        try:
            return http.get("/ready")
        except httpx.TransportError:
            assert time.monotonic() < deadline, f"the server did not start in {seconds:.0f} s"
            time.sleep(0.2)


def test_the_containers_migrate_wait_and_serve_as_written(postgres_uri, s3_server, tmp_path):
    s3: S3Server = s3_server
    stores = ControlPlaneStores(
        store_uri=postgres_uri,
        artifacts_uri=f"s3://{s3.bucket}/k8s-{tmp_path.name}",
        s3_secret="yard-s3",
        s3_endpoint_url=s3.endpoint_url,
    )
    documents = {
        d["kind"]: d
        for d in control_plane_manifests("yard", image="local", stores=stores, workers=1)
    }
    job = documents["Job"]["spec"]["template"]["spec"]
    pod = documents["Deployment"]["spec"]["template"]["spec"]
    kubelet = Kubelet(
        {("yard-s3", "AWS_ACCESS_KEY_ID"): s3.key, ("yard-s3", "AWS_SECRET_ACCESS_KEY"): s3.secret},
        tmp_path,
    )

    waiting = kubelet.start(pod["initContainers"][0], **{"10m": "60s"})
    time.sleep(1.0)
    assert waiting.poll() is None, finished(waiting)  # nothing migrated yet: it waits
    database = open_database(postgres_uri)
    try:
        assert current_revision(database) is None  # and it created nothing
        code, output = finished(kubelet.start(job["containers"][0]))
        assert code == 0, output
        assert current_revision(database) == SCHEMA_REVISION
    finally:
        database.dispose()
    code, output = finished(waiting)
    assert code == 0, output

    port = free_port()
    server = kubelet.start(pod["containers"][0], **{"5000": str(port), "0.0.0.0": "127.0.0.1"})
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:
            ready = first_ready(server, http, 60)
            assert ready.status_code == 200
            assert ready.json()["schema_revision"] == SCHEMA_REVISION
            assert http.get("/health").text == "OK"
            path = "/api/2.0/mlflow-artifacts/artifacts/1/run/artifacts/model.bin"
            assert http.put(path, content=b"weights").status_code == 200
            assert http.get(path).content == b"weights"
    finally:
        server.terminate()
        finished(server, timeout=30)
    listed = s3.client().list_objects_v2(Bucket=s3.bucket, Prefix=f"k8s-{tmp_path.name}/")
    assert listed.get("KeyCount", 0) >= 1  # the bytes went to the bucket, keys from the Secret


@pytest.fixture(autouse=True)
def _needs_the_console_script() -> None:
    if not Path(MODELYARD).exists():
        pytest.skip(f"no modelyard console script beside {sys.executable}")
