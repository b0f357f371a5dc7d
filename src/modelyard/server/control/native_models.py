"""The request and response models of the native ``/api/v1`` API.

They do two jobs: requests are parsed and type-checked by them (strictly: a number is a
JSON number, an id a string, unknown fields are refused, so a typo is a 400 naming the
field rather than a silently ignored value), and ``server.control.openapi`` turns them into the
OpenAPI document through pydantic's JSON schema, so the document cannot drift from what
the server accepts and answers.

Limits mirror ``tracking.checks`` (which stays authoritative: the tracking client
checks everything again, with the same rules as local use). Unlike the MLflow wire format,
params, tags and latest metrics are JSON objects keyed by name, and a run is one flat
object.

>>> BatchIn.model_validate_json('{"metrics": [{"key": "loss", "value": 0.5, "timestamp": 1}]}')
BatchIn(metrics=[MetricIn(key='loss', value=0.5, timestamp=1, step=0)], params={}, tags={})
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, WithJsonSchema

from modelyard.tracking.checks import (
    MAX_BATCH_METRICS,
    MAX_BATCH_PARAMS,
    MAX_BATCH_TAGS,
    MAX_EXPERIMENT_NAME_LENGTH,
    MAX_KEY_LENGTH,
    MAX_PARAM_VALUE_LENGTH,
    MAX_RUN_NAME_LENGTH,
    MAX_TAG_VALUE_LENGTH,
)
from modelyard.tracking.entities import LifecycleStage, RunStatus, ViewType

INT64_MAX = 2**63 - 1
MAX_PAGE = 50_000

#: The key grammar of ``tracking.checks`` (letters, digits, ``_-. /:``).
Key = Annotated[str, Field(min_length=1, max_length=MAX_KEY_LENGTH, pattern=r"^[/\w.\- :]+$")]
ExperimentId = Annotated[
    str, Field(pattern=r"^[0-9]{1,18}$", description="A decimal id, as a string.")
]
RunId = Annotated[str, Field(min_length=1, max_length=256, pattern=r"^[a-zA-Z0-9][\w\-]*$")]
Millis = Annotated[int, Field(ge=0, le=INT64_MAX, description="Milliseconds since the epoch.")]
Step = Annotated[int, Field(ge=-INT64_MAX, le=INT64_MAX)]
NonFinite = Literal["NaN", "Infinity", "-Infinity"]
_NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
_METRIC_VALUE_SCHEMA = {
    "anyOf": [{"type": "number"}, {"type": "string", "enum": list(_NON_FINITE)}],
    "description": 'A number; NaN and infinities as "NaN", "Infinity", "-Infinity".',
}


def _metric_value(value: object) -> float:
    # One validator rather than a union, so an error names the field, not a union branch.
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            return float(value)
        except OverflowError:  # an integer beyond float range
            raise ValueError("the number is out of range") from None
    if isinstance(value, str) and value in _NON_FINITE:
        return _NON_FINITE[value]
    raise ValueError('must be a number, or "NaN", "Infinity" or "-Infinity"')


#: JSON has no NaN or infinity: they travel as these three strings, as in MLflow's API.
MetricValue = float | NonFinite
MetricValueIn = Annotated[
    float, PlainValidator(_metric_value), WithJsonSchema(_METRIC_VALUE_SCHEMA, mode="validation")
]
ParamValue = Annotated[str, Field(max_length=MAX_PARAM_VALUE_LENGTH)]
TagValue = Annotated[str, Field(max_length=MAX_TAG_VALUE_LENGTH)]
Tags = Annotated[dict[Key, TagValue], Field(max_length=MAX_BATCH_TAGS)]
PageToken = Annotated[str, Field(max_length=1000, description="Opaque; from next_page_token.")]


class RequestModel(BaseModel):
    """A request body: strict JSON types, unknown fields refused. (Validators of every
    model are built on first use, ``defer_build``: it keeps them off the start-up path.)"""

    model_config = ConfigDict(strict=True, extra="forbid", defer_build=True)


class QueryModel(BaseModel):
    """Query-string parameters: values arrive as text, so numbers are converted; unknown
    parameters are ignored (proxies and browsers add their own)."""

    model_config = ConfigDict(extra="ignore", defer_build=True)


class ResponseModel(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)


# -- experiments ------------------------------------------------------------------------


class ExperimentIn(RequestModel):
    name: Annotated[str, Field(min_length=1, max_length=MAX_EXPERIMENT_NAME_LENGTH)]
    artifact_location: Annotated[str, Field(max_length=2000)] | None = None
    tags: Tags = Field(default_factory=dict)


class ExperimentPatch(RequestModel):
    name: Annotated[str, Field(min_length=1, max_length=MAX_EXPERIMENT_NAME_LENGTH)]


class ExperimentListQuery(QueryModel):
    max_results: Annotated[int, Field(ge=1, le=MAX_PAGE)] = 100
    page_token: PageToken | None = None
    view_type: ViewType = ViewType.ACTIVE_ONLY
    name_like: (
        Annotated[
            str,
            Field(max_length=MAX_EXPERIMENT_NAME_LENGTH, description="SQL LIKE pattern, any case."),
        ]
        | None
    ) = None


class Experiment(ResponseModel):
    experiment_id: str
    name: str
    artifact_location: str
    lifecycle_stage: LifecycleStage
    creation_time: int
    last_update_time: int
    tags: dict[str, str]


class ExperimentPage(ResponseModel):
    experiments: list[Experiment]
    next_page_token: str | None = None


# -- runs -------------------------------------------------------------------------------


class RunIn(RequestModel):
    experiment_id: ExperimentId = "0"
    name: Annotated[str, Field(max_length=MAX_RUN_NAME_LENGTH)] | None = None
    start_time: Millis | None = None
    tags: Tags = Field(default_factory=dict)
    parent_run_id: RunId | None = None


class RunPatch(RequestModel):
    """A terminal ``status`` (FINISHED, FAILED, KILLED) ends the run: ``end_time`` defaults
    to now."""

    status: RunStatus | None = None
    name: Annotated[str, Field(min_length=1, max_length=MAX_RUN_NAME_LENGTH)] | None = None
    end_time: Millis | None = None


class RunSearch(RequestModel):
    experiment_ids: Annotated[list[ExperimentId], Field(min_length=1, max_length=1000)]
    filter: Annotated[str, Field(max_length=10_000)] | None = Field(
        default=None, description="MLflow's grammar, e.g. \"metrics.rmse < 0.5 and params.m = 'x'\""
    )
    order_by: Annotated[list[Annotated[str, Field(max_length=500)]], Field(max_length=20)] = Field(
        default_factory=list, description='e.g. ["metrics.rmse ASC", "start_time DESC"]'
    )
    max_results: Annotated[int, Field(ge=1, le=MAX_PAGE)] = 1000
    page_token: PageToken | None = None
    view_type: ViewType = ViewType.ACTIVE_ONLY


class LatestMetric(ResponseModel):
    value: MetricValue
    step: int
    timestamp: int


class DatasetInput(ResponseModel):
    name: str
    digest: str
    context: str
    source_type: str
    source: str
    schema_: str | None = Field(default=None, alias="schema")
    profile: str | None = None

    model_config = ConfigDict(
        extra="forbid", populate_by_name=True, serialize_by_alias=True, defer_build=True
    )


class Run(ResponseModel):
    run_id: str
    experiment_id: str
    name: str
    user_id: str
    status: RunStatus
    start_time: int
    end_time: int | None
    lifecycle_stage: LifecycleStage
    artifact_uri: str
    parent_run_id: str | None
    params: dict[str, str]
    tags: dict[str, str]
    metrics: dict[str, LatestMetric]
    inputs: list[DatasetInput]


class RunPage(ResponseModel):
    runs: list[Run]
    next_page_token: str | None = None


# -- logging ----------------------------------------------------------------------------


class MetricIn(RequestModel):
    """One metric point. ``timestamp`` is required: it is part of the point's identity, so
    a retried batch is recognised and stored once (a server-side default would differ on
    each retry and duplicate the points)."""

    key: Key
    value: MetricValueIn
    timestamp: Millis
    step: Step = 0


class BatchIn(RequestModel):
    """Metrics, params and tags written in one transaction: all or nothing. Replaying the
    same batch changes nothing; a param may be logged again only with the same value."""

    metrics: Annotated[list[MetricIn], Field(max_length=MAX_BATCH_METRICS)] = Field(
        default_factory=list
    )
    params: Annotated[dict[Key, ParamValue], Field(max_length=MAX_BATCH_PARAMS)] = Field(
        default_factory=dict
    )
    tags: Tags = Field(default_factory=dict)


class BatchResult(ResponseModel):
    """How many items of each kind the batch held (replayed items included)."""

    metrics: int
    params: int
    tags: int


class MetricHistoryQuery(QueryModel):
    max_results: Annotated[int, Field(ge=1, le=MAX_PAGE)] = 10_000
    page_token: PageToken | None = None


class MetricPoint(ResponseModel):
    value: MetricValue
    step: int
    timestamp: int


class MetricHistory(ResponseModel):
    """Points in (step, timestamp, value) order."""

    key: str
    points: list[MetricPoint]
    next_page_token: str | None = None


# -- artifacts --------------------------------------------------------------------------


class ArtifactQuery(QueryModel):
    path: Annotated[str, Field(max_length=2000, description="A folder below the run's root.")] = ""


class ArtifactFile(ResponseModel):
    path: str
    is_dir: bool
    file_size: int | None = None


class ArtifactList(ResponseModel):
    root_uri: str
    files: list[ArtifactFile]


# -- errors -----------------------------------------------------------------------------


class ErrorBody(ResponseModel):
    """Every error, on every API: a stable code, a message naming the problem, and the
    field at fault when there is one (``metrics[3].value``)."""

    error_code: str
    message: str
    field: str | None = None
