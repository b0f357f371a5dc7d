"""``@step`` and ``@pipeline``: functions composed into a DAG by calling them.

Inside a pipeline function, calling a step does not run it: it records a call and
returns an ``Output`` (a handle on the value the step will return). Passing that handle
to another step is the dependency; there are no string names to keep in sync. Outside a
pipeline, a step is the plain function (so it is unit-tested as one).

>>> @step
... def double(x: int) -> int:
...     return 2 * x
>>> @pipeline
... def twice(x: int = 3):
...     return double(double(x))
>>> graph = twice.build({"x": 5})
>>> [call.key for call in graph.order()]
['double', 'double_2']
>>> double(4)
8
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import marshal
import re
import textwrap
from collections.abc import Callable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import timedelta
from importlib import metadata
from typing import Any, overload

from modelyard.durations import parse_duration
from modelyard.errors import InvalidParameter

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,127}")
#: The output name of a step that returns one value.
RETURN = "return"
_building: ContextVar[Graph | None] = ContextVar("modelyard_pipeline_graph", default=None)


@functools.cache
def modelyard_version() -> str:
    """The installed modelyard version: part of every code hash (a new release may store
    or load values differently, so its cache entries are not trusted across versions)."""
    try:
        return metadata.version("modelyard")
    except metadata.PackageNotFoundError:  # pragma: no cover - a plain source tree
        return "unknown"


def check_name(name: str, what: str) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidParameter(
            f"{what} name {name!r} is not usable: letters, digits, '_', '.', '-' "
            "(starting with a letter or '_'), at most 128 characters",
            field="name",
        )
    return name


@dataclass(frozen=True, slots=True)
class StepOptions:
    """How a step runs. ``retries``: extra attempts after a failure, waiting ``backoff_s``
    before the first and twice as long before each next one. ``timeout_s``: the longest
    one attempt may take (None: no limit). ``cache``: reuse a stored result of the same
    code and inputs. ``trusted_outputs``: values no safe format can hold are stored with
    cloudpickle (and loaded by the steps that consume them: only for code you trust)."""

    name: str
    outputs: tuple[str, ...] | None = None
    retries: int = 0
    backoff_s: float = 1.0
    timeout_s: float | None = None
    cache: bool = True
    trusted_outputs: bool = False


class Step:
    """A function that a pipeline runs as a tracked, cached, retried unit."""

    def __init__(self, fn: Callable[..., Any], options: StepOptions) -> None:
        self.fn = fn
        self.options = options
        self.signature = inspect.signature(fn)
        functools.update_wrapper(self, fn)

    @property
    def name(self) -> str:
        return self.options.name

    @functools.cached_property
    def code_hash(self) -> str:
        """sha256 of the function's source, the modelyard version and the options that shape
        its outputs: a change to any of them is a cache miss."""
        try:
            code = textwrap.dedent(inspect.getsource(self.fn)).encode()
        except (OSError, TypeError):  # no source file (an interactive session)
            code = marshal.dumps(self.fn.__code__)
        h = hashlib.sha256(code)
        h.update(f"\0{modelyard_version()}\0{self.options.outputs}".encode())
        return h.hexdigest()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        graph = _building.get()
        if graph is None:
            return self.fn(*args, **kwargs)
        return graph.add(self, args, kwargs)

    def __repr__(self) -> str:
        return f"<step {self.name}>"


@overload
def step(fn: Callable[..., Any], /) -> Step: ...
@overload
def step(
    *,
    name: str | None = None,
    outputs: Sequence[str] | None = None,
    retries: int = 0,
    backoff: str | float | timedelta = 1.0,
    timeout: str | float | timedelta | None = None,
    cache: bool = True,
    trusted_outputs: bool = False,
) -> Callable[[Callable[..., Any]], Step]: ...
def step(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    outputs: Sequence[str] | None = None,
    retries: int = 0,
    backoff: str | float | timedelta = 1.0,
    timeout: str | float | timedelta | None = None,
    cache: bool = True,
    trusted_outputs: bool = False,
) -> Step | Callable[[Callable[..., Any]], Step]:
    """Make a function a pipeline step: ``@step`` or ``@step(retries=2, timeout="10m")``.

    ``outputs=("model", "metrics")``: the function returns a tuple of that length, and a
    call inside a pipeline returns one ``Output`` per name (``model, metrics = train(x)``).
    Durations take seconds or the duration grammar (``"90s"``, ``"10m"``).
    """

    def wrap(f: Callable[..., Any]) -> Step:
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise InvalidParameter(
                f"retries must be a whole number ≥ 0, got {retries!r}", field="retries"
            )
        names = None if outputs is None else tuple(check_name(o, "output") for o in outputs)
        if names is not None and (not names or len(set(names)) != len(names)):
            raise InvalidParameter(
                f"outputs must be distinct names, at least one: got {outputs!r}", field="outputs"
            )
        limit = None if timeout is None else parse_duration(timeout, "timeout").total_seconds()
        if limit is not None and limit <= 0:
            raise InvalidParameter(f"timeout must be positive, got {timeout!r}", field="timeout")
        options = StepOptions(
            name=check_name(name or f.__name__, "step"),
            outputs=names,
            retries=retries,
            backoff_s=parse_duration(backoff, "backoff").total_seconds(),
            timeout_s=limit,
            cache=cache,
            trusted_outputs=trusted_outputs,
        )
        return Step(f, options)

    return wrap(fn) if fn is not None else wrap


@dataclass(eq=False)
class StepCall:
    """One call of a step in a pipeline: a node of the DAG. ``arguments`` maps each bound
    parameter to an ``Output`` or a literal JSON value; ``after`` holds order-only
    dependencies."""

    key: str
    step: Step
    position: int
    arguments: dict[str, Any]
    after: list[StepCall] = field(default_factory=list)

    def upstream(self) -> list[StepCall]:
        """The calls this one waits for: those whose outputs it reads, then ``after``."""
        found = [a.call for a in self.arguments.values() if isinstance(a, Output)]
        return list(dict.fromkeys([*found, *self.after]))


@dataclass(frozen=True, eq=False)
class Output:
    """A handle on one output of a step call; pass it to other steps."""

    call: StepCall
    name: str
    graph: Graph

    def after(self, *others: Output | Sequence[Output]) -> Output:
        """Run this output's step only after ``others`` finished (no data passes)."""
        for other in others:
            for item in other if isinstance(other, (list, tuple)) else [other]:
                if not isinstance(item, Output):
                    raise InvalidParameter(
                        f"step {self.call.key!r}: after() takes step outputs, got "
                        f"{type(item).__name__}",
                        field="after",
                    )
                self.call.after.append(item.call)
        return self

    def __repr__(self) -> str:
        return f"<output {self.call.key}.{self.name}>"


