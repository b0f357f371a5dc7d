"""The contract results on a dataset version join the graph: upstream of a model, the
dataset node carries the newest verdict per contract (in the JSON document and in the
tree), and downstream of the dataset each stored check is a ``contract_check`` node
(SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from modelyard.lineage.graph import DOWNSTREAM, UPSTREAM
from modelyard.lineage.service import LineageService, document_from_dict
from modelyard.store.lineage import edges_of

from .test_cli import cli

HOLDS = "contract: sales\ncolumns: {units: {type: float, min: 0}}\n"
BREAKS = "contract: sales\nrows: {min: 100}\n"
OTHER = "contract: units-positive\ncolumns: {units: {min: 1}}\n"


def check(story, tmp_path, text, name):
    path = tmp_path / name
    path.write_text(text)
    return story.data.check("sales@1", path)


def test_upstream_of_a_model_shows_the_newest_verdict_per_contract(story, tmp_path):
    assert not check(story, tmp_path, BREAKS, "first.yaml").passed
    assert check(story, tmp_path, HOLDS, "fixed.yaml").passed
    assert check(story, tmp_path, OTHER, "other.yaml").passed
    lineage = LineageService(story.registry.db, story.registry.artifacts)

    doc = lineage.trace("models:/demand/1", UPSTREAM)
    verdicts = doc.nodes[story.dataset_node].attributes["contracts"]
    assert [(v["contract"], v["passed"], v["version"]) for v in verdicts] == [
        ("sales", True, 1),  # the newest of the two checks against "sales"
        ("units-positive", True, 1),
    ]
    newest = story.data.contract_results("sales@1")
    assert {v["id"] for v in verdicts} == {newest[0].id, newest[1].id}
    assert verdicts[0]["contract_digest"] == newest[1].contract_digest
    # upstream answers never wander down into the checks themselves
    assert not any(n.kind == "contract_check" for n in doc.nodes.values())

    # the JSON document carries them, and reads back
    body = json.loads(json.dumps(doc.to_dict()))
    [dataset] = [n for n in body["nodes"] if n["id"] == story.dataset_node]
    assert [v["passed"] for v in dataset["contracts"]] == [True, True]
    again = document_from_dict(body)
    assert again.nodes[story.dataset_node].attributes["contracts"] == verdicts


def test_a_failed_verdict_is_what_lineage_shows_when_it_is_the_newest(story, tmp_path):
    check(story, tmp_path, HOLDS, "holds.yaml")
    check(story, tmp_path, BREAKS, "breaks.yaml")
    lineage = LineageService(story.registry.db, story.registry.artifacts)
    doc = lineage.trace(f"run:{story.run_id}", UPSTREAM)
    [verdict] = doc.nodes[story.dataset_node].attributes["contracts"]
    assert verdict["passed"] is False and verdict["failed"] == 1


def test_an_unchecked_dataset_has_no_verdicts(story):
    lineage = LineageService(story.registry.db, story.registry.artifacts)
    doc = lineage.trace("models:/demand/1", UPSTREAM)
    assert "contracts" not in doc.nodes[story.dataset_node].attributes


def test_downstream_of_a_dataset_each_check_is_a_node(story, tmp_path):
    check(story, tmp_path, BREAKS, "breaks.yaml")
    check(story, tmp_path, HOLDS, "holds.yaml")
    lineage = LineageService(story.registry.db, story.registry.artifacts)
    doc = lineage.trace("sales@1", DOWNSTREAM, depth=1)
    checks = {
        e.dst: doc.nodes[e.dst]
        for e in doc.edges
        if e.src == story.dataset_node and e.relation == "checked"
    }
    labels = sorted(n.label for n in checks.values())
    assert labels == ["sales on sales@1 FAILED", "sales on sales@1 passed"]
    assert all(n.kind == "contract_check" for n in checks.values())
    assert all(n.attributes["dataset"] == "sales" for n in checks.values())
    # a check is not something to retrain or roll back
    assert not any("contract" in k for k in doc.impact or {})


def test_the_tree_shows_the_verdict_on_the_dataset(story, tmp_path):
    check(story, tmp_path, BREAKS, "breaks.yaml")
    out = CliRunner().invoke(
        cli(),
        ["lineage", "models:/demand/1", "--upstream", "--home", str(story.settings.home)],
        env={"MODELYARD_STORE_URI": story.settings.resolved_store_uri()},
    )
    assert out.exit_code == 0, out.output
    [line] = [row for row in out.output.splitlines() if "dataset sales@1" in row][:1]
    assert "contract sales FAILED" in line


def test_the_readme_lists_the_relation(story, tmp_path):
    check(story, tmp_path, HOLDS, "holds.yaml")
    with story.registry.db.read() as conn:
        written = {r for _, dst, r in edges_of(conn, story.dataset_node) if "contract" in dst}
    assert written == {"checked"}
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    table = readme.split("The relations the rooms write", 1)[1].split("\n\n", 2)[1]
    assert "| `dataset → contract_check` | `checked` |" in table
