"""Tracking entities ↔ the JSON of MLflow's REST API 2.0, in both directions.

The server renders entities with the ``*_to_json`` functions and reads requests with the
``*_from_json`` ones; the REST store does the reverse. Both sides read through ``Fields``,
which checks types and names the offending field (``metrics[3].value``) in every error,
so a malformed request becomes a 400 that says what to fix, never a 500.

Wire rules (see MLflow's REST reference): ids are strings, timestamps int64 milliseconds
(numbers, or strings as protobuf's JSON writes int64), non-finite metric values the strings
``"NaN"``, ``"Infinity"`` and ``"-Infinity"``, empty or unset fields omitted, and runs
carry both ``run_id`` and its legacy alias ``run_uuid``.

>>> metric_to_json(Metric("loss", float("nan"), 17, 2))
{'key': 'loss', 'value': 'NaN', 'timestamp': 17, 'step': 2}
>>> metric_from_json(Fields({"key": "loss", "value": "-Infinity", "timestamp": "17"}))
Metric(key='loss', value=-inf, timestamp=17, step=0)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from modelyard import json_codec
from modelyard.errors import InvalidParameter
from modelyard.tracking.entities import (
    DatasetInput,
    Experiment,
    Metric,
    Run,
    RunData,
    RunInfo,
)

#: The tag MLflow uses for a dataset input's role (training, validation…).
DATASET_CONTEXT_TAG = "mlflow.data.context"
PARENT_RUN_TAG = "mlflow.parentRunId"
_NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
_INT64 = (-(2**63), 2**63 - 1)
_MISSING = object()


class Fields:
    """Typed, field-naming access to one JSON object (or a parsed query string).

    Query strings carry every value as a string and may repeat a key, so ``from_query``
    keeps lists of strings and the numeric readers accept decimal strings; JSON readers
    accept decimal strings for integers too (protobuf writes int64 that way).
    """

    __slots__ = ("_data", "_from_query", "_path")

    def __init__(self, data: Mapping[str, Any], *, path: str = "", from_query: bool = False):
        if not isinstance(data, Mapping):
            where = f"field {path!r}" if path else "the request body"
            raise InvalidParameter(
                f"{where} must be a JSON object, got {_kind(data)}", field=path or "body"
            )
        self._data = data
        self._path = path
        self._from_query = from_query

    @classmethod
    def from_query(cls, items: Iterable[tuple[str, str]]) -> Fields:
        grouped: dict[str, list[str]] = {}
        for key, value in items:
            grouped.setdefault(key, []).append(value)
        return cls(grouped, from_query=True)

    def name(self, field: str) -> str:
        return f"{self._path}.{field}" if self._path else field

    def has(self, field: str) -> bool:
        return self._raw(field) is not _MISSING

    def _raw(self, field: str) -> Any:
        value = self._data.get(field, _MISSING)
        if value is None or value is _MISSING:
            return _MISSING
        if self._from_query:
            return value[0] if value else _MISSING
        return value

    def _absent(self, field: str, required: bool, default: Any) -> Any:
        if required:
            raise missing(self.name(field))
        return default

    def _bad(self, field: str, expected: str, value: Any) -> InvalidParameter:
        return invalid_value(self.name(field), value, f"must be {expected}, got {_kind(value)}")

    def text(self, field: str, *, required: bool = False, default: str | None = None) -> Any:
        """A string field; ``default`` (None unless given) when absent."""
        value = self._raw(field)
        if value is _MISSING:
            return self._absent(field, required, default)
        if not isinstance(value, str):
            raise self._bad(field, "a string", value)
        return value

    def ident(self, field: str, *, required: bool = False, numeric: bool = True) -> Any:
        """An id: a string, or (``numeric``: experiment ids, versions) an integer that is
        turned into one. Run and model ids are strings only, as MLflow's proto says."""
        value = self._raw(field)
        if value is _MISSING or value == "":
            return self._absent(field, required, None)
        if numeric and isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        if not isinstance(value, str):
            raise self._bad(field, "a string id", value)
        return value

    def integer(self, field: str, *, required: bool = False, default: int | None = None) -> Any:
        """An int64 (protobuf's integer type; larger numbers are refused, not truncated)."""
        value = self._raw(field)
        if value is _MISSING:
            return self._absent(field, required, default)
        number: int | None = None
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif isinstance(value, float) and value.is_integer():
            number = int(value)
        elif isinstance(value, str):
            try:
                number = int(value.strip())
            except ValueError:
                pass
        if number is None:
            raise self._bad(field, "an integer", value)
        if not _INT64[0] <= number <= _INT64[1]:
            raise self._bad(field, "a 64-bit integer", value)
        return number

    def number(self, field: str, *, required: bool = False) -> Any:
        """A float; also "NaN", "Infinity", "-Infinity" and decimal strings."""
        value = self._raw(field)
        if value is _MISSING:
            return self._absent(field, required, None)
        if isinstance(value, bool):
            raise self._bad(field, "a number", value)
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            if value in _NON_FINITE:
                return _NON_FINITE[value]
            try:
                return float(value)
            except ValueError:
                pass
        raise self._bad(field, 'a number (or "NaN", "Infinity", "-Infinity")', value)

    def boolean(self, field: str, *, default: bool = False) -> bool:
        value = self._raw(field)
        if value is _MISSING:
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise self._bad(field, "true or false", value)

    def texts(self, field: str) -> list[str]:
        """A repeated string field (a lone string counts as a list of one)."""
        value = self._data.get(field)
        if value is None:
            return []
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            raise self._bad(field, "a list of strings", value)
        out: list[str] = []
        for i, item in enumerate(value):
            if isinstance(item, int) and not isinstance(item, bool):
                item = str(item)
            if not isinstance(item, str):
                raise self._bad(f"{field}[{i}]", "a string", item)
            out.append(item)
        return out

    def objects(self, field: str) -> list[Fields]:
        """A repeated object field."""
        if self._from_query:
            raise InvalidParameter(
                f"field {self.name(field)!r} cannot be given in a query string; send it in a "
                "JSON body",
                field=self.name(field),
            )
        value = self._data.get(field)
        if value is None:
            return []
        if not isinstance(value, list):
            raise self._bad(field, "a list of objects", value)
        return [Fields(item, path=f"{self.name(field)}[{i}]") for i, item in enumerate(value)]

    def object(self, field: str) -> Fields | None:
        value = self._data.get(field)
        if value is None or self._from_query:
            return None
        return Fields(value, path=self.name(field))

    def run_id(self) -> str:
        """``run_id``, or its legacy alias ``run_uuid`` (MLflow clients send both); a
        string (a number is refused, 400, as MLflow refuses it)."""
        found = self.ident("run_id", numeric=False) or self.ident("run_uuid", numeric=False)
        if found is None:
            raise missing(self.name("run_id"))
        return str(found)


