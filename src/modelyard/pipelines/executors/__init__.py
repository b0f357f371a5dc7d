"""Executors, chosen by name: ``local`` (this process), ``process`` (local worker
processes, the default) and ``ray`` (the ``ray`` extra). Each backend is imported only
when chosen."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from modelyard.errors import InvalidParameter

if TYPE_CHECKING:
    from modelyard.config import Settings
    from modelyard.pipelines.executors.base import Executor

EXECUTORS = ("local", "process", "ray")
DEFAULT_EXECUTOR = "process"


def check_executor(name: str) -> str:
    if name not in EXECUTORS:
        raise InvalidParameter(
            f"unknown executor {name!r}; use one of {', '.join(EXECUTORS)}", field="executor"
        )
    return name


def open_executor(name: str, settings: Settings, workers: int | None = None) -> Executor:
    """An executor by name; ``workers`` caps parallel steps (default: 2, or the Ray
    cluster's CPUs)."""
    check_executor(name)
    if name == "local":
        from modelyard.pipelines.executors.inprocess import InProcessExecutor

        return InProcessExecutor()
    if name == "process":
        from modelyard.pipelines.executors.processes import ProcessExecutor

        return ProcessExecutor(workers or min(2, os.cpu_count() or 1))
    from modelyard.pipelines.executors.ray_cluster import RayExecutor

    return RayExecutor(settings.ray_address, workers)
