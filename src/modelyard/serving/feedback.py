"""Ground truth for served predictions, sent later by request id (``POST /feedback``).

A feedback item names the ``request_id`` the prediction answered with, optionally the
``row`` of a multi-row request, and the outcome: a ``value`` (conversion 1/0, revenue,
units sold) and/or a ``label`` (the true class, compared to the prediction when the
receiving data plane still remembers it). Items are stored in the metadata database;
``ab_report`` joins them with the prediction log, and the canary judge reads the live
metric from them.

The data plane that served a request remembers (``RecentPredictions``) which variant and
version answered it and what it predicted, for the last ``capacity`` requests, so most
feedback is attributed at once; the report attributes the rest from the prediction log.

>>> items = parse_feedback({"request_id": "r1", "value": 1})
>>> items[0].value
1.0
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import select

from modelyard.errors import InvalidParameter
from modelyard.ids import now_ms
from modelyard.registry import audit
from modelyard.serving.tables import serving_feedback
from modelyard.store.engine import Database

MAX_ITEMS = 10_000
MAX_REQUEST_ID = 128


@dataclass(frozen=True, slots=True)
class FeedbackItem:
    request_id: str
    row: int = 0
    value: float | None = None
    label: str | None = None
    variant: str | None = None


@dataclass(frozen=True, slots=True)
class Served:
    """What the data plane remembers about a request it answered."""

    variant: str
    version: int
    predictions: Any  # a tuple of values, or (when remembered) a NumPy array
    key: str | None = None


def _item(body: Any, where: str) -> FeedbackItem:
    if not isinstance(body, dict):
        raise InvalidParameter(f"{where} must be a JSON object", field=where)
    unknown = set(body) - {"request_id", "row", "value", "label", "outcome", "variant"}
    if unknown:
        raise InvalidParameter(
            f"{where} has unknown field {sorted(unknown)[0]!r}; use request_id, row, value, "
            "label, variant",
            field=where,
        )
    request_id = body.get("request_id")
    if not isinstance(request_id, str) or not 0 < len(request_id) <= MAX_REQUEST_ID:
        raise InvalidParameter(
            f"{where}.request_id must be the id a prediction answered with (1-128 characters)",
            field="request_id",
        )
    row = body.get("row", 0)
    if isinstance(row, bool) or not isinstance(row, int) or row < 0:
        raise InvalidParameter(f"{where}.row must be a row index >= 0", field="row")
    value = body.get("value", body.get("outcome"))
    if value is not None:
        if isinstance(value, bool):
            value = float(value)
        if not isinstance(value, int | float) or not math.isfinite(value):
            raise InvalidParameter(f"{where}.value must be a finite number", field="value")
        value = float(value)
    label = body.get("label")
    if label is not None:
        label = str(label)
    if value is None and label is None:
        raise InvalidParameter(f"{where} needs a value or a label", field="value")
    variant = body.get("variant")
    return FeedbackItem(request_id, row, value, label, None if variant is None else str(variant))


def parse_feedback(body: Any) -> list[FeedbackItem]:
    """One item, a list, or ``{"feedback": [...]}``; errors name the item and field."""
    if isinstance(body, dict) and "feedback" in body:
        body = body["feedback"]
    items = body if isinstance(body, list) else [body]
    if not items:
        raise InvalidParameter("no feedback items", field="feedback")
    if len(items) > MAX_ITEMS:
        raise InvalidParameter(f"at most {MAX_ITEMS} feedback items per request", field="feedback")
    return [_item(item, f"feedback[{i}]") for i, item in enumerate(items)]


class RecentPredictions:
    """A bounded LRU of request id → what answered it (thread-safe): the last
    ``capacity`` requests, and at most ``max_values`` remembered predictions in all (so
    memory stays bounded whatever the rows per request: ~30 MB at the defaults).

    Entries are plain tuples of strings, numbers and bytes (the outputs' raw values, when
    they are a 1-D numeric array): the garbage collector stops tracking such tuples, so a
    full memory adds nothing to collection pauses (a ``Served`` object per entry made
    every full collection walk them all, on the request path); outputs take 8 bytes a
    value, where a tuple of Python floats took 32."""

    def __init__(self, capacity: int = 100_000, max_values: int = 1_000_000) -> None:
        self.capacity = capacity
        self.max_values = max_values
        # request id → (variant, version, predictions, their dtype if raw bytes, key, count)
        self._items: OrderedDict[str, tuple[Any, ...]] = OrderedDict()
        self._values = 0
        self._lock = threading.Lock()

    def remember(self, request_id: str, served: Served) -> None:
        predictions, dtype = served.predictions, None
        if isinstance(predictions, np.ndarray):
            count = int(predictions.size)
            if predictions.ndim == 1 and predictions.dtype.kind in "biuf":
                dtype = predictions.dtype
                predictions = predictions.tobytes()
            else:
                predictions = predictions.copy()  # never a view of a whole batch's output
        else:
            count = len(predictions)
        entry = (served.variant, served.version, predictions, dtype, served.key, count)
        with self._lock:
            old = self._items.pop(request_id, None)
            if old is not None:
                self._values -= old[-1]
            self._items[request_id] = entry
            self._values += count
            while self._items and (
                len(self._items) > self.capacity or self._values > self.max_values
            ):
                self._values -= self._items.popitem(last=False)[1][-1]

    def get(self, request_id: str) -> Served | None:
        with self._lock:
            entry = self._items.get(request_id)
        if entry is None:
            return None
        variant, version, predictions, dtype, key, _ = entry
        if dtype is not None:
            predictions = np.frombuffer(predictions, dtype)
        if isinstance(predictions, np.ndarray):
            predictions = tuple(predictions.tolist())
        return Served(variant, version, predictions, key)


def correct(served: Served | None, item: FeedbackItem) -> bool | None:
    """Whether the prediction equals the label (None when either is unknown)."""
    if served is None or item.label is None or item.row >= len(served.predictions):
        return None
    predicted = served.predictions[item.row]
    if isinstance(predicted, float) and predicted.is_integer():
        predicted = int(predicted)
    return str(predicted) == item.label


class FeedbackStore:
    """Feedback rows in the metadata database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def record(
        self,
        deployment: str,
        items: Sequence[FeedbackItem],
        served: Sequence[Served | None],
        *,
        reviewer: str | None = None,
        model: str | None = None,
    ) -> int:
        """Store ``items`` (with what answered each, when known); returns how many.

        ``reviewer``: the person who entered them (the web UI's review page), recorded in
        the audit trail in the same transaction, one ``feedback.review`` event per item
        (``model``: the model whose audit history lists it). Machine feedback sent to
        ``POST /feedback`` names nobody and writes no event."""
        now = now_ms()
        rows = []
        for item, info in zip(items, served, strict=True):
            rows.append(
                {
                    "deployment": deployment,
                    "request_id": item.request_id,
                    "row": item.row,
                    "value": item.value,
                    "label": item.label,
                    "correct": correct(info, item),
                    "variant": info.variant if info else item.variant,
                    "model_version": info.version if info else None,
                    "created_at": now,
                }
            )
        with self.db.write() as conn:
            conn.execute(serving_feedback.insert(), rows)
            for row in rows if reviewer else ():
                audit.append(
                    conn,
                    actor=str(reviewer),
                    action="feedback.review",
                    entity=f"prediction:{row['request_id']}",
                    model_name=model,
                    after={k: v for k, v in row.items() if k != "created_at"},
                )
        return len(rows)

    def frame(self, deployment: str, since_ms: int | None = None) -> Any:
        """Feedback of ``deployment`` as a DataFrame (oldest first)."""
        import pandas as pd

        c = serving_feedback.c
        query = select(serving_feedback).where(c.deployment == deployment)
        if since_ms is not None:
            query = query.where(c.created_at >= since_ms)
        with self.db.read() as conn:
            rows = conn.execute(query.order_by(c.id)).all()
        columns = [col.name for col in serving_feedback.columns]
        return pd.DataFrame([tuple(r) for r in rows], columns=columns)
