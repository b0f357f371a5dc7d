"""Pointer files: the small text file committed next to the code instead of the data.

Like DVC's ``.dvc`` files, ``sales.parquet.dataset.yaml`` names the dataset version and
the exact bytes of each file (sha256 and size) plus the schema, so that a reviewer sees a
schema change in the diff and ``modelyard data pull`` restores exactly that content from
the artifact store — by digest, so it needs only the artifact store, not the metadata
database. The data path itself is added to ``.gitignore`` beside it.

>>> write_pointer(version, Path("data/sales.parquet"))   # doctest: +SKIP
PosixPath('data/sales.parquet.dataset.yaml')
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelyard.data.entities import DatasetVersion, FileRef, PullReport
from modelyard.errors import InvalidParameter, NotFound

POINTER_SUFFIX = ".dataset.yaml"
POINTER_FORMAT = 1
_HEADER = (
    "# modelyard dataset pointer: commit this file, not the data it names.\n"
    "# Restore the data with: modelyard data pull {pointer}\n"
)
_REQUIRED = ("name", "version", "digest", "path", "files")


@dataclass(frozen=True, slots=True)
class Pointer:
    """A parsed pointer file; ``data_path`` is absolute (resolved beside the pointer)."""

    pointer_path: Path
    name: str
    version: int
    digest: str
    data_path: Path
    is_folder: bool
    files: tuple[FileRef, ...]
    schema: dict[str, str]
    rows: int | None = None

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"


def pointer_path_for(data_path: Path) -> Path:
    """Where the pointer of ``data/sales.parquet`` (or the folder ``data/sales``) lives."""
    data_path = Path(data_path)
    return data_path.with_name(data_path.name + POINTER_SUFFIX)


def write_pointer(
    version: DatasetVersion,
    data_path: Path,
    *,
    is_folder: bool = False,
    pointer: Path | None = None,
    gitignore: bool = True,
) -> Path:
    """Write the pointer for ``version``, whose data lives (or will live) at ``data_path``.

    The file is replaced atomically; with ``gitignore`` the data path is appended to the
    ``.gitignore`` beside the pointer unless already listed.
    """
    import yaml

    data_path = Path(data_path).absolute()
    target = (Path(pointer) if pointer else pointer_path_for(data_path)).absolute()
    rel = os.path.relpath(data_path, target.parent).replace(os.sep, "/")
    body: dict[str, Any] = {
        "modelyard_dataset": POINTER_FORMAT,
        "name": version.name,
        "version": version.version,
        "digest": version.digest,
        "path": rel + ("/" if is_folder else ""),
        "format": version.format,
        "rows": version.num_rows,
        "size": version.num_bytes,
        "files": [{"path": f.path, "sha256": f.sha256, "size": f.size} for f in version.files],
        "schema": version.schema_types(),
    }
    text = _HEADER.format(pointer=target.name) + yaml.safe_dump(body, sort_keys=False)
    _atomic_write(target, text)
    if gitignore and not rel.startswith(".."):
        _ignore(target.parent, rel + ("/" if is_folder else ""))
    return target


def read_pointer(path: str | os.PathLike[str]) -> Pointer:
    """Parse a pointer file; InvalidParameter names the missing or malformed field."""
    import yaml

    pointer = Path(path).absolute()
    if pointer.is_dir() or not pointer.exists():
        candidate = pointer_path_for(pointer)
        if candidate.is_file():
            pointer = candidate
        else:
            raise NotFound(f"pointer file {str(path)!r} does not exist", field="pointer")
    try:
        body = yaml.safe_load(pointer.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise InvalidParameter(
            f"pointer {str(pointer)!r} is not valid YAML: {exc}", field="pointer"
        ) from None
    if not isinstance(body, dict) or "modelyard_dataset" not in body:
        raise InvalidParameter(
            f"{str(pointer)!r} is not a modelyard dataset pointer (no 'modelyard_dataset' key)",
            field="pointer",
        )
    missing = [key for key in _REQUIRED if key not in body]
    if missing:
        raise InvalidParameter(
            f"pointer {str(pointer)!r} lacks {', '.join(missing)}", field=missing[0]
        )
    try:
        files = tuple(
            FileRef(_safe_rel(str(f["path"])), str(f["sha256"]), int(f["size"]))
            for f in body["files"]
        )
        version = int(body["version"])
    except (TypeError, KeyError, ValueError) as exc:
        raise InvalidParameter(
            f"pointer {str(pointer)!r} has a malformed files list or version: {exc}",
            field="files",
        ) from None
    raw_path = str(body["path"])
    is_folder = raw_path.endswith("/")
    data_path = (pointer.parent / raw_path.rstrip("/")).resolve()
    return Pointer(
        pointer_path=pointer,
        name=str(body["name"]),
        version=version,
        digest=str(body["digest"]),
        data_path=data_path,
        is_folder=is_folder,
        files=files,
        schema={str(k): str(v) for k, v in (body.get("schema") or {}).items()},
        rows=body.get("rows"),
    )


def pull(pointer: Pointer, blobs: Any, dest: Path | None = None) -> PullReport:
    """Restore the files a pointer names from the blob store, verifying each digest.

    Files whose local copy already has the right size and sha256 are left alone; every
    other file is written atomically (temp file + rename). In a folder, files the version
    does not contain are reported, not deleted.
    """
    root = Path(dest).absolute() if dest else pointer.data_path
    written: list[str] = []
    unchanged: list[str] = []
    for ref in pointer.files:
        target = (root / ref.path) if pointer.is_folder else root
        if target.is_file() and target.stat().st_size == ref.size and _sha256(target) == ref.sha256:
            unchanged.append(ref.path)
            continue
        blobs.download(ref.sha256, target)
        if _sha256(target) != ref.sha256:  # pragma: no cover - a corrupted store
            target.unlink(missing_ok=True)
            raise InvalidParameter(
                f"the artifact store returned corrupted content for {ref.path!r} "
                f"(expected sha256 {ref.sha256})",
                field="sha256",
            )
        written.append(ref.path)
    extra: list[str] = []
    if pointer.is_folder and root.is_dir():
        known = {f.path for f in pointer.files}
        extra = sorted(
            p.relative_to(root).as_posix()
            for p in root.rglob("*")
            if p.is_file() and p.relative_to(root).as_posix() not in known
        )
    return PullReport(str(root), tuple(written), tuple(unchanged), tuple(extra))


def _safe_rel(path: str) -> str:
    """A pointer's file path must stay inside the data folder it restores into."""
    parts = path.split("/")
    if not path or path.startswith("/") or "\\" in path or any(p in ("", ".", "..") for p in parts):
        raise InvalidParameter(
            f"pointer file path {path!r} must be relative, without '..' segments",
            field="files",
        )
    return path


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def file_sha256(path: Path) -> str:
    """The sha256 of a local file (the blob digest it will be stored under)."""
    return _sha256(path)


def _atomic_write(target: Path, text: str) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _ignore(folder: Path, entry: str) -> None:
    """Append ``/entry`` to ``folder/.gitignore`` unless a line already names it."""
    ignore = folder / ".gitignore"
    line = "/" + entry
    existing = ignore.read_text(encoding="utf-8").splitlines() if ignore.exists() else []
    if line in existing or entry in existing:
        return
    prefix = "" if not existing or ignore.read_text(encoding="utf-8").endswith("\n") else "\n"
    with ignore.open("a", encoding="utf-8") as fh:
        fh.write(f"{prefix}{line}\n")
