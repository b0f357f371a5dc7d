"""How one run search is answered at a million runs: which rows drive it, and where a
page starts.

Why: the statement of ``search_query.py`` reads an experiment's runs in start-time order
and tests each against the filter. That is right when the filter keeps many runs (the
first 100 matches are near the front), and hopeless when it keeps a handful (every run
read to find them: 222 ms at 100,000 runs on SQLite for ``params.seed = '42'``); and an
``OFFSET`` page token re-reads every run before the page (a deep page of a 1M-run search
read half a million). So a search is planned in two steps:

1. **A probe.** For each clause an index can answer on its own — a param or tag equal to
   (or in) values, a metric compared with a number, ``run_name`` or ``run_id`` equal to
   (or in) values — up to ``MAX_DRIVING_RUNS + 1`` matching run ids are read from that
   index. The first clause that matches at most ``MAX_DRIVING_RUNS`` runs *drives* the
   search: up to ``DRIVE_LIMIT`` of them are looked up by primary key and sorted; more are
   kept while the experiment's start-time index is walked in the page's order
   (``search_query.DrivingRuns``). The probes read only indexes; the planner's statistics
   are not needed to choose (SQLite has no histograms, and PostgreSQL estimates ``key = …
   AND value = …`` by multiplying two columns' frequencies: left to itself it tested every
   walked run's params for a 1 % filter, 300 ms at a million runs). A clause that matched
   too many is not probed again for a while (``CrowdedClauses``).
2. **A seek, not an offset.** When the order is by columns of the run that are never
   null (the default ``start_time DESC``, ``run_name``, ``status`` …), the page token
   holds the sort values of the page's last run, and the next page starts *after* them
   (``start_time < t OR (start_time = t AND run_id > r)``): an index seek, as fast at
   page 5,000 as at page 1. An order by one metric seeks too: its runs are listed in
   three parts (with a number, with NaN, without the metric), the first by walking the
   metric's index when the experiments are large (``WALK_MIN``), and the token holds
   (part, value, start time, run id). Orders by params, tags, several keys with a metric,
   or nullable attributes keep offset tokens (their position is not an index key).

A token also carries a digest of the search it belongs to: passed with another filter,
order or experiment list it is refused (``INVALID_PARAMETER_VALUE`` on ``page_token``)
rather than silently skipping runs. Tokens of the old ``{"offset": n}`` form are still
accepted, so a client paging across an upgrade goes on where it was.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Select, false, func, select

from modelyard.errors import InvalidParameter
from modelyard.store.keyset import MAX_TOKEN_LENGTH
from modelyard.tracking.search_filter import Clause, OrderKey, parse_filter, parse_order_by
from modelyard.tracking.search_query import (
    DrivingRuns,
    ValueIn,
    compare,
    keyset_columns,
    metric_ordered_statements,
    run_search_statement,
)
from modelyard.tracking.tables import latest_metrics, params, runs, tags

#: A clause matching at most this many runs (in the whole store) drives the search.
MAX_DRIVING_RUNS = 20_000
#: How much more testing a walked run's clause costs than handing the database one id
#: of a driving list (an index lookup against a list entry), per database, from the
#: benchmark's plans: SQLite's lookups are in-process; a PostgreSQL lookup reads ~5
#: buffers (a 10 % metric filter at 100,000 runs: scanned 30 ms, driven 19 ms).
DRIVE_COST_RATIO = {"sqlite": 4, "postgresql": 25}
#: Up to this many driving runs are looked up one by one; more are kept while the
#: experiment's start-time index is walked (``search_query.DrivingRuns``). At 1 % of a
#: million runs (10,000) testing each walked run's params instead read 170,000 pages on
#: PostgreSQL (300 ms) and took 45–56 ms on SQLite.
DRIVE_LIMIT = 2_000
#: Experiments holding more runs than this are searched in a metric's order by walking
#: the metric's index; smaller ones are read whole and sorted.
WALK_MIN = 5_000
_KEYED = {"param": params, "tag": tags}
_SEEKABLE_ATTRIBUTES = ("run_id", "run_name")
_EQUALITY = ("=", "IN")
_NUMERIC = ("=", "<", "<=", ">", ">=")


@dataclass
class RunSearch:
    """One search's parsed filter and order, and where its page starts."""

    experiment_pks: list[int]
    filter_string: str | None
    view_type: str
    order_by: list[str]
    limit: int
    clauses: list[Clause] = field(init=False)
    order: list[OrderKey] = field(init=False)
    offset: int = field(init=False, default=0)
    after: tuple[Any, ...] | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.clauses = parse_filter(self.filter_string)
        self.order = parse_order_by(self.order_by)
        self.seek = keyset_columns(self.order)
        #: The one metric the search is ordered by (its pages seek too), else ``None``.
        self.metric = self.order[0] if [k.kind for k in self.order] == ["metric"] else None
        #: Whether a metric order walks the metric's index (the experiments are large).
        self.walk = True

    @property
    def seeks(self) -> bool:
        """Whether pages start after the last run's sort values (not at an offset)."""
        return self.seek is not None or (self.metric is not None and not self.offset)

    # --- page tokens ----------------------------------------------------------------

    def start_at(self, token: str | None) -> None:
        """Read where the page starts from a token of this search (or an offset token)."""
        if not token:
            return
        if len(token) > MAX_TOKEN_LENGTH:
            raise InvalidParameter(
                f"page token of {len(token):,} characters is not one this server wrote",
                field="page_token",
            )
        try:
            decoded = json.loads(base64.urlsafe_b64decode(token.encode()))
            if set(decoded) == {"offset"}:
                offset = decoded["offset"]
                if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
                    raise ValueError("offset")
                self.offset = offset
                return
            if decoded.get("search") != self._digest():
                raise InvalidParameter(
                    "page token belongs to another search (filter, order, view or "
                    "experiments differ); start again without a token",
                    field="page_token",
                )
            if "offset" in decoded:
                self.offset = _non_negative(decoded["offset"])
            else:
                self.after = self._checked_position(decoded["after"])
        except InvalidParameter:
            raise
        except Exception:
            raise InvalidParameter(
                f"invalid page token {token!r:.60}", field="page_token"
            ) from None

    def next_token(self, last_sort_values: Sequence[Any] | None) -> str:
        """The token of the page after this one, whose last run sorted at
        ``last_sort_values`` (``None`` for an offset search)."""
        body: dict[str, Any] = {"search": self._digest()}
        if not self.seeks or last_sort_values is None:
            body["offset"] = self.offset + self.limit
        else:
            body["after"] = list(last_sort_values)
        return base64.urlsafe_b64encode(json.dumps(body).encode()).decode()

    def _digest(self) -> str:
        what = [sorted(self.experiment_pks), self.filter_string or "", self.view_type.upper()]
        what.append(list(self.order_by))
        return hashlib.sha256(json.dumps(what).encode()).hexdigest()[:16]

    def _checked_position(self, values: Any) -> tuple[Any, ...]:
        """The seek position, each value of the type of its sort column."""
        if not self.seeks:
            raise ValueError("this search pages by offset")
        if self.metric is not None:
            return _metric_position(values)
        assert self.seek is not None
        if not isinstance(values, list) or len(values) != len(self.seek):
            raise ValueError("position")
        for (column, _), value in zip(self.seek, values, strict=True):
            wanted = column.type.python_type
            if isinstance(value, bool) or not isinstance(value, wanted):
                raise ValueError(f"{column.name} must be {wanted.__name__}")
        return tuple(values)

    # --- the statement --------------------------------------------------------------

    def probes(
        self, limit: int | None = None, crowded: CrowdedClauses | None = None
    ) -> list[tuple[int, Select[Any]]]:
        """The index-only probes, with the number of the clause each answers: ``SELECT
        run_id … LIMIT limit + 1`` (``limit``: ``MAX_DRIVING_RUNS`` unless given); none for
        the clauses in ``crowded``."""
        found = []
        for number, clause in enumerate(self.clauses):
            skipped = crowded is not None and crowded.holds(clause, _or_default(limit))
            probe = None if skipped else _probe(clause)
            if probe is not None:
                found.append((number, probe.limit(_or_default(limit) + 1)))
        return found

    def drives(
        self, clause: int, run_ids: list[str], limit: int | None = None, as_array: bool = False
    ) -> Driven | None:
        """What a probe's answer means: the search is driven by these runs (bound as one
        array with ``as_array``: PostgreSQL), or — more than ``limit`` (``MAX_DRIVING_RUNS``
        unless given) — scanned."""
        if len(run_ids) > _or_default(limit):
            return None
        if as_array and any("," in run_id for run_id in run_ids):
            return None  # not an id this store made; the array could not hold it
        look_up = len(run_ids) <= DRIVE_LIMIT
        return Driven(clause, DrivingRuns(run_ids, look_up=look_up, as_array=as_array))

    def experiment_probe(self) -> Select[Any] | None:
        """For a metric order: how many runs the experiments hold, counted up to
        ``WALK_MIN + 1`` (one row back, not the runs), to tell whether walking the
        metric's index beats reading them all and sorting."""
        if self.metric is None:
            return None
        some = (
            select(runs.c.run_id)
            .where(runs.c.experiment_id.in_(self.experiment_pks))
            .limit(WALK_MIN + 1)
            .subquery()
        )
        return select(func.count().label("runs")).select_from(some)

    def statements(self, driven: Driven | None, with_revision: bool) -> list[Select[Any]]:
        """The search's SELECTs, to run in turn until ``limit + 1`` rows are found (one,
        but for a metric order): ``run_id`` (``revision``), then the sort values when the
        order seeks (``sort_0`` …). A driven search leaves out the clause its runs were
        found by (they all match it)."""
        clauses = self.clauses
        if driven is not None:
            clauses = [c for n, c in enumerate(clauses) if n != driven.clause]
        run_ids = None if driven is None else driven.run_ids
        if self.metric is not None and self.seeks:
            return metric_ordered_statements(
                self.experiment_pks,
                clauses,
                self.view_type,
                self.metric,
                self.limit + 1,
                with_revision,
                after=self.after,
                run_ids=run_ids,
                walk=self.walk,
            )
        statement = run_search_statement(
            self.experiment_pks,
            clauses,
            self.view_type,
            self.order,
            self.offset,
            self.limit + 1,
            with_revision,
            after=self.after,
            run_ids=run_ids,
        )
        return [statement]


