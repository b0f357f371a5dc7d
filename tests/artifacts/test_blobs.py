"""The blob store: content addressing, de-duplication, atomic writes, reads and maintenance.

Tests taking ``blob_store`` run on a local folder and on a real S3-compatible server.
"""

from __future__ import annotations

import hashlib
import io
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from modelyard.artifacts.blobs import BlobRef, BlobStore, open_blob_store, validate_digest
from modelyard.errors import InvalidParameter, MissingExtra, NotFound, StoreUnavailable

if TYPE_CHECKING:
    from tests.artifacts.conftest import S3Server


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class FailingStream:
    """A client upload that dies after ``fail_after`` bytes (a dropped connection)."""

    def __init__(self, data: bytes, fail_after: int) -> None:
        self._data = io.BytesIO(data)
        self._fail_after = fail_after

    def read(self, size: int = -1) -> bytes:
        if self._data.tell() >= self._fail_after:
            raise ConnectionResetError("client went away")
        return self._data.read(size)


def stored_files(store: BlobStore) -> list[str]:
    """Every file under the store's root, as the backend sees it."""
    return sorted(store.fs.find(store.root))


# -- content addressing and de-duplication ---------------------------------------------


def test_put_bytes_names_blob_by_sha256_and_reads_back(blob_store: BlobStore) -> None:
    ref = blob_store.put_bytes(b"hello")
    assert ref == BlobRef(sha(b"hello"), 5)
    assert blob_store.read_bytes(ref.digest) == b"hello"
    assert blob_store.exists(ref.digest)
    assert blob_store.size(ref.digest) == 5
    expected = f"{blob_store.root}/blobs/sha256/{ref.digest[:2]}/{ref.digest[2:]}"
    assert stored_files(blob_store) == [expected]


def test_same_content_is_stored_once(blob_store: BlobStore, tmp_path: Path) -> None:
    data = os.urandom(3000)
    local = tmp_path / "data.bin"
    local.write_bytes(data)
    refs = {
        blob_store.put_bytes(data),
        blob_store.put_file(local),
        blob_store.put_stream(io.BytesIO(data), chunk_size=1000),
        blob_store.put_bytes(data),
    }
    assert refs == {BlobRef(sha(data), 3000)}
    assert list(blob_store.iter_blobs()) == [BlobRef(sha(data), 3000)]
    assert len(stored_files(blob_store)) == 1


def test_put_file_hashes_in_chunks_larger_files(blob_store: BlobStore, tmp_path: Path) -> None:
    data = os.urandom(2_500_000)  # spans several 1 MiB chunks
    local = tmp_path / "big.bin"
    local.write_bytes(data)
    ref = blob_store.put_file(local)
    assert ref == BlobRef(sha(data), len(data))
    with blob_store.open(ref.digest) as f:
        assert f.read() == data


def test_empty_content_is_a_valid_blob(blob_store: BlobStore) -> None:
    ref = blob_store.put_stream(io.BytesIO(b""))
    assert ref == BlobRef(sha(b""), 0)
    assert blob_store.read_bytes(ref.digest) == b""


def test_put_file_rejects_missing_or_non_file_sources(
    blob_store: BlobStore, tmp_path: Path
) -> None:
    with pytest.raises(NotFound, match=r"nope\.bin"):
        blob_store.put_file(tmp_path / "nope.bin")
    with pytest.raises(InvalidParameter, match="not a file"):
        blob_store.put_file(tmp_path)


# -- atomicity -------------------------------------------------------------------------


def test_stream_failing_midway_leaves_nothing(blob_store: BlobStore, spool_dir: Path) -> None:
    data = os.urandom(5000)
    with pytest.raises(ConnectionResetError):
        blob_store.put_stream(FailingStream(data, fail_after=2000), chunk_size=500)
    assert not blob_store.exists(sha(data))
    assert not blob_store.exists(sha(data[:2000]))
    assert list(blob_store.iter_blobs()) == []
    assert stored_files(blob_store) == []  # no blob, and no temp file either
    assert list(spool_dir.iterdir()) == []


def test_local_temp_file_of_killed_writer_is_invisible_then_cleaned(tmp_path: Path) -> None:
    store = open_blob_store(str(tmp_path / "store"))
    leftover = tmp_path / "store" / "tmp" / "3f1c0c8e9a7b4d2f8e6a5b4c3d2e1f00"
    leftover.write_bytes(b"half of an artifa")
    assert list(store.iter_blobs()) == []
    assert store.remove_stale_temp(3600) == 0  # may belong to a writer still running
    assert leftover.exists()
    assert store.remove_stale_temp(0, dry_run=True) == 1
    assert leftover.exists()
    assert store.remove_stale_temp(0) == 1
    assert not leftover.exists()


def test_s3_incomplete_multipart_upload_is_invisible(s3_server: S3Server) -> None:
    """An upload interrupted before CompleteMultipartUpload never shows up as a blob."""
    store = open_blob_store(
        f"s3://{s3_server.bucket}/mpu-test", storage_options=s3_server.storage_options()
    )
    data = os.urandom(1000)
    key = f"mpu-test/blobs/sha256/{sha(data)[:2]}/{sha(data)[2:]}"
    client = s3_server.client()
    upload = client.create_multipart_upload(Bucket=s3_server.bucket, Key=key)
    client.upload_part(
        Bucket=s3_server.bucket, Key=key, PartNumber=1, UploadId=upload["UploadId"], Body=data
    )
    assert not store.exists(sha(data))
    assert list(store.iter_blobs()) == []
    client.abort_multipart_upload(Bucket=s3_server.bucket, Key=key, UploadId=upload["UploadId"])


