"""The control plane's pods reach a database that asks for a password, the password read
from a Secret as ``modelyard k8s server --store-password-secret`` writes it (``PGPASSWORD``),
and a wrong one fails clearly, never echoed.

The machine's PostgreSQL trusts every connection, which would let a missing or wrong
password pass unseen, so these tests start a private cluster of their own in a temporary
folder (``initdb --auth=scram-sha-256``: every connection, local or TCP, must give the
password), and stop and remove it afterwards. The containers run as local processes, as in
``test_k8s_pods.py``."""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.artifacts import conftest as artifacts
from tests.artifacts.conftest import S3Server
from tests.server.control.test_k8s_pods import MODELYARD, Kubelet, finished, first_ready, free_port

from modelyard.server.control.k8s import (
    ControlPlaneStores,
    SecretRef,
    control_plane_manifests,
)
from modelyard.store.engine import open_database
from modelyard.store.migrations import SCHEMA_REVISION, current_revision

s3_server = artifacts.s3_server  # the session's moto server, as the artifact tests use it

USER = "modelyard"  # the role the pods log in as; its password is only in the "Secret"
PASSWORD = "right-" + secrets.token_hex(8)
WRONG = "wrong-" + secrets.token_hex(8)
AUTH_FAILED = f'password authentication failed for user "{USER}"'


def _postgres_bin() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=_major, reverse=True)
    if found:
        return found[0].parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _major(initdb: Path) -> int:
    version = initdb.parent.parent.name
    return int(version) if version.isdigit() else 0


