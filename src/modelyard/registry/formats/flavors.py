"""Save a model in its flavor's safe format with a manifest; load it back; predict.

A saved model is a folder::

    MLmodel.json          manifest: flavor, model file, signature, package versions, run
    model.skops           (or model.lgb, model.ubj, model.onnx, python_model.pkl)
    input_example.json    when an example was given
    requirements.txt      the exact versions it was saved with (pip-installable)

``MLmodel.json`` is flat JSON; autologged scikit-learn models use the same keys, so one
loader reads both. Folders written by MLflow (an ``MLmodel`` YAML file) load too, for the
scikit-learn flavor.

>>> import numpy as np
>>> from sklearn.ensemble import RandomForestRegressor
>>> X = np.arange(20.0).reshape(10, 2)
>>> fitted_forest = RandomForestRegressor(n_estimators=5, random_state=0).fit(X, X.sum(axis=1))
>>> save_model(fitted_forest, "out", input_example=X[:5])["flavor"]
'sklearn'
>>> bool((load_model("out").predict(X) == fitted_forest.predict(X)).all())
True
"""

from __future__ import annotations

import importlib
import json
import platform
import shutil
import sys
import tempfile
from collections.abc import Collection
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any

from modelyard.errors import InvalidParameter, NotFound
from modelyard.registry.formats.paths import inside
from modelyard.registry.formats.signature import (
    Signature,
    check_input,
    example_from_json,
    example_to_json,
    infer_signature,
)

MANIFEST_FILE = "MLmodel.json"
MLFLOW_MANIFEST_FILE = "MLmodel"
INPUT_EXAMPLE_FILE = "input_example.json"
REQUIREMENTS_FILE = "requirements.txt"
FORMAT_VERSION = 1

#: Flavor name → module. Order matters for inference: LightGBM and XGBoost models are
#: also scikit-learn estimators, so they are recognised first.
FLAVOR_MODULES: dict[str, str] = {
    "python": "modelyard.registry.formats.python_model",
    "lightgbm": "modelyard.registry.formats.lightgbm_native",
    "xgboost": "modelyard.registry.formats.xgboost_native",
    "onnx": "modelyard.registry.formats.onnx_runtime",
    "sklearn": "modelyard.registry.formats.sklearn_skops",
}


def flavor_module(flavor: str) -> ModuleType:
    if flavor not in FLAVOR_MODULES:
        raise InvalidParameter(
            f"unknown flavor {flavor!r}; use one of {', '.join(FLAVOR_MODULES)}", field="flavor"
        )
    return importlib.import_module(FLAVOR_MODULES[flavor])


def infer_flavor(model: object) -> str:
    """The flavor that saves ``model`` natively, or a clear error saying what to do."""
    for flavor in FLAVOR_MODULES:
        if flavor_module(flavor).matches(model):
            return flavor
    cls = type(model)
    raise InvalidParameter(
        f"cannot tell how to save a {cls.__module__}.{cls.__qualname__}: modelyard saves "
        "scikit-learn, LightGBM, XGBoost and ONNX models natively; wrap anything else in a "
        "modelyard PythonModel (stored with cloudpickle, so only with trusted=True)",
        field="model",
    )


def package_versions(names: Collection[str]) -> dict[str, str]:
    """Exact installed versions of ``names`` (those not installed are left out).

    A package installed under another distribution name (``xgboost-cpu`` provides
    ``xgboost``) is found through its module's ``__version__``.
    """
    found: dict[str, str] = {}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            version = getattr(sys.modules.get(name.replace("-", "_")), "__version__", None)
            if isinstance(version, str):
                found[name] = version
    return found


def save_model(
    model: Any,
    path: str | Path,
    *,
    flavor: str | None = None,
    signature: Signature | dict[str, Any] | None = None,
    input_example: Any = None,
    run_id: str | None = None,
    trusted: bool = False,
) -> dict[str, Any]:
    """Write ``model`` into the new or empty folder ``path``; returns the manifest.

    Without a ``signature``, one is inferred from ``input_example`` and the model's
    prediction on it.
    """
    target = Path(path)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise InvalidParameter(
            f"{str(target)!r} already exists; save into a new folder", field="path"
        )
    flavor = flavor or infer_flavor(model)
    module = flavor_module(flavor)
    if not module.matches(model):
        raise InvalidParameter(
            f"a {type(model).__name__} cannot be saved as flavor {flavor!r}", field="flavor"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    # Written beside the target and renamed into place: a failure leaves nothing behind.
    folder = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        manifest = _write(model, folder, module, flavor, signature, input_example, run_id, trusted)
        if target.exists():
            target.rmdir()
        folder.rename(target)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return manifest


def _write(
    model: Any,
    folder: Path,
    module: ModuleType,
    flavor: str,
    signature: Signature | dict[str, Any] | None,
    input_example: Any,
    run_id: str | None,
    trusted: bool,
) -> dict[str, Any]:
    manifest: dict[str, Any] = {"format_version": FORMAT_VERSION, "flavor": flavor}
    manifest.update(module.save(model, folder, trusted))
    if isinstance(signature, dict):
        signature = Signature.from_dict(signature)
    if signature is None and input_example is not None:
        signature = infer_signature(input_example, _try_predict(module, model, input_example))
    if input_example is not None:
        (folder / INPUT_EXAMPLE_FILE).write_text(json.dumps(example_to_json(input_example)))
        manifest["input_example"] = INPUT_EXAMPLE_FILE
    versions = package_versions(module.PACKAGES)
    manifest.update(
        {
            "signature": signature.to_dict() if signature else None,
            "requirements": versions,
            "python_version": platform.python_version(),
            "run_id": run_id,
            "utc_time_created": datetime.now(UTC).isoformat(),
        }
    )
    requirements = "".join(f"{name}=={v}\n" for name, v in versions.items())
    (folder / REQUIREMENTS_FILE).write_text(requirements, encoding="utf-8")
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, default=str))
    return manifest


