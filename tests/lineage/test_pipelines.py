"""A real pipeline run (the pipelines room, local executor) read back as lineage: its
steps and their artifacts downstream of the run, a step's upstream back to the run, and
each step sent to OpenLineage as a nested run with a parent facet and its artifacts."""

from __future__ import annotations

import json

import pytest

from modelyard.config import Settings
from modelyard.lineage.graph import DOWNSTREAM, UPSTREAM
from modelyard.lineage.service import LineageService
from modelyard.pipelines import run_pipeline
from modelyard.tracking.backends import database_for

from ..pipelines import pipeline_yard as yard


@pytest.fixture
def ran(tmp_path):
    marker = tmp_path / "marker"
    marker.mkdir()
    settings = Settings(home=tmp_path / "yard")
    record = run_pipeline(
        yard.branches, {"marker": str(marker), "rows": 4}, settings=settings, executor="local"
    )
    return settings, record


def test_a_pipeline_runs_steps_and_artifacts_are_downstream_of_it(ran):
    settings, record = ran
    lineage = LineageService(database_for(settings))
    doc = lineage.trace(record.run_id, DOWNSTREAM)
    steps = {s.step_key: s for s in record.steps}
    make_table = f"step:{steps['make_table'].step_run_id}"
    assert make_table in doc.nodes and doc.nodes[make_table].kind == "step"
    assert doc.nodes[make_table].attributes["status"] == "FINISHED"
    table = f"artifact:{steps['make_table'].outputs['return']['path']}"
    relations = {(e.src, e.dst, e.relation) for e in doc.edges}
    assert (make_table, table, "output") in relations
    assert (table, f"step:{steps['split'].step_run_id}", "input") in relations


def test_a_steps_run_id_names_the_step_and_its_upstream_reaches_the_pipeline_run(ran):
    settings, record = ran
    lineage = LineageService(database_for(settings))
    last = next(s for s in record.steps if s.step_key == "gate")
    doc = lineage.trace(last.step_run_id, UPSTREAM)
    assert doc.start == f"step:{last.step_run_id}"
    assert f"run:{record.run_id}" in doc.nodes
    assert any(n.kind == "artifact" for n in doc.nodes.values())


def test_each_step_goes_out_as_a_child_run_with_its_artifacts(ran, tmp_path):
    pytest.importorskip("openlineage.client")
    from modelyard.lineage.openlineage_out import Emitter

    settings, record = ran
    sink = tmp_path / "ol.ndjson"
    emitter = Emitter.from_settings(
        Settings(home=settings.home, openlineage_file=sink), database_for(settings)
    )
    split = next(s for s in record.steps if s.step_key == "split")
    emitter.send(emitter.run_events(split.step_run_id))
    emitter.close()
    complete = [json.loads(line) for line in sink.read_text().splitlines()][-1]
    assert complete["eventType"] == "COMPLETE"
    assert complete["run"]["facets"]["parent"]["run"]["runId"].replace("-", "") == record.run_id
    assert complete["inputs"] and complete["outputs"]
    assert all(d["name"].startswith("artifacts/") for d in complete["inputs"])
