"""Fixtures for the artifact store: every backend-shared test runs on a local folder and on
a real S3-compatible server (moto's standalone server, a separate process on loopback)."""

from __future__ import annotations

import ctypes
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import modelyard.artifacts.tables  # noqa: F401 - registers artifact_entries on the metadata
from modelyard.artifacts.blobs import BlobStore, open_blob_store
from modelyard.artifacts.repository import ArtifactRepository
from modelyard.store.engine import Database, open_database
from modelyard.store.schema import metadata

BACKENDS = ["local", "s3"]


@dataclass(frozen=True)
class S3Server:
    """A running moto server and one bucket in it."""

    endpoint_url: str
    bucket: str
    key: str = "modelyard-test-key"
    secret: str = "modelyard-test-secret"
    region: str = "us-east-1"
    session: Any = None  # a shared aiobotocore session: loads the S3 API model once

    def storage_options(self, *, shared_session: bool = True) -> dict[str, Any]:
        """s3fs options; without the shared session they can be sent to another process."""
        options: dict[str, Any] = {
            "key": self.key,
            "secret": self.secret,
            "client_kwargs": {"endpoint_url": self.endpoint_url, "region_name": self.region},
        }
        if shared_session and self.session is not None:
            options["session"] = self.session
        return options

    def client(self) -> Any:
        """A plain boto3 client, to look at the bucket behind the store's back."""
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.key,
            aws_secret_access_key=self.secret,
            region_name=self.region,
        )


def _die_with_parent() -> None:
    """Linux: have the kernel stop the server if pytest dies without tearing down."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """Start ``python -m moto.server`` on a free loopback port for the whole session.

    Without moto or s3fs the S3 cases skip on a laptop but fail under CI, like the other
    backend tests (a skip there would hide a bug).
    """
    for module in ("moto.server", "s3fs", "boto3"):
        if importlib.util.find_spec(module.split(".")[0]) is None:
            reason = f"{module} is not installed: pip install 'modelyard[dev]'"
            if os.environ.get("CI"):
                pytest.fail(f"{reason}; CI must run the S3 artifact tests")
            pytest.skip(reason)
    port = _free_port()
    log_path = tmp_path_factory.mktemp("moto") / "moto.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                pytest.fail(f"moto server exited early:\n{log_path.read_text()}")
            try:
                with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"moto server did not answer in 30 s:\n{log_path.read_text()}")
                time.sleep(0.05)
        from aiobotocore.session import AioSession

        server = S3Server(endpoint_url=endpoint, bucket="modelyard-test", session=AioSession())
        server.client().create_bucket(Bucket=server.bucket)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def spool_dir(tmp_path: Path) -> Path:
    """Where a remote store stages uploads, so tests can see that nothing is left there."""
    path = tmp_path / "spool"
    path.mkdir()
    return path


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def blob_store(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path, spool_dir: Path
) -> BlobStore:
    """A fresh, empty blob store: a local folder, or a unique prefix in the S3 bucket."""
    if backend == "local":
        return open_blob_store(str(tmp_path / "artifacts"))
    server: S3Server = request.getfixturevalue("s3_server")
    return open_blob_store(
        f"s3://{server.bucket}/{uuid.uuid4().hex}",
        storage_options=server.storage_options(),
        spool_dir=str(spool_dir),
    )


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    """A fresh SQLite metadata database with the artifact tables."""
    database = open_database("sqlite:///" + str(tmp_path / "m.db"))
    metadata.create_all(database.engine)
    yield database
    database.dispose()


@pytest.fixture
def repo(db: Database, blob_store: BlobStore) -> ArtifactRepository:
    """A repository that collects garbage without a grace period, so tests need not wait."""
    return ArtifactRepository(db, blob_store, gc_grace_s=0)
