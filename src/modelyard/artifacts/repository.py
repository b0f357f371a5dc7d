"""Logical artifact paths (``1/<run_id>/artifacts/model/model.skops``) over content blobs.

The ``artifact_entries`` table maps each path to the sha256 of its content; the bytes live
in a BlobStore. A path becomes visible only when its row commits, and its blob is always
written completely before that, so readers never see half an artifact. Directories are not
stored: they are derived from the paths below them, so listing uses index-backed range
queries (``path >= 'p/' AND path < 'p0'``, since ``'0'`` follows ``'/'``) rather than LIKE.

Example::

    repo = ArtifactRepository(db, open_blob_store("/tmp/artifacts"))
    repo.log_bytes("1/abc/artifacts/notes.txt", b"hi")
    repo.list("1/abc/artifacts")  # [FileInfo(path='1/abc/artifacts/notes.txt', ...)]
"""

from __future__ import annotations

import builtins
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from importlib import import_module
from typing import Any, BinaryIO

from sqlalchemy import ColumnElement, Connection, Row, and_, delete, func, or_, select, true

from modelyard.artifacts.blobs import BlobRef, BlobStore, Readable
from modelyard.artifacts.tables import artifact_entries
from modelyard.errors import InvalidParameter, NotFound
from modelyard.ids import now_ms
from modelyard.store.engine import Database

MAX_PATH_LENGTH = 1024
#: Blobs younger than this are never collected: their entry may not be committed yet.
DEFAULT_GC_GRACE_S = 3600.0
_PAGE = 1000  # rows per listing query
_BATCH = 500  # values per IN (...) clause, well under every backend's parameter limit


@dataclass(frozen=True, slots=True)
class ArtifactEntry:
    """One stored artifact file: its path, content digest, size in bytes, and when it was
    logged (ms since the epoch)."""

    path: str
    digest: str
    size: int
    created_at: int


@dataclass(frozen=True, slots=True)
class FileInfo:
    """A listing item, MLflow style: ``file_size`` is None for directories."""

    path: str
    is_dir: bool
    file_size: int | None


@dataclass(frozen=True, slots=True)
class GcReport:
    """What garbage collection removed (or, with ``dry_run``, would remove)."""

    blobs_removed: int
    bytes_freed: int
    temp_files_removed: int = 0
    dry_run: bool = False


def validate_artifact_path(path: object, field: str = "path") -> str:
    """Return ``path`` if it is a well-formed artifact path, else raise InvalidParameter.

    A path is relative and '/'-separated with no empty, '.' or '..' segments, no
    backslashes or NUL, at most 1024 characters: so it can never escape a download folder
    and means the same thing on every operating system and object store.
    """
    if not isinstance(path, str):
        raise InvalidParameter(
            f"artifact {field} must be a string, got {type(path).__name__} {path!r}", field=field
        )
    problem = None
    if not path:
        problem = "is empty"
    elif len(path) > MAX_PATH_LENGTH:
        problem = f"is {len(path)} characters long; the limit is {MAX_PATH_LENGTH}"
    elif "\x00" in path:
        problem = "contains a NUL character"
    elif "\\" in path:
        problem = "contains a backslash; separate segments with '/'"
    elif path.startswith("/"):
        problem = "is absolute; artifact paths are relative (drop the leading '/')"
    else:
        for segment in path.split("/"):
            if not segment:
                problem = "has an empty segment ('//' or a trailing '/')"
            elif segment in (".", ".."):
                problem = f"has a {segment!r} segment; use plain names"
            if problem:
                break
    if problem:
        raise InvalidParameter(f"artifact {field} {path!r} {problem}", field=field)
    return path


def _prefix(prefix: str | None, field: str = "prefix") -> str:
    """A listing prefix: a valid path, or '' (or None) for the whole repository."""
    return "" if prefix in (None, "") else validate_artifact_path(prefix, field)


