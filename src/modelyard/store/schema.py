"""The one SQLAlchemy ``MetaData`` on which every room registers its tables.

Rooms own their tables (``tracking/tables.py`` and so on); this module owns only the
shared object and the tables that belong to no single room: lineage edges, and the leases
that keep two processes off one piece of work (``store/leases.py``).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence

from sqlalchemy import DDL, BigInteger, Column, Index, MetaData, String, Table, event

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING)

#: A directed edge of the lineage graph: ``src`` produced, fed or described ``dst``.
#: Node ids are typed strings (``run:<id>``, ``dataset:<name>@<digest>``, ``model:<name>/<v>``).
lineage_edges = Table(
    "lineage_edges",
    metadata,
    Column("src", String(512), primary_key=True),
    Column("dst", String(512), primary_key=True),
    Column("relation", String(64), primary_key=True),
    Column("created_at", BigInteger, nullable=False),
    Index("ix_lineage_edges_dst", "dst"),
)

#: A lease on a named piece of work (``monitor:web``, ``firing:alert:7``): who holds it and
#: until when (ms). ``token`` is new on each acquisition (``store/leases.py``).
leases = Table(
    "leases",
    metadata,
    Column("name", String(512), primary_key=True),
    Column("holder", String(256), nullable=False),  # host:pid:thread
    Column("token", String(32), nullable=False),
    Column("acquired_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
)


#: Every module that registers tables on ``metadata``. A room adding tables adds itself
#: here (and a migration); named as strings so that the storage layer never imports the
#: rooms above it — this is the one registration point, used by migrations and first use.
ROOM_TABLE_MODULES: tuple[str, ...] = (
    "modelyard.artifacts.tables",
    "modelyard.tracking.tables",
    "modelyard.registry.tables",
    "modelyard.data.tables",
    "modelyard.auth.tables",
    "modelyard.serving.tables",
    "modelyard.features.tables",
    "modelyard.monitoring.tables",
    "modelyard.pipelines.tables",
    "modelyard.pipelines.schedule_tables",
)


#: Indexes made by DDL of their own, one form per database (``value_index``): not in the
#: table definitions, so Alembic's comparison of the schema with them leaves them out.
DIALECT_INDEXES: set[str] = set()


#: Values up to this many bytes are held whole in PostgreSQL's value index (the key, the
#: owner and the value must fit a B-tree entry: at most 2,704 bytes, and a registry tag's
#: owner name and key may take 1,024 and 1,000); longer ones by their digest.
VALUE_INDEX_BYTES = 512


def value_index(table: Table) -> None:
    """Index which owners of a ``(owner…, key, value)`` table have a value, for equality
    probes: ``(value)`` on SQLite; on PostgreSQL ``(key, value)`` holding the owner
    (``INCLUDE``) for values of at most ``VALUE_INDEX_BYTES`` — a probe is then one
    index-only range, exact, with no table row read (at a million runs a probe that read
    the rows took 15 ms for 10,000 matches, and a digest-only index could not say which
    of them truly match) — and ``(key, md5(value))`` for the longer ones, which no B-tree
    entry can hold whole. Not a hash index: it chains equal values into overflow pages
    (150 µs an insert at 100,000 runs sharing a value, rising with the count). Named
    ``ix_<table>_value`` (and ``ix_<table>_value_digest``); created with the table."""
    owner = [c.name for c in table.primary_key.columns if c.name != "key"]
    dialect_indexes(table, value_index_names(table.name), value_index_ddl(table.name, owner))


def dialect_indexes(table: Table, names: Sequence[str], ddl: Mapping[str, Sequence[str]]) -> None:
    """Indexes of ``table`` made one way per database (``ddl``: dialect → statements),
    created with the table — for what a portable ``Index`` cannot say without loading
    every dialect (an expression, a partial or covering index)."""
    DIALECT_INDEXES.update(names)
    for dialect, statements in ddl.items():
        for statement in statements:
            event.listen(table, "after_create", DDL(statement).execute_if(dialect=dialect))


def value_index_names(table: str) -> tuple[str, str]:
    """The names of ``value_index``'s indexes of ``table`` (the second PostgreSQL only)."""
    return f"ix_{table}_value", f"ix_{table}_value_digest"


def value_index_ddl(table: str, owner: list[str]) -> dict[str, tuple[str, ...]]:
    """The ``CREATE INDEX`` statements of ``value_index`` per dialect (migrations run the
    same); ``owner``: the table's key columns besides ``key``."""
    whole, digest = value_index_names(table)
    short = f"octet_length(value) <= {VALUE_INDEX_BYTES}"
    return {
        "sqlite": (f"CREATE INDEX {whole} ON {table} (value)",),
        "postgresql": (
            f"CREATE INDEX {whole} ON {table} (key, value) INCLUDE ({', '.join(owner)}) "
            f"WHERE {short}",
            f"CREATE INDEX {digest} ON {table} (key, md5(value)) WHERE NOT ({short})",
        ),
    }


def load_all_tables() -> MetaData:
    """Import every room's tables so ``metadata`` describes the whole schema."""
    for module in ROOM_TABLE_MODULES:
        importlib.import_module(module)
    return metadata
