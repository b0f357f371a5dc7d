"""A selective tag filter drives a registry or experiment search: its few owners are found
first, from the tag table's value index, and the search reads only those.

Why: a tag clause is a correlated ``EXISTS`` tested on each row in the page's order. When
the tag is common (``tags.team = 'ads'``: a fifth of the models) the page's 100 matches are
near the front and that is the fastest plan; when it is rare (``tags.tier = 'gold'``, 100
models in 100,000) every row is read to find them — 50 ms on SQLite, which cannot turn the
``EXISTS`` around, and a plan PostgreSQL only sometimes finds. The planner's statistics
cannot tell the two apart (SQLite has no per-value histograms), so a search asks the data:
it probes each equality tag clause for at most ``DRIVE_LIMIT + 1`` owners from the value
index (``ix_*_tags_value``) and, when one keeps at most ``DRIVE_LIMIT``, adds ``owner IN
(those)`` to its statement (leaving the clause out when those are exactly its owners);
the probe costs at most ``DRIVE_LIMIT + 1`` index entries. A clause found common is
tested row by row in the page's order (``checked_per_row``). Run search does the same
for params, tags and metrics (``search_plan.py``).
"""

from __future__ import annotations

from collections.abc import Container, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    Connection,
    and_,
    any_,
    bindparam,
    exists,
    literal,
    select,
)

from modelyard.tracking import search_plan
from modelyard.tracking.search_filter import Clause
from modelyard.tracking.search_query import ValueIn, compare

#: A tag clause matching at most this many owners drives the search: run search's
#: limit for runs looked up one by one. Above it the clause keeps more than 2 % of
#: 100,000 rows, so the ordered scan meets a page's 100 matches within ~5,000 rows, and a
#: longer ``IN`` list costs more to build and bind than it saves.
DRIVE_LIMIT = search_plan.DRIVE_LIMIT
_EQUALITY = ("=", "IN")


@dataclass(frozen=True)
class Drive:
    """What a selective tag clause's probe found: ``condition`` limits the search to its
    owners; ``exact`` when it holds for exactly the rows the clause matches, so the search
    may leave ``clause`` out (one correlated tag lookup less per row read)."""

    condition: ColumnElement[bool]
    clause: Clause
    exact: bool

    def rest(self, clauses: Sequence[Clause]) -> list[Clause]:
        """``clauses`` without the driving one when the drive is exact (the search's
        remaining conditions), else all of them."""
        if not self.exact:
            return list(clauses)
        return [clause for clause in clauses if clause is not self.clause]


@dataclass(frozen=True)
class TagPlan:
    """How a search takes its equality tag clauses: ``drive`` — the first selective one's
    owners, or None — and ``common``, the clauses probed before it (all of them when none
    drives) and found to match more than ``DRIVE_LIMIT`` rows."""

    drive: Drive | None
    common: tuple[Clause, ...]

    def rest(self, clauses: Sequence[Clause]) -> list[Clause]:
        """The clauses the statement still tests (``Drive.rest``)."""
        return list(clauses) if self.drive is None else self.drive.rest(clauses)


def plan_tags(
    conn: Connection,
    tags: Any,
    owner: Sequence[tuple[Any, Any]],
    clauses: Sequence[Clause],
    skip_keys: Container[str] = (),
) -> TagPlan:
    """Probe each equality tag clause (a key in ``skip_keys`` is not probed) until one
    matches at most ``DRIVE_LIMIT`` rows of ``tags``; that one drives the search
    (``Drive``): ``entity column IN (the owners' values)`` for each ``(tag column, entity
    column)`` pair of ``owner``. With one column the condition is exact; with two (a
    version's name and number) the lists' cross product, exact only when it holds no other
    pair — else a superset the clause itself still narrows.

    Each column's values are one sorted list, so that the database walks the entity's
    index in that order and stops at the page's end. On PostgreSQL an exact drive binds
    each list as one array (``= ANY(:values)``): 1,000 names as 1,000 parameters cost ~4
    ms of client CPU and 5–9 ms in all for a 1 ms execution (at 100,000 versions, a 1 %
    tag: 9.7 → 2.1 ms). Not when the clause stays beside a superset: with its ``EXISTS``
    the planner estimated the arrays 4× higher than the lists and hashed every tag of the
    key (6 → 18 ms).
    """
    common: list[Clause] = []
    for clause in clauses:
        if clause.kind != "tag" or clause.op not in _EQUALITY or clause.key in skip_keys:
            continue
        probe = (
            select(*(tag for tag, _ in owner))
            .where(tags.c.key == clause.key, ValueIn(tags.c.value, clause.texts()))
            .limit(DRIVE_LIMIT + 1)
        )
        found = conn.execute(probe).all()
        if len(found) > DRIVE_LIMIT:
            common.append(clause)
            continue
        lists = [sorted({row[number] for row in found}) for number in range(len(owner))]
        crossed = 1
        for values in lists:
            crossed *= len(values)
        exact = crossed == len({tuple(row) for row in found})
        as_array = exact and conn.dialect.name == "postgresql"
        condition = and_(
            *(
                _member(column, values, as_array)
                for (_, column), values in zip(owner, lists, strict=True)
            )
        )
        return TagPlan(Drive(condition, clause, exact), tuple(common))
    return TagPlan(None, tuple(common))


def _member(column: Any, values: list[Any], as_array: bool) -> ColumnElement[bool]:
    if as_array:
        return column == any_(bindparam(None, values, type_=ARRAY(column.type)))
    return column.in_(values)


def checked_per_row(tags: Any, same_owner: ColumnElement[bool], clause: Clause) -> Any:
    """``keyed_condition`` for an equality clause ``plan_tags`` found common: the tag is
    looked up for each row the search reads, in its order, and the page ends after ~5
    rows per match (it matches over 2 %).

    Why not the ``EXISTS`` as run search writes it: PostgreSQL turns that into a join,
    and for a page deep in the order it merged the entity's index with the tag table's
    primary key read from its start — ``tags.team = 'ads'`` at 10,000 deep read 50,000
    tags, 12–27 ms, growing with depth. The ``OFFSET 0`` keeps the subquery a subquery
    (PostgreSQL does not flatten one with an offset), tested per row through the
    primary key (0.8 ms at any depth); SQLite tests it per row either way.
    """
    match = (
        select(literal(1))
        .where(same_owner, tags.c.key == clause.key, compare(tags.c.value, clause.op, clause.value))
        .offset(0)
    )
    return exists(match)


__all__ = ["DRIVE_LIMIT", "Drive", "TagPlan", "checked_per_row", "plan_tags"]
