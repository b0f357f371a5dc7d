"""``experiments/search`` filters and ordering, as MLflow clients and its UI send them.

The tracking client pages experiments in id order and filters by a name pattern only;
MLflow's grammar is richer (``name = 'x'``, ``tags.team = 'y'``, ``creation_time > 0``,
``order_by=["last_update_time DESC"]``). Experiments number in the thousands at most, so
a filtered or ordered search loads the matching stage, filters and sorts in memory, and
pages with an offset token; an unfiltered, unordered one is paged by the store.

>>> [c.key for c in parse_experiment_filter("name LIKE 'demand%' AND tags.team = 'retail'")]
['name', 'team']
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from modelyard.errors import InvalidFilter, InvalidParameter
from modelyard.tracking.client import TrackingClient
from modelyard.tracking.entities import Experiment, Page
from modelyard.tracking.sql_experiments import decode_page_token, encode_page_token

_LOAD_PAGE = 50_000
_STRING_OPS = ("=", "!=", "LIKE", "ILIKE")
_NUMBER_OPS = ("=", "!=", "<", "<=", ">", ">=")
_NUMERIC = ("creation_time", "last_update_time")
_ATTRIBUTE_PREFIXES = ("attribute.", "attributes.", "attr.")
_TAG_PREFIXES = ("tags.", "tag.")
_CLAUSE = re.compile(
    r"""\s*(?P<ident>(?:[A-Za-z_]+\.)?(?:`[^`]+`|"[^"]+"|[\w.:/-]+))\s*"""
    r"""(?P<op>!=|>=|<=|=|<|>|\b(?i:ILIKE|LIKE)\b)\s*"""
    r"""(?P<value>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|-?\d+)\s*"""
)
_AND = re.compile(r"(?i:AND)\b")


@dataclass(frozen=True, slots=True)
class ExperimentClause:
    kind: str  # "attribute" or "tag"
    key: str
    op: str
    value: str | int


def parse_experiment_filter(text: str | None) -> list[ExperimentClause]:
    """Clauses joined by AND on ``name``, ``creation_time``, ``last_update_time``, ``tags.*``."""
    clauses: list[ExperimentClause] = []
    if not text or not text.strip():
        return clauses
    position = 0
    while True:
        match = _CLAUSE.match(text, position)
        if match is None:
            raise InvalidFilter(
                f"cannot parse the experiment filter at position {position}: "
                f"{text[position : position + 40]!r}; expected e.g. name = 'x', "
                "tags.team LIKE 'r%' or creation_time > 0, joined by AND",
                token=text[position : position + 40],
                position=position,
            )
        clauses.append(_clause(match, position))
        position = match.end()
        if position >= len(text):
            return clauses
        joiner = _AND.match(text, position)
        if joiner is None:
            raise InvalidFilter(
                f"expected AND at position {position} of the experiment filter, got "
                f"{text[position : position + 20]!r} (OR is not supported)",
                token=text[position : position + 20],
                position=position,
            )
        position = joiner.end()


def _clause(match: re.Match[str], position: int) -> ExperimentClause:
    ident, op, raw = match["ident"], match["op"].upper(), match["value"]
    kind = "attribute"
    for prefix in _TAG_PREFIXES:
        if ident.lower().startswith(prefix):
            kind, ident = "tag", ident[len(prefix) :]
    for prefix in _ATTRIBUTE_PREFIXES:
        if kind == "attribute" and ident.lower().startswith(prefix):
            ident = ident[len(prefix) :]
    key = ident[1:-1] if ident[:1] in '`"' and ident[-1:] == ident[:1] else ident
    if raw[:1] in "'\"":
        value: str | int = re.sub(r"\\(.)", r"\1", raw[1:-1])
    else:
        value = int(raw)
    numeric = kind == "attribute" and key in _NUMERIC
    if kind == "attribute" and key not in ("name", *_NUMERIC):
        raise InvalidFilter(
            f"experiments can be filtered on name, creation_time, last_update_time and "
            f"tags.<key>, not {key!r}",
            token=key,
            position=position,
        )
    allowed = _NUMBER_OPS if numeric else _STRING_OPS
    if op not in allowed or isinstance(value, int) != numeric:
        expected = "a number" if numeric else "a quoted string"
        raise InvalidFilter(
            f"{key!r} takes {' '.join(allowed)} with {expected}, got {op} {raw}",
            token=op,
            position=position,
        )
    return ExperimentClause(kind, key, op, value)


def _like(pattern: str, case_sensitive: bool) -> re.Pattern[str]:
    parts: list[str] = []
    escaped = False
    for char in pattern:
        if escaped:
            parts.append(re.escape(char))
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "%":
            parts.append(".*")
        elif char == "_":
            parts.append(".")
        else:
            parts.append(re.escape(char))
    return re.compile("".join(parts), re.DOTALL | (0 if case_sensitive else re.IGNORECASE))


def _matches(experiment: Experiment, clause: ExperimentClause) -> bool:
    if clause.kind == "tag":
        actual: str | int | None = experiment.tags.get(clause.key)
    else:
        actual = getattr(experiment, clause.key)
    if actual is None:
        return False
    op, value = clause.op, clause.value
    if op in ("LIKE", "ILIKE"):
        return _like(str(value), op == "LIKE").fullmatch(str(actual)) is not None
    return {
        "=": actual == value,
        "!=": actual != value,
        "<": actual < value,  # type: ignore[operator]
        "<=": actual <= value,  # type: ignore[operator]
        ">": actual > value,  # type: ignore[operator]
        ">=": actual >= value,  # type: ignore[operator]
    }[op]


def _order_keys(order_by: Sequence[str]) -> list[tuple[str, bool]]:
    keys: list[tuple[str, bool]] = []
    for item in order_by:
        parts = item.split()
        field = parts[0] if parts else ""
        for prefix in _ATTRIBUTE_PREFIXES:
            if field.lower().startswith(prefix):
                field = field[len(prefix) :]
        direction = parts[1].upper() if len(parts) > 1 else "ASC"
        if (
            len(parts) > 2
            or field not in ("name", "experiment_id", *_NUMERIC)
            or direction not in ("ASC", "DESC")
        ):
            raise InvalidParameter(
                f"cannot order experiments by {item!r}; use name, experiment_id, "
                "creation_time or last_update_time, optionally followed by ASC or DESC",
                field="order_by",
            )
        keys.append((field, direction == "DESC"))
    return keys


def search_experiments(
    client: TrackingClient,
    view_type: str,
    max_results: int,
    filter_string: str | None,
    order_by: Sequence[str],
    page_token: str | None,
) -> Page[Experiment]:
    clauses = parse_experiment_filter(filter_string)
    keys = _order_keys(order_by)
    if not clauses and not keys:
        return client.search_experiments(view_type, max_results, page_token=page_token)
    if not 1 <= max_results <= _LOAD_PAGE:
        raise InvalidParameter(
            f"max_results must be an integer from 1 to {_LOAD_PAGE}, got {max_results}",
            field="max_results",
        )
    offset = decode_page_token(page_token)
    found: list[Experiment] = []
    token: str | None = None
    while True:
        page = client.search_experiments(view_type, _LOAD_PAGE, page_token=token)
        found.extend(e for e in page if all(_matches(e, c) for c in clauses))
        token = page.next_page_token
        if not token:
            break
    found.sort(key=lambda e: int(e.experiment_id))
    for field, descending in reversed(keys):
        if field == "experiment_id":
            found.sort(key=lambda e: int(e.experiment_id), reverse=descending)
        else:
            found.sort(key=lambda e, f=field: getattr(e, f), reverse=descending)  # type: ignore[misc]
    chunk = found[offset : offset + max_results]
    more = offset + max_results < len(found)
    return Page(chunk, encode_page_token(offset + max_results) if more else None)
