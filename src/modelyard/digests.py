"""Content digests of file trees: one formula for "these exact files, at these paths".

A registered model version is a folder of files. Its *tree digest* is the sha256 of the
sorted lines ``<relative path>\\t<sha256 of the file>\\n`` — so it changes when any file's
bytes change, when a file is added, removed or renamed, and not when the same bytes are
stored elsewhere. The registry takes it from the artifact index when it freezes a version
(no bytes re-read) and loading recomputes it from the downloaded files, so a blob or index
row replaced behind the registry's back is caught before the model is deserialised.

>>> tree_digest([("MLmodel.json", "0" * 64), ("model.skops", "f" * 64)])[:12]
'06746ce9b5c5'
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

_CHUNK = 1 << 20


def tree_digest(files: Iterable[tuple[str, str]]) -> str:
    """The digest of ``(relative posix path, file sha256)`` pairs, in any order."""
    h = hashlib.sha256()
    for path, digest in sorted(files):
        h.update(f"{path}\t{digest}\n".encode("utf-8", "surrogatepass"))
    return h.hexdigest()


def file_sha256(path: str | os.PathLike[str]) -> str:
    """The sha256 of a file's bytes, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def folder_digest(folder: str | os.PathLike[str]) -> str:
    """The tree digest of every file below ``folder`` (paths relative to it, '/'-separated).

    A symbolic link is refused rather than followed: a downloaded model never holds one.
    """
    root = Path(folder)
    pairs: list[tuple[str, str]] = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            if os.path.islink(os.path.join(dirpath, name)):
                raise ValueError(f"{os.path.join(dirpath, name)} is a symbolic link")
        for name in filenames:
            full = Path(dirpath) / name
            pairs.append((full.relative_to(root).as_posix(), file_sha256(full)))
    return tree_digest(pairs)
