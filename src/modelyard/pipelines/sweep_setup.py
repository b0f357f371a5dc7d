"""A sweep's settings, checked before anything runs: ``SweepConfig``, the ``sweep.yaml``
spec, and the Optuna sampler and pruner they name.

The config is recorded on the sweep's run (``sweep.json``) and in its study, so that a
restarted sweep is checked against the one it continues, and ``runs reproduce`` runs the
same sweep again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from pydantic import Field

from modelyard.errors import InvalidParameter
from modelyard.pipelines.sweep_space import (
    grid_of,
    grid_size,
    parse_space,
    space_from_json,
    space_to_json,
)
from modelyard.specs import Spec, unknown_key

SAMPLERS = ("tpe", "random", "grid")
PRUNERS = ("median", "hyperband", "none")
DIRECTIONS = ("minimize", "maximize")
EXECUTORS = ("local", "process", "ray")
#: Trials before the median pruner judges any (their curves make the median).
MEDIAN_STARTUP_TRIALS = 5
NAME_CHARS = 200


@dataclass(frozen=True)
class SweepConfig:
    """Everything that defines a sweep but its objective."""

    name: str
    space: Mapping[str, BaseDistribution]
    n_trials: int
    direction: str = "minimize"
    sampler: str = "tpe"
    pruner: str = "median"
    metric: str = "objective"
    seed: int | None = None
    parallel: int = 1
    executor: str | None = None
    experiment: str = "sweeps"

    def to_record(self) -> dict[str, Any]:
        """JSON-able; ``config_from_record`` reads it back."""
        return {
            "name": self.name,
            "space": space_to_json(self.space),
            "n_trials": self.n_trials,
            "direction": self.direction,
            "sampler": self.sampler,
            "pruner": self.pruner,
            "metric": self.metric,
            "seed": self.seed,
            "parallel": self.parallel,
            "executor": self.executor,
            "experiment": self.experiment,
        }

    def study_identity(self) -> dict[str, Any]:
        """What a restarted sweep must share with the one it continues."""
        record = self.to_record()
        return {k: record[k] for k in ("space", "direction", "sampler", "metric", "seed")}


def config_from_record(record: Mapping[str, Any]) -> SweepConfig:
    fields = dict(record)
    fields["space"] = space_from_json(fields["space"])
    return SweepConfig(**fields)


def make_config(
    *,
    name: str,
    space: Mapping[str, Any],
    n_trials: int | None,
    direction: str,
    sampler: str,
    pruner: str,
    metric: str,
    seed: int | None,
    parallel: int,
    executor: str | None,
    experiment: str | None,
) -> SweepConfig:
    """Check every argument, naming the one that is wrong."""
    _choose("direction", direction, DIRECTIONS)
    _choose("sampler", sampler, SAMPLERS)
    _choose("pruner", pruner, PRUNERS)
    if executor is not None:
        _choose("executor", executor, EXECUTORS)
    distributions = parse_space(space)
    if not isinstance(name, str) or not name.strip() or len(name) > NAME_CHARS:
        raise InvalidParameter(
            f"sweep name {name!r} must be 1-{NAME_CHARS} characters", field="name"
        )
    if not isinstance(metric, str) or not metric.strip():
        raise InvalidParameter(f"metric {metric!r} must name a metric", field="metric")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise InvalidParameter(f"seed must be an integer, got {seed!r}", field="seed")
    if isinstance(parallel, bool) or not isinstance(parallel, int) or parallel < 1:
        raise InvalidParameter(f"parallel must be 1 or more, got {parallel!r}", field="parallel")
    if sampler == "grid":
        points = grid_size(distributions)
        n_trials = points if n_trials is None else n_trials
        if isinstance(n_trials, int) and n_trials > points:
            raise InvalidParameter(
                f"n_trials {n_trials} is more than the grid's {points} points", field="n_trials"
            )
    if n_trials is None:
        raise InvalidParameter(
            "n_trials is required (the number of trials the sweep runs in all)",
            field="n_trials",
        )
    if isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 1:
        raise InvalidParameter(f"n_trials must be 1 or more, got {n_trials!r}", field="n_trials")
    return SweepConfig(
        name=name.strip(),
        space=distributions,
        n_trials=n_trials,
        direction=direction,
        sampler=sampler,
        pruner=pruner,
        metric=metric.strip(),
        seed=seed,
        parallel=parallel,
        executor=executor,
        experiment=experiment or "sweeps",
    )


def _choose(field: str, value: object, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise unknown_key(value, allowed, label=field, field=field, noun="value")


def build_sampler_and_pruner(
    config: SweepConfig, *, worker: int = 0
) -> tuple[optuna.samplers.BaseSampler, optuna.pruners.BasePruner]:
    """The sampler and pruner the config names. Worker ``i`` of a parallel sweep seeds its
    sampler with ``seed + i``: workers with one seed would propose the same first points."""
    seed = None if config.seed is None else config.seed + worker
    sampler: optuna.samplers.BaseSampler
    if config.sampler == "tpe":
        sampler = optuna.samplers.TPESampler(seed=seed)
    elif config.sampler == "random":
        sampler = optuna.samplers.RandomSampler(seed=seed)
    else:
        sampler = _Grid(grid_of(config.space), seed=seed)
    pruner: optuna.pruners.BasePruner
    if config.pruner == "median":
        pruner = optuna.pruners.MedianPruner(n_startup_trials=MEDIAN_STARTUP_TRIALS)
    elif config.pruner == "hyperband":
        pruner = optuna.pruners.HyperbandPruner()
    else:
        pruner = optuna.pruners.NopPruner()
    return sampler, pruner


class _Grid(optuna.samplers.GridSampler):
    """Optuna's grid sampler, without stopping the study when the grid is done: that
    works only inside ``Study.optimize``, and a sweep caps ``n_trials`` at the grid's size
    itself."""

    def after_trial(self, *_: Any) -> None:
        return None


class SweepFile(Spec):
    """``sweep.yaml``: what ``modelyard sweep FILE.py:objective --config`` runs."""

    space: dict[str, Any]
    n_trials: int | None = Field(default=None, ge=1)
    direction: str = "minimize"
    sampler: str = "tpe"
    pruner: str = "median"
    metric: str = "objective"
    seed: int | None = None
    parallel: int = Field(default=1, ge=1)
    executor: str | None = None
    name: str | None = None
    experiment: str | None = None


def read_sweep_file(text: str, *, label: str) -> SweepFile:
    """Parse ``sweep.yaml`` text; unknown keys are refused with the closest known one."""
    import yaml

    from modelyard.specs import parse_spec

    try:
        body = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidParameter(f"{label} is not valid YAML: {exc}", field="config") from None
    spec = parse_spec(SweepFile, body, label=label)
    for key in ("direction", "sampler", "pruner"):
        allowed = {"direction": DIRECTIONS, "sampler": SAMPLERS, "pruner": PRUNERS}[key]
        value = getattr(spec, key)
        if value not in allowed:
            raise unknown_key(value, allowed, label=f"{label}: {key}", field=key, noun="value")
    return spec
