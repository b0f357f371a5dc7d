"""Parsing the YAML specs users write (gate policies, data contracts, traffic policies):
one pydantic base that refuses unknown keys, and one translation of what goes wrong into
``InvalidParameter`` naming the key's path, with a "did you mean" for a misspelt key.

A validator that finds a bad value raises ``InvalidParameter`` itself (it is a
``ValueError``, so pydantic carries it through): that error, its message and its field
reach the caller unchanged.

>>> class Window(Spec):
...     days: int = 7
>>> parse_spec(Window, {"days": 3}, label="window").days
3
>>> parse_spec(Window, {"dayz": 3}, label="window")
Traceback (most recent call last):
...
modelyard.errors.InvalidParameter: window: unknown key 'dayz'; did you mean 'days'?
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from modelyard.errors import InvalidParameter, ModelyardError

S = TypeVar("S", bound="Spec")


class Spec(BaseModel):
    """A spec section: unknown keys are refused; values are checked by the field types and
    by validators that raise ``InvalidParameter`` with the message users see."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)


def unknown_key(
    key: object,
    allowed: Iterable[str],
    *,
    label: str,
    field: str,
    noun: str = "key",
    error: type[InvalidParameter] = InvalidParameter,
) -> InvalidParameter:
    """The error for ``key``, not among ``allowed``: the closest allowed key, or the list."""
    choices = list(allowed)
    hint = difflib.get_close_matches(str(key), choices, n=1)
    also = f"; did you mean {hint[0]!r}?" if hint else f"; use one of {', '.join(choices)}"
    return error(f"{label}: unknown {noun} {key!r}{also}", field=field)


def check_keys(
    body: Mapping[str, Any],
    allowed: Sequence[str],
    *,
    label: str,
    prefix: str = "",
    noun: str = "key",
    error: type[InvalidParameter] = InvalidParameter,
) -> None:
    """Raise ``unknown_key`` for the first key of ``body`` not in ``allowed``."""
    for key in body:
        if key not in allowed:
            raise unknown_key(
                key, allowed, label=label, field=f"{prefix}{key}", noun=noun, error=error
            )


def parse_spec(
    model: type[S],
    body: object,
    *,
    label: str | None,
    prefix: str = "",
    noun: str = "key",
    error: type[InvalidParameter] = InvalidParameter,
) -> S:
    """``body`` (parsed YAML or JSON) validated as ``model``; errors as ``invalid_spec``."""
    if not isinstance(body, Mapping):
        raise error(
            f"{label or 'the spec'} must be a mapping of keys, got {type(body).__name__}",
            field=prefix.rstrip(".") or None,
        )
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise invalid_spec(exc, model, label=label, prefix=prefix, noun=noun, error=error) from None


def invalid_spec(
    exc: ValidationError,
    model: type[BaseModel],
    *,
    label: str | None,
    prefix: str = "",
    noun: str = "key",
    error: type[InvalidParameter] = InvalidParameter,
) -> ModelyardError:
    """The first problem of ``exc`` as modelyard's error: a validator's own
    ``InvalidParameter`` unchanged; an unknown key with its closest allowed key; anything
    else with the path of the bad field, the reason and the value. Messages start with
    ``label`` (``gate policy: ...``), or with the key's path when ``label`` is None
    (``columns.price.maxx: unknown rule 'maxx'; ...``)."""
    problems = exc.errors()
    # An unknown key first: a misspelt key often explains the other problems.
    first = next((e for e in problems if e["type"] == "extra_forbidden"), problems[0])
    loc = first["loc"]
    path = prefix + _path(loc)
    raised = (first.get("ctx") or {}).get("error")
    if isinstance(raised, ModelyardError):
        return raised
    head = path if label is None else label
    if first["type"] == "extra_forbidden":
        allowed = _keys_at(model, loc[:-1])
        return unknown_key(loc[-1], allowed, label=head, field=path, noun=noun, error=error)
    if first["type"] == "missing":
        return error(f"{head}: {path} is required", field=path)
    where = "" if label is None else f" {path}:"
    return error(f"{head}:{where} {first['msg']} (got {first.get('input')!r})", field=path)


def _path(loc: Sequence[int | str]) -> str:
    """``("rules", 0, "severity")`` → ``rules[0].severity``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _keys_at(model: type[BaseModel], loc: Sequence[int | str]) -> list[str]:
    """The keys the model allows at ``loc`` (the fields of the nested model found there)."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        field = current.model_fields.get(part) if _is_model(current) else None
        if field is None:
            return []
        current = _model_in(field.annotation)
    if not _is_model(current):
        return []
    return [info.alias or name for name, info in current.model_fields.items()]


def _is_model(tp: object) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _model_in(annotation: Any) -> Any:
    """The model inside ``X``, ``X | None``, ``list[X]``, ``tuple[X, ...]``, ``dict[str, X]``."""
    if _is_model(annotation):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_in(arg)
        if found is not None:
            return found
    return None
