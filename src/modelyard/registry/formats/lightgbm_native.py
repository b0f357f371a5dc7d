"""LightGBM models in LightGBM's own text format (``model.lgb``), never pickled.

A scikit-learn wrapper (``LGBMClassifier``…) is saved as its booster plus the class labels,
and predicts labels again on load; ``LoadedModel.native`` is the ``lightgbm.Booster``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modelyard.errors import MissingExtra
from modelyard.registry.formats.paths import inside

FLAVOR = "lightgbm"
MODEL_FILE = "model.lgb"
PACKAGES = ("lightgbm", "numpy", "scipy")


def _lightgbm() -> Any:
    try:
        import lightgbm
    except ImportError as exc:
        raise MissingExtra("lightgbm", "lightgbm", "Loading LightGBM models") from exc
    return lightgbm


def matches(model: object) -> bool:
    return type(model).__module__.split(".", 1)[0] == "lightgbm"


def save(model: Any, folder: Path, trusted: bool = False) -> dict[str, Any]:
    lgb = _lightgbm()
    booster = model if isinstance(model, lgb.Booster) else model.booster_
    booster.save_model(str(folder / MODEL_FILE))
    extra: dict[str, Any] = {"model_file": MODEL_FILE, "model_class": type(model).__name__}
    classes = getattr(model, "classes_", None)
    if classes is not None:
        extra["classes"] = [c.item() if hasattr(c, "item") else c for c in classes]
    return extra


def load(folder: Path, manifest: dict[str, Any], trusted: bool = False, **_: Any) -> Any:
    return _lightgbm().Booster(
        model_file=str(inside(folder, manifest.get("model_file", MODEL_FILE), "model_file"))
    )


def predict(native: Any, data: Any, manifest: dict[str, Any]) -> Any:
    """Labels for classifiers (as the wrapper's ``predict``), raw values otherwise."""
    import numpy as np

    out = native.predict(data)
    classes = manifest.get("classes")
    if not classes:
        return out
    labels = np.asarray(classes)
    if out.ndim == 1:
        return labels[(out > 0.5).astype(int)]
    return labels[np.argmax(out, axis=1)]