def test_download_is_atomic_and_replaces_existing_file(
    blob_store: BlobStore, tmp_path: Path
) -> None:
    ref = blob_store.put_bytes(b"new content")
    target = tmp_path / "out" / "model.bin"
    target.parent.mkdir()
    target.write_bytes(b"old")
    assert blob_store.download(ref.digest, target) == str(target)
    assert target.read_bytes() == b"new content"
    with pytest.raises(NotFound):
        blob_store.download(sha(b"missing"), tmp_path / "out" / "missing.bin")
    assert sorted(p.name for p in target.parent.iterdir()) == ["model.bin"]  # no .part left


# -- reading and validation ------------------------------------------------------------


@pytest.mark.parametrize("method", ["open", "read_bytes", "size"])
def test_missing_blob_is_not_found(blob_store: BlobStore, method: str) -> None:
    digest = sha(b"never stored")
    with pytest.raises(NotFound, match=digest):
        getattr(blob_store, method)(digest)
    assert not blob_store.exists(digest)


@pytest.mark.parametrize(
    "bad", ["", "abc", "A" * 64, "g" * 64, "0" * 63, "0" * 65, "../" + "0" * 61, None]
)
def test_malformed_digest_is_invalid(blob_store: BlobStore, bad: object) -> None:
    with pytest.raises(InvalidParameter, match="digest") as info:
        blob_store.read_bytes(bad)  # type: ignore[arg-type]
    assert info.value.field == "digest"
    with pytest.raises(InvalidParameter):
        validate_digest(bad)


# -- maintenance -----------------------------------------------------------------------


def test_delete_and_iterate(blob_store: BlobStore) -> None:
    a, b = blob_store.put_bytes(b"a"), blob_store.put_bytes(b"bb")
    assert sorted(blob_store.iter_blobs(), key=lambda r: r.size) == [a, b]
    assert blob_store.delete(a.digest) is True
    assert blob_store.delete(a.digest) is False
    assert list(blob_store.iter_blobs()) == [b]
    assert list(blob_store.iter_blobs(older_than_s=3600)) == []  # b is fresh


def test_reusing_an_old_blob_renews_its_age(blob_store: BlobStore) -> None:
    """A writer that de-duplicates against an old blob tells garbage collection it is wanted."""
    ref = blob_store.put_bytes(b"model weights")
    if blob_store.is_local:
        path = f"{blob_store.root}/blobs/sha256/{ref.digest[:2]}/{ref.digest[2:]}"
        past = time.time() - 7200
        os.utime(path, (past, past))
        age = 3600.0
    else:
        time.sleep(2.1)  # S3 timestamps have one-second resolution: leave a clear margin
        age = 2.0
    assert blob_store.is_older_than(ref.digest, age)
    blob_store.put_bytes(b"model weights")
    assert not blob_store.is_older_than(ref.digest, age)


# -- opening stores --------------------------------------------------------------------


def test_open_local_store_accepts_plain_paths_and_file_uris(tmp_path: Path) -> None:
    ref = open_blob_store(str(tmp_path / "a")).put_bytes(b"x")
    again = open_blob_store((tmp_path / "a").as_uri())
    assert again.read_bytes(ref.digest) == b"x"
    assert again.uri == (tmp_path / "a").as_uri()


def test_unsupported_scheme_is_invalid() -> None:
    with pytest.raises(InvalidParameter, match="gs://bucket"):
        open_blob_store("gs://bucket/x")


def test_s3_without_s3fs_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "s3fs", None)
    with pytest.raises(MissingExtra, match=r"pip install 'modelyard\[s3\]'"):
        open_blob_store("s3://bucket/prefix")


def test_s3_missing_bucket_is_unavailable(s3_server: S3Server) -> None:
    with pytest.raises(StoreUnavailable, match="no-such-bucket"):
        open_blob_store("s3://no-such-bucket/x", storage_options=s3_server.storage_options())


def test_s3_unreachable_endpoint_is_unavailable() -> None:
    pytest.importorskip("s3fs")
    options = {
        "key": "k",
        "secret": "s",
        "client_kwargs": {"endpoint_url": "http://127.0.0.1:9", "region_name": "us-east-1"},
        "config_kwargs": {"retries": {"max_attempts": 1}, "connect_timeout": 1},
    }
    with pytest.raises(StoreUnavailable, match=r"127\.0\.0\.1:9"):
        open_blob_store("s3://bucket/x", storage_options=options)


def test_s3_store_sees_writes_of_another_process(s3_server: S3Server) -> None:
    """Two servers share a bucket: neither may answer from a stale listing cache."""
    uri = f"s3://{s3_server.bucket}/shared-{time.time_ns()}"
    first = open_blob_store(uri, storage_options=s3_server.storage_options())
    second = open_blob_store(uri, storage_options=s3_server.storage_options())
    assert list(second.iter_blobs()) == []
    ref = first.put_bytes(b"written elsewhere")
    assert second.exists(ref.digest)
    assert list(second.iter_blobs()) == [ref]
