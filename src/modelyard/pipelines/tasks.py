"""What a worker runs: one attempt of one step, from stored inputs to stored outputs.

A ``StepTask`` is plain picklable data (a function reference, the artifact store's URI,
inputs as blob digests or literal JSON values), so the same task runs in this process, in
a spawned worker process, or on a Ray worker. The worker touches only the blob store: it
reads input blobs by digest, calls the function, encodes each output (``values``) and puts
its bytes as content-addressed blobs (each written to a temporary file and renamed, so a
killed worker leaves no partial blob). It never writes the metadata database: the
coordinator records the artifacts, the step row and the lineage in its own transactions,
and only then is the output visible.
"""

from __future__ import annotations

import contextvars
import importlib
import importlib.util
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelyard.artifacts.blobs import BlobStore, open_blob_store
from modelyard.errors import InvalidParameter
from modelyard.pipelines import values

if TYPE_CHECKING:
    from modelyard.config import Settings

_blob_stores: dict[str, BlobStore] = {}


@dataclass(frozen=True, slots=True)
class FunctionRef:
    """Where a step's function lives: a module name, and the file to load under that name
    when it is not importable (a pipeline file, a test module). ``direct`` is the function
    itself, for the local executor only: it never travels to another process."""

    module: str
    qualname: str
    file: str | None = None
    direct: Any = field(default=None, compare=False, repr=False)

    def __reduce__(self) -> tuple[Any, ...]:
        return (FunctionRef, (self.module, self.qualname, self.file))

    def resolve(self) -> Any:
        if self.direct is not None:
            return self.direct
        module = sys.modules.get(self.module)
        if module is None:
            try:
                module = importlib.import_module(self.module)
            except ImportError:
                if self.file is None:
                    raise
                module = load_file_module(Path(self.file), self.module)
        target: Any = module
        for part in self.qualname.split("."):
            target = getattr(target, part)
        return getattr(target, "fn", target)  # a Step object's plain function


def load_file_module(path: Path, module_name: str) -> Any:
    """Import ``path`` as ``module_name`` (once per process)."""
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise InvalidParameter(f"cannot import {str(path)!r} as Python", field="target")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise
    return module


@dataclass(frozen=True, slots=True)
class StoredValue:
    """A value in the artifact store: its kind (``values``), its files as
    ``(name, digest, size)`` and the kind's meta."""

    kind: str
    files: tuple[tuple[str, str, int], ...]
    meta: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "files": [list(f) for f in self.files], "meta": self.meta}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StoredValue:
        files = tuple((str(n), str(d), int(s)) for n, d, s in data["files"])
        return cls(str(data["kind"]), files, dict(data.get("meta") or {}))

    @property
    def digest(self) -> str:
        """One digest for the whole value (its single file's, or a digest of the files)."""
        if len(self.files) == 1:
            return self.files[0][1]
        from modelyard.digests import tree_digest

        return tree_digest((name, digest) for name, digest, _ in self.files)


@dataclass(frozen=True, slots=True)
class StepTask:
    """One attempt of one step call. ``arguments``: parameter → ``("literal", value)`` or
    ``("stored", StoredValue)``."""

    key: str
    step_name: str
    function: FunctionRef
    artifacts_uri: str
    arguments: dict[str, tuple[str, Any]]
    outputs: tuple[str, ...] | None
    trusted_outputs: bool
    timeout_s: float | None
    attempt: int = 1
    run_id: str = ""  # the pipeline's tracking run
    step_run_id: str = ""  # this step call's nested run: its outputs are its artifacts
    settings: Settings | None = None  # the run's (absolute store URIs); None: the worker's


@dataclass(frozen=True, slots=True)
class StepContext:
    """The step call running now (``current_step()``): a step that registers a model or
    writes lineage names the runs its outputs belong to — an output ``o`` of this call is
    stored at ``runs:/<step_run_id>/outputs/<o>``. ``settings``: the run's, the stores a
    step opens (``step_settings()``)."""

    run_id: str
    step_run_id: str
    key: str
    attempt: int
    settings: Settings | None = None


_current: contextvars.ContextVar[StepContext | None] = contextvars.ContextVar(
    "modelyard_pipeline_step", default=None
)


def current_step() -> StepContext | None:
    """The step call this code runs in, or None outside a pipeline step."""
    return _current.get()