class Graph:
    """The DAG one pipeline function built: its calls in call order and what it returned."""

    def __init__(self, pipeline_name: str) -> None:
        self.pipeline_name = pipeline_name
        self.calls: dict[str, StepCall] = {}
        self.result: Any = None
        self._counts: dict[str, int] = {}

    def add(self, step_: Step, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        name = step_.name
        try:
            bound = step_.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise InvalidParameter(
                f"step {name!r} in pipeline {self.pipeline_name!r} has a missing or "
                f"unexpected input: {exc}",
                field=name,
            ) from None
        arguments = {k: self._argument(name, k, v) for k, v in bound.arguments.items()}
        count = self._counts.get(name, 0) + 1
        self._counts[name] = count
        key = name if count == 1 else f"{name}_{count}"
        call = StepCall(key=key, step=step_, position=len(self.calls), arguments=arguments)
        self.calls[key] = call
        names = step_.options.outputs
        if names is None:
            return Output(call, RETURN, self)
        return tuple(Output(call, n, self) for n in names)

    def _argument(self, step_name: str, param: str, value: Any) -> Any:
        if isinstance(value, Output):
            if value.graph is not self:
                raise InvalidParameter(
                    f"step {step_name!r}: input {param!r} is an output of step "
                    f"{value.call.key!r}, which is not part of pipeline "
                    f"{self.pipeline_name!r} (missing input)",
                    field=step_name,
                )
            return value
        problem = _json_problem(value)
        if problem:
            raise InvalidParameter(
                f"step {step_name!r}: input {param!r} is {problem}; a literal input must "
                "be a JSON value (numbers, strings, lists, dicts), and a table or a model "
                "must come from another step's output",
                field=step_name,
            )
        return value

    def order(self) -> list[StepCall]:
        """The calls in an order that runs each after its upstream (call order where free);
        a cycle (made with ``after``) is refused naming the steps on it."""
        state: dict[str, int] = {}  # 1: on the current path, 2: done
        ordered: list[StepCall] = []

        def visit(call: StepCall, path: list[str]) -> None:
            mark = state.get(call.key)
            if mark == 2:
                return
            if mark == 1:
                cycle = [*path[path.index(call.key) :], call.key]
                raise InvalidParameter(
                    f"pipeline {self.pipeline_name!r} has a cycle: {' -> '.join(cycle)}",
                    field=call.key,
                )
            if call.key not in self.calls:
                raise InvalidParameter(
                    f"step {path[-1]!r} waits for step {call.key!r}, which is not part of "
                    f"pipeline {self.pipeline_name!r} (missing input)",
                    field=path[-1],
                )
            state[call.key] = 1
            for up in call.upstream():
                visit(up, [*path, call.key])
            state[call.key] = 2
            ordered.append(call)

        for call in self.calls.values():
            visit(call, [])
        return ordered


def _json_problem(value: Any, depth: int = 0) -> str | None:
    """Why ``value`` is not a plain JSON value, or None."""
    if depth > 64:
        return "nested too deeply"
    if value is None or isinstance(value, (bool, int, float, str)):
        return None
    if isinstance(value, Output):
        return "a step output inside a container (pass it as an argument of its own)"
    if isinstance(value, (list, tuple)):
        return next((p for p in (_json_problem(v, depth + 1) for v in value) if p), None)
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            return "a dict with keys that are not strings"
        return next((p for p in (_json_problem(v, depth + 1) for v in value.values()) if p), None)
    return f"a {type(value).__module__}.{type(value).__qualname__}"


class Pipeline:
    """A function whose body calls steps; ``run`` builds and runs the DAG as a tracked run."""

    def __init__(self, fn: Callable[..., Any], name: str) -> None:
        self.fn = fn
        self.name = check_name(name, "pipeline")
        self.signature = inspect.signature(fn)
        functools.update_wrapper(self, fn)  # type: ignore[arg-type]

    def bind_params(self, params: Mapping[str, Any], *, partial: bool = False) -> dict[str, Any]:
        """The params with defaults filled in; an unknown or missing one names itself.
        ``partial``: required params may be missing (defaults a registered pipeline keeps,
        completed when it starts)."""
        for key in params:
            if key not in self.signature.parameters:
                known = ", ".join(self.signature.parameters) or "none"
                raise InvalidParameter(
                    f"pipeline {self.name!r} has no param {key!r} (its params: {known})",
                    field=key,
                )
        try:
            bound = (self.signature.bind_partial if partial else self.signature.bind)(**params)
        except TypeError as exc:
            raise InvalidParameter(f"pipeline {self.name!r}: {exc}", field="params") from None
        if not partial:
            bound.apply_defaults()
        values = dict(bound.arguments)
        for key, value in values.items():
            problem = _json_problem(value)
            if problem:
                raise InvalidParameter(
                    f"pipeline {self.name!r}: param {key!r} is {problem}; params are JSON "
                    "values (they are recorded on the run and used to rebuild it)",
                    field=key,
                )
        return values

    def build(self, params: Mapping[str, Any] | None = None) -> Graph:
        """Call the pipeline function with steps recording instead of running."""
        values = self.bind_params(params or {})
        graph = Graph(self.name)
        token = _building.set(graph)
        try:
            graph.result = self.fn(**values)
        finally:
            _building.reset(token)
        if not graph.calls:
            raise InvalidParameter(
                f"pipeline {self.name!r} calls no step: decorate the functions it calls with @step",
                field=self.name,
            )
        graph.order()  # refuse a cycle before anything is recorded
        return graph

    def run(self, params: Mapping[str, Any] | None = None, **options: Any) -> Any:
        """Build and run; ``options`` are ``runner.run_pipeline``'s (executor, settings,
        experiment, cause, ...). Returns the ``PipelineRun``."""
        from modelyard.pipelines.runner import run_pipeline

        return run_pipeline(self, params, **options)

    def __repr__(self) -> str:
        return f"<pipeline {self.name}>"


@overload
def pipeline(fn: Callable[..., Any], /) -> Pipeline: ...
@overload
def pipeline(*, name: str | None = None) -> Callable[[Callable[..., Any]], Pipeline]: ...
def pipeline(
    fn: Callable[..., Any] | None = None, /, *, name: str | None = None
) -> Pipeline | Callable[[Callable[..., Any]], Pipeline]:
    """Make a function a pipeline: its params are the run's params (JSON values), its body
    calls steps, and what it returns (outputs, or containers of them) is the run's result."""

    def wrap(f: Callable[..., Any]) -> Pipeline:
        return Pipeline(f, name or f.__name__)

    return wrap(fn) if fn is not None else wrap
