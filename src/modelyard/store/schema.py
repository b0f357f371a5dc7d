"""The one SQLAlchemy ``MetaData`` on which every room registers its tables.

Rooms own their tables (``tracking/tables.py`` and so on); this module owns only the
shared object and the tables that belong to no single room: lineage edges, and the leases
that keep two processes off one piece of work (``store/leases.py``).
"""

from __future__ import annotations

import importlib

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


def value_index(table: Table) -> None:
    """Index which owners of a ``(…, key, value)`` table have a value, for equality probes:
    ``(value)`` on SQLite, ``(key, md5(value))`` on PostgreSQL (a value may be longer than a
    B-tree entry can hold, and a hash index degrades with many equal values). Named
    ``ix_<table>_value`` on both; created with the table."""
    name = f"ix_{table.name}_value"
    DIALECT_INDEXES.add(name)
    for dialect, ddl in value_index_ddl(table.name).items():
        event.listen(table, "after_create", DDL(ddl).execute_if(dialect=dialect))


def value_index_ddl(table: str) -> dict[str, str]:
    """The ``CREATE INDEX`` of ``value_index`` per dialect (migrations run the same)."""
    name = f"ix_{table}_value"
    return {
        "sqlite": f"CREATE INDEX {name} ON {table} (value)",
        "postgresql": f"CREATE INDEX {name} ON {table} (key, md5(value))",
    }


def load_all_tables() -> MetaData:
    """Import every room's tables so ``metadata`` describes the whole schema."""
    for module in ROOM_TABLE_MODULES:
        importlib.import_module(module)
    return metadata
