"""Finding pipelines and steps by name: ``FILE.py:NAME`` and ``package.module:NAME`` targets.

A pipeline run records its target, so that ``resume`` (in another process, days later)
and a scheduler can rebuild it; workers find each step's function the same way
(``tasks.FunctionRef``). A file is imported under a module name derived from its absolute
path, the same in every process, so a worker that loads the file names its functions as
the coordinator did.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import json
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from modelyard.errors import InvalidParameter, NotFound
from modelyard.pipelines.definitions import Pipeline, Step
from modelyard.pipelines.tasks import FunctionRef, load_file_module


def file_module_name(path: Path) -> str:
    digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:16]
    return f"modelyard_pipeline_{path.stem.replace('-', '_')}_{digest}"


def load_target(target: str) -> Pipeline:
    """The ``Pipeline`` named by ``target`` (``path/to/file.py:NAME`` or ``module:NAME``)."""
    source, sep, name = target.rpartition(":")
    if not sep or not source or not name:
        raise InvalidParameter(
            f"pipeline target {target!r} must be FILE.py:NAME or package.module:NAME",
            field="target",
        )
    if source.endswith(".py"):
        path = Path(source)
        if not path.is_file():
            raise NotFound(f"pipeline file {source!r} does not exist", field="target")
        module = load_file_module(path, file_module_name(path))
    else:
        try:
            module = importlib.import_module(source)
        except ImportError as exc:
            raise NotFound(f"cannot import {source!r}: {exc}", field="target") from None
    found: Any = module
    for part in name.split("."):
        found = getattr(found, part, None)
    if not isinstance(found, Pipeline):
        what = "nothing" if found is None else f"a {type(found).__name__}"
        raise InvalidParameter(
            f"{name!r} in {source!r} is {what}, not a function decorated with @pipeline",
            field="target",
        )
    return found


def _module_source(module_name: str) -> tuple[str, str | None]:
    """How another process finds ``module_name``: ``(name, file or None)``."""
    module = sys.modules.get(module_name)
    file = getattr(module, "__file__", None)
    if module_name == "__main__" and file:
        return file_module_name(Path(file)), str(Path(file).resolve())
    return module_name, (str(Path(file).resolve()) if file else None)


def target_of(pipeline: Pipeline) -> str:
    """The target that loads ``pipeline`` again: ``module:NAME`` when the module is
    importable by name, else ``/abs/path/file.py:NAME``."""
    module_name = pipeline.fn.__module__
    qualname = pipeline.fn.__qualname__
    _check_top_level(qualname, f"pipeline {pipeline.name!r}")
    name, file = _module_source(module_name)
    importable = False
    if name == module_name and not name.startswith("modelyard_pipeline_"):
        try:
            importable = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            importable = False
    if importable or file is None:
        return f"{name}:{qualname}"
    return f"{file}:{qualname}"


def function_ref(step: Step, *, in_process: bool) -> FunctionRef:
    """Where a worker finds ``step``'s function; a step defined inside a function can run
    only in this process."""
    fn = step.fn
    if not in_process:
        _check_top_level(fn.__qualname__, f"step {step.name!r}")
    name, file = _module_source(fn.__module__)
    return FunctionRef(name, fn.__qualname__, file, direct=fn if in_process else None)


def _check_top_level(qualname: str, what: str) -> None:
    if "<locals>" in qualname:
        raise InvalidParameter(
            f"{what} is defined inside a function; define it at the top level of a module "
            "so that worker processes (and resume) can import it, or use the local executor",
            field="target",
        )


def parse_params(pipeline: Pipeline, pairs: Iterable[str]) -> dict[str, Any]:
    """``k=v`` strings as params: JSON where it parses (``3``, ``0.5``, ``true``,
    ``[1, 2]``), else the text; a param annotated ``str`` always stays text."""
    found: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise InvalidParameter(f"--param {pair!r} is not KEY=VALUE", field="param")
        parameter = pipeline.signature.parameters.get(key)
        if parameter is not None and parameter.annotation in (str, "str"):
            found[key] = text
            continue
        try:
            found[key] = json.loads(text)
        except ValueError:
            found[key] = text
    return found


def describe_params(pipeline: Pipeline) -> Mapping[str, str]:
    """Each param's default as shown in help (``required`` when it has none)."""
    return {
        name: "required" if p.default is inspect.Parameter.empty else repr(p.default)
        for name, p in pipeline.signature.parameters.items()
    }
