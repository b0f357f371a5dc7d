"""modelyard: take machine-learning models from experiment to reliable production.

The fluent tracking API, for MLflow users at a glance::

    import modelyard

    modelyard.set_experiment("demand-forecast")
    with modelyard.start_run(tags={"objective": "reduce stock-outs"}):
        modelyard.log_params({"model": "gbm", "depth": 6})
        for step in range(100):
            modelyard.log_metric("rmse", 1.0 / (step + 1), step=step)

Attributes are imported on first use, so ``import modelyard`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_FLUENT = "modelyard.tracking.fluent"
_EXPORTS: dict[str, str] = {
    **{
        name: _FLUENT
        for name in (
            "configure",
            "set_tracking_uri",
            "get_client",
            "set_experiment",
            "start_run",
            "end_run",
            "active_run",
            "last_active_run",
            "log_metric",
            "log_metrics",
            "log_param",
            "log_params",
            "set_tag",
            "set_tags",
            "log_artifact",
            "log_artifacts",
            "log_text",
            "log_dict",
            "log_figure",
            "log_input",
            "search_runs",
            "flush",
            "ActiveRun",
        )
    },
    "autolog": "modelyard.tracking.autolog",
    "log_model": "modelyard.registry.log_model",
    "load_model": "modelyard.registry.log_model",
    "RegistryClient": "modelyard.registry.client",
    "PythonModel": "modelyard.registry.formats.python_model",
    "evaluate": "modelyard.validation.evaluate",
    # Not imported below for type checkers: the root is imported by rooms under
    # pipelines (serving), and import-linter reads that import as serving -> pipelines.
    "sweep": "modelyard.pipelines.sweeps",
    "DataClient": "modelyard.data.client",
    "Contract": "modelyard.data.contracts.spec",
    "FeatureStore": "modelyard.features.client",
    "Entity": "modelyard.features.definitions",
    "FeatureView": "modelyard.features.definitions",
    "OnDemandFeatureView": "modelyard.features.definitions",
    "FeatureService": "modelyard.features.definitions",
    "Field": "modelyard.features.fields",
    "FileSource": "modelyard.features.sources",
    "DataFrameSource": "modelyard.features.sources",
    "SqlSource": "modelyard.features.sources",
    "RequestSource": "modelyard.features.sources",
    "TrackingClient": "modelyard.tracking.client",
    "Settings": "modelyard.config",
    "Metric": "modelyard.tracking.entities",
    "Param": "modelyard.tracking.entities",
    "RunTag": "modelyard.tracking.entities",
    "DatasetInput": "modelyard.tracking.entities",
    "RunStatus": "modelyard.tracking.entities",
    "ViewType": "modelyard.tracking.entities",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'modelyard' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from modelyard.config import Settings
    from modelyard.data.client import DataClient
    from modelyard.data.contracts.spec import Contract
    from modelyard.features.client import FeatureStore
    from modelyard.features.definitions import (
        Entity,
        FeatureService,
        FeatureView,
        OnDemandFeatureView,
    )
    from modelyard.features.fields import Field
    from modelyard.features.sources import (
        DataFrameSource,
        FileSource,
        RequestSource,
        SqlSource,
    )
    from modelyard.registry.client import RegistryClient
    from modelyard.registry.formats.python_model import PythonModel
    from modelyard.registry.log_model import load_model, log_model
    from modelyard.tracking.autolog import autolog
    from modelyard.tracking.client import TrackingClient
    from modelyard.tracking.entities import (
        DatasetInput,
        Metric,
        Param,
        RunStatus,
        RunTag,
        ViewType,
    )
    from modelyard.tracking.fluent import (
        ActiveRun,
        active_run,
        configure,
        end_run,
        flush,
        get_client,
        last_active_run,
        log_artifact,
        log_artifacts,
        log_dict,
        log_figure,
        log_input,
        log_metric,
        log_metrics,
        log_param,
        log_params,
        log_text,
        search_runs,
        set_experiment,
        set_tag,
        set_tags,
        set_tracking_uri,
        start_run,
    )
    from modelyard.validation.evaluate import evaluate
