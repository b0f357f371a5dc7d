"""Generic Python models: your own ``predict``, e.g. pre/post-processing around a model.

Code cannot be stored without pickling it, and unpickling runs code, so this flavor is
stored with cloudpickle only when the caller passes ``trusted=True`` — both when saving and
when loading. Prefer a native flavor for the model itself; wrap it only for the glue.

>>> class Doubler(PythonModel):
...     def __init__(self, inner):
...         self.inner = inner
...     def predict(self, model_input):
...         return self.inner.predict(model_input) * 2
>>> log_model(Doubler(fitted), "doubler", trusted=True)  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modelyard.errors import MissingExtra, PermissionDenied
from modelyard.registry.formats.paths import inside

FLAVOR = "python"
MODEL_FILE = "python_model.pkl"
PACKAGES = ("cloudpickle", "numpy", "pandas")


class PythonModel:
    """Subclass it and implement ``predict(model_input)``.

    ``load_context`` runs once after loading (open files, warm caches); the default does
    nothing.
    """

    def load_context(self) -> None:
        """Prepare the loaded model for predictions."""

    def predict(self, model_input: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must implement predict(model_input)")


def matches(model: object) -> bool:
    return isinstance(model, PythonModel)


def _refuse(action: str) -> PermissionDenied:
    return PermissionDenied(
        f"a PythonModel is {action} with cloudpickle, which runs code when it is loaded; "
        f"pass trusted=True if you trust this model's source",
        field="trusted",
    )


def _cloudpickle() -> Any:
    try:
        import cloudpickle
    except ImportError as exc:
        raise MissingExtra("cloudpickle", "python-models", "Storing Python models") from exc
    return cloudpickle


def save(model: Any, folder: Path, trusted: bool = False) -> dict[str, Any]:
    if not trusted:
        raise _refuse("stored")
    with (folder / MODEL_FILE).open("wb") as fh:
        _cloudpickle().dump(model, fh)
    cls = type(model)
    return {
        "model_file": MODEL_FILE,
        "serialization_format": "cloudpickle",
        "python_class": f"{cls.__module__}.{cls.__qualname__}",
    }


def load(folder: Path, manifest: dict[str, Any], trusted: bool = False, **_: Any) -> Any:
    if not trusted:
        raise _refuse("stored")
    with inside(folder, manifest.get("model_file", MODEL_FILE), "model_file").open("rb") as fh:
        model = _cloudpickle().load(fh)
    model.load_context()
    return model


def predict(native: Any, data: Any, manifest: dict[str, Any]) -> Any:
    return native.predict(data)
