"""Prediction logs and feedback for the window tests, written by the real writers
(``PredictionLog``, ``FeedbackStore``) into a fresh metadata database and artifact store."""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from modelyard.artifacts.blobs import BlobStore, open_blob_store
from modelyard.artifacts.repository import ArtifactRepository
from modelyard.serving.feedback import FeedbackItem, FeedbackStore
from modelyard.serving.prediction_log import PredictionLog, PredictionRecord, partition_path
from modelyard.store.engine import Database, open_database
from modelyard.store.migrations import ensure_schema

HOUR_MS = 3_600_000
#: A window start on an hour boundary (2026-09-21T09:00Z).
T0 = 1_790_067_600_000 - 1_790_067_600_000 % HOUR_MS
DEPLOYMENT = "shop"


@dataclass
class Stores:
    db: Database
    artifacts: ArtifactRepository


@contextmanager
def open_stores(folder: Path, blobs: BlobStore | None = None) -> Iterator[Stores]:
    db = open_database(f"sqlite:///{folder / 'meta.db'}")
    try:
        ensure_schema(db)
        yield Stores(db, ArtifactRepository(db, blobs or open_blob_store(str(folder / "art"))))
    finally:
        db.dispose()


@dataclass
class Request:
    """One logged request: its rows' inputs (columnar) and one prediction per row."""

    request_id: str
    ts_ms: int
    inputs: dict[str, list[Any]] | list[dict[str, Any]] | None
    outputs: list[Any] | None
    variant: str = "blue"
    version: int = 1
    status: str = "ok"
    latency_ms: float = 5.0
    role: str = "primary"

    @property
    def n_rows(self) -> int:
        if self.inputs is None:
            return 0
        if isinstance(self.inputs, list):
            return len(self.inputs)
        return len(next(iter(self.inputs.values())))


def write_log(artifacts: ArtifactRepository, requests: Sequence[Request]) -> None:
    """Log ``requests`` through the serving room's own asynchronous writer."""
    log = PredictionLog(artifacts, flush_interval_s=3600)
    for r in requests:
        inputs = r.inputs
        log.append(
            PredictionRecord(
                request_id=r.request_id,
                ts_ms=r.ts_ms,
                deployment=DEPLOYMENT,
                revision=1,
                variant=r.variant,
                model="demand",
                version=r.version,
                role=r.role,
                status=r.status,
                latency_ms=r.latency_ms,
                n_rows=r.n_rows,
                inputs=(lambda v=inputs: v) if inputs is not None else None,
                outputs=r.outputs,
                error=None if r.status == "ok" else "boom",
            )
        )
    log.close()
    assert log.stats.written == len(requests) and not log.stats.dropped


def write_raw_file(artifacts: ArtifactRepository, ts_ms: int, rows: dict[str, list[Any]]) -> None:
    """A log file with exactly these column values (to plant malformed JSON), in the
    log's schema (taken from a file the real writer made)."""
    from modelyard.serving.prediction_log import encode

    template = pq.read_table(
        io.BytesIO(
            encode(
                [
                    PredictionRecord(
                        "t",
                        ts_ms,
                        DEPLOYMENT,
                        1,
                        "blue",
                        "demand",
                        1,
                        "primary",
                        "ok",
                        1.0,
                        1,
                        inputs={"x": [1]},
                        outputs=[1.0],
                    )
                ]
            )
        )
    )
    table = pa.table({f.name: pa.array(rows[f.name], f.type) for f in template.schema})
    sink = io.BytesIO()
    pq.write_table(table, sink)
    artifacts.log_bytes(f"{partition_path(DEPLOYMENT, ts_ms)}/part-raw.parquet", sink.getvalue())


def give_feedback(db: Database, items: Sequence[FeedbackItem]) -> None:
    FeedbackStore(db).record(DEPLOYMENT, items, [None] * len(items))