def _try_predict(module: ModuleType, model: Any, example: Any) -> Any:
    """The output for signature inference; a model that cannot predict yet has none."""
    try:
        return module.predict(model, example, {})
    except Exception:
        return None


def read_manifest(path: str | Path) -> dict[str, Any]:
    """The manifest of a saved model folder (modelyard's, or translated from MLflow's)."""
    folder = Path(path)
    ours = folder / MANIFEST_FILE
    if ours.is_file():
        return dict(json.loads(ours.read_text(encoding="utf-8")))
    theirs = folder / MLFLOW_MANIFEST_FILE
    if theirs.is_file():
        return _from_mlflow(theirs)
    raise NotFound(
        f"{str(folder)!r} holds no saved model (no {MANIFEST_FILE} or {MLFLOW_MANIFEST_FILE})",
        field="path",
    )


def _from_mlflow(path: Path) -> dict[str, Any]:
    """The parts of an MLflow ``MLmodel`` file modelyard can load (scikit-learn flavor)."""
    import yaml

    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    flavors = data.get("flavors") or {}
    sk = flavors.get("sklearn")
    if sk is None:
        raise InvalidParameter(
            f"MLflow model at {str(path.parent)!r} has flavors {sorted(flavors)}; modelyard "
            "loads MLflow's sklearn flavor only (load others with mlflow.pyfunc.load_model)",
            field="flavor",
        )
    signature = data.get("signature") or {}
    return {
        "flavor": "sklearn",
        "model_file": sk.get("pickled_model", "model.pkl"),
        "serialization_format": sk.get("serialization_format", "cloudpickle"),
        "signature": {
            "inputs": json.loads(signature.get("inputs") or "[]"),
            "outputs": json.loads(signature.get("outputs") or "[]"),
        },
        "run_id": data.get("run_id"),
        "mlflow_version": data.get("mlflow_version"),
    }


def _read_example(folder: Path, name: object) -> Any:
    """The manifest's input example, read from inside ``folder`` only (the manifest is the
    uploader's: ``../../etc/passwd`` is refused, not read)."""
    if not name:
        return None
    path = inside(folder, name, "input_example")
    if not path.is_file():
        raise InvalidParameter(
            f"the manifest's input_example {name!r} is not a file inside the model folder",
            field="input_example",
        )
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise InvalidParameter(
            f"the model's input example {name!r} is not valid JSON: {exc}",
            field="input_example",
        ) from None


class LoadedModel:
    """A loaded model: ``predict`` for any flavor, ``native`` for the library's own object.

    It holds everything it needs in memory (the input example too), so the folder it was
    loaded from may be removed at once: ``folder`` says where it came from, nothing more.
    """

    def __init__(self, folder: Path, manifest: dict[str, Any], native: Any) -> None:
        self.folder = folder
        self.manifest = manifest
        self.native = native
        self.flavor: str = manifest["flavor"]
        self.signature = Signature.from_dict(manifest.get("signature"))
        self._module = flavor_module(self.flavor)
        self._example_json = _read_example(folder, manifest.get("input_example"))

    @property
    def run_id(self) -> str | None:
        return self.manifest.get("run_id")

    def predict(self, model_input: Any) -> Any:
        """Predict on a DataFrame (columns put in the signature's order), array or records."""
        return self._module.predict(
            self.native, check_input(self.signature, model_input), self.manifest
        )

    def input_example(self) -> Any:
        if self._example_json is None:
            return None
        return example_from_json(self._example_json)

    def __repr__(self) -> str:
        return f"<LoadedModel {self.flavor} from {str(self.folder)!r}>"


def load_model(
    path: str | Path, *, trusted: bool = False, trusted_types: Collection[str] = ()
) -> LoadedModel:
    """Load a saved model folder. Only safe formats load unless ``trusted=True``;
    ``trusted_types`` widens the skops allow-list by exact type names."""
    folder = Path(path)
    manifest = read_manifest(folder)
    module = flavor_module(str(manifest.get("flavor")))
    native = module.load(folder, manifest, trusted=trusted, trusted_types=trusted_types)
    return LoadedModel(folder, manifest, native)
