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
from typing import Any

from sqlalchemy import Connection, Row, select

from modelyard.tracking.search_filter import Clause
from modelyard.tracking.search_query import ValueIn

#: A tag clause matching at most this many owners drives the search (as run search's
#: ``search_plan.DRIVE_LIMIT``). Above it the clause keeps more than 2 % of 100,000 rows,
#: so the ordered scan meets a page's 100 matches within ~5,000 rows, and a longer ``IN``
#: list costs more to build and bind than it saves.
DRIVE_LIMIT = 2_000
_EQUALITY = ("=", "IN")


def driving_owners(
    conn: Connection,
    tags: Any,
    owner: Sequence[Any],
    clauses: Sequence[Clause],
    skip_keys: Container[str] = (),
) -> list[Row[Any]] | None:
    """The ``owner`` columns' values of the rows of ``tags`` matching the first equality
    tag clause that matches at most ``DRIVE_LIMIT`` of them (a key in ``skip_keys`` is not
    probed), or None when no clause is that selective."""
    for clause in clauses:
        if clause.kind != "tag" or clause.op not in _EQUALITY or clause.key in skip_keys:
            continue
        probe = (
            select(*owner)
            .where(tags.c.key == clause.key, ValueIn(tags.c.value, _values(clause)))
            .limit(DRIVE_LIMIT + 1)
        )
        found = list(conn.execute(probe).all())
        if len(found) <= DRIVE_LIMIT:
            return found
    return None


__all__ = ["DRIVE_LIMIT", "driving_owners"]


def _values(clause: Clause) -> list[str]:
    found = clause.value if isinstance(clause.value, tuple) else (clause.value,)
    return [str(value) for value in found]
