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
(those)`` to its statement. The clause itself stays in the statement, so a superset of
owners is harmless; the probe costs at most ``DRIVE_LIMIT + 1`` index entries.
Run search does the same for params, tags and metrics (``search_plan.py``).
"""

from __future__ import annotations

from collections.abc import Container, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, Row, and_, select

from modelyard.tracking.search_filter import Clause
from modelyard.tracking.search_query import ValueIn

#: A tag clause matching at most this many owners drives the search (as run search's
#: ``search_plan.DRIVE_LIMIT``). Above it the clause keeps more than 2 % of 100,000 rows,
#: so the ordered scan meets a page's 100 matches within ~5,000 rows, and a longer ``IN``
#: list costs more to build and bind than it saves.
DRIVE_LIMIT = 2_000
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


def driving_condition(
    conn: Connection,
    tags: Any,
    owner: Sequence[tuple[Any, Any]],
    clauses: Sequence[Clause],
    skip_keys: Container[str] = (),
) -> Drive | None:
    """``entity column IN (the owners' values)`` for each ``(tag column, entity column)``
    pair of ``owner``, the owners being the rows of ``tags`` that match the first equality
    tag clause matching at most ``DRIVE_LIMIT`` of them (a key in ``skip_keys`` is not
    probed); None when no clause is that selective. With one column the condition is
    exact; with two (a version's name and number) the lists' cross product, exact only
    when it holds no other pair — else a superset the clause itself still narrows.

    Each column's values are one sorted list, so that the database walks the entity's
    index in that order and stops at the page's end. (On PostgreSQL, ``= ANY(array)``
    would bind 1,000 names as one parameter instead of 1,000, ~3 ms less client CPU, but
    the planner then estimated the pair of lists 4× higher and hashed every tag of the key:
    6 → 18 ms at 100,000 versions.)
    """
    probed = _owners(conn, tags, [tag for tag, _ in owner], clauses, skip_keys)
    if probed is None:
        return None
    clause, found = probed
    lists = [sorted({row[number] for row in found}) for number in range(len(owner))]
    crossed = 1
    for values in lists:
        crossed *= len(values)
    condition = and_(
        *(column.in_(values) for (_, column), values in zip(owner, lists, strict=True))
    )
    return Drive(condition, clause, exact=crossed == len({tuple(row) for row in found}))


def _owners(
    conn: Connection,
    tags: Any,
    owner: Sequence[Any],
    clauses: Sequence[Clause],
    skip_keys: Container[str],
) -> tuple[Clause, Sequence[Row[Any]]] | None:
    """The first equality tag clause that matches at most ``DRIVE_LIMIT`` rows of
    ``tags``, and those rows' ``owner`` columns; or None."""
    for clause in clauses:
        if clause.kind != "tag" or clause.op not in _EQUALITY or clause.key in skip_keys:
            continue
        probe = (
            select(*owner)
            .where(tags.c.key == clause.key, ValueIn(tags.c.value, _values(clause)))
            .limit(DRIVE_LIMIT + 1)
        )
        found = conn.execute(probe).all()
        if len(found) <= DRIVE_LIMIT:
            return clause, found
    return None


__all__ = ["DRIVE_LIMIT", "Drive", "driving_condition"]


def _values(clause: Clause) -> list[str]:
    found = clause.value if isinstance(clause.value, tuple) else (clause.value,)
    return [str(value) for value in found]