class CrowdedClauses:
    """Clauses that lately matched too many runs to drive a search, so their probe is
    skipped for a while: a dashboard polling ``params.model = 'xgb'`` would otherwise
    count 20,001 index entries on every refresh only to scan anyway (3–6 ms on
    PostgreSQL). Runs rarely stop matching a clause (they pile up), and a clause wrongly
    taken as crowded only makes a search scan, never changes its answer."""

    #: How long a clause stays crowded, and how many are remembered (least recent go).
    TTL_S = 300.0
    SIZE = 1_024

    def __init__(self) -> None:
        self._until: OrderedDict[tuple[Any, ...], float] = OrderedDict()
        self._lock = threading.Lock()

    def holds(self, clause: Clause, limit: int) -> bool:
        """Whether ``clause`` lately matched more than ``limit`` runs."""
        with self._lock:
            until = self._until.get(_clause_key(clause, limit))
        return until is not None and until > time.monotonic()

    def add(self, clause: Clause, limit: int) -> None:
        key = _clause_key(clause, limit)
        with self._lock:
            self._until[key] = time.monotonic() + self.TTL_S
            self._until.move_to_end(key)
            while len(self._until) > self.SIZE:
                self._until.popitem(last=False)


def _clause_key(clause: Clause, limit: int) -> tuple[Any, ...]:
    return (clause.kind, clause.key, clause.op, clause.value, limit)


