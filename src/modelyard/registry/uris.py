"""Model URIs: one spelling for a model wherever one is named (load, serve, gate, CLI).

* ``models:/churn/3``: version 3 of the registered model ``churn``;
* ``models:/churn@champion``: whichever version the alias points at *now*;
* ``models:/churn/Production`` (any stage) and ``models:/churn/latest``: MLflow's forms;
* ``models:/m-<32 hex>``: an MLflow 3 logged model;
* ``runs:/<run_id>/<path>``: files a run logged (``runs:/abc/model``).

Parsing is pure (no store access); ``RegistryClient.resolve`` turns a parsed URI into the
artifact location and version it names.

>>> parse_model_uri("models:/churn@champion")
ModelRef(name='churn', version=None, alias='champion', stage=None, latest=False)
>>> parse_model_uri("runs:/0123abc/model")
RunRef(run_id='0123abc', path='model')
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from modelyard.errors import InvalidParameter
from modelyard.registry.entities import Stage

MAX_NAME_LENGTH = 256
MAX_ALIAS_LENGTH = 255
RESERVED_ALIASES = frozenset({"latest"})
#: ASCII only: a gated alias compares case-insensitively, and a look-alike letter from
#: another script (Cyrillic "с" in "сhampion") must not make a second, ungated spelling.
_ALIAS = re.compile(r"^[A-Za-z0-9_-]+$")
_LOGGED_MODEL_ID = re.compile(r"^m-[0-9a-f]{32}$")
_RUN_ID = re.compile(r"^[a-zA-Z0-9][\w\-]{0,255}$")
_FORMS = "models:/NAME/VERSION, models:/NAME@ALIAS, models:/NAME/STAGE or runs:/RUN_ID/PATH"


@dataclass(frozen=True, slots=True)
class ModelRef:
    """A registered model's version, named by number, alias, stage or ``latest``."""

    name: str
    version: int | None = None
    alias: str | None = None
    stage: Stage | None = None
    latest: bool = False

    def __str__(self) -> str:
        if self.alias is not None:
            return f"models:/{self.name}@{self.alias}"
        tail = self.version if self.version is not None else self.stage or "latest"
        return f"models:/{self.name}/{tail}"


@dataclass(frozen=True, slots=True)
class RunRef:
    run_id: str
    path: str = ""

    def __str__(self) -> str:
        return f"runs:/{self.run_id}/{self.path}"


@dataclass(frozen=True, slots=True)
class LoggedModelRef:
    model_id: str

    def __str__(self) -> str:
        return f"models:/{self.model_id}"


ParsedUri = ModelRef | RunRef | LoggedModelRef


def check_model_name(name: object, field: str = "name") -> str:
    """A registered model name: 1–256 characters without '/', '@', control characters or
    surrounding spaces, so that it can always be written inside a ``models:/`` URI."""
    if not isinstance(name, str):
        raise InvalidParameter(
            f"model {field} must be a string, got {type(name).__name__}", field=field
        )
    problem = None
    if not name.strip():
        problem = "is empty"
    elif len(name) > MAX_NAME_LENGTH:
        problem = f"is {len(name)} characters long; the limit is {MAX_NAME_LENGTH}"
    elif name != name.strip():
        problem = "starts or ends with whitespace"
    elif "/" in name or "@" in name:
        problem = "contains '/' or '@', which models:/ URIs reserve"
    elif any(ord(ch) < 32 for ch in name):
        problem = "contains a control character"
    if problem:
        raise InvalidParameter(f"model {field} {name!r} {problem}", field=field)
    return name


def check_alias(alias: object) -> str:
    """An alias: ASCII letters, digits, '_' and '-' (at most 255), not a number, not
    ``latest``."""
    if not isinstance(alias, str) or not _ALIAS.fullmatch(alias) or len(alias) > MAX_ALIAS_LENGTH:
        raise InvalidParameter(
            f"alias {alias!r} is invalid: use 1-{MAX_ALIAS_LENGTH} ASCII letters, digits, '_' "
            "or '-'",
            field="alias",
        )
    if alias.lower() in RESERVED_ALIASES:
        raise InvalidParameter(
            f"alias {alias!r} is reserved (models:/NAME/latest means the newest version)",
            field="alias",
        )
    if alias.isdigit() or re.fullmatch(r"[vV]\d+", alias):
        raise InvalidParameter(
            f"alias {alias!r} looks like a version number; choose a name such as 'champion'",
            field="alias",
        )
    return alias


def check_version(version: object, field: str = "version") -> int:
    """A version number: a positive integer, or a string of digits (the wire form)."""
    if isinstance(version, bool):
        value = None
    elif isinstance(version, int):
        value = version
    elif isinstance(version, str) and version.strip().isdigit():
        value = int(version.strip())
    else:
        value = None
    if value is None or value < 1:
        raise InvalidParameter(
            f"Parameter '{field}' must be an integer, got {version!r}: a version is a "
            "positive integer",
            field=field,
        )
    return value


def parse_model_uri(uri: object) -> ParsedUri:
    """Parse ``uri`` into a reference; InvalidParameter lists the accepted forms."""
    if not isinstance(uri, str):
        raise InvalidParameter(f"model URI must be a string, got {uri!r}", field="model_uri")
    if uri.startswith("runs:/"):
        run_id, _, path = uri[len("runs:/") :].strip("/").partition("/")
        if not _RUN_ID.match(run_id):
            raise InvalidParameter(
                f"model URI {uri!r} names no run; use runs:/RUN_ID/PATH", field="model_uri"
            )
        return RunRef(run_id, path.strip("/"))
    if not uri.startswith("models:/"):
        raise InvalidParameter(f"model URI {uri!r} is not one of {_FORMS}", field="model_uri")
    body = uri[len("models:/") :].strip("/")
    if _LOGGED_MODEL_ID.match(body):
        return LoggedModelRef(body)
    if "/" not in body and "@" in body:
        name, _, alias = body.rpartition("@")
        return ModelRef(check_model_name(name), alias=check_alias(alias))
    name, slash, tail = body.partition("/")
    if not slash or not tail or "/" in tail:
        raise InvalidParameter(f"model URI {uri!r} is not one of {_FORMS}", field="model_uri")
    check_model_name(name)
    if tail.isdigit():
        return ModelRef(name, version=check_version(tail))
    if tail.lower() == "latest":
        return ModelRef(name, latest=True)
    return ModelRef(name, stage=Stage.parse(tail))