@dataclass(frozen=True)
class Cluster:
    """A running private PostgreSQL cluster that asks every connection for a password."""

    port: int
    admin: str  # a libpq connection string of its superuser, password included

    def uri(self, database: str, password: str | None = None) -> str:
        login = USER if password is None else f"{USER}:{password}"
        return f"postgresql+psycopg://{login}@127.0.0.1:{self.port}/{database}"


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """initdb, pg_ctl start as a user that may run them (initdb refuses root), then a role
    ``modelyard`` with ``PASSWORD``; stopped and removed afterwards, whatever happened."""
    psycopg = pytest.importorskip("psycopg", reason="the postgres extra is not installed")
    pg_bin = _postgres_bin()
    if pg_bin is None:
        pytest.skip("no PostgreSQL server binaries (initdb) on this machine")
    run_as: list[str] = []
    owner = None
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root, and no 'postgres' user to run initdb as")
        if shutil.which("runuser") is None:
            pytest.skip("running as root, and no runuser to run initdb as 'postgres'")
        run_as = ["runuser", "-u", "postgres", "--"]
    # Under /tmp when run as another user: the session's TMPDIR is private to this one.
    home = Path(tempfile.mkdtemp(prefix="modelyard-pg-", dir="/tmp" if run_as else None))
    admin_password = secrets.token_hex(12)
    (home / "pwfile").write_text(admin_password + "\n")
    if owner is not None:
        for path in (home, home / "pwfile"):
            os.chown(path, owner.pw_uid, owner.pw_gid)
    data, port = home / "data", free_port()

    def run(*args: str) -> None:
        done = subprocess.run([*run_as, *args], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr

    try:
        run(str(pg_bin / "initdb"), "-D", str(data), "-U", "admin", "--auth=scram-sha-256",
            f"--pwfile={home / 'pwfile'}", "--no-sync")  # fmt: skip
        options = f"-p {port} -k {home} -c listen_addresses=127.0.0.1 -c max_connections=20"
        run(str(pg_bin / "pg_ctl"), "-D", str(data), "-l", str(home / "log"), "-w", "-o",
            f"{options} -c fsync=off", "start")  # fmt: skip
        try:
            admin = f"host=127.0.0.1 port={port} dbname=postgres user=admin"
            admin += f" password={admin_password}"
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f"CREATE ROLE {USER} LOGIN PASSWORD '{PASSWORD}'")
            yield Cluster(port, admin)
        finally:
            run(str(pg_bin / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop")
    finally:
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def database(cluster: Cluster) -> Iterator[str]:
    """An empty database owned by ``modelyard``, for one test."""
    import psycopg

    name = f"yard_{secrets.token_hex(6)}"
    with psycopg.connect(cluster.admin, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name} OWNER {USER}")
    try:
        yield name
    finally:
        with psycopg.connect(cluster.admin, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(autouse=True)
def _no_libpq_settings_of_the_runner(monkeypatch) -> None:
    """The pods get only what the manifest gives them: no PGPASSWORD, PGUSER or password
    file of the machine running the tests."""
    if not Path(MODELYARD).exists():
        pytest.skip(f"no modelyard console script beside {sys.executable}")
    for name in list(os.environ):
        if name.startswith("PG"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("PGPASSFILE", os.devnull)


def manifests(stores: ControlPlaneStores) -> tuple[dict[str, Any], dict[str, Any]]:
    """The migration Job's pod and the Deployment's pod, as ``modelyard k8s server``
    writes them."""
    documents = {
        d["kind"]: d
        for d in control_plane_manifests("yard", image="local", stores=stores, workers=1)
    }
    return (
        documents["Job"]["spec"]["template"]["spec"],
        documents["Deployment"]["spec"]["template"]["spec"],
    )


def stores_with_password_secret(cluster: Cluster, database: str, s3: S3Server) -> Any:
    return ControlPlaneStores(
        store_uri=cluster.uri(database),  # no password: it comes from the Secret
        store_password_secret=SecretRef("yard-db", "password"),
        artifacts_uri=f"s3://{s3.bucket}/k8s-password-{database}",
        s3_secret="yard-s3",
        s3_endpoint_url=s3.endpoint_url,
    )


def kubelet(s3: S3Server, tmp: Path, **secret_values: str) -> Kubelet:
    values = {
        ("yard-s3", "AWS_ACCESS_KEY_ID"): s3.key,
        ("yard-s3", "AWS_SECRET_ACCESS_KEY"): s3.secret,
    }
    values.update({("yard-db", key): value for key, value in secret_values.items()})
    return Kubelet(values, tmp)


def revision_of(cluster: Cluster, database: str) -> str | None:
    db = open_database(cluster.uri(database, PASSWORD))
    try:
        return current_revision(db)
    finally:
        db.dispose()


def test_the_containers_log_in_with_the_password_from_the_secret(
    cluster, database, s3_server, tmp_path
):
    job, pod = manifests(stores_with_password_secret(cluster, database, s3_server))
    run = kubelet(s3_server, tmp_path, password=PASSWORD)

    waiting = run.start(pod["initContainers"][0], **{"10m": "60s"})
    time.sleep(1.0)
    assert waiting.poll() is None, finished(waiting)  # logged in, found no schema: waits
    code, output = finished(run.start(job["containers"][0]))
    assert code == 0, output
    assert f"at schema revision {SCHEMA_REVISION}" in output
    assert revision_of(cluster, database) == SCHEMA_REVISION
    code, output = finished(waiting)
    assert code == 0, output
    assert "cannot reach" not in output  # it never failed to log in

    port = free_port()
    server = run.start(pod["containers"][0], **{"5000": str(port), "0.0.0.0": "127.0.0.1"})
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:
            ready = first_ready(server, http, 90)
            assert ready.status_code == 200, ready.text
            assert ready.json()["schema_revision"] == SCHEMA_REVISION
            created = http.post("/api/2.0/mlflow/experiments/create", json={"name": "pw"})
            assert created.status_code == 200, created.text  # it writes, too
    finally:
        server.terminate()
        finished(server, timeout=30)


def test_a_wrong_password_fails_each_container_clearly_without_echoing_it(
    cluster, database, s3_server, tmp_path
):
    """The Job and the server stop at once (exit 2) naming the user the database refused;
    the init container says so at once in its log and gives up at its timeout (a role
    created late by a database operator would still let it through). The password is in
    no output, and nothing was created."""
    job, pod = manifests(stores_with_password_secret(cluster, database, s3_server))
    run = kubelet(s3_server, tmp_path, password=WRONG)

    code, migrate = finished(run.start(job["containers"][0]))
    assert code == 2, migrate
    assert AUTH_FAILED in migrate and cluster.uri(database) in migrate

    code, wait = finished(run.start(pod["initContainers"][0], **{"10m": "3s"}))
    assert code == 2, wait
    assert wait.count(AUTH_FAILED) == 2, wait  # once as it starts waiting, once as it stops
    assert f"could not reach {cluster.uri(database)} in 3s" in wait

    port = free_port()
    code, serve = finished(
        run.start(pod["containers"][0], **{"5000": str(port), "0.0.0.0": "127.0.0.1"}),
        timeout=90,
    )
    assert code == 2, serve
    assert AUTH_FAILED in serve and "Traceback" not in serve

    for output in (migrate, wait, serve):
        assert WRONG not in output and PASSWORD not in output
    assert revision_of(cluster, database) is None


def test_a_wrong_password_in_a_uri_secret_is_not_echoed_either(
    cluster, database, s3_server, tmp_path
):
    """``--store-uri-secret``: the password is part of the URI, which every message shows
    with ``***`` in its place."""
    stores = ControlPlaneStores(
        store_uri_secret=SecretRef("yard-db", "uri"),
        artifacts_uri=f"s3://{s3_server.bucket}/k8s-password-{database}",
        s3_secret="yard-s3",
        s3_endpoint_url=s3_server.endpoint_url,
    )
    job, pod = manifests(stores)
    run = kubelet(s3_server, tmp_path, uri=cluster.uri(database, WRONG))

    code, migrate = finished(run.start(job["containers"][0]))
    code_wait, wait = finished(run.start(pod["initContainers"][0], **{"10m": "1s"}))
    assert (code, code_wait) == (2, 2), (migrate, wait)
    for output in (migrate, wait):
        assert AUTH_FAILED in output
        assert cluster.uri(database, "***") in output and WRONG not in output
