"""Which code a run executes: the tags that let ``runs reproduce`` find it again.

Kept apart from ``reproduce`` (which reads pipeline runs, so imports the runner) so that
the runner, which writes these tags, and sweeps import it without a cycle and without
Optuna.

* ``modelyard.source.kind`` (``pipeline``, ``sweep``, ``script``) and
  ``modelyard.source.target`` (``/abs/path/file.py:NAME`` or ``module:NAME``);
* ``modelyard.source.git.root``, ``.git.commit`` and ``.git.dirty``: the repository
  holding the target's file, its commit, and whether tracked files (or the file itself,
  when untracked) differed from it.

They override the commit ``tracking.run_context`` records for the process's entry point:
``modelyard pipelines run FILE.py:NAME`` runs the ``modelyard`` script, whose folder is
not the pipeline's repository.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from modelyard.tracking.run_context import TAG_GIT_COMMIT, TAG_GIT_DIRTY

KIND_SWEEP = "sweep"
KIND_PIPELINE = "pipeline"
KIND_SCRIPT = "script"
TAG_KIND = "modelyard.source.kind"
TAG_TARGET = "modelyard.source.target"
TAG_GIT_ROOT = "modelyard.source.git.root"
GIT_TIMEOUT_S = 60


def git(args: Sequence[str], cwd: Path) -> str | None:
    """``git args`` in ``cwd``: its output, or None when git fails (no repository)."""
    try:
        out = subprocess.run(
            ["git", *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_S,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def source_file(target: str) -> Path | None:
    """The file a target's code is in (a ``module:NAME`` target's module must be
    imported already)."""
    source, _, _ = target.rpartition(":")
    if source.endswith(".py"):
        return Path(source)
    module = sys.modules.get(source)
    file = getattr(module, "__file__", None)
    return Path(file).resolve() if file else None


def source_tags(target: str, kind: str) -> dict[str, str]:
    """Tags saying which code ``target`` (``FILE.py:NAME`` or ``module:NAME``) is: the
    repository, its commit, and whether the file or any tracked file differed from it.
    Empty of git tags when the file is not in a git repository."""
    tags = {TAG_KIND: kind, TAG_TARGET: target}
    file = source_file(target)
    if file is None or not file.is_file():
        return tags
    where = file.parent
    root = git(["rev-parse", "--show-toplevel"], where)
    commit = git(["rev-parse", "HEAD"], where) if root else None
    if not root or not commit:
        return tags
    changed = git(["status", "--porcelain", "--untracked-files=no"], where)
    tracked = git(["ls-files", "--error-unmatch", file.name], where)
    dirty = bool(changed) or tracked is None
    return {
        **tags,
        TAG_GIT_ROOT: root,
        TAG_GIT_COMMIT: commit,
        TAG_GIT_DIRTY: "true" if dirty else "false",
        "mlflow.source.git.commit": commit,
    }
