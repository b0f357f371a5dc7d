"""What modelyard's distribution declares: its required packages and those of each extra.

One reading of ``pyproject.toml``'s dependencies for everything that needs it: the
container bundle pins what the ``serving`` extra brings (``serving.packaging``), and a
missing package's error names the extra of the command that needs it (``cli.extras``).
From a source checkout (an editable install) it reads ``pyproject.toml`` itself, which
is the truth even before the next ``pip install``; from an installed wheel, the wheel's
metadata (``importlib.metadata``).

>>> [r.name for r in requirements_of("server")]
['starlette', 'uvicorn', 'prometheus-client', 'httptools', 'uvloop', 'orjson']
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from pathlib import Path

DISTRIBUTION = "modelyard"
#: pyproject.toml of a source checkout: src/modelyard/distribution.py → the project root.
_PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"
_NAME = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?")
_EXTRA_CLAUSE = re.compile(r"""\s*\bextra\s*==\s*['"]([^'"]+)['"]\s*""")


@dataclass(frozen=True, slots=True)
class Requirement:
    """One declared requirement: ``name`` normalised as pip compares names; ``extras``
    the package's own (``[binary]``); ``spec`` the version range as written (``>=0.19``);
    ``marker`` the environment marker, if any (``sys_platform != 'win32'``)."""

    name: str
    spec: str = ""
    marker: str = ""
    extras: str = ""

    def line(self, version: str | None = None) -> str:
        """The requirement as a pip line; pinned to ``version`` when given."""
        text = self.name + self.extras + (f"=={version}" if version else self.spec)
        return f"{text}; {self.marker}" if self.marker else text


def normal_name(name: str) -> str:
    """A package name as pip compares them: ``Prometheus_Client`` = ``prometheus-client``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirements_of(*extras: str, base: bool = False) -> list[Requirement]:
    """The requirements ``extras`` bring (``modelyard[a,b]`` inside one expanded), each
    package once, in declaration order; with ``base``, the required packages first.
    Empty when modelyard is neither a source checkout nor installed."""
    declared = _declared()
    found: dict[str, Requirement] = {}
    if base:
        _collect(declared, None, found, set())
    for extra in extras:
        _collect(declared, extra, found, set())
    return list(found.values())


def extras() -> list[str]:
    """The extras modelyard declares."""
    return sorted(name for name in _declared() if name is not None)


def _collect(
    declared: dict[str | None, list[str]],
    extra: str | None,
    found: dict[str, Requirement],
    seen: set[str | None],
) -> None:
    if extra in seen:
        return
    seen.add(extra)
    for line in declared.get(extra, []):
        requirement, inner = _parse(line)
        if requirement.name == DISTRIBUTION:
            for each in inner:
                _collect(declared, each, found, seen)
        else:
            found.setdefault(requirement.name, requirement)


def _parse(line: str) -> tuple[Requirement, list[str]]:
    """``"uvloop>=0.19; sys_platform != 'win32'"`` → the requirement, and the extras it
    names in brackets (``modelyard[server,sklearn]`` → ``["server", "sklearn"]``)."""
    text, _, marker = line.partition(";")
    match = _NAME.match(text)
    if match is None:
        raise ValueError(f"not a requirement: {line!r}")
    bracket = (match.group(2) or "").replace(" ", "")
    inner = [e for e in bracket.strip("[]").split(",") if e]
    spec = text[match.end() :].strip().replace(" ", "")
    name = normal_name(match.group(1))
    requirement = Requirement(name, spec, marker.strip(), "" if name == DISTRIBUTION else bracket)
    return requirement, inner


@cache
def _declared() -> dict[str | None, list[str]]:
    """Requirement lines by extra (``None``: the required ones), markers without the
    ``extra == …`` clause."""
    if _PYPROJECT.is_file():
        project = tomllib.loads(_PYPROJECT.read_text(encoding="utf-8")).get("project", {})
        if project.get("name") == DISTRIBUTION:
            return {
                None: list(project.get("dependencies", [])),
                **{k: list(v) for k, v in project.get("optional-dependencies", {}).items()},
            }
    try:
        lines = metadata.requires(DISTRIBUTION) or []
    except metadata.PackageNotFoundError:
        return {}
    declared: dict[str | None, list[str]] = {}
    for line in lines:
        text, _, marker = line.partition(";")
        clause = _EXTRA_CLAUSE.search(marker)
        extra = clause.group(1) if clause else None
        if clause:  # "a and extra == 'x'", "extra == 'x'": keep "a"
            marker = marker[: clause.start()] + marker[clause.end() :]
            marker = re.sub(r"^\s*and\b|\band\s*$", "", marker.strip()).strip()
        declared.setdefault(extra, []).append(f"{text}; {marker}" if marker else text)
    return declared


__all__ = ["Requirement", "extras", "normal_name", "requirements_of"]
