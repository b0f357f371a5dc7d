"""Content-addressed blob storage over fsspec: local folders and S3-compatible buckets.

A blob is named by the sha256 of its bytes and lives at
``<root>/blobs/sha256/<first 2 hex>/<other 62 hex>``. Because the name is the content, a
blob is immutable, storing the same bytes twice costs nothing (de-duplication), and a
blob's name proves what it holds.

A blob is visible only once it is complete. On a local filesystem it is written to
``<root>/tmp/<uuid>``, fsynced, then renamed into place (rename is atomic on POSIX and
NTFS). On S3 a PUT (or a completed multipart upload) is atomic by nature: the object
appears only when all of it has arrived, and a failed multipart upload is aborted.

Example::

    store = open_blob_store("/tmp/modelyard-artifacts")
    ref = store.put_bytes(b"hello")
    assert store.read_bytes(ref.digest) == b"hello"
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from fsspec import AbstractFileSystem
from fsspec.implementations.local import LocalFileSystem

from modelyard.errors import InvalidParameter, MissingExtra, NotFound, StoreUnavailable

#: Read and write in 1 MiB pieces: large enough to amortise calls, small enough for memory.
CHUNK_SIZE = 1 << 20

_DIGEST = re.compile(r"[0-9a-f]{64}")


class Readable(Protocol):
    """Anything with ``read(n) -> bytes``: an open file, an HTTP request body, a socket file."""

    def read(self, size: int = -1, /) -> bytes: ...


@dataclass(frozen=True, slots=True)
class BlobRef:
    """A stored blob: its sha256 (64 lowercase hex characters) and its size in bytes."""

    digest: str
    size: int


def validate_digest(digest: object, field: str = "digest") -> str:
    """Return ``digest`` if it is 64 lowercase hex characters, else raise InvalidParameter."""
    if not isinstance(digest, str) or not _DIGEST.fullmatch(digest):
        raise InvalidParameter(
            f"{field} {digest!r} is not a sha256 digest; expected 64 lowercase hex characters",
            field=field,
        )
    return digest


class BlobStore:
    """Immutable, content-addressed blobs under ``root`` of an fsspec filesystem.

    ``root`` is in the filesystem's own path form (``/abs/dir`` locally, ``bucket/prefix``
    on S3). ``spool_dir`` is where streams of unknown size are staged before an upload to
    a remote store (the system temp folder by default; a local store stages in its own
    ``tmp/``). ``unavailable_errors`` are the exception types that mean "the backend
    failed" and become StoreUnavailable.
    """

    def __init__(
        self,
        fs: AbstractFileSystem,
        root: str,
        *,
        uri: str | None = None,
        spool_dir: str | None = None,
        unavailable_errors: tuple[type[BaseException], ...] = (OSError,),
    ) -> None:
        self.fs = fs
        self.root = root.rstrip("/")
        self.uri = uri or self.root
        self.is_local = isinstance(fs, LocalFileSystem)
        self._blob_root = f"{self.root}/blobs/sha256"
        self._tmp_root = f"{self.root}/tmp"
        self._spool_dir = self._tmp_root if self.is_local else spool_dir
        self._unavailable = unavailable_errors
        if self.is_local:
            os.makedirs(self._tmp_root, exist_ok=True)
            os.makedirs(self._blob_root, exist_ok=True)

    def __repr__(self) -> str:
        return f"BlobStore({self.uri!r})"

    # -- writing ---------------------------------------------------------------------

    def put_file(self, local_path: str | os.PathLike[str]) -> BlobRef:
        """Store a local file; skips the upload when a blob with its content already exists.

        Locally the file is hashed while it is copied to the temp file, so the name always
        matches the bytes stored even if the file changes meanwhile.
        """
        src = os.fspath(local_path)
        if not os.path.exists(src):
            raise NotFound(f"local file {src!r} does not exist", field="local_path")
        if not os.path.isfile(src):
            raise InvalidParameter(f"local path {src!r} is not a file", field="local_path")
        with open(src, "rb") as f:
            if self.is_local:
                return self.put_stream(f)
            digest, size = _copy_hashing(f, None)
        if not self._claim_existing(digest):
            with self._guard("upload a blob"):
                self.fs.put_file(src, self._blob_path(digest))
        return BlobRef(digest, size)

    def put_bytes(self, data: bytes) -> BlobRef:
        """Store ``data`` held in memory."""
        digest = hashlib.sha256(data).hexdigest()
        if self.is_local:
            return self.put_stream(io.BytesIO(data))
        if not self._claim_existing(digest):
            with self._guard("upload a blob"):
                self.fs.pipe_file(self._blob_path(digest), data)
        return BlobRef(digest, len(data))

    def put_stream(self, fileobj: Readable, chunk_size: int = CHUNK_SIZE) -> BlobRef:
        """Store a stream of unknown length (an HTTP upload).

        The stream is spooled to a local temp file while it is hashed, because the digest
        (the blob's name) is known only at the end. If reading raises midway, the spool
        file is removed and nothing becomes visible.
        """
        if chunk_size <= 0:
            raise InvalidParameter(f"chunk_size {chunk_size} must be positive", field="chunk_size")
        if self.is_local:
            spool = self._new_tmp_path()
            spool_file: BinaryIO = open(spool, "wb")  # noqa: SIM115 - closed below
        else:
            fd, spool = tempfile.mkstemp(prefix="modelyard-", suffix=".part", dir=self._spool_dir)
            spool_file = os.fdopen(fd, "wb")
        try:
            with spool_file:
                digest, size = _copy_hashing(fileobj, spool_file, chunk_size)
                if self.is_local:  # the spool file becomes the blob itself
                    _flush_and_sync(spool_file)
            if not self._claim_existing(digest):
                if self.is_local:
                    self._publish_local(spool, digest)
                else:
                    with self._guard("upload a blob"):
                        self.fs.put_file(spool, self._blob_path(digest))
        finally:
            _unlink_quietly(spool)  # already renamed away when published locally
        return BlobRef(digest, size)

    # -- reading ---------------------------------------------------------------------

    def open(self, digest: str) -> BinaryIO:
        """Open a blob for reading (binary, seekable); the caller closes it."""
        path = self._blob_path(validate_digest(digest))
        with self._guard("open a blob", missing=digest):
            return self.fs.open(path, "rb")  # type: ignore[no-any-return]

    def read_bytes(self, digest: str) -> bytes:
        """The whole content of a blob, in memory."""
        path = self._blob_path(validate_digest(digest))
        with self._guard("read a blob", missing=digest):
            return bytes(self.fs.cat_file(path))

    def download(self, digest: str, local_path: str | os.PathLike[str]) -> str:
        """Copy a blob to ``local_path``; the file appears complete or not at all."""
        path = self._blob_path(validate_digest(digest))
        dst = os.path.abspath(os.fspath(local_path))
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        fd, tmp = tempfile.mkstemp(
            prefix=f".{os.path.basename(dst)}.", suffix=".part", dir=os.path.dirname(dst)
        )
        os.close(fd)
        try:
            with self._guard("download a blob", missing=digest):
                self.fs.get_file(path, tmp)
            os.replace(tmp, dst)
        except BaseException:
            _unlink_quietly(tmp)
            raise
        return dst

    def local_path(self, digest: str) -> str | None:
        """The blob's own file when the store is a local folder (readers such as DuckDB
        open it in place, without a copy), else None: a remote blob is downloaded first."""
        return self._blob_path(validate_digest(digest)) if self.is_local else None

    def exists(self, digest: str) -> bool:
        path = self._blob_path(validate_digest(digest))
        with self._guard("check a blob"):
            return bool(self.fs.exists(path))

    def size(self, digest: str) -> int:
        """Size of a blob in bytes."""
        path = self._blob_path(validate_digest(digest))
        with self._guard("stat a blob", missing=digest):
            return int(self.fs.size(path))

    # -- maintenance -----------------------------------------------------------------

    def delete(self, digest: str) -> bool:
        """Remove a blob; False when it was not there.

        Blobs are shared by every path with the same content: only garbage collection,
        which checks that nothing references a blob, should call this.
        """
        path = self._blob_path(validate_digest(digest))
        with suppress(FileNotFoundError), self._guard("delete a blob"):
            # S3 deletes are idempotent and would not tell us whether the blob was there.
            if self.is_local or self.fs.exists(path):
                self.fs.rm_file(path)
                return True
        return False

    def iter_blobs(self, *, older_than_s: float | None = None) -> Iterator[BlobRef]:
        """Every complete blob; with ``older_than_s``, only those last written before then.

        Temp files (``tmp/``) and stray objects whose names are not digests are skipped.
        """
        for _path, digest, info in self._walk(self._blob_root):
            if digest is None:
                continue
            if older_than_s is not None and _age_s(info) < older_than_s:
                continue
            yield BlobRef(digest, int(info.get("size") or 0))

    def is_older_than(self, digest: str, older_than_s: float) -> bool:
        """Whether the blob exists and was last written (or re-claimed) over ``older_than_s``
        seconds ago; garbage collection re-checks this right before deleting."""
        path = self._blob_path(validate_digest(digest))
        with suppress(FileNotFoundError), self._guard("stat a blob"):
            return _age_s(self.fs.info(path)) >= older_than_s
        return False

    def remove_stale_temp(self, older_than_s: float, *, dry_run: bool = False) -> int:
        """Remove temp files left by killed writers, if older than ``older_than_s`` seconds.

        Returns how many were (or, with ``dry_run``, would be) removed. Younger files may
        belong to a writer that is still running. Incomplete S3 multipart uploads are not
        visible here; a bucket lifecycle rule (AbortIncompleteMultipartUpload) cleans them.
        """
        stale = [
            path for path, _, info in self._walk(self._tmp_root) if _age_s(info) >= older_than_s
        ]
        for path in [] if dry_run else stale:
            with suppress(FileNotFoundError), self._guard("remove a temp file"):
                self.fs.rm_file(path)
        return len(stale)

    # -- internals -------------------------------------------------------------------

    def _blob_path(self, digest: str) -> str:
        return f"{self._blob_root}/{digest[:2]}/{digest[2:]}"

    def _new_tmp_path(self) -> str:
        return f"{self._tmp_root}/{uuid.uuid4().hex}"

    def _claim_existing(self, digest: str) -> bool:
        """True if the blob exists, after refreshing its modification time.

        The refresh tells a concurrent garbage collector (which re-checks the age right
        before deleting) that the blob is wanted again. Where it cannot be refreshed, we
        answer False and the caller simply uploads it again.
        """
        path = self._blob_path(digest)
        if self.is_local:
            try:
                os.utime(path)
                return True
            except FileNotFoundError:
                return False
        with self._guard("check a blob"):
            if not self.fs.exists(path):
                return False
        setxattr = getattr(self.fs, "setxattr", None)
        if setxattr is None:
            return False
        try:  # S3: a server-side copy onto itself, which renews LastModified
            setxattr(path, modelyard_claimed=str(int(time.time())))
        except Exception:  # objects over 5 GB cannot be copied in one call; re-upload
            return False
        return True

    def _publish_local(self, tmp: str, digest: str) -> None:
        final = self._blob_path(digest)
        parent = os.path.dirname(final)
        os.makedirs(parent, exist_ok=True)
        os.replace(tmp, final)
        _fsync_dir(parent)

    def _walk(self, base: str) -> Iterator[tuple[str, str | None, dict[str, Any]]]:
        """(path, digest or None, info) for every file under ``base``."""
        try:
            with self._guard("list blobs"):
                found = self.fs.find(base, detail=True)
        except FileNotFoundError:
            return
        for path, info in found.items():
            if info.get("type") != "file":
                continue
            parts = path.rstrip("/").rsplit("/", 2)
            digest = None
            if len(parts) == 3 and len(parts[1]) == 2 and _DIGEST.fullmatch(parts[1] + parts[2]):
                digest = parts[1] + parts[2]
            yield path, digest, info

    @contextmanager
    def _guard(self, action: str, *, missing: str | None = None) -> Iterator[None]:
        """Turn backend failures into StoreUnavailable, and a missing file into NotFound
        for the blob ``missing`` or, without it, let FileNotFoundError through."""
        try:
            yield
        except FileNotFoundError:
            if missing is None:
                raise
            raise NotFound(
                f"blob {missing} is not in the artifact store {self.uri}", field="digest"
            ) from None
        except self._unavailable as exc:
            raise StoreUnavailable(
                f"artifact store {self.uri} failed to {action}: {exc}", field="artifact_store"
            ) from exc


def open_blob_store(
    uri: str, *, storage_options: dict[str, Any] | None = None, spool_dir: str | None = None
) -> BlobStore:
    """Open the blob store named by ``uri``.

    A plain path or ``file://`` URI is a local folder (created if missing); ``s3://bucket``
    or ``s3://bucket/prefix`` is S3 or any S3-compatible server. ``storage_options`` go to
    the fsspec filesystem, e.g. ``{"client_kwargs": {"endpoint_url": "http://127.0.0.1:9000"},
    "key": "...", "secret": "..."}``; without them boto's usual environment variables and
    config files apply. ``spool_dir`` is where a remote store stages streamed uploads
    (default: the system temp folder).

    >>> store = open_blob_store(f"file://{tmp_home}/artifacts")
    >>> store.put_bytes(b"x").size
    1
    """
    options = dict(storage_options or {})
    if not isinstance(uri, str) or not uri.strip():
        raise InvalidParameter(f"artifact store URI {uri!r} is empty", field="artifact_uri")
    scheme, sep, rest = uri.partition("://")
    if not sep:
        scheme, rest = "file", uri
    scheme = scheme.lower()
    if scheme in ("file", "local"):
        if not rest:
            raise InvalidParameter(f"artifact store URI {uri!r} has no path", field="artifact_uri")
        root = Path(rest).expanduser().resolve()
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreUnavailable(
                f"cannot create the artifact folder {str(root)!r}: {exc}", field="artifact_uri"
            ) from exc
        fs = LocalFileSystem(skip_instance_cache=True, **options)
        return BlobStore(fs, root.as_posix(), uri=root.as_uri())
    if scheme in ("s3", "s3a"):
        return _open_s3(uri, rest, options, spool_dir)
    raise InvalidParameter(
        f"artifact store URI scheme {scheme!r} in {uri!r} is not supported; "
        "use a local path, file:///path or s3://bucket/prefix",
        field="artifact_uri",
    )


def _open_s3(uri: str, rest: str, options: dict[str, Any], spool_dir: str | None) -> BlobStore:
    try:
        # optional extra, imported where used
        import s3fs
        from botocore.exceptions import BotoCoreError
    except ImportError as exc:
        raise MissingExtra("s3fs", "s3", "An S3 artifact store") from exc
    root = rest.strip("/")
    bucket = root.split("/", 1)[0]
    if not bucket:
        raise InvalidParameter(f"artifact store URI {uri!r} names no bucket", field="artifact_uri")
    # Several processes share a bucket: a cached listing would hide their writes.
    options.setdefault("use_listings_cache", False)
    fs = s3fs.S3FileSystem(skip_instance_cache=True, **options)
    unavailable = (OSError, BotoCoreError)
    store = BlobStore(
        fs, root, uri=f"s3://{root}", spool_dir=spool_dir, unavailable_errors=unavailable
    )
    try:
        with store._guard("reach its bucket"):
            fs.info(bucket)
    except FileNotFoundError:
        raise StoreUnavailable(
            f"S3 bucket {bucket!r} of artifact store {uri!r} does not exist; create it first",
            field="artifact_uri",
        ) from None
    return store


def _copy_hashing(
    src: Readable, dst: BinaryIO | None, chunk_size: int = CHUNK_SIZE
) -> tuple[str, int]:
    """Read ``src`` to the end, hashing it and copying it to ``dst`` if given."""
    digest = hashlib.sha256()
    size = 0
    while True:
        chunk = src.read(chunk_size)
        if not chunk:
            break
        digest.update(chunk)
        size += len(chunk)
        if dst is not None:
            dst.write(chunk)
    return digest.hexdigest(), size


def _flush_and_sync(f: BinaryIO) -> None:
    f.flush()
    os.fsync(f.fileno())


def _fsync_dir(path: str) -> None:
    """Persist a rename; not possible (nor needed) on Windows."""
    try:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _age_s(info: dict[str, Any]) -> float:
    """Seconds since a file was last written, from a local or S3 ``info`` dict."""
    stamp = info.get("mtime", info.get("LastModified", info.get("last_modified")))
    if isinstance(stamp, datetime):
        stamp = stamp.timestamp()
    if stamp is None:
        return float("inf")  # unknown: treat as old, so leftovers are not kept forever
    return time.time() - float(stamp)
