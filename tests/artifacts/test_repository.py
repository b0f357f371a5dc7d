"""The artifact repository: logical paths over blobs, as a tracking server uses them.

Tests taking ``repo`` run on a local folder and on a real S3-compatible server.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

import modelyard.artifacts.repository as repository_module
from modelyard.artifacts.blobs import BlobRef, BlobStore, open_blob_store
from modelyard.artifacts.repository import (
    MAX_PATH_LENGTH,
    ArtifactRepository,
    FileInfo,
    GcReport,
    validate_artifact_path,
)
from modelyard.artifacts.tables import artifact_entries
from modelyard.errors import InvalidParameter, NotFound
from modelyard.store.engine import open_database
from modelyard.store.schema import metadata

if TYPE_CHECKING:
    from tests.artifacts.conftest import S3Server

RUN = "1/0123456789abcdef0123456789abcdef/artifacts"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make_tree(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


class FailingStream:
    """A client upload that dies after ``fail_after`` bytes (a dropped connection)."""

    def __init__(self, data: bytes, fail_after: int) -> None:
        self._data = io.BytesIO(data)
        self._fail_after = fail_after

    def read(self, size: int = -1) -> bytes:
        if self._data.tell() >= self._fail_after:
            raise ConnectionResetError("client went away")
        return self._data.read(size)


@pytest.fixture
def tree(repo: ArtifactRepository) -> ArtifactRepository:
    """a/x.txt, a/sub/y.txt, a/sub/deep/z.txt, a/sub2/w, b.txt, and look-alike neighbours of
    'a' that sort just before and after 'a/' ('a-b', 'a.txt', 'ab') to catch range bugs."""
    for path, data in {
        "a/x.txt": b"xxx",
        "a/sub/y.txt": b"yy",
        "a/sub/deep/z.txt": b"z",
        "a/sub2/w": b"wwww",
        "a-b": b"1",
        "a.txt": b"22",
        "ab/c": b"333",
        "b.txt": b"bbbbb",
    }.items():
        repo.log_bytes(path, data)
    return repo


# -- logging and reading ---------------------------------------------------------------


def test_log_file_and_read_back(repo: ArtifactRepository, tmp_path: Path) -> None:
    local = tmp_path / "model.skops"
    local.write_bytes(b"weights")
    entry = repo.log_file(f"{RUN}/model/model.skops", local)
    assert (entry.path, entry.digest, entry.size) == (
        f"{RUN}/model/model.skops",
        sha(b"weights"),
        7,
    )
    assert entry.created_at > 0
    assert repo.read_bytes(f"{RUN}/model/model.skops") == b"weights"
    with repo.open(f"{RUN}/model/model.skops") as f:
        assert f.read() == b"weights"
    assert repo.stat(f"{RUN}/model/model.skops") == entry
    assert repo.exists(f"{RUN}/model/model.skops")
    assert repo.exists(f"{RUN}/model")
    assert not repo.exists(f"{RUN}/mod")


def test_log_stream_of_unknown_length(repo: ArtifactRepository) -> None:
    data = os.urandom(10_000)
    entry = repo.log_stream("upload.bin", io.BytesIO(data))
    assert entry.digest == sha(data)
    assert repo.read_bytes("upload.bin") == data


def test_same_content_at_two_paths_is_one_blob(repo: ArtifactRepository) -> None:
    repo.log_bytes("run1/model.bin", b"same weights")
    repo.log_bytes("run2/model.bin", b"same weights")
    assert list(repo.blobs.iter_blobs()) == [BlobRef(sha(b"same weights"), 12)]
    assert repo.bytes_under("") == 2 * len(b"same weights")  # logical size counts both


def test_overwrite_repoints_the_path(repo: ArtifactRepository) -> None:
    repo.log_bytes("notes.txt", b"first")
    entry = repo.log_bytes("notes.txt", b"second version")
    assert repo.read_bytes("notes.txt") == b"second version"
    assert repo.list("") == [FileInfo("notes.txt", False, 14)]
    assert repo.stat("notes.txt") == entry


def test_log_dir_logs_every_file_recursively(repo: ArtifactRepository, tmp_path: Path) -> None:
    local = make_tree(
        tmp_path / "model",
        {"MLmodel": b"flavors: {}", "data/model.skops": b"w", "data/extra/conf.json": b"{}"},
    )
    entries = repo.log_dir(f"{RUN}/model", local)
    assert [e.path for e in entries] == [
        f"{RUN}/model/MLmodel",
        f"{RUN}/model/data/model.skops",
        f"{RUN}/model/data/extra/conf.json",
    ]
    assert repo.read_bytes(f"{RUN}/model/data/extra/conf.json") == b"{}"
    (tmp_path / "empty").mkdir()
    assert repo.log_dir("empty", tmp_path / "empty") == []
    with pytest.raises(NotFound, match="nowhere"):
        repo.log_dir("x", tmp_path / "nowhere")


def test_log_dir_records_nothing_if_any_file_fails(
    repo: ArtifactRepository, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    local = make_tree(tmp_path / "d", {"a": b"1", "b": b"2", "c": b"3"})
    real_put_file = repo.blobs.put_file
    calls: list[object] = []

    def put_file_failing_on_second(path: str | os.PathLike[str]) -> object:
        calls.append(path)
        if len(calls) == 2:
            raise OSError("disk vanished")
        return real_put_file(path)

    monkeypatch.setattr(repo.blobs, "put_file", put_file_failing_on_second)
    with pytest.raises(OSError, match="disk vanished"):
        repo.log_dir("d", local)
    assert repo.list_recursive("") == []


def test_log_dir_refuses_file_names_that_are_bad_paths(
    repo: ArtifactRepository, tmp_path: Path
) -> None:
    if os.sep == "\\":
        pytest.skip("backslashes are separators on Windows")
    local = make_tree(tmp_path / "d", {"ok": b"1", "bad\\name": b"2"})
    with pytest.raises(InvalidParameter, match=r"bad\\\\name"):
        repo.log_dir("d", local)
    assert repo.list_recursive("") == []
    assert list(repo.blobs.iter_blobs()) == []  # refused before any upload


# -- atomicity -------------------------------------------------------------------------


def test_stream_failing_midway_records_and_leaves_nothing(
    repo: ArtifactRepository, spool_dir: Path
) -> None:
    data = os.urandom(50_000)
    with pytest.raises(ConnectionResetError):
        repo.log_stream("uploads/big.bin", FailingStream(data, fail_after=20_000))
    assert not repo.exists("uploads/big.bin")
    assert repo.list("") == []
    assert list(repo.blobs.iter_blobs()) == []
    assert repo.blobs.fs.find(repo.blobs.root) == []  # nothing in blobs/ nor tmp/
    assert list(spool_dir.iterdir()) == []


_KILLED_WRITER = textwrap.dedent(
    """
    import json, sys, time
    from modelyard.artifacts.blobs import open_blob_store

    uri, options, spool_dir = json.loads(sys.argv[1])
    store = open_blob_store(uri, storage_options=options, spool_dir=spool_dir)

    class Hanging:
        sent = False

        def read(self, size=-1):
            if not self.sent:
                self.sent = True
                return b"x" * 4096
            print("midway", flush=True)
            time.sleep(600)
            return b""

    store.put_stream(Hanging(), chunk_size=4096)
    """
)


def test_writer_killed_midway_leaves_no_visible_artifact(
    repo: ArtifactRepository, backend: str, request: pytest.FixtureRequest, spool_dir: Path
) -> None:
    """SIGKILL a real writer process mid-upload: its temp file is never listed, and GC
    removes it once it is older than the grace period."""
    blobs = repo.blobs
    if backend == "local":
        spec = [blobs.uri, None, None]
    else:
        server: S3Server = request.getfixturevalue("s3_server")
        spec = [blobs.uri, server.storage_options(shared_session=False), str(spool_dir)]
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILLED_WRITER, json.dumps(spec)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "midway"
    finally:
        proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    assert list(blobs.iter_blobs()) == []
    assert repo.list("") == []
    assert not blobs.exists(sha(b"x" * 4096))
    if backend == "local":
        assert len(blobs.fs.find(f"{blobs.root}/tmp")) == 1  # the killed writer's spool
        assert repo.collect_garbage(grace_s=3600) == GcReport(0, 0, 0)
        assert repo.collect_garbage() == GcReport(0, 0, temp_files_removed=1)
    assert blobs.fs.find(f"{blobs.root}/blobs") == []
    assert blobs.fs.find(f"{blobs.root}/tmp") == []


# -- listing ---------------------------------------------------------------------------


def test_list_gives_direct_children_with_derived_dirs(tree: ArtifactRepository) -> None:
    assert tree.list("a") == [
        FileInfo("a/sub", True, None),
        FileInfo("a/sub2", True, None),
        FileInfo("a/x.txt", False, 3),
    ]
    assert tree.list("") == [
        FileInfo("a", True, None),
        FileInfo("a-b", False, 1),
        FileInfo("a.txt", False, 2),
        FileInfo("ab", True, None),
        FileInfo("b.txt", False, 5),
    ]
    assert tree.list(None) == tree.list("")
    assert tree.list("a/sub") == [
        FileInfo("a/sub/deep", True, None),
        FileInfo("a/sub/y.txt", False, 2),
    ]


def test_list_relative_to_a_root_is_mlflow_style(tree: ArtifactRepository) -> None:
    assert tree.list("a/sub", relative_to="a") == [
        FileInfo("sub/deep", True, None),
        FileInfo("sub/y.txt", False, 2),
    ]
    assert [f.path for f in tree.list("a", relative_to="a")] == ["sub", "sub2", "x.txt"]
    with pytest.raises(InvalidParameter, match="relative_to"):
        tree.list("ab", relative_to="a")


def test_list_of_a_file_or_nothing_is_empty(tree: ArtifactRepository) -> None:
    assert tree.list("a/x.txt") == []
    assert tree.list("nothing/here") == []


def test_list_pages_through_many_children(
    repo: ArtifactRepository, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(repository_module, "_PAGE", 3)
    for i in range(7):
        repo.log_bytes(f"d/f{i}", b"x")
        repo.log_bytes(f"d/sub{i}/inner/deeper", b"y")
    listed = repo.list("d")
    assert [f.path for f in listed] == [f"d/f{i}" for i in range(7)] + [
        f"d/sub{i}" for i in range(7)
    ]


def test_list_recursive_gives_every_file_below(tree: ArtifactRepository) -> None:
    assert tree.list_recursive("a") == [
        FileInfo("a/sub/deep/z.txt", False, 1),
        FileInfo("a/sub/y.txt", False, 2),
        FileInfo("a/sub2/w", False, 4),
        FileInfo("a/x.txt", False, 3),
    ]
    assert [f.path for f in tree.list_recursive("a/sub", relative_to="a/sub")] == [
        "deep/z.txt",
        "y.txt",
    ]
    assert len(tree.list_recursive("")) == 8


def test_bytes_under_sums_a_file_or_a_subtree(tree: ArtifactRepository) -> None:
    assert tree.bytes_under("a") == 3 + 2 + 1 + 4
    assert tree.bytes_under("a/sub") == 3
    assert tree.bytes_under("b.txt") == 5
    assert tree.bytes_under("") == 10 + 1 + 2 + 3 + 5
    assert tree.bytes_under("missing") == 0


# -- download --------------------------------------------------------------------------


def test_download_a_file(tree: ArtifactRepository, tmp_path: Path) -> None:
    local = tree.download("a/sub/y.txt", tmp_path / "dl")
    assert local == str(tmp_path / "dl" / "y.txt")
    assert Path(local).read_bytes() == b"yy"


def test_download_a_directory_subtree(tree: ArtifactRepository, tmp_path: Path) -> None:
    local = Path(tree.download("a/sub", tmp_path / "dl"))
    assert local == tmp_path / "dl" / "sub"
    files = sorted(p.relative_to(local).as_posix() for p in local.rglob("*") if p.is_file())
    assert files == ["deep/z.txt", "y.txt"]
    assert (local / "deep" / "z.txt").read_bytes() == b"z"


def test_download_everything(tree: ArtifactRepository, tmp_path: Path) -> None:
    local = Path(tree.download("", tmp_path / "all"))
    assert local == tmp_path / "all"
    assert len([p for p in local.rglob("*") if p.is_file()]) == 8


def test_download_of_nothing_is_not_found(tree: ArtifactRepository, tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="'a/nope'"):
        tree.download("a/nope", tmp_path / "dl")
    assert not (tmp_path / "dl").exists() or list((tmp_path / "dl").iterdir()) == []


# -- delete and garbage collection -----------------------------------------------------


def test_delete_a_file_or_a_subtree_only(tree: ArtifactRepository) -> None:
    assert tree.delete("a") == 4  # and not a-b, a.txt, ab/c
    assert [f.path for f in tree.list("")] == ["a-b", "a.txt", "ab", "b.txt"]
    assert tree.delete("b.txt") == 1
    assert tree.delete("b.txt") == 0
    assert not tree.exists("b.txt")


def test_gc_removes_exactly_the_unreferenced_bytes(repo: ArtifactRepository) -> None:
    repo.log_bytes("r1/shared", b"A" * 100)
    repo.log_bytes("r2/shared", b"A" * 100)
    repo.log_bytes("r1/model", b"B" * 250)
    repo.log_bytes("r1/model", b"C" * 40)  # overwrite: B is no longer referenced
    repo.delete("r1/shared")  # A is still referenced by r2/shared
    assert repo.collect_garbage(dry_run=True) == GcReport(1, 250, 0, dry_run=True)
    assert len(list(repo.blobs.iter_blobs())) == 3
    assert repo.collect_garbage() == GcReport(1, 250)
    assert sorted(r.size for r in repo.blobs.iter_blobs()) == [40, 100]
    repo.delete("r2")
    assert repo.collect_garbage() == GcReport(1, 100)
    assert repo.read_bytes("r1/model") == b"C" * 40
    assert repo.collect_garbage() == GcReport(0, 0)


def test_gc_spares_blobs_younger_than_the_grace_period(db: object, blob_store: BlobStore) -> None:
    repo = ArtifactRepository(db, blob_store)  # type: ignore[arg-type]  # default: 1 hour
    blob_store.put_bytes(b"uploaded, row not yet committed")
    assert repo.collect_garbage() == GcReport(0, 0)
    assert len(list(blob_store.iter_blobs())) == 1


# -- path rules and errors -------------------------------------------------------------


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ("", "empty"),
        ("/etc/passwd", "absolute"),
        ("a//b", "empty segment"),
        ("a/", "empty segment"),
        ("a/./b", "'.'"),
        ("../escape", "'..'"),
        ("a/b/..", "'..'"),
        ("a\\b", "backslash"),
        ("a\x00b", "NUL"),
        ("x" * (MAX_PATH_LENGTH + 1), "limit is 1024"),
    ],
)
def test_bad_paths_are_refused_naming_the_path(
    repo: ArtifactRepository, bad: str, reason: str
) -> None:
    for call in (
        lambda: repo.log_bytes(bad, b"x"),
        lambda: repo.log_stream(bad, io.BytesIO(b"x")),
        lambda: repo.read_bytes(bad),
        lambda: repo.exists(bad),
        lambda: repo.delete(bad),
    ):
        with pytest.raises(InvalidParameter) as info:
            call()
        assert repr(bad) in str(info.value)
        assert reason in str(info.value)
    assert list(repo.blobs.iter_blobs()) == []  # refused before anything was stored
    if bad:  # '' is the repository root for listings
        with pytest.raises(InvalidParameter):
            repo.list(bad)


def test_longest_allowed_path_is_accepted(repo: ArtifactRepository) -> None:
    path = "/".join(["x" * 99] * 10) + "/" + "y" * 24
    assert len(path) == MAX_PATH_LENGTH
    assert validate_artifact_path(path) == path
    repo.log_bytes(path, b"deep")
    assert repo.read_bytes(path) == b"deep"
    with pytest.raises(InvalidParameter, match="must be a string"):
        validate_artifact_path(None)


def test_a_file_and_a_directory_cannot_share_a_path(repo: ArtifactRepository) -> None:
    repo.log_bytes("a/b", b"file")
    with pytest.raises(InvalidParameter, match="'a/b' is a file"):
        repo.log_bytes("a/b/c", b"under a file")
    repo.log_bytes("d/e/f", b"deep")
    with pytest.raises(InvalidParameter, match="'d/e' cannot be logged: it is a directory"):
        repo.log_bytes("d/e", b"over a directory")
    assert [f.path for f in repo.list_recursive("")] == ["a/b", "d/e/f"]


@pytest.mark.parametrize("method", ["read_bytes", "open", "stat"])
def test_missing_or_directory_paths_are_not_found(tree: ArtifactRepository, method: str) -> None:
    with pytest.raises(NotFound, match="'a/missing' does not exist"):
        getattr(tree, method)("a/missing")
    with pytest.raises(NotFound, match="'a/sub' is a directory"):
        getattr(tree, method)("a/sub")


# -- PostgreSQL ------------------------------------------------------------------------


@pytest.mark.postgres
def test_ranges_are_bytewise_on_postgresql_even_under_a_locale_collation(
    postgres_uri: str, tmp_path: Path
) -> None:
    """Under an ICU collation 'A/y' sorts between 'a/' and 'a0'; the repository must still
    treat it as outside 'a', as SQLite and S3 do."""
    db = open_database(postgres_uri)
    try:
        metadata.create_all(db.engine, tables=[artifact_entries])
        with db.write() as conn:
            conn.exec_driver_sql(
                "ALTER TABLE artifact_entries ALTER COLUMN path"
                ' TYPE varchar(1024) COLLATE "und-x-icu"'
            )
        repo = ArtifactRepository(db, open_blob_store(str(tmp_path / "blobs")), gc_grace_s=0)
        for path in ("a/x", "A/y", "a-b", "a.txt", "ab/c", "a/sub/z"):
            repo.log_bytes(path, path.encode())
        repo.log_bytes("a/x", b"overwritten")
        assert repo.list("a") == [FileInfo("a/sub", True, None), FileInfo("a/x", False, 11)]
        assert [f.path for f in repo.list("")] == ["A", "a", "a-b", "a.txt", "ab"]
        assert [f.path for f in repo.list_recursive("a")] == ["a/sub/z", "a/x"]
        assert repo.bytes_under("a") == 11 + 7
        assert repo.delete("a") == 2
        assert repo.exists("A/y")
        assert repo.collect_garbage() == GcReport(3, len(b"a/x") + 11 + 7)
    finally:
        db.dispose()


def test_log_blobs_records_blobs_another_process_stored(repo: ArtifactRepository) -> None:
    """A pipeline worker puts bytes in the blob store; the coordinator records the paths."""
    first, second = repo.blobs.put_bytes(b"one"), repo.blobs.put_bytes(b"two")
    entries = repo.log_blobs([("run/outputs/a/value.json", first), ("run/outputs/b/x", second)])
    assert [e.digest for e in entries] == [first.digest, second.digest]
    assert repo.read_bytes("run/outputs/b/x") == b"two"


def test_log_blobs_refuses_a_missing_blob_and_records_nothing(repo: ArtifactRepository) -> None:
    kept = repo.blobs.put_bytes(b"kept")
    missing = BlobRef(sha(b"never stored"), 12)
    with pytest.raises(NotFound, match="is not in the store"):
        repo.log_blobs([("run/a", kept), ("run/b", missing)])
    assert not repo.exists("run/a") and not repo.exists("run/b")
    with pytest.raises(InvalidParameter, match=r"has a '\.\.' segment"):
        repo.log_blobs([("run/../escape", kept)])
