"""One graph over what the rooms wrote: a prediction traces back to the dataset versions
its model's features came from, and a dataset version forward to every training set, run,
model version and live deployment that depends on it (SQLite and PostgreSQL)."""

from __future__ import annotations

from itertools import pairwise

import pytest

from modelyard.errors import InvalidParameter, NotFound
from modelyard.lineage.graph import DOWNSTREAM, UPSTREAM
from modelyard.lineage.service import LineageService

from .lineage_yard import REQUEST_ID


@pytest.fixture
def lineage(story):
    return LineageService(story.registry.db, story.registry.artifacts)


def path_exists(doc, chain):
    """Whether each consecutive pair of ``chain`` is an edge of the document."""
    pairs = {(e.src, e.dst) for e in doc.edges}
    return all((a, b) in pairs for a, b in pairwise(chain))


def test_a_prediction_traces_to_revision_model_run_training_set_view_and_dataset(lineage, story):
    doc = lineage.trace(REQUEST_ID, UPSTREAM)
    assert doc.start == f"prediction:{REQUEST_ID}"
    chain = [
        story.dataset_node,
        story.view_node,
        story.training_set_node,
        f"run:{story.run_id}",
        "model:demand/1",
        "deployment_revision:web/1",
        f"prediction:{REQUEST_ID}",
    ]
    assert path_exists(doc, chain)
    assert ("model:demand/1", f"prediction:{REQUEST_ID}", "predicted") in {
        (e.src, e.dst, e.relation) for e in doc.edges
    }
    served = doc.nodes[doc.start].attributes["served"]
    assert served[0]["deployment"] == "web" and served[0]["revision"] == 1
    view = doc.nodes[story.view_node].attributes
    assert view["version"] == 1 and len(view["code_hash"]) == 64
    dataset = doc.nodes[story.dataset_node]
    assert dataset.label == "sales@1" and dataset.attributes["rows"] == 4
    # the model the switch brought in later has nothing to do with this prediction
    assert "model:demand/2" not in doc.nodes


def test_depth_one_from_a_prediction_is_its_revision_and_model(lineage):
    doc = lineage.trace(REQUEST_ID, UPSTREAM, depth=1)
    assert {e.src for e in doc.edges} == {"deployment_revision:web/1", "model:demand/1"}


def test_impact_of_a_dataset_version_lists_what_depends_on_it(lineage, story):
    doc = lineage.trace("sales@1", DOWNSTREAM)
    assert doc.start == story.dataset_node
    assert doc.impact == {
        "training_sets": [story.training_set_node.partition(":")[2]],
        "runs": [story.run_id],
        "model_versions": ["models:/demand/1"],
        "live_deployments": ["web"],
    }
    assert doc.nodes["deployment_revision:web/2"].attributes["live"] is True
    assert doc.nodes["deployment_revision:web/1"].attributes["live"] is False
    assert "monitor:web-drift" in doc.nodes


def test_a_version_no_longer_deployed_has_no_live_deployment(lineage, story):
    story.deployments.rollback("web", to_revision=1)  # demand/1 only: demand/2 unloaded
    doc = lineage.trace(f"run:{story.other_run_id}", DOWNSTREAM)
    assert doc.impact["model_versions"] == ["models:/demand/2"]
    assert doc.impact["live_deployments"] == []


@pytest.mark.parametrize(
    ("ref", "start"),
    [
        ("models:/demand/1", "model:demand/1"),
        ("models:/demand/latest", "model:demand/2"),
        ("sales@latest", None),  # the newest version of dataset sales
        ("dataset:sales@1", None),
        ("web", "deployment:web"),
        ("web/2", "deployment_revision:web/2"),
        ("web-drift", "monitor:web-drift"),
        ("feature_view:sales", "feature_view:sales@1"),
    ],
)
def test_the_names_people_use_are_resolved(lineage, story, ref, start):
    doc = lineage.trace(ref, DOWNSTREAM, depth=1)
    assert doc.start == (start or story.dataset_node)


def test_a_run_id_and_a_training_set_id_are_resolved(lineage, story):
    assert lineage.trace(story.run_id).start == f"run:{story.run_id}"
    ts_id = story.training_set_node.partition(":")[2]
    assert lineage.trace(ts_id).start == story.training_set_node


def test_a_name_two_rooms_know_is_refused_with_both_spellings(lineage):
    with pytest.raises(InvalidParameter, match="feature_view:sales@1") as err:
        lineage.trace("sales")  # a dataset and a feature view
    assert err.value.field == "id"


@pytest.mark.parametrize(
    "ref", ["models:/demand/9", "sales@7", "no-such-thing", "run:0123", "prediction:nope"]
)
def test_unknown_names_are_not_found(lineage, ref):
    with pytest.raises(NotFound) as err:
        lineage.trace(ref)
    assert err.value.field in ("id", "request_id")


@pytest.mark.parametrize("ref", ["", " ", "x" * 513, None])
def test_empty_or_huge_ids_are_refused(lineage, ref):
    with pytest.raises(InvalidParameter) as err:
        lineage.trace(ref)
    assert err.value.field == "id"


def test_a_request_id_can_be_narrowed_to_a_deployment(lineage):
    assert lineage.trace(REQUEST_ID, deployment="web").start == f"prediction:{REQUEST_ID}"
    with pytest.raises(NotFound, match="deployment 'other'"):
        lineage.trace(f"prediction:{REQUEST_ID}", deployment="other")


def test_the_document_is_nodes_and_edges(lineage, story):
    body = lineage.trace("models:/demand/1", UPSTREAM, depth=2).to_dict()
    assert body["start"] == "model:demand/1" and body["direction"] == "upstream"
    ids = {n["id"] for n in body["nodes"]}
    assert {e["src"] for e in body["edges"]} <= ids and {e["dst"] for e in body["edges"]} <= ids
    run = next(n for n in body["nodes"] if n["id"] == f"run:{story.run_id}")
    assert run["kind"] == "run" and run["status"] == "RUNNING"
    assert "impact" not in body


def test_a_model_version_carries_its_newest_gate_verdict(lineage, story):
    story.registry.record_gate_verdict("demand", 1, passed=False, policy="p", summary="worse")
    story.registry.record_gate_verdict("demand", 1, passed=True, policy="p", summary="better")
    doc = lineage.trace(f"run:{story.run_id}", DOWNSTREAM, depth=1)
    gate = doc.nodes["model:demand/1"].attributes["gate"]
    assert gate["passed"] is True and gate["policy"] == "p"
    assert doc.nodes["model:demand/1"].attributes["aliases"] == []


def test_every_relation_the_rooms_wrote_is_listed_in_the_readme(story):
    from pathlib import Path

    from sqlalchemy import select

    from modelyard.store.schema import lineage_edges

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    table = readme.split("The relations the rooms write", 1)[1].split("\n\n", 2)[1]
    assert table.startswith("| edge | relation |")
    with story.registry.db.read() as conn:
        relations = set(conn.execute(select(lineage_edges.c.relation).distinct()).scalars())
    assert {"source", "input", "produced", "serves", "revision_of", "monitors"} <= relations
    missing = sorted(r for r in relations if f"`{r}`" not in table)
    assert not missing, f"add these relations to the README's lineage table: {missing}"