def step_settings() -> Settings:
    """The settings a step opens stores with: its run's (``modelyard --home X pipelines
    run`` reaches steps in worker processes and on Ray nodes), else — outside a step —
    this process's (``load_settings()``).

    >>> from modelyard.data.client import DataClient          # doctest: +SKIP
    >>> data = DataClient.from_settings(step_settings())      # doctest: +SKIP
    """
    context = _current.get()
    if context is not None and context.settings is not None:
        return context.settings
    from modelyard.config import load_settings

    return load_settings()


@dataclass(frozen=True, slots=True)
class StepResult:
    """What an attempt ended with. ``retryable`` is False for failures that would repeat
    the same way (an output no format stores, a wrong number of outputs)."""

    key: str
    attempt: int
    ok: bool
    outputs: dict[str, StoredValue] = field(default_factory=dict)
    error: str | None = None
    retryable: bool = True
    seconds: float = 0.0


def blob_store(uri: str) -> BlobStore:
    store = _blob_stores.get(uri)
    if store is None:
        store = _blob_stores[uri] = open_blob_store(uri)
    return store


def resolve_function(task: StepTask) -> Any:
    """The step's function (importing its module), or a failed ``StepResult`` saying why."""
    started = time.perf_counter()
    try:
        return task.function.resolve()
    except KeyboardInterrupt:
        raise
    except BaseException as exc:
        text = "".join(traceback.format_exception(exc)[-12:]).rstrip()
        return _failed(
            task, f"cannot import step {task.step_name!r}: {exc}\n{text}", started, retryable=False
        )


def execute_step(task: StepTask, fn: Any = None) -> StepResult:
    """Run one attempt; never raises (the failure is the result, with its traceback).
    ``fn``: the function, when the caller resolved it already (``resolve_function``)."""
    if fn is None:
        fn = resolve_function(task)
        if isinstance(fn, StepResult):
            return fn
    started = time.perf_counter()
    try:
        store = blob_store(task.artifacts_uri)
        kwargs = {name: _load(store, arg) for name, arg in task.arguments.items()}
        context = StepContext(task.run_id, task.step_run_id, task.key, task.attempt, task.settings)
        token = _current.set(context)
        try:
            returned = fn(**kwargs)
        finally:
            _current.reset(token)
        outputs = _store_outputs(store, task, returned)
    except values.UnstorableOutput as exc:
        return _failed(task, str(exc), started, retryable=False)
    except _WrongOutputs as exc:
        return _failed(task, str(exc), started, retryable=False)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # the step's own failure (sys.exit too), with its traceback
        text = "".join(traceback.format_exception(exc)[-12:]).rstrip()
        return _failed(task, f"{type(exc).__name__}: {exc}\n{text}", started, retryable=True)
    return StepResult(
        task.key, task.attempt, True, outputs=outputs, seconds=time.perf_counter() - started
    )


class _WrongOutputs(Exception):
    pass


def _failed(task: StepTask, error: str, started: float, *, retryable: bool) -> StepResult:
    return StepResult(
        task.key,
        task.attempt,
        False,
        error=error,
        retryable=retryable,
        seconds=time.perf_counter() - started,
    )


def _load(store: BlobStore, argument: tuple[str, Any]) -> Any:
    how, value = argument
    if how == "literal":
        return value
    stored: StoredValue = value
    files = {name: store.read_bytes(digest) for name, digest, _ in stored.files}
    return values.decode(stored.kind, files, stored.meta)


def _store_outputs(store: BlobStore, task: StepTask, returned: Any) -> dict[str, StoredValue]:
    if task.outputs is None:
        named = {"return": returned}
    else:
        if not isinstance(returned, tuple) or len(returned) != len(task.outputs):
            got = f"a tuple of {len(returned)}" if isinstance(returned, tuple) else "one value"
            raise _WrongOutputs(
                f"step {task.step_name!r} declares outputs {list(task.outputs)} but returned "
                f"{got}; return a tuple with one value per output"
            )
        named = dict(zip(task.outputs, returned, strict=True))
    stored: dict[str, StoredValue] = {}
    for name, value in named.items():
        kind, files, meta = values.encode(
            value, step=task.step_name, output=name, trusted=task.trusted_outputs
        )
        refs = tuple((fname, *_put(store, data)) for fname, data in files.items())
        stored[name] = StoredValue(kind, refs, meta)
    return stored


def _put(store: BlobStore, data: bytes) -> tuple[str, int]:
    ref = store.put_bytes(data)
    return ref.digest, ref.size