def missing(name: str) -> InvalidParameter:
    """MLflow's wording for an absent required field (its clients and tests match it)."""
    return InvalidParameter(f"Missing value for required parameter '{name}'.", field=name)


def invalid_value(name: str, value: Any, detail: str) -> InvalidParameter:
    """MLflow's wording for a bad field (the value as JSON), then what we expected."""
    try:
        shown = json_codec.dumps(value).decode()
    except (TypeError, ValueError):
        shown = repr(value)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return InvalidParameter(
        f"Invalid value {shown} for parameter '{name}' supplied: {detail}", field=name
    )


def _kind(value: Any) -> str:
    return {
        bool: "boolean",
        int: "number",
        float: "number",
        str: "string",
        list: "list",
        dict: "object",
        type(None): "null",
    }.get(type(value), type(value).__name__)


def prune(body: Mapping[str, Any]) -> dict[str, Any]:
    """Drop unset and empty fields (None, "", [], {}); zeros are kept."""
    # ``v or ...``: most values are truthy, and skip the three comparisons.
    return {
        k: v for k, v in body.items() if v or (v is not None and v != "" and v != [] and v != {})
    }


# -- values -----------------------------------------------------------------------------


def metric_value_to_json(value: float) -> float | Literal["NaN", "Infinity", "-Infinity"]:
    if value - value == 0:  # finite (inf - inf and nan - nan are nan): the common case
        return value
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def tags_to_json(tags: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in tags.items()]


def tags_from_json(items: Iterable[Fields]) -> dict[str, str]:
    """``[{key, value}]`` → dict; a missing value is "" (protobuf omits empty strings)."""
    return {f.text("key", required=True): f.text("value", default="") for f in items}


# -- metrics ----------------------------------------------------------------------------


def metric_to_json(metric: Metric) -> dict[str, Any]:
    value = metric.value
    return {
        "key": metric.key,
        "value": value if value - value == 0 else metric_value_to_json(value),
        "timestamp": metric.timestamp,
        "step": metric.step,
    }


def metric_from_json(fields: Fields, *, default_timestamp: int | None = None) -> Metric:
    """A metric point; ``timestamp`` may be left out only when a default is given."""
    return Metric(
        key=fields.text("key", required=True),
        value=fields.number("value", required=True),
        timestamp=fields.integer(
            "timestamp", required=default_timestamp is None, default=default_timestamp
        ),
        step=fields.integer("step", default=0),
    )


# -- experiments ------------------------------------------------------------------------


def experiment_to_json(experiment: Experiment) -> dict[str, Any]:
    return prune(
        {
            "experiment_id": experiment.experiment_id,
            "name": experiment.name,
            "artifact_location": experiment.artifact_location,
            "lifecycle_stage": experiment.lifecycle_stage,
            "creation_time": experiment.creation_time,
            "last_update_time": experiment.last_update_time,
            "tags": tags_to_json(experiment.tags),
        }
    )


def experiment_from_json(fields: Fields) -> Experiment:
    return Experiment(
        experiment_id=fields.ident("experiment_id", required=True),
        name=fields.text("name", default=""),
        artifact_location=fields.text("artifact_location", default=""),
        lifecycle_stage=fields.text("lifecycle_stage", default="active"),
        creation_time=fields.integer("creation_time", default=0),
        last_update_time=fields.integer("last_update_time", default=0),
        tags=tags_from_json(fields.objects("tags")),
    )


