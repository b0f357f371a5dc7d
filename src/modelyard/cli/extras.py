"""Which extra installs a missing optional package, so a command says it in one line.

Domain code raises ``MissingExtra`` where it imports a backend; this table catches the
rest (a package imported by a library we call, such as pandas reaching for pyarrow) and
lets commands that import a server directly name the extra they need:

>>> missing_extra(ModuleNotFoundError("No module named 'uvicorn'", name="uvicorn"), "serve")
MissingExtra("serve needs the 'uvicorn' package: pip install 'modelyard[server]'")
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from modelyard.distribution import normal_name, requirements_of
from modelyard.errors import MissingExtra

#: Top-level module → (the package that provides it, the extra of pyproject.toml that
#: installs it). tests/cli/test_extras.py checks each pair against pyproject.toml.
OPTIONAL_MODULES: dict[str, tuple[str, str]] = {
    "uvicorn": ("uvicorn", "server"),
    "starlette": ("starlette", "server"),
    "prometheus_client": ("prometheus-client", "server"),
    "orjson": ("orjson", "server"),
    "httptools": ("httptools", "server"),
    "uvloop": ("uvloop", "server"),
    "sklearn": ("scikit-learn", "sklearn"),
    "skops": ("skops", "sklearn"),
    "matplotlib": ("matplotlib", "plots"),
    "pyarrow": ("pyarrow", "data"),
    "pandera": ("pandera", "data"),
    "duckdb": ("duckdb", "features"),
    "psycopg": ("psycopg", "postgres"),
    "redis": ("redis", "redis"),
    "s3fs": ("s3fs", "s3"),
    "lightgbm": ("lightgbm", "lightgbm"),
    "xgboost": ("xgboost", "xgboost"),  # xgboost-cpu where that wheel exists: same module
    "onnx": ("onnx", "onnx"),
    "onnxruntime": ("onnxruntime", "onnx"),
    "skl2onnx": ("skl2onnx", "compile"),
    "onnxmltools": ("onnxmltools", "compile"),
    "cloudpickle": ("cloudpickle", "python-models"),
    "scipy": ("scipy", "validation"),
}
_QUOTED = re.compile(r"['\"]([A-Za-z_][A-Za-z0-9_]*)['\"]")


def optional_module(exc: ImportError) -> str | None:
    """The optional module ``exc`` is about, or None (a bug, or a required package).

    ``exc.name`` when Python set it; otherwise the first optional module quoted in the
    message, as in pandas' "Unable to find a usable engine; tried using: 'pyarrow'…".
    """
    if exc.name:
        top = exc.name.split(".", 1)[0]
        return top if top in OPTIONAL_MODULES else None
    for quoted in _QUOTED.findall(str(exc)):
        if quoted in OPTIONAL_MODULES:
            return quoted
    return None


def missing_extra(exc: ImportError, purpose: str, extra: str | None = None) -> MissingExtra | None:
    """``exc`` as a ``MissingExtra`` for ``purpose``, or None when it is not about an optional
    package. It names ``extra`` when that extra brings the package (``serve`` needs all of
    ``serving``, not just ``sklearn``, the first one missing), else the package's own."""
    if isinstance(exc, MissingExtra):
        package, own_extra = exc.package, exc.extra
    else:
        module = optional_module(exc)
        if module is None:
            return None
        package, own_extra = OPTIONAL_MODULES[module]
    if extra is None or normal_name(package) not in packages_of(extra):
        extra = own_extra
    if isinstance(exc, MissingExtra) and extra == own_extra:
        return exc
    return MissingExtra(package, extra, purpose)


@contextmanager
def needs_extra(extra: str, purpose: str) -> Iterator[None]:
    """An optional package missing inside the block raises ``MissingExtra`` naming
    ``extra``, the one a command needs as a whole, when it brings that package."""
    try:
        yield
    except ImportError as exc:
        found = missing_extra(exc, purpose, extra)
        if found is None or found is exc:
            raise
        raise found from None


def packages_of(extra: str) -> set[str]:
    """The packages ``pip install 'modelyard[extra]'`` brings (extras within it expanded);
    empty when modelyard is neither installed nor a source checkout."""
    return {requirement.name for requirement in requirements_of(extra)}
