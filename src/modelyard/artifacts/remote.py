"""Artifacts on a ``modelyard server``, through its MLflow artifact proxy.

``RemoteArtifactRepository`` offers the ``ArtifactRepository`` methods the tracking client
uses (``log_file``, ``log_bytes``, ``log_dir``, ``list``, ``read_bytes``, ``download``,
``delete``) over ``/api/2.0/mlflow-artifacts/artifacts``. Paths are the same logical
paths (``<exp>/<run_id>/artifacts/<file>``). Each file is one PUT and appears whole or
not at all; unlike the local repository, a directory is not logged in one transaction.
It speaks through the ``HttpTransport`` (``modelyard.http_transport``) it shares with the
remote tracking store: retries, kept-alive connections and error classes are the same.

Example::

    with HttpTransport("http://127.0.0.1:5000") as transport:
        repo = RemoteArtifactRepository(transport)
        repo.log_bytes("1/abc/artifacts/notes.txt", b"hi")
"""

from __future__ import annotations

import builtins
import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

from modelyard.artifacts.repository import ArtifactEntry, FileInfo, validate_artifact_path
from modelyard.errors import BadRequest, NotFound, NotImplementedFeature
from modelyard.http_transport import CHUNK, HttpTransport
from modelyard.ids import now_ms

ARTIFACTS_ROOT = "/api/2.0/mlflow-artifacts/artifacts"


def _optional_path(path: str | None, field: str) -> str:
    """A valid artifact path, or '' (or None) for the repository root."""
    return "" if path in (None, "") else validate_artifact_path(path, field)


def _url(path: str) -> str:
    return f"{ARTIFACTS_ROOT}/{quote(path, safe='/')}"


class RemoteArtifactRepository:
    """The artifact repository of a ``modelyard server``, over its artifact proxy."""

    def __init__(self, transport: HttpTransport) -> None:
        self.http = transport

    def __repr__(self) -> str:
        return f"RemoteArtifactRepository({self.http.base_url!r})"

    # -- writing ---------------------------------------------------------------------

    def log_file(self, dest_path: str, local_file: str | os.PathLike[str]) -> ArtifactEntry:
        validate_artifact_path(dest_path)
        src = os.fspath(local_file)
        if not os.path.isfile(src):
            raise NotFound(f"local file {src!r} does not exist", field="local_path")
        hasher: list[Any] = []

        def chunks() -> Iterator[bytes]:
            digest = hashlib.sha256()
            hasher[:] = [digest]
            with open(src, "rb") as f:
                while block := f.read(CHUNK):
                    digest.update(block)
                    yield block

        size = os.path.getsize(src)
        self.http.request(
            "PUT", _url(dest_path), body=chunks, headers={"Content-Length": str(size)}
        )
        return ArtifactEntry(dest_path, hasher[0].hexdigest(), size, now_ms())

    def log_bytes(self, dest_path: str, data: bytes) -> ArtifactEntry:
        validate_artifact_path(dest_path)
        self.http.request("PUT", _url(dest_path), body=bytes(data))
        return ArtifactEntry(dest_path, hashlib.sha256(data).hexdigest(), len(data), now_ms())

    def log_dir(self, dest_prefix: str, local_dir: str | os.PathLike[str]) -> list[ArtifactEntry]:
        """Upload every file under ``local_dir`` to ``dest_prefix/<relative path>``."""
        prefix = _optional_path(dest_prefix, "dest_prefix")
        root = os.fspath(local_dir)
        if not os.path.isdir(root):
            raise NotFound(f"local directory {root!r} does not exist", field="local_dir")
        entries: list[ArtifactEntry] = []
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for name in sorted(filenames):
                full = os.path.join(dirpath, name)
                rel = os.path.relpath(full, root).replace(os.sep, "/")
                entries.append(self.log_file(f"{prefix}/{rel}" if prefix else rel, full))
        return entries

    def delete(self, path_or_prefix: str) -> None:
        """Remove a file or a whole directory (the server does not report a count)."""
        validate_artifact_path(path_or_prefix, "path_or_prefix")
        self.http.request("DELETE", _url(path_or_prefix))

    # -- reading ---------------------------------------------------------------------

    def list(self, prefix: str | None = "", *, relative_to: str | None = None) -> list[FileInfo]:
        """The direct children of ``prefix``, as full paths (or relative to ``relative_to``)."""
        base = _optional_path(prefix, "prefix")
        strip = 0
        if relative_to:
            root = validate_artifact_path(relative_to, "relative_to")
            if base != root and not base.startswith(f"{root}/"):
                raise BadRequest(
                    f"prefix {base!r} is not inside relative_to {root!r}", field="relative_to"
                )
            strip = len(root) + 1
        data = self.http.call("GET", ARTIFACTS_ROOT, params={"path": base})
        out = []
        for item in data.get("files", []):
            full = f"{base}/{item['path']}" if base else item["path"]
            size = None if item.get("is_dir") else int(item.get("file_size", 0))
            out.append(FileInfo(full[strip:], bool(item.get("is_dir")), size))
        return out

    def read_bytes(self, path: str) -> bytes:
        validate_artifact_path(path)
        return self.http.request("GET", _url(path)).content

    def download(self, path: str, dst_dir: str | os.PathLike[str]) -> str:
        """Copy the file or directory at ``path`` into ``dst_dir``; returns the local path.

        Same layout as the local repository: a file lands at ``dst_dir/<name>``, a
        directory at ``dst_dir/<name>/...``, '' fills ``dst_dir``. Each file is written to a
        temporary name and renamed, so it appears complete or not at all.
        """
        base = _optional_path(path, "path")
        dst = os.path.abspath(os.fspath(dst_dir))
        children = self.list(base)
        if not children:
            if not base:
                raise NotFound("the artifact repository is empty", field="path")
            target = os.path.join(dst, base.rsplit("/", 1)[-1])
            self._fetch(base, target)
            return target
        target = os.path.join(dst, base.rsplit("/", 1)[-1]) if base else dst
        self._fetch_tree(base, children, target)
        return target

    def _fetch_tree(self, base: str, children: builtins.list[FileInfo], target: str) -> None:
        os.makedirs(target, exist_ok=True)
        for child in children:
            name = child.path[len(base) + 1 :] if base else child.path
            local = os.path.join(target, name)
            if child.is_dir:
                self._fetch_tree(child.path, self.list(child.path), local)
            else:
                self._fetch(child.path, local)

    def _fetch(self, path: str, local_path: str) -> None:
        folder = os.path.dirname(local_path) or "."
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".modelyard-", suffix=".part", dir=folder)
        try:
            with os.fdopen(fd, "wb") as out, self.http.stream("GET", _url(path)) as response:
                for chunk in response.iter_bytes(CHUNK):
                    out.write(chunk)
            os.replace(tmp, local_path)
        except NotFound:
            raise NotFound(f"artifact path {path!r} does not exist", field="path") from None
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    # -- maintenance -----------------------------------------------------------------

    def collect_garbage(self, dry_run: bool = False, *, grace_s: float | None = None) -> Any:
        raise NotImplementedFeature(
            "artifact garbage collection runs next to the store: run `modelyard gc` on the "
            "server's host"
        )