@dataclass(frozen=True)
class Driven:
    """The runs a probe found for one clause: the search starts from them — on SQLite
    each looked up by its primary key; on PostgreSQL as one array, by which the planner
    filters a walk of the experiment's start-time index (or looks a few up)."""

    clause: int
    run_ids: DrivingRuns


def _probe(clause: Clause) -> Select[Any] | None:
    if clause.kind in _KEYED and clause.op in _EQUALITY:
        table = _KEYED[clause.kind]
        match = ValueIn(table.c.value, clause.texts())
        return select(table.c.run_id).where(table.c.key == clause.key, match)
    if clause.kind == "metric" and clause.op in _NUMERIC:
        m = latest_metrics.c
        return select(m.run_id).where(
            m.key == clause.key, m.is_nan == false(), compare(m.value, clause.op, clause.value)
        )
    if clause.kind == "attribute" and clause.key in _SEEKABLE_ATTRIBUTES and clause.op in _EQUALITY:
        return select(runs.c.run_id).where(compare(runs.c[clause.key], clause.op, clause.value))
    return None


def driving_limit(store_runs: int | None, page: int = 100, database: str = "sqlite") -> int:
    """How many runs a clause may match and still drive a search in a store of about
    ``store_runs`` runs. Driving costs about one list entry per match (``n``); scanning
    instead tests about ``page × store_runs / n`` runs for a page, each ``DRIVE_COST_RATIO``
    times dearer — so driving pays while ``n² < ratio × page × store_runs``: at a million
    runs up to 20,000 (a 1 % filter: 45 → 14 ms on SQLite), at 100,000 about 6,000 on
    SQLite (a 10 % metric filter drove slower than it scanned: 17 against 8 ms) and
    16,000 on PostgreSQL. Never fewer than
    ``DRIVE_LIMIT`` (those are looked up: always cheap), never more than
    ``MAX_DRIVING_RUNS``."""
    ratio = DRIVE_COST_RATIO.get(database, DRIVE_COST_RATIO["postgresql"])
    worth = math.isqrt(ratio * (page + 1) * max(store_runs or 0, 0))
    return min(MAX_DRIVING_RUNS, max(DRIVE_LIMIT, worth))


def _or_default(limit: int | None) -> int:
    """A probe's limit: ``MAX_DRIVING_RUNS`` (read when asked, so it can be set) unless
    given."""
    return MAX_DRIVING_RUNS if limit is None else limit


def _metric_position(values: Any) -> tuple[Any, ...]:
    """``[part, value, start_time, run_id]`` of a metric order (``metric_ordered_statements``)."""
    if not isinstance(values, list) or len(values) != 4:
        raise ValueError("position")
    part, value, start_time, run_id = values
    if isinstance(part, bool) or part not in (0, 1, 2):
        raise ValueError("part")
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if (part == 0) != number or (part and value is not None):
        raise ValueError("value")
    if isinstance(start_time, bool) or not isinstance(start_time, int):
        raise ValueError("start_time")
    if not isinstance(run_id, str):
        raise ValueError("run_id")
    return (part, value, start_time, run_id)


def _non_negative(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError("offset")
    return value


__all__ = [
    "DRIVE_LIMIT",
    "MAX_DRIVING_RUNS",
    "CrowdedClauses",
    "Driven",
    "RunSearch",
    "driving_limit",
]
