"""Checks on what callers log, run before anything touches a store.

Limits follow MLflow's (so a run that logs here also logs there) with one difference
we document: values that are too long are refused with an error, never silently truncated.
Strings must be encodable as UTF-8 and free of NUL characters (PostgreSQL cannot store
NUL, and a lone surrogate from a mis-decoded byte string would corrupt a SQLite text
column for other readers).
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Sequence

from modelyard.errors import InvalidParameter
from modelyard.tracking.entities import Metric

MAX_KEY_LENGTH = 250
MAX_PARAM_VALUE_LENGTH = 6000
MAX_TAG_VALUE_LENGTH = 8000
MAX_EXPERIMENT_NAME_LENGTH = 500
MAX_RUN_NAME_LENGTH = 250
MAX_BATCH_METRICS = 1000
MAX_BATCH_PARAMS = 100
MAX_BATCH_TAGS = 100
_KEY = re.compile(r"^[/\w.\- :]+$")
_RUN_ID = re.compile(r"^[a-zA-Z0-9][\w\-]{0,255}$")
_INT64_MAX = 2**63 - 1


def check_text(value: object, field: str, max_length: int) -> str:
    if not isinstance(value, str):
        raise InvalidParameter(
            f"{field} must be a string, got {type(value).__name__}: {value!r:.80}", field=field
        )
    if len(value) > max_length:
        raise InvalidParameter(
            f"{field} is {len(value)} characters long; the limit is {max_length} "
            f"(value starts {value[:40]!r})",
            field=field,
        )
    if "\x00" in value:
        raise InvalidParameter(f"{field} contains a NUL character: {value[:40]!r}", field=field)
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InvalidParameter(
                f"{field} is not valid UTF-8 text (character {exc.start}: "
                f"{value[exc.start : exc.start + 1]!r}); decode bytes before logging them",
                field=field,
            ) from None
    return value


def check_key(key: object, kind: str) -> str:
    """A metric, param or tag name: 1–250 characters of letters, digits, ``_-. /:``."""
    field = f"{kind} key"
    key = check_text(key, field, MAX_KEY_LENGTH)
    if not _KEY.match(key):
        raise InvalidParameter(
            f"invalid {field} {key!r}: names may only contain letters, digits, "
            "underscores, dashes, periods, spaces, colons and slashes",
            field=field,
        )
    if key.startswith("/") or ".." in key.split("/"):
        raise InvalidParameter(f"invalid {field} {key!r}: not a relative path", field=field)
    return key


def check_param_value(key: str, value: object) -> str:
    return check_text(_stringify(value), f"value of param {key!r}", MAX_PARAM_VALUE_LENGTH)


def check_tag_value(key: str, value: object) -> str:
    return check_text(_stringify(value), f"value of tag {key!r}", MAX_TAG_VALUE_LENGTH)


def _stringify(value: object) -> object:
    # Params and tags are strings on the wire; numbers and booleans are converted as MLflow
    # does. Bytes are refused: we cannot know their encoding.
    if isinstance(value, (bytes, bytearray)):
        return value
    return value if isinstance(value, str) else str(value)


def check_metric_value(key: str, value: object) -> float:
    """Any real number. NaN and ±infinity are accepted and stored faithfully."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidParameter(
            f"value of metric {key!r} must be a number, got {type(value).__name__}: {value!r:.80}",
            field=f"metrics.{key}",
        )
    return float(value)


def check_step(key: str, step: object) -> int:
    if isinstance(step, bool) or not isinstance(step, numbers.Integral):
        raise InvalidParameter(
            f"step of metric {key!r} must be an integer, got {step!r:.40}", field="step"
        )
    if not -_INT64_MAX <= int(step) <= _INT64_MAX:
        raise InvalidParameter(f"step of metric {key!r} is out of int64 range", field="step")
    return int(step)


def check_timestamp(key: str, timestamp: object) -> int:
    if isinstance(timestamp, bool) or not isinstance(timestamp, numbers.Integral):
        raise InvalidParameter(
            f"timestamp of metric {key!r} must be integer milliseconds, got {timestamp!r:.40}",
            field="timestamp",
        )
    if not 0 <= int(timestamp) <= _INT64_MAX:
        raise InvalidParameter(f"timestamp of metric {key!r} is out of range", field="timestamp")
    return int(timestamp)


def check_metrics(metrics: Sequence[Metric]) -> None:
    """Validate a batch in one pass; the common types take a fast path (no ABC checks).

    Keys repeat across a batch (10 metrics × 1,000 steps), so each is checked once.
    """
    seen: set[str] = set()
    for m in metrics:
        key = m.key
        if key not in seen:
            check_key(key, "metric")
            seen.add(key)
        if type(m.value) is not float:
            check_metric_value(key, m.value)
        step = m.step
        if type(step) is not int or not -_INT64_MAX <= step <= _INT64_MAX:
            check_step(key, step)
        timestamp = m.timestamp
        if type(timestamp) is not int or not 0 <= timestamp <= _INT64_MAX:
            check_timestamp(key, timestamp)


def check_run_id(run_id: object) -> str:
    if not isinstance(run_id, str) or not _RUN_ID.match(run_id):
        raise InvalidParameter(f"invalid run id {run_id!r:.80}", field="run_id")
    return run_id


def check_experiment_name(name: object) -> str:
    name = check_text(name, "experiment name", MAX_EXPERIMENT_NAME_LENGTH)
    if not name.strip():
        raise InvalidParameter("experiment name must not be empty", field="name")
    return name


def check_batch_sizes(n_metrics: int, n_params: int, n_tags: int) -> None:
    """Limits of one REST ``log-batch`` call; the local store splits larger batches itself."""
    for count, limit, what in (
        (n_metrics, MAX_BATCH_METRICS, "metrics"),
        (n_params, MAX_BATCH_PARAMS, "params"),
        (n_tags, MAX_BATCH_TAGS, "tags"),
    ):
        if count > limit:
            raise InvalidParameter(
                f"a batch may hold at most {limit} {what}, got {count}", field=what
            )


def is_nan(value: float) -> bool:
    return math.isnan(value)
