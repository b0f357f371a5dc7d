"""A sweep's search space: what each parameter may be, declared before the first trial.

Why up front (and not ``trial.suggest_*`` inside the objective): the same space is written
in ``sweep.yaml``, checked before anything runs, recorded on the sweep's run (so that
``runs reproduce`` can run it again), enumerated by the grid sampler, and compared when an
interrupted sweep is restarted.

A parameter is one of::

    lr:    {type: float, low: 0.001, high: 0.3, log: true}   # step: 0.01 for a float grid
    depth: {type: int, low: 2, high: 8}                      # step: 2, log: true
    loss:  [squared_error, huber]                            # a list: categorical
    kind:  {type: categorical, choices: [a, b]}

>>> sorted(parse_space({"depth": {"type": "int", "low": 2, "high": 4}, "loss": ["l1", "l2"]}))
['depth', 'loss']
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
    distribution_to_json,
    json_to_distribution,
)
from pydantic import field_validator, model_validator

from modelyard.errors import InvalidParameter
from modelyard.specs import Spec, parse_spec, unknown_key

Choice = str | int | float | bool | None


class FloatParam(Spec):
    type: Literal["float"]
    low: float
    high: float
    log: bool = False
    step: float | None = None

    @model_validator(mode="after")
    def _check(self) -> FloatParam:
        _check_range(self.low, self.high, self.log)
        if self.step is not None and (self.step <= 0 or self.log):
            raise InvalidParameter("step must be positive, and not combined with log: true")
        return self


class IntParam(Spec):
    type: Literal["int"]
    low: int
    high: int
    log: bool = False
    step: int = 1

    @model_validator(mode="after")
    def _check(self) -> IntParam:
        _check_range(self.low, self.high, self.log)
        if self.step < 1 or (self.log and self.step != 1):
            raise InvalidParameter("step must be 1 or more, and 1 with log: true")
        return self


class CategoricalParam(Spec):
    type: Literal["categorical"]
    choices: list[Choice]

    @field_validator("choices")
    @classmethod
    def _some(cls, choices: list[Choice]) -> list[Choice]:
        if not choices:
            raise InvalidParameter("choices must list at least one value")
        return choices


_KINDS: dict[str, type[Spec]] = {
    "float": FloatParam,
    "int": IntParam,
    "categorical": CategoricalParam,
}


def _check_range(low: float, high: float, log: bool) -> None:
    if low > high:
        raise InvalidParameter(f"low ({low}) is above high ({high})")
    if log and low <= 0:
        raise InvalidParameter(f"log: true needs low > 0, got {low}")


def parse_space(space: Mapping[str, Any], *, label: str = "space") -> dict[str, BaseDistribution]:
    """The space as Optuna distributions, in the order given; every problem names the
    parameter (``space.lr: low (1.0) is above high (0.1)``)."""
    if not isinstance(space, Mapping) or not space:
        raise InvalidParameter(
            f"{label} must map each parameter name to its range or choices", field=label
        )
    found: dict[str, BaseDistribution] = {}
    for name, body in space.items():
        where = f"{label}.{name}"
        if not isinstance(name, str) or not name:
            raise InvalidParameter(f"{label}: parameter names are text, got {name!r}", field=label)
        found[name] = _distribution(body, where)
    return found


def _distribution(body: Any, where: str) -> BaseDistribution:
    if isinstance(body, BaseDistribution):
        return body
    if isinstance(body, (list, tuple)):
        body = {"type": "categorical", "choices": list(body)}
    if not isinstance(body, Mapping):
        raise InvalidParameter(
            f"{where}: give a list of choices or a mapping with type float, int or "
            f"categorical, got {body!r}",
            field=where,
        )
    kind = body.get("type")
    model = _KINDS.get(kind) if isinstance(kind, str) else None
    if model is None:
        if kind is None:
            raise InvalidParameter(f"{where}: type is required (float, int or categorical)")
        raise unknown_key(kind, _KINDS, label=where, field=f"{where}.type", noun="type")
    try:
        spec = parse_spec(model, body, label=where, prefix=f"{where}.")
    except InvalidParameter as exc:
        if exc.message.startswith(where):
            raise
        raise InvalidParameter(f"{where}: {exc.message}", field=exc.field or where) from None
    if isinstance(spec, FloatParam):
        return FloatDistribution(spec.low, spec.high, log=spec.log, step=spec.step)
    if isinstance(spec, IntParam):
        return IntDistribution(spec.low, spec.high, log=spec.log, step=spec.step)
    assert isinstance(spec, CategoricalParam)
    return CategoricalDistribution(spec.choices)


def grid_of(space: Mapping[str, BaseDistribution]) -> dict[str, list[Any]]:
    """Every value the grid sampler visits, per parameter; a float needs a ``step``."""
    grid: dict[str, list[Any]] = {}
    for name, dist in space.items():
        if isinstance(dist, CategoricalDistribution):
            grid[name] = list(dist.choices)
        elif isinstance(dist, IntDistribution):
            grid[name] = list(range(dist.low, dist.high + 1, dist.step))
        elif isinstance(dist, FloatDistribution) and dist.step is not None:
            count = round((dist.high - dist.low) / dist.step)
            grid[name] = [dist.low + i * dist.step for i in range(count + 1)]
        else:
            raise InvalidParameter(
                f"space.{name}: the grid sampler needs a step for a float parameter "
                "(e.g. step: 0.1), or use sampler tpe or random",
                field=f"space.{name}",
            )
    return grid


def grid_size(space: Mapping[str, BaseDistribution]) -> int:
    size = 1
    for values in grid_of(space).values():
        size *= len(values)
    return size


def space_to_json(space: Mapping[str, BaseDistribution]) -> dict[str, str]:
    """The space as recorded on the sweep (Optuna's own JSON per distribution)."""
    return {name: distribution_to_json(dist) for name, dist in space.items()}


def space_from_json(recorded: Mapping[str, str]) -> dict[str, BaseDistribution]:
    return {name: json_to_distribution(text) for name, text in recorded.items()}


def space_to_spec(space: Mapping[str, BaseDistribution]) -> dict[str, Any]:
    """The space in the form ``sweep.yaml`` takes (what ``runs reproduce`` writes back)."""
    spec: dict[str, Any] = {}
    for name, dist in space.items():
        if isinstance(dist, CategoricalDistribution):
            spec[name] = {"type": "categorical", "choices": list(dist.choices)}
        elif isinstance(dist, IntDistribution):
            spec[name] = {
                "type": "int",
                "low": dist.low,
                "high": dist.high,
                "log": dist.log,
                "step": dist.step,
            }
        elif isinstance(dist, FloatDistribution):
            spec[name] = {"type": "float", "low": dist.low, "high": dist.high, "log": dist.log}
            if dist.step is not None:
                spec[name]["step"] = dist.step
        else:  # pragma: no cover - the kinds parse_space builds are the three above
            raise InvalidParameter(f"space.{name}: unsupported distribution {dist!r}")
    return spec