# -- runs -------------------------------------------------------------------------------


def run_info_to_json(info: RunInfo) -> dict[str, Any]:
    # Field by field rather than ``prune``: a search renders hundreds of these.
    body: dict[str, Any] = {}
    if info.run_id:
        body["run_id"] = body["run_uuid"] = info.run_id
    for name, value in (
        ("run_name", info.run_name),
        ("experiment_id", info.experiment_id),
        ("user_id", info.user_id),
        ("status", info.status),
    ):
        if value:
            body[name] = value
    if info.start_time is not None:
        body["start_time"] = info.start_time
    if info.end_time is not None:
        body["end_time"] = info.end_time
    if info.artifact_uri:
        body["artifact_uri"] = info.artifact_uri
    if info.lifecycle_stage:
        body["lifecycle_stage"] = info.lifecycle_stage
    return body


def run_info_from_json(fields: Fields, parent_run_id: str | None = None) -> RunInfo:
    return RunInfo(
        run_id=fields.run_id(),
        experiment_id=fields.ident("experiment_id", required=True),
        run_name=fields.text("run_name", default=""),
        user_id=fields.text("user_id", default=""),
        status=fields.text("status", default="RUNNING"),
        start_time=fields.integer("start_time", default=0),
        end_time=fields.integer("end_time"),
        lifecycle_stage=fields.text("lifecycle_stage", default="active"),
        artifact_uri=fields.text("artifact_uri", default=""),
        parent_run_id=parent_run_id,
    )


def dataset_input_to_json(dataset: DatasetInput) -> dict[str, Any]:
    return {
        "tags": _input_tags(dataset),
        "dataset": prune(
            {
                "name": dataset.name,
                "digest": dataset.digest,
                "source_type": dataset.source_type,
                "source": dataset.source,
                "schema": dataset.schema,
                "profile": dataset.profile,
            }
        ),
    }


def _input_tags(dataset: DatasetInput) -> list[dict[str, str]]:
    """The tags a client sent with the input, in its order; else the context alone."""
    if dataset.tags_json:
        pairs = json_codec.loads_lenient(dataset.tags_json)
        return [{"key": str(k), "value": str(v)} for k, v in pairs]
    if not dataset.context:
        return []
    return [{"key": DATASET_CONTEXT_TAG, "value": dataset.context}]


def dataset_input_from_json(fields: Fields) -> DatasetInput:
    dataset = fields.object("dataset")
    if dataset is None:
        raise missing(fields.name("dataset"))
    tags = tags_from_json(fields.objects("tags"))
    return DatasetInput(
        name=dataset.text("name", required=True),
        digest=dataset.text("digest", required=True),
        context=tags.get(DATASET_CONTEXT_TAG, ""),  # none sent: none answered, as MLflow
        # kept only when there is more than the context (which has its own column)
        tags_json=json_codec.dumps(list(tags.items())).decode()
        if set(tags) - {DATASET_CONTEXT_TAG}
        else None,
        source_type=dataset.text("source_type", default=""),
        source=dataset.text("source", default=""),
        schema=dataset.text("schema"),
        profile=dataset.text("profile"),
    )


def run_to_json(run: Run) -> dict[str, Any]:
    data = run.data
    rendered: dict[str, Any] = {}
    if data.metric_points:
        rendered["metrics"] = [  # metric_to_json, inlined
            {
                "key": m.key,
                "value": m.value if m.value - m.value == 0 else metric_value_to_json(m.value),
                "timestamp": m.timestamp,
                "step": m.step,
            }
            for m in data.metric_points.values()
        ]
    elif data.metrics:
        rendered["metrics"] = [
            {"key": key, "value": metric_value_to_json(value), "timestamp": 0, "step": 0}
            for key, value in data.metrics.items()
        ]
    if data.params:
        rendered["params"] = [{"key": k, "value": v} for k, v in data.params.items()]
    if data.tags:
        rendered["tags"] = [{"key": k, "value": v} for k, v in data.tags.items()]
    body: dict[str, Any] = {"info": run_info_to_json(run.info), "data": rendered}
    if run.inputs:
        body["inputs"] = {"dataset_inputs": [dataset_input_to_json(d) for d in run.inputs]}
    return body


def run_from_json(fields: Fields) -> Run:
    data = fields.object("data") or Fields({})
    tags = tags_from_json(data.objects("tags"))
    points = {
        m.key: m
        for m in (metric_from_json(f, default_timestamp=0) for f in data.objects("metrics"))
    }
    inputs = fields.object("inputs") or Fields({})
    info = fields.object("info")
    if info is None:
        raise missing("info")
    return Run(
        info=run_info_from_json(info, parent_run_id=tags.get(PARENT_RUN_TAG)),
        data=RunData(
            metrics={k: m.value for k, m in points.items()},
            params=tags_from_json(data.objects("params")),
            tags=tags,
            metric_points=points,
        ),
        inputs=tuple(dataset_input_from_json(f) for f in inputs.objects("dataset_inputs")),
    )
