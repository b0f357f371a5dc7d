"""scikit-learn models in the skops format: loading an untrusted file never runs its code.

A skops file names, for every object in it, the type or function that rebuilds it, and
skops calls those on load. A file is therefore only as safe as the names it may use.
Unless the caller trusts the file, a name is accepted only when it is

* in skops' own trusted defaults (public estimators, numpy and scipy ufuncs, arrays,
  dtypes, sparse matrices, builtin containers), or
* on modelyard's reviewed list of exact names (``skops_allowlist.ALLOWED_TYPES``: the
  tree structures of forests and gradient boosting, neighbour-search trees, scorers,
  score functions, ...), so common fitted models load with nothing listed by hand, or
* named by the caller in ``trusted_types=[...]``.

Never by module prefix: numpy, scipy and scikit-learn also hold functions that run code
(``numpy.testing._private.utils.runstring`` calls ``exec``) or write files. Nothing the
model folder says about itself widens the list: ``untrusted_types`` in its manifest is
written by whoever uploaded it, so it is recorded at save for information only. A refused
file raises ``PermissionDenied`` naming every refused type, before any of them is
imported. The tree structures skops leaves out of its defaults, and the KD and ball trees
of nearest-neighbour models, are bounds-checked after loading (``fitted_trees``), because
scikit-learn indexes their nodes without bounds checks.

``trusted=True`` (``modelyard serve --trusted``) loads whatever the file needs, and is
the only way to load models saved with pickle or cloudpickle (MLflow's older default).
"""

from __future__ import annotations

import pickle
from collections.abc import Collection
from pathlib import Path
from typing import Any

from modelyard.errors import MissingExtra, PermissionDenied
from modelyard.registry.formats.fitted_trees import check_fitted_trees
from modelyard.registry.formats.paths import inside
from modelyard.registry.formats.skops_allowlist import ALLOWED_TYPES

FLAVOR = "sklearn"
MODEL_FILE = "model.skops"
PACKAGES = ("scikit-learn", "skops", "numpy", "scipy")
PICKLE_FORMATS = ("pickle", "cloudpickle")


def _skops() -> Any:
    try:
        import skops.io
    except ImportError as exc:
        raise MissingExtra("skops", "sklearn", "Saving scikit-learn models safely") from exc
    return skops.io


def matches(model: object) -> bool:
    return type(model).__module__.split(".", 1)[0] == "sklearn"


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
    path = inside(folder, manifest.get("model_file") or MODEL_FILE, "model_file")
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
    data = path.read_bytes()  # read once: what is audited is what is loaded
    needed = sio.get_untrusted_types(data=data)
    if trusted:
        return sio.loads(data, trusted=needed)
    refused = refused_types(needed, trusted_types)
    if refused:
        raise PermissionDenied(
            f"{path.name} needs types that modelyard does not trust in a model file: "
            f"{', '.join(refused)}. Load it only if you trust its source, with "
            f"trusted_types={refused!r} (or trusted=True)",
            field="trusted_types",
        )
    native = sio.loads(data, trusted=needed)
    check_fitted_trees(native)
    return native


def refused_types(needed: Collection[str], trusted_types: Collection[str] = ()) -> list[str]:
    """The types in ``needed`` (as ``skops.io.get_untrusted_types`` reports them) that an
    untrusted file may not use: neither on the reviewed list nor named by the caller."""
    return sorted(set(needed) - ALLOWED_TYPES - set(trusted_types))


def predict(native: Any, data: Any, manifest: dict[str, Any]) -> Any:
    return native.predict(data)
