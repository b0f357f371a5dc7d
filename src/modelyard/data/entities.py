"""Data entities: immutable records returned by the data client and printed by the CLI."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from modelyard.errors import InvalidParameter
from modelyard.tracking.entities import DatasetInput

MAX_NAME_LENGTH = 256
_NAME = re.compile(r"^[A-Za-z0-9][\w.\-]*$")


def check_dataset_name(name: object) -> str:
    """A dataset name: letters, digits, '_', '-', '.', starting with a letter or digit, so
    that ``name@3`` and artifact paths are unambiguous."""
    if not isinstance(name, str) or not _NAME.match(name) or len(name) > MAX_NAME_LENGTH:
        raise InvalidParameter(
            f"dataset name {name!r} is invalid: use 1-{MAX_NAME_LENGTH} letters, digits, "
            "'_', '-' or '.', starting with a letter or digit",
            field="name",
        )
    return name


@dataclass(frozen=True, slots=True)
class FileRef:
    """One stored file of a version: its path relative to the data root, sha256, bytes."""

    path: str
    sha256: str
    size: int


@dataclass(frozen=True, slots=True)
class DatasetVersion:
    """A version of a dataset.

    ``digest`` identifies the rows (the same table from any file format or writer has the
    same digest); ``files`` are the exact bytes stored, which ``pull`` restores.
    """

    name: str
    version: int
    digest: str
    files_digest: str
    schema: list[dict[str, Any]]
    num_rows: int
    num_bytes: int
    profile: dict[str, Any]
    files: tuple[FileRef, ...]
    storage_location: str
    format: str
    source: str
    created_by: str
    created_at: int
    description: str | None = None

    @property
    def ref(self) -> str:
        """The way to name this version everywhere: ``sales@3``."""
        return f"{self.name}@{self.version}"

    @property
    def columns(self) -> list[str]:
        return [c["name"] for c in self.schema]

    def schema_types(self) -> dict[str, str]:
        return {c["name"]: c["type"] for c in self.schema}

    def as_input(self, context: str = "training") -> DatasetInput:
        """The tracking record of a run reading this version (name, digest, schema,
        profile), so that ``run.inputs`` and lineage name the exact version."""
        import json

        return DatasetInput(
            name=self.name,
            digest=self.digest,
            context=context,
            source_type="modelyard",
            source=self.ref,
            schema=json.dumps(self.schema_types()),
            profile=json.dumps({"num_rows": self.num_rows, "num_columns": len(self.schema)}),
        )


@dataclass(frozen=True, slots=True)
class ColumnChange:
    """How one column differs between two versions (only the fields that changed)."""

    column: str
    change: str  # added | removed | type | profile
    before: dict[str, Any] = field(default_factory=dict)
    after: dict[str, Any] = field(default_factory=dict)
    psi: float | None = None


@dataclass(frozen=True, slots=True)
class DatasetDiff:
    """Schema and profile differences from version ``a`` to version ``b``."""

    a: str
    b: str
    same_content: bool
    rows: tuple[int, int]
    changes: tuple[ColumnChange, ...]

    @property
    def schema_changed(self) -> bool:
        return any(c.change in ("added", "removed", "type") for c in self.changes)


@dataclass(frozen=True, slots=True)
class PullReport:
    """What ``pull`` did: files written, files already identical, and stray files found in
    a restored folder that the version does not contain (left in place, listed)."""

    path: str
    written: tuple[str, ...]
    unchanged: tuple[str, ...]
    extra: tuple[str, ...] = ()