class ArtifactRepository:
    """Artifact paths in a metadata database, their bytes in a BlobStore.

    ``gc_grace_s`` protects fresh blobs from garbage collection: a writer stores the blob
    first and commits its row afterwards, and a collector must not run in between.
    """

    def __init__(
        self, db: Database, blobs: BlobStore, *, gc_grace_s: float = DEFAULT_GC_GRACE_S
    ) -> None:
        self.db = db
        self.blobs = blobs
        self.gc_grace_s = gc_grace_s
        col = artifact_entries.c.path
        # Range scans need bytewise order; PostgreSQL's default collation may not give it.
        self._path = col.collate("C") if db.dialect == "postgresql" else col

    # -- writing ---------------------------------------------------------------------

    def log_file(self, dest_path: str, local_file: str | os.PathLike[str]) -> ArtifactEntry:
        """Store a local file at ``dest_path``, replacing whatever was there."""
        validate_artifact_path(dest_path)
        return self._commit([(dest_path, self.blobs.put_file(local_file))])[0]

    def log_bytes(self, dest_path: str, data: bytes) -> ArtifactEntry:
        validate_artifact_path(dest_path)
        return self._commit([(dest_path, self.blobs.put_bytes(data))])[0]

    def log_stream(self, dest_path: str, fileobj: Readable) -> ArtifactEntry:
        """Store a stream of unknown length; if it fails midway, nothing is recorded."""
        validate_artifact_path(dest_path)
        return self._commit([(dest_path, self.blobs.put_stream(fileobj))])[0]

    def log_blobs(self, items: Sequence[tuple[str, BlobRef]]) -> builtins.list[ArtifactEntry]:
        """Record paths for blobs another process already put in this repository's blob
        store (a pipeline step's worker stores the bytes; its coordinator records them).

        Every path appears in one transaction, or none does; a blob missing from the store
        is refused (NotFound) first, so no path ever names bytes that are not there.
        """
        for path, ref in items:
            validate_artifact_path(path)
            if not self.blobs.exists(ref.digest):
                raise NotFound(f"blob {ref.digest} for artifact {path!r} is not in the store")
        return self._commit(items)

    def log_dir(self, dest_prefix: str, local_dir: str | os.PathLike[str]) -> list[ArtifactEntry]:
        """Store every file under ``local_dir`` at ``dest_prefix/<relative path>``.

        All blobs are written first and all rows commit in one transaction, so the
        directory appears whole or not at all.
        """
        prefix = _prefix(dest_prefix, "dest_prefix")
        root = os.fspath(local_dir)
        if not os.path.isdir(root):
            raise NotFound(f"local directory {root!r} does not exist", field="local_dir")
        files: list[tuple[str, str]] = []
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for name in sorted(filenames):
                full = os.path.join(dirpath, name)
                rel = os.path.relpath(full, root).replace(os.sep, "/")
                files.append((validate_artifact_path(f"{prefix}/{rel}" if prefix else rel), full))
        if not files:
            return []
        return self._commit([(dest, self.blobs.put_file(full)) for dest, full in files])

    def delete(self, path_or_prefix: str) -> int:
        """Remove a file or a whole directory; returns the number of files removed.

        Blobs stay until garbage collection, since other paths may share them.
        """
        path = validate_artifact_path(path_or_prefix, "path_or_prefix")
        with self.db.write() as conn:
            result = conn.execute(delete(artifact_entries).where(self._at_or_under(path)))
        return int(result.rowcount)

    # -- reading ---------------------------------------------------------------------

    def stat(self, path: str) -> ArtifactEntry:
        """The entry of the file at ``path``; NotFound for a directory or nothing."""
        validate_artifact_path(path)
        with self.db.read() as conn:
            row = conn.execute(
                select(artifact_entries).where(artifact_entries.c.path == path)
            ).first()
            if row is not None:
                return ArtifactEntry(row.path, row.digest, row.size, row.created_at)
            is_dir = self._any_under(conn, path)
        what = "is a directory, not a file" if is_dir else "does not exist"
        raise NotFound(f"artifact path {path!r} {what}", field="path")

    def exists(self, path: str) -> bool:
        """Whether ``path`` is a file or a (non-empty) directory."""
        validate_artifact_path(path)
        with self.db.read() as conn:
            return (
                conn.execute(
                    select(artifact_entries.c.path).where(self._at_or_under(path)).limit(1)
                ).first()
                is not None
            )

    def read_bytes(self, path: str) -> bytes:
        return self.blobs.read_bytes(self.stat(path).digest)

    def open(self, path: str) -> BinaryIO:
        """Open the file at ``path`` for binary reading; the caller closes it."""
        return self.blobs.open(self.stat(path).digest)

    def list(self, prefix: str | None = "", *, relative_to: str | None = None) -> list[FileInfo]:
        """The direct children of ``prefix`` (files and directories), ordered by path.

        Paths are full repository paths, or relative to ``relative_to`` when given (pass the
        run's artifact root to get MLflow's ``model/MLmodel`` form). A file or a missing
        prefix has no children: the answer is ``[]``, as in MLflow.

        Each directory child costs one query that jumps past its whole subtree, so a
        directory holding a million files under one sub-folder lists in two queries.
        """
        base = _prefix(prefix)
        strip = self._strip_len(base, relative_to)
        start = f"{base}/" if base else ""
        out: list[FileInfo] = []
        lower, inclusive = start, True
        with self.db.read() as conn:
            while True:
                query = select(artifact_entries.c.path, artifact_entries.c.size)
                query = query.where(self._path >= lower if inclusive else self._path > lower)
                if base:
                    query = query.where(self._path < f"{base}0")
                rows = conn.execute(query.order_by(self._path).limit(_PAGE)).all()
                jumped = False
                for path, size in rows:
                    head, slash, _ = path[len(start) :].partition("/")
                    if slash:
                        out.append(FileInfo(f"{start}{head}"[strip:], True, None))
                        lower, inclusive, jumped = f"{start}{head}0", True, True
                        break
                    out.append(FileInfo(path[strip:], False, int(size)))
                if not jumped:
                    if len(rows) < _PAGE:
                        return sorted(out, key=lambda info: info.path)
                    lower, inclusive = rows[-1][0], False

    def list_recursive(
        self, prefix: str | None = "", *, relative_to: str | None = None
    ) -> builtins.list[FileInfo]:
        """Every file below ``prefix`` at any depth, ordered by path (no directory items)."""
        base = _prefix(prefix)
        strip = self._strip_len(base, relative_to)
        query = select(artifact_entries.c.path, artifact_entries.c.size).where(self._under(base))
        with self.db.read() as conn:
            rows = conn.execute(query.order_by(self._path)).all()
        return [FileInfo(path[strip:], False, int(size)) for path, size in rows]

    def digests_under(self, prefix: str) -> builtins.list[tuple[str, str]]:
        """``(path relative to prefix, sha256)`` of every file below ``prefix``, from the
        index alone (no bytes read): what ``modelyard.digests.tree_digest`` takes."""
        base = _prefix(prefix)
        query = select(artifact_entries.c.path, artifact_entries.c.digest)
        with self.db.read() as conn:
            rows = conn.execute(query.where(self._under(base)).order_by(self._path)).all()
        skip = len(base) + 1 if base else 0
        return [(path[skip:], digest) for path, digest in rows]

    def bytes_under(self, prefix: str | None = "") -> int:
        """Total logical size in bytes of the file or directory at ``prefix`` ('' = all).

        Shared content counts once per path: this is what the owner logged, not what the
        de-duplicated store holds.
        """
        base = _prefix(prefix)
        query = select(func.coalesce(func.sum(artifact_entries.c.size), 0))
        with self.db.read() as conn:
            return int(conn.execute(query.where(self._at_or_under(base))).scalar_one())

    def download(self, path: str, dst_dir: str | os.PathLike[str]) -> str:
        """Copy the file or directory at ``path`` into ``dst_dir``; returns the local path.

        A file lands at ``dst_dir/<name>``, a directory at ``dst_dir/<name>/...`` ('' puts
        the whole repository into ``dst_dir``). Each file appears complete or not at all.
        """
        base = _prefix(path, "path")
        dst = os.path.abspath(os.fspath(dst_dir))
        query = select(artifact_entries.c.path, artifact_entries.c.digest)
        with self.db.read() as conn:  # one snapshot: the file, or else the subtree below it
            file_row: Row[str, str] | None = None
            rows: builtins.list[Row[str, str]] = []
            if base:
                file_row = conn.execute(query.where(artifact_entries.c.path == base)).first()
            if file_row is None:
                rows = list(conn.execute(query.where(self._under(base)).order_by(self._path)))
        if file_row is not None:  # downloads run outside the transaction
            return self.blobs.download(file_row.digest, os.path.join(dst, _name(base)))
        if not rows:
            raise NotFound(f"artifact path {base!r} does not exist", field="path")
        target = os.path.join(dst, _name(base)) if base else dst
        skip = len(base) + 1 if base else 0
        for file_path, digest in rows:
            self.blobs.download(digest, os.path.join(target, *file_path[skip:].split("/")))
        return target

    # -- maintenance -----------------------------------------------------------------

    def collect_garbage(self, dry_run: bool = False, *, grace_s: float | None = None) -> GcReport:
        """Delete blobs that no path references, and temp files left by killed writers.

        Only blobs and temp files older than the grace period (``gc_grace_s`` unless
        ``grace_s`` is given) are touched. Each candidate's age is re-checked right before
        it is deleted, because a writer that re-uses an old blob renews its timestamp.
        """
        grace = self.gc_grace_s if grace_s is None else grace_s
        candidates = {ref.digest: ref.size for ref in self.blobs.iter_blobs(older_than_s=grace)}
        referenced: set[str] = set()
        digest_col = artifact_entries.c.digest
        with self.db.read() as conn:
            for chunk in _batched(list(candidates), _BATCH):
                query = select(digest_col).where(digest_col.in_(chunk)).distinct()
                referenced.update(conn.execute(query).scalars())
        removed = freed = 0
        for digest, size in candidates.items():
            if digest in referenced:
                continue
            if not dry_run and not (
                self.blobs.is_older_than(digest, grace) and self.blobs.delete(digest)
            ):
                continue
            removed += 1
            freed += size
        temp = self.blobs.remove_stale_temp(grace, dry_run=dry_run)
        return GcReport(removed, freed, temp, dry_run)

    # -- internals -------------------------------------------------------------------

    def _commit(self, items: Sequence[tuple[str, BlobRef]]) -> builtins.list[ArtifactEntry]:
        """Record paths whose blobs are already stored, in one write transaction."""
        created = now_ms()
        entries = [ArtifactEntry(p, ref.digest, ref.size, created) for p, ref in items]
        rows = [
            {"path": e.path, "digest": e.digest, "size": e.size, "created_at": e.created_at}
            for e in entries
        ]
        with self.db.write() as conn:
            self._check_tree(conn, [e.path for e in entries])
            self._upsert(conn, rows)
        return entries

    def _check_tree(self, conn: Connection, paths: Sequence[str]) -> None:
        """Refuse a file below another file, or a file where a directory is: either would
        make the tree impossible to download onto a filesystem."""
        ancestors: dict[str, str] = {}
        for path in paths:
            for i, char in enumerate(path):
                if char == "/":
                    ancestors.setdefault(path[:i], path)
        col = artifact_entries.c.path
        for chunk in _batched(list(ancestors), _BATCH):
            hit = conn.execute(select(col).where(col.in_(chunk)).limit(1)).scalar()
            if hit is not None:
                raise InvalidParameter(
                    f"artifact path {ancestors[hit]!r} cannot be logged: {hit!r} is a file",
                    field="path",
                )
        for chunk in _batched(list(paths), _BATCH // 2):
            hit = conn.execute(
                select(col).where(or_(*(self._under(p) for p in chunk))).limit(1)
            ).scalar()
            if hit is not None:
                path = next(p for p in chunk if hit.startswith(f"{p}/"))
                raise InvalidParameter(
                    f"artifact path {path!r} cannot be logged: it is a directory "
                    f"(it holds {hit!r})",
                    field="path",
                )

    def _upsert(self, conn: Connection, rows: builtins.list[dict[str, Any]]) -> None:
        """Insert rows, re-pointing paths that exist (overwrite = new digest)."""
        # The dialect module loads on first use: importing PostgreSQL's costs ~20 ms.
        dialect = import_module(f"sqlalchemy.dialects.{self.db.dialect}")
        stmt = dialect.insert(artifact_entries)
        stmt = stmt.on_conflict_do_update(
            index_elements=[artifact_entries.c.path],
            set_={c: stmt.excluded[c] for c in ("digest", "size", "created_at")},
        )
        conn.execute(stmt, rows)

    def _under(self, prefix: str) -> ColumnElement[bool]:
        """Strictly below ``prefix`` (everything when it is '')."""
        if not prefix:
            return true()
        return and_(self._path >= f"{prefix}/", self._path < f"{prefix}0")

    def _at_or_under(self, prefix: str) -> ColumnElement[bool]:
        if not prefix:
            return true()
        return or_(artifact_entries.c.path == prefix, self._under(prefix))

    def _any_under(self, conn: Connection, prefix: str) -> bool:
        query = select(artifact_entries.c.path).where(self._under(prefix)).limit(1)
        return conn.execute(query).first() is not None

    @staticmethod
    def _strip_len(base: str, relative_to: str | None) -> int:
        """How many leading characters to cut so listed paths are relative to ``relative_to``."""
        if relative_to in (None, ""):
            return 0
        root = validate_artifact_path(relative_to, "relative_to")
        if base != root and not base.startswith(f"{root}/"):
            raise InvalidParameter(
                f"prefix {base!r} is not inside relative_to {root!r}", field="relative_to"
            )
        return len(root) + 1


def _name(path: str) -> str:
    return path.rsplit("/", 1)[-1]


def _batched(items: Iterable[str], size: int) -> Iterator[list[str]]:
    chunk: list[str] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
