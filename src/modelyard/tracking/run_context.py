"""What every run records about where it came from: code version, entry point, machine.

Computed once per process (git and package look-ups cost milliseconds) and attached as
tags. The ``mlflow.*`` keys are written too, because MLflow users filter on them
(``tags.mlflow.user = 'ana'``) and the MLflow UI shows them.
"""

from __future__ import annotations

import functools
import json
import os
import platform
import socket
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from modelyard.config import os_user

KEY_PACKAGES = (
    "modelyard",
    "numpy",
    "pandas",
    "scikit-learn",
    "scipy",
    "lightgbm",
    "xgboost",
    "torch",
    "onnxruntime",
    "pyarrow",
)

TAG_USER = "modelyard.user"
TAG_HOST = "modelyard.host"
TAG_ENTRY_POINT = "modelyard.source.entry_point"
TAG_GIT_COMMIT = "modelyard.source.git.commit"
TAG_GIT_DIRTY = "modelyard.source.git.dirty"
TAG_PYTHON = "modelyard.python.version"
TAG_PACKAGES = "modelyard.packages"


def _git(args: list[str], cwd: Path) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=5, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def entry_point() -> str:
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None) or (sys.argv[0] if sys.argv and sys.argv[0] else "")
    return str(Path(path).resolve()) if path else "<interactive>"


@functools.lru_cache(maxsize=1)
def _process_tags() -> dict[str, str]:
    source = entry_point()
    where = Path(source).parent if source != "<interactive>" else Path.cwd()
    if not where.is_dir():
        where = Path.cwd()
    versions: dict[str, str] = {}
    for name in KEY_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    tags = {
        TAG_HOST: socket.gethostname(),
        TAG_ENTRY_POINT: source,
        TAG_PYTHON: platform.python_version(),
        TAG_PACKAGES: json.dumps(versions, sort_keys=True),
        "mlflow.source.name": source,
        "mlflow.source.type": "LOCAL",
    }
    commit = _git(["rev-parse", "HEAD"], where)
    if commit:
        status = _git(["status", "--porcelain", "--untracked-files=no"], where)
        tags[TAG_GIT_COMMIT] = commit
        tags[TAG_GIT_DIRTY] = "true" if status else "false"
        tags["mlflow.source.git.commit"] = commit
    return tags


def system_tags(user: str | None = None) -> dict[str, str]:
    """Tags describing this process; ``user`` overrides the OS user (e.g. the server's caller)."""
    who = user or os_user()
    return {**_process_tags(), TAG_USER: who, "mlflow.user": who, "modelyard.pid": str(os.getpid())}
