"""The retraining pipeline's config: one YAML file, read through ``specs`` (unknown keys
refused with a "did you mean", every error naming its key).

::

    dataset: sales                       # each run trains on a version of it (newest default)
    contract: contracts/sales.yaml       # optional; paths are relative to this file
    training_set:
      keys: [store_id, product_id]       # entity columns, taken from the dataset
      timestamp: day                     # the event time: features are joined as of it
      target: units
      service: demand                    # a feature service, or features: [view:feature, ...]
    model:
      name: demand                       # the registered model
      estimator: sklearn.ensemble.HistGradientBoostingRegressor
      params: {max_iter: 100, learning_rate: 0.1}
      intended_use: "Daily demand per store and product, 1-14 days ahead."
    evaluation:
      holdout: 14d                       # the latest 14 days: never trained on, gate data
      cv: {n_splits: 4, gap: 1d}         # time-aware CV on the days before the holdout
    gate: gates/demand.yaml              # a validation gate policy (rules vs the champion)
    champion: champion                   # the alias the gate compares with
    rollout:                             # optional: without it the version is only registered
      deployment: shop
      shadow: 100                        # percent of requests mirrored to the candidate
      canary: {steps: [10, 50, 100], interval: 30m}

``estimator`` is imported (``package.module.Class`` or ``package.module:Class``) and built
with ``params``: the config is code, as a pipeline file is — keep it where your code is.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from pydantic import field_validator

from modelyard.durations import parse_duration
from modelyard.errors import InvalidParameter
from modelyard.specs import Spec, parse_spec

__all__ = ["RetrainingConfig", "load_config"]


class TrainingSetSpec(Spec):
    keys: tuple[str, ...]
    timestamp: str
    target: str
    service: str | None = None
    features: tuple[str, ...] | None = None


class ModelSpec(Spec):
    name: str
    estimator: str
    params: dict[str, Any] = {}
    intended_use: str = ""
    limitations: str = ""

    @field_validator("estimator")
    @classmethod
    def _importable(cls, value: str) -> str:
        estimator_class(value)
        return value


class EvaluationSpec(Spec):
    holdout: str = "14d"
    cv: dict[str, Any] = {}

    @field_validator("holdout")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_duration(value, field="evaluation.holdout")
        return value


class CanarySpec(Spec):
    steps: tuple[float, ...] = (10.0, 50.0, 100.0)
    interval: str = "30m"


class RolloutSpec(Spec):
    deployment: str
    shadow: float | None = None
    canary: CanarySpec | None = None


class RetrainingSpec(Spec):
    dataset: str
    contract: str | None = None
    training_set: TrainingSetSpec
    model: ModelSpec
    evaluation: EvaluationSpec = EvaluationSpec()
    gate: str
    champion: str = "champion"
    rollout: RolloutSpec | None = None


class RetrainingConfig:
    """A parsed config with its paths made absolute against the file's folder."""

    def __init__(self, spec: RetrainingSpec, base: Path, source: str) -> None:
        self.spec = spec
        self.source = source
        self.contract = _path(spec.contract, base) if spec.contract else None
        self.gate = _path(spec.gate, base)
        if spec.training_set.service is None and not spec.training_set.features:
            raise InvalidParameter(
                f"{source}: training_set needs service: NAME or features: [view:feature, ...]",
                field="training_set.service",
            )

    @property
    def holdout_s(self) -> float:
        return parse_duration(self.spec.evaluation.holdout, "evaluation.holdout").total_seconds()


def _path(text: str, base: Path) -> Path:
    path = Path(text).expanduser()
    return path if path.is_absolute() else base / path


def estimator_class(text: str) -> Any:
    """The class ``text`` names; it must have ``fit`` and ``predict``."""
    module, sep, name = text.partition(":") if ":" in text else text.rpartition(".")
    if not sep or not module or not name:
        raise InvalidParameter(
            f"model.estimator {text!r} is not package.module.Class", field="model.estimator"
        )
    try:
        found = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise InvalidParameter(
            f"model.estimator {text!r} cannot be imported: {exc}", field="model.estimator"
        ) from None
    if not (callable(getattr(found, "fit", None)) and callable(getattr(found, "predict", None))):
        raise InvalidParameter(
            f"model.estimator {text!r} is not an estimator (no fit and predict)",
            field="model.estimator",
        )
    return found


def load_config(path: str | Path) -> RetrainingConfig:
    """Read and check the config at ``path`` (every referenced file must exist)."""
    import yaml

    file = Path(path).expanduser().resolve()
    if not file.is_file():
        raise InvalidParameter(f"retraining config {str(path)!r} does not exist", field="config")
    try:
        body = yaml.safe_load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise InvalidParameter(
            f"retraining config {str(file)!r} is not valid YAML: {exc}", field="config"
        ) from None
    spec = parse_spec(RetrainingSpec, body, label=f"retraining config {file.name}")
    config = RetrainingConfig(spec, file.parent, str(file))
    for key, found in (("contract", config.contract), ("gate", config.gate)):
        if found is not None and not found.is_file():
            raise InvalidParameter(f"{key}: {str(found)!r} does not exist", field=key)
    return config
