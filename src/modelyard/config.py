"""One place for settings: a typed object read once and passed down.

Precedence, highest first: arguments given in code (``Settings(store_uri=...)``), then
``MODELYARD_*`` environment variables (any case), then a ``.env`` file in the working
directory, then the defaults below. Nothing else in modelyard reads ``os.environ``.

The object is a plain pydantic model that reads its outside values itself:
pydantic-settings would do the same, but importing it (with the asyncio, ssl and cloud
secret providers it pulls in) costs ~70 ms, a seventh of a CLI command's budget.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

ENV_PREFIX = "MODELYARD_"
ENV_FILE = ".env"


def outside_values() -> dict[str, str]:
    """``MODELYARD_*`` values from ``.env`` (if there is one), then the environment on top,
    keyed by lower-case field name."""
    found: dict[str, str] = {}
    if os.path.isfile(ENV_FILE):
        from dotenv import dotenv_values

        found.update(_prefixed(dotenv_values(ENV_FILE)))
    found.update(_prefixed(os.environ))
    return found


def _prefixed(values: Any) -> dict[str, str]:
    size = len(ENV_PREFIX)
    return {
        name[size:].lower(): value
        for name, value in values.items()
        if value is not None and name[:size].upper() == ENV_PREFIX
    }


class Settings(BaseModel):
    """Everything modelyard can be told from the outside.

    >>> s = Settings(home="/tmp/my-yard")
    >>> s.resolved_store_uri()
    'sqlite:////tmp/my-yard/modelyard.db'
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    def __init__(self, **values: Any) -> None:
        super().__init__(**{**outside_values(), **values})

    home: Path = Field(default=Path(".modelyard"), description="Root of the embedded default.")
    store_uri: str | None = Field(
        default=None,
        description="Metadata store: sqlite:///path.db (default under home) or "
        "postgresql+psycopg://user@host/db.",
    )
    artifacts_uri: str | None = Field(
        default=None,
        description="Artifact store: a folder (default under home) or s3://bucket/prefix.",
    )
    tracking_uri: str | None = Field(
        default=None,
        description="http(s)://host:port of a modelyard server instead of a local store.",
    )
    tracking_token: str | None = Field(default=None, description="Bearer token for the server.")
    async_logging: bool = Field(
        default=False, description="Log metrics, params and tags in the background by default."
    )
    sqlite_synchronous: Literal["NORMAL", "FULL"] = Field(
        default="NORMAL",
        description="NORMAL survives a killed process; FULL also survives power loss (slower).",
    )
    user: str | None = Field(
        default=None, description="Who runs are recorded as (default: OS user)."
    )
    required_run_tags: list[str] = Field(
        default_factory=list, description="Tags every run must carry, e.g. 'objective,team'."
    )
    experiment_name_pattern: str | None = Field(
        default=None, description="A regular expression every experiment name must match."
    )
    convention_mode: Literal["warn", "refuse"] = Field(
        default="warn", description="What happens to a run or experiment breaking a convention."
    )

    online_store_uri: str | None = Field(
        default=None,
        description="Online feature store: sqlite:///path.db (default under home) or "
        "redis://host:6379/0?prefix=app:.",
    )
    features_memory_limit: str = Field(
        default="1GB", description="DuckDB's memory limit for training sets; spills beyond it."
    )
    registry_required_approvals: int = Field(
        default=0, ge=0, description="Approvals a version needs before Production/champion."
    )
    registry_approvers: list[str] = Field(
        default_factory=list, description="If set, only these users may approve (comma list)."
    )
    registry_require_gate: bool = Field(
        default=False, description="Production/champion need a passed `modelyard gate`."
    )
    registry_four_eyes: bool = Field(
        default=True, description="A version's creator may never approve it."
    )
    registry_require_lineage: bool = Field(
        default=False,
        description="Production/champion need a version whose run is known here (not one "
        "registered through the MLflow API naming a run this store lacks).",
    )

    serve_target: str | None = Field(
        default=None, description="What to serve: a deployment name or models:/NAME@ALIAS."
    )
    serve_poll_interval_s: float = Field(
        default=2.0, gt=0, description="How often the data plane checks for a new revision."
    )
    serve_batch_max_size: int = Field(
        default=64, ge=1, description="Most rows one micro-batch may join (1: no batching)."
    )
    serve_batch_max_wait_ms: float = Field(
        default=1.0, ge=0, description="Longest a batch waits for company when more is due."
    )
    serve_compiled: bool = Field(
        default=True, description="Run versions on their recorded ONNX graph when there is one."
    )
    serve_log_predictions: bool = Field(
        default=True, description="Log every prediction to Parquet in the artifact store."
    )
    serve_log_max_queue: int = Field(
        default=100_000, ge=1, description="Prediction records held in memory before dropping."
    )
    serve_log_flush_s: float = Field(
        default=2.0, gt=0, description="Seconds between prediction log writes."
    )
    serve_shadow_timeout_s: float = Field(
        default=10.0, gt=0, description="A shadow slower than this counts as failed."
    )
    serve_max_body_mb: float = Field(
        default=64.0,
        gt=0,
        description="Largest request body the data plane reads, counted after gzip or deflate "
        "decompression (413 above).",
    )
    serve_trusted: bool = Field(
        default=False, description="Load pickle-based models (only from sources you trust)."
    )
    serve_auth: bool = Field(
        default=False, description="Require an API token (viewer or above) to predict."
    )

    monitor_memory_limit: str = Field(
        default="256MB",
        description="DuckDB's memory limit while a monitor reads a window of the prediction "
        "log (it spills to disk beyond it); raise it for windows with hundreds of logged "
        "inputs.",
    )

    openlineage_url: str | None = Field(
        default=None,
        description="Send OpenLineage RunEvents to this HTTP endpoint (e.g. Marquez's "
        "http://host:5000; events POST to /api/v1/lineage).",
    )
    openlineage_file: Path | None = Field(
        default=None, description="Append OpenLineage RunEvents to this file, one JSON a line."
    )
    openlineage_namespace: str = Field(
        default="modelyard", description="The OpenLineage namespace of our jobs and datasets."
    )
    openlineage_follow_s: float = Field(
        default=10.0,
        gt=0,
        description="How often the server sends the OpenLineage events of what others "
        "wrote to the store (training sets, materialisations, runs of scripts).",
    )

    ray_address: str | None = Field(
        default=None,
        description="The Ray cluster pipelines run on with --executor ray: 'auto' or "
        "HEAD:6379 on a node of the cluster, ray://HEAD:10001 (Ray Client) from outside; "
        "unset starts a local Ray instance.",
    )

    @field_validator("required_run_tags", "registry_approvers", mode="before")
    @classmethod
    def _split_comma_list(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    def resolved_store_uri(self) -> str:
        if self.store_uri:
            return self.store_uri
        return f"sqlite:///{(self.home / 'modelyard.db').absolute()}"

    def resolved_artifacts_uri(self) -> str:
        if self.artifacts_uri:
            return self.artifacts_uri
        return str((self.home / "artifacts").absolute())

    @property
    def is_remote(self) -> bool:
        uri = self.tracking_uri
        return uri is not None and uri.startswith(("http://", "https://"))


def load_settings(**overrides: object) -> Settings:
    """Read the settings once (environment, .env, defaults), with ``overrides`` on top."""
    return Settings(**overrides)


def os_user() -> str:
    """The local user, used as the actor when no server identifies one."""
    try:
        import getpass

        return getpass.getuser()
    except Exception:  # no passwd entry in some containers
        return os.environ.get("USER", "unknown")
