"""scikit-learn models in the skops format: loading never runs arbitrary code.

skops refuses, on load, every type it does not know to be safe — which includes the tree
classes inside every forest and gradient-boosting model, so MLflow users must list them by
hand. modelyard records the types a model needs when it saves it (``untrusted_types``, the
name autolog uses too) and, on load, trusts exactly those that come from an allow-list of
well-known libraries (``SAFE_MODULES``). A type outside the allow-list (a user's own
transformer), or one the file needs that was not recorded at save time (a swapped file), is
refused with an error naming it and the way to trust it (``trusted_types=[...]``).

Models saved with pickle or cloudpickle (MLflow's older default) load only with
``trusted=True``.
"""

from __future__ import annotations

import pickle
from collections.abc import Collection
from pathlib import Path
from typing import Any

from modelyard.errors import MissingExtra, PermissionDenied

FLAVOR = "sklearn"
MODEL_FILE = "model.skops"
PACKAGES = ("scikit-learn", "skops", "numpy", "scipy")
#: Top-level modules whose types are trusted when a model file needs them.
SAFE_MODULES = frozenset({"sklearn", "numpy", "scipy", "skops"})
PICKLE_FORMATS = ("pickle", "cloudpickle")


def _skops() -> Any:
    try:
        import skops.io
    except ImportError as exc:
        raise MissingExtra("skops", "sklearn", "Saving scikit-learn models safely") from exc
    return skops.io


def matches(model: object) -> bool:
    return type(model).__module__.split(".", 1)[0] == "sklearn"


def is_safe_type(qualified_name: str) -> bool:
    return qualified_name.split(".", 1)[0] in SAFE_MODULES


def save(model: Any, folder: Path, trusted: bool = False) -> dict[str, Any]:
    sio = _skops()
    path = folder / MODEL_FILE
    sio.dump(model, path)
    cls = type(model)
    return {
        "model_file": MODEL_FILE,
        "serialization_format": "skops",
        "estimator_class": f"{cls.__module__}.{cls.__qualname__}",
        "untrusted_types": sorted(sio.get_untrusted_types(file=path)),
    }


def load(
    folder: Path,
    manifest: dict[str, Any],
    trusted: bool = False,
    trusted_types: Collection[str] = (),
) -> Any:
    path = folder / str(manifest.get("model_file") or MODEL_FILE)
    fmt = manifest.get("serialization_format") or "skops"
    if fmt in PICKLE_FORMATS:
        if not trusted:
            raise PermissionDenied(
                f"{path.name} is a {fmt} file, and unpickling can run any code; load it "
                "only if you trust its source, with load_model(..., trusted=True)",
                field="trusted",
            )
        with path.open("rb") as fh:
            return pickle.load(fh)  # the caller said trusted=True
    sio = _skops()
    needed = set(sio.get_untrusted_types(file=path))
    if not trusted:
        allowed = set(trusted_types)
        recorded = manifest.get("untrusted_types")
        if recorded is not None:
            unrecorded = sorted(needed - set(recorded) - allowed)
            if unrecorded:
                raise PermissionDenied(
                    f"{path.name} needs types that were not recorded when it was saved: "
                    f"{', '.join(unrecorded)}; the file may have been replaced. If you trust "
                    f"it, pass trusted_types={unrecorded!r}",
                    field="trusted_types",
                )
        unsafe = sorted(t for t in needed - allowed if not is_safe_type(t))
        if unsafe:
            raise PermissionDenied(
                f"{path.name} needs types outside the libraries modelyard trusts "
                f"({', '.join(sorted(SAFE_MODULES))}): {', '.join(unsafe)}. If you trust "
                f"them, pass trusted_types={unsafe!r} (or trusted=True)",
                field="trusted_types",
            )
    return sio.load(path, trusted=sorted(needed))


def predict(native: Any, data: Any, manifest: dict[str, Any]) -> Any:
    return native.predict(data)
