"""``modelyard lineage`` as a user types it: a readable tree, the impact table, the JSON
document, OpenLineage events for a period, and usage errors (exit 2 naming the option)."""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

from modelyard.cli import lineage, main
from modelyard.config import Settings

from .lineage_yard import REQUEST_ID, write_story


def cli() -> typer.Typer:
    app = typer.Typer(cls=main.ModelyardGroup, no_args_is_help=True)
    app.callback()(main.root)
    app.command("lineage")(lineage.lineage)
    app.command("other")(lambda: None)  # a group of two, as the real root is
    return app


@pytest.fixture(scope="module")
def story(tmp_path_factory):
    root = tmp_path_factory.mktemp("lineage-cli")
    written = write_story(root, Settings(home=root / "yard", user="ana"))
    yield written
    written.close()


def run(story, *args: str, env: dict[str, str] | None = None):
    home = ["--home", str(story.settings.home)]
    return CliRunner().invoke(cli(), ["lineage", *args, *home], env=env)


def test_a_prediction_is_a_tree_back_to_its_data(story):
    out = run(story, REQUEST_ID)
    assert out.exit_code == 0, out.output
    text = out.output
    assert f"request {REQUEST_ID}" in text.splitlines()[0]
    for expected in ("← routed", "web revision 1", "models:/demand/1", "← produced",
                     "demand-train", "feature view sales v1 code", "dataset sales@1",
                     "4 rows from"):  # fmt: skip
        assert expected in text, text


def test_downstream_of_a_dataset_ends_with_the_impact(story):
    out = run(story, "sales@1", "--downstream")
    assert out.exit_code == 0, out.output
    assert "→ source" in out.output and "impact" in out.output
    assert "live deployments" in out.output and "web" in out.output
    assert "models:/demand/1" in out.output


def test_json_is_the_node_and_edge_document(story):
    out = run(story, "models:/demand/1", "--depth", "1", "--json")
    assert out.exit_code == 0, out.output
    body = json.loads(out.output)
    assert body["start"] == "model:demand/1" and body["depth"] == 1
    assert [e["relation"] for e in body["edges"]] == ["produced"]


def test_a_node_met_twice_is_shown_once(story):
    out = run(story, "web")
    assert out.exit_code == 0, out.output
    assert "(above)" in out.output


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["sales@1", "--upstream", "--downstream"], "one at a time"),
        ([], "modelyard lineage ID"),
        (["sales@1", "--emit-openlineage", "1d"], "takes no ID"),
        (["nothing-called-this"], "nothing in the lineage graph is called"),
        (["sales@1", "--depth", "0"], "--depth"),
        (["sales"], "names more than one thing"),
    ],
)
def test_usage_errors_exit_2_saying_why(story, args, says):
    out = run(story, *args)
    assert out.exit_code == 2, out.output
    assert says in out.output


def test_emit_openlineage_writes_the_periods_events_to_the_file(story, tmp_path):
    pytest.importorskip("openlineage.client")
    events = tmp_path / "ol" / "events.ndjson"
    out = run(story, "--emit-openlineage", "1d", env={"MODELYARD_OPENLINEAGE_FILE": str(events)})
    assert out.exit_code == 0, out.output
    lines = [json.loads(line) for line in events.read_text().splitlines()]
    jobs = {(e["job"]["name"], e["eventType"]) for e in lines}
    assert ("experiments/demand", "START") in jobs
    assert ("training_set/demand-train", "COMPLETE") in jobs
    assert f"sent {len(lines)} OpenLineage events" in out.output


def test_emit_without_a_sink_says_which_setting(story):
    out = run(story, "--emit-openlineage", "1d")
    assert out.exit_code == 2 and "MODELYARD_OPENLINEAGE_URL" in out.output


def test_backfill_says_what_it_read(story):
    out = run(story, "--backfill")
    assert out.exit_code == 0, out.output
    assert "2 deployment revisions, 1 monitor, 0 alerts" in out.output
    assert run(story, "web", "--backfill").exit_code == 2
