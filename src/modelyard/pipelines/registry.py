r"""Named pipelines: what a scheduler, an alert or a person starts by name.

A name maps to an import target (``package.module:function`` or an absolute
``/path/file.py:function``) and default params, stored in ``pipeline_definitions`` so that
any process on the same metadata store can start it. ``start`` merges the given params
over the defaults and records the ``cause`` on the run — the scheduler passes
``{"kind": "schedule", "schedule": "nightly", "tick": "2026-12-06T03:00:00Z"}``, an alert
trigger ``{"kind": "alert", "monitor": "shop", "alert_id": 7, "rule": "drift"}``.

>>> _ = (tmp_home / "flows.py").write_text(
...     "from modelyard.pipelines import pipeline, step\n"
...     "@step\ndef double(days: int) -> int:\n    return 2 * days\n"
...     "@pipeline\ndef retrain(days: int = 90):\n    return double(days)\n"
... )
>>> registry = PipelineRegistry(Settings(home=tmp_home / "yard"))
>>> registry.register("retrain-demand", f"{tmp_home}/flows.py:retrain", {"days": 90}).params
{'days': 90}
>>> run = registry.start("retrain-demand", {"days": 30}, cause={"kind": "manual"}, executor="local")
>>> run.status, run.params, run.cause
('FINISHED', {'days': 30}, {'kind': 'manual'})
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from modelyard.config import Settings, load_settings
from modelyard.errors import InvalidParameter
from modelyard.pipelines.definitions import check_name
from modelyard.pipelines.executors import DEFAULT_EXECUTOR
from modelyard.pipelines.loading import load_target
from modelyard.pipelines.runner import pipelines_store, run_pipeline
from modelyard.pipelines.store import PipelineDefinition, PipelineRunRecord


class PipelineRegistry:
    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or load_settings()
        self.store = pipelines_store(self.settings)

    def register(
        self,
        name: str,
        target: str,
        params: Mapping[str, Any] | None = None,
        *,
        description: str | None = None,
        replace: bool = False,
    ) -> PipelineDefinition:
        """Name a pipeline. The target is imported now, so a typo fails here and not at
        3 a.m.; a file target is stored as an absolute path; params are checked against
        the function's (required ones may be left to ``start``)."""
        check_name(name, "pipeline")
        source, sep, attr = target.rpartition(":")
        if sep and source.endswith(".py"):
            target = f"{Path(source).resolve()}:{attr}"
        pipeline = load_target(target)
        checked = dict(params or {})
        pipeline.bind_params(checked, partial=True)  # unknown names, non-JSON values
        return self.store.register(name, target, checked, description, replace=replace)

    def get(self, name: str) -> PipelineDefinition:
        return self.store.definition(name)

    def list(self) -> list[PipelineDefinition]:
        return self.store.definitions()

    def unregister(self, name: str) -> None:
        self.store.unregister(name)

    def start(
        self,
        name: str,
        params: Mapping[str, Any] | None = None,
        *,
        cause: Mapping[str, Any] | None = None,
        executor: str = DEFAULT_EXECUTOR,
        experiment: str | None = None,
        workers: int | None = None,
        tags: Mapping[str, str] | None = None,
        cache: bool = True,
    ) -> PipelineRunRecord:
        """Run the pipeline registered as ``name`` (raises ``PipelineFailed`` if it fails;
        the run is recorded either way). ``cache=False``: every step executes."""
        definition = self.store.definition(name)
        if cause is not None and not isinstance(cause, Mapping):
            raise InvalidParameter("cause must be a mapping (JSON object)", field="cause")
        merged = {**definition.params, **dict(params or {})}
        return run_pipeline(
            load_target(definition.target),
            merged,
            executor=executor,
            settings=self.settings,
            experiment=experiment,
            cause=cause,
            name=name,
            target=definition.target,
            workers=workers,
            tags=tags,
            cache=cache,
        )
