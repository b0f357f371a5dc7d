"""XGBoost models in XGBoost's own binary JSON format (``model.ubj``), never pickled.

The scikit-learn wrappers round-trip through ``save_model``/``load_model`` with their class
labels; only XGBoost's own classes are instantiated on load (named in ``MODEL_CLASSES``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modelyard.errors import InvalidParameter, MissingExtra
from modelyard.registry.formats.paths import inside

FLAVOR = "xgboost"
MODEL_FILE = "model.ubj"
PACKAGES = ("xgboost", "numpy", "scipy")
MODEL_CLASSES = (
    "Booster",
    "XGBClassifier",
    "XGBRegressor",
    "XGBRanker",
    "XGBRFClassifier",
    "XGBRFRegressor",
)


def _xgboost() -> Any:
    try:
        import xgboost
    except ImportError as exc:
        raise MissingExtra("xgboost", "xgboost", "Loading XGBoost models") from exc
    return xgboost


def matches(model: object) -> bool:
    return type(model).__module__.split(".", 1)[0] == "xgboost"


def save(model: Any, folder: Path, trusted: bool = False) -> dict[str, Any]:
    name = type(model).__name__
    if name not in MODEL_CLASSES:
        raise InvalidParameter(
            f"cannot save {name} in XGBoost's format; use one of {', '.join(MODEL_CLASSES)}",
            field="model",
        )
    model.save_model(str(folder / MODEL_FILE))
    return {"model_file": MODEL_FILE, "model_class": name}


def load(folder: Path, manifest: dict[str, Any], trusted: bool = False, **_: Any) -> Any:
    xgb = _xgboost()
    name = manifest.get("model_class", "Booster")
    if name not in MODEL_CLASSES:
        raise InvalidParameter(f"unknown XGBoost model class {name!r}", field="model_class")
    model = getattr(xgb, name)()
    model.load_model(str(inside(folder, manifest.get("model_file", MODEL_FILE), "model_file")))
    return model


def predict(native: Any, data: Any, manifest: dict[str, Any]) -> Any:
    xgb = _xgboost()
    if isinstance(native, xgb.Booster):
        return native.predict(xgb.DMatrix(data))
    return native.predict(data)
