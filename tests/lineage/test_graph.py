"""The recursive walk over the edge table: direction, depth, cycles, many paths, bounds —
the same answers on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from modelyard.errors import InvalidParameter
from modelyard.lineage.graph import DOWNSTREAM, UPSTREAM, walk
from modelyard.store.lineage import record_edges

CHAIN = [
    ("dataset:sales@d1", "feature_view:sales@1", "source"),
    ("feature_view:sales@1", "training_set:t1", "input"),
    ("training_set:t1", "run:r1", "input"),
    ("run:r1", "model:demand/1", "produced"),
    ("model:demand/1", "deployment_revision:web/1", "serves"),
    ("deployment_revision:web/1", "deployment:web", "revision_of"),
]


def edges_of(answer):
    return [(e.src, e.dst, e.relation, e.depth) for e in answer.edges]


@pytest.fixture
def chain(metadata_db):
    with metadata_db.write() as conn:
        record_edges(conn, CHAIN)
    return metadata_db


def test_upstream_follows_edges_backwards_nearest_first(chain):
    with chain.read() as conn:
        answer = walk(conn, ["model:demand/1"], UPSTREAM)
    assert edges_of(answer) == [
        ("run:r1", "model:demand/1", "produced", 1),
        ("training_set:t1", "run:r1", "input", 2),
        ("feature_view:sales@1", "training_set:t1", "input", 3),
        ("dataset:sales@d1", "feature_view:sales@1", "source", 4),
    ]
    assert answer.nodes[0] == "model:demand/1" and answer.nodes[-1] == "dataset:sales@d1"
    assert not answer.truncated


def test_downstream_follows_edges_forwards_and_depth_limits_the_hops(chain):
    with chain.read() as conn:
        everything = walk(conn, ["dataset:sales@d1"], DOWNSTREAM)
        two = walk(conn, ["dataset:sales@d1"], DOWNSTREAM, depth=2)
    assert [e.dst for e in everything.edges][-1] == "deployment:web"
    assert len(everything.edges) == len(CHAIN)
    assert [e.dst for e in two.edges] == ["feature_view:sales@1", "training_set:t1"]


def test_a_node_reached_by_two_paths_is_listed_once_at_its_least_depth(metadata_db):
    with metadata_db.write() as conn:
        record_edges(conn, [("a", "b", "x"), ("b", "c", "x"), ("a", "c", "shortcut")])
    with metadata_db.read() as conn:
        answer = walk(conn, ["a"], DOWNSTREAM)
    assert edges_of(answer) == [("a", "b", "x", 1), ("a", "c", "shortcut", 1), ("b", "c", "x", 2)]


def test_a_cycle_ends(metadata_db):
    with metadata_db.write() as conn:
        record_edges(conn, [("a", "b", "x"), ("b", "a", "x")])
    with metadata_db.read() as conn:
        answer = walk(conn, ["a"], DOWNSTREAM)
    assert edges_of(answer) == [("a", "b", "x", 1), ("b", "a", "x", 2)]


def test_several_start_nodes_and_one_without_edges(chain):
    with chain.read() as conn:
        answer = walk(conn, ["run:r1", "nothing:here", "deployment:web"], UPSTREAM, depth=1)
    assert edges_of(answer) == [
        ("deployment_revision:web/1", "deployment:web", "revision_of", 1),
        ("training_set:t1", "run:r1", "input", 1),
    ]
    assert answer.nodes[:3] == ["run:r1", "nothing:here", "deployment:web"]


def test_a_big_neighbourhood_is_cut_and_says_so(metadata_db):
    with metadata_db.write() as conn:
        record_edges(conn, [("hub", f"leaf:{i:03d}", "x") for i in range(30)])
    with metadata_db.read() as conn:
        answer = walk(conn, ["hub"], DOWNSTREAM, max_edges=10)
    assert answer.truncated and len(answer.edges) == 10


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"direction": "sideways"}, "direction"),
        ({"direction": UPSTREAM, "depth": 0}, "depth"),
        ({"direction": UPSTREAM, "depth": 65}, "depth"),
        ({"direction": UPSTREAM, "depth": True}, "depth"),
    ],
)
def test_bad_questions_are_refused_naming_the_field(chain, kwargs, field):
    kwargs = dict(kwargs)
    direction = kwargs.pop("direction")
    with chain.read() as conn, pytest.raises(InvalidParameter) as err:
        walk(conn, ["run:r1"], direction, **kwargs)
    assert err.value.field == field


@pytest.mark.parametrize("direction", [UPSTREAM, DOWNSTREAM])
def test_every_step_of_the_walk_is_an_index_search_never_a_scan_of_the_edges(tmp_path, direction):
    from sqlalchemy.dialects import sqlite

    from modelyard.lineage.graph import walk_query
    from modelyard.store.engine import open_database
    from modelyard.store.migrations import ensure_schema

    db = open_database(f"sqlite:///{tmp_path / 'plan.db'}")
    ensure_schema(db)
    with db.write() as conn:
        record_edges(conn, [*CHAIN, *((f"x{i}", f"y{i}", "noise") for i in range(500))])
        conn.exec_driver_sql("ANALYZE")
    sql = walk_query(["model:demand/1"], direction).compile(
        dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}
    )
    with db.read() as conn:
        plan = [row[-1] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}")]
    db.dispose()
    touching = [step for step in plan if "lineage_edges" in step]
    assert touching and all(step.startswith("SEARCH") for step in touching), plan
