"""Quality gates: rules against absolutes and the champion, per slice, fairness, contract,
behaviour and latency; the verdict is recorded on the version and can block promotion."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from modelyard.errors import InvalidParameter, InvalidState
from modelyard.validation.gates import (
    TAG_STATUS,
    GatePolicy,
    parse_rule,
    passed_gate,
    record_gate,
    run_gate,
)

POLICY = """
gate: demand-quality
target: units
features: [price, promo]
slices: [region]
bootstrap: 20
latency_rows: 20
contract: eval.yaml
behaviour:
  - {name: price_up, kind: directional, column: price, change: {multiply: 1.1},
     expect: not_increase}
rules:
  - rmse <= 3
  - rmse <= champion * 1.02
  - r2 >= champion
  - slice rmse <= champion * 1.05
  - slice mae <= 4
  - contract passed
  - behaviour passed
  - latency p95_ms <= 1000
  - {rule: "mape <= 0.0001", severity: warning}
"""
CONTRACT = """
contract: eval
columns:
  price: {type: float, min: 0}
  units: {type: float}
"""


@pytest.fixture
def policy(tmp_path):
    (tmp_path / "eval.yaml").write_text(CONTRACT)
    path = tmp_path / "gate.yaml"
    path.write_text(POLICY)
    return GatePolicy.from_yaml(path)


def test_a_better_candidate_passes_every_rule(policy, yard, demand, champion_and_candidate):
    report = run_gate(
        policy, "models:/demand/2", demand, "models:/demand@champion", registry=yard[1]
    )
    assert report.passed, report.summary()
    by_rule = {o.rule: o for o in report.outcomes}
    assert by_rule["rmse <= champion * 1.02"].detail.startswith("champion ")
    assert not by_rule["mape <= 0.0001"].passed and not by_rule["mape <= 0.0001"].blocking
    assert report.champion == "models:/demand@champion (= models:/demand/1)"
    assert report.candidate_version == ("demand", 2)
    assert report.latency is not None and report.latency.p95_ms > 0
    assert report.contract.passed


def test_the_champion_gated_against_the_candidate_fails(
    policy, yard, demand, champion_and_candidate
):
    report = run_gate(policy, "models:/demand/1", demand, "models:/demand/2", registry=yard[1])
    assert not report.passed
    failed = {o.rule for o in report.failed}
    assert {"rmse <= 3", "rmse <= champion * 1.02", "r2 >= champion",
            "slice rmse <= champion * 1.05"} <= failed  # fmt: skip
    assert "region=north" in next(o for o in report.failed if o.kind == "slice_relative").detail


def test_reports_render_as_markdown_and_junit(policy, yard, demand, champion_and_candidate):
    report = run_gate(policy, "models:/demand/1", demand, "models:/demand/2", registry=yard[1])
    markdown = report.to_markdown()
    assert markdown.startswith("## ❌ Quality gate `demand-quality`: failed")
    assert "| ❌ | `rmse <= 3` |" in markdown and "### rmse by region" in markdown
    assert "⬅ worst" in markdown and "### Behavioural tests" in markdown
    suite = ET.fromstring(report.to_junit_xml()).find("testsuite")
    assert suite.get("tests") == str(len(report.outcomes))
    assert int(suite.get("failures")) == len(report.failed)
    assert suite.find("testcase[@name='rmse <= 3']/failure") is not None
    json.dumps(report.to_dict())  # serialisable


def test_the_verdict_is_recorded_and_the_promotion_policy_can_require_it(
    policy, yard, demand, champion_and_candidate
):
    from dataclasses import replace

    _, registry = yard
    passed = run_gate(
        policy, "models:/demand/2", demand, "models:/demand@champion", registry=registry
    )
    folder = record_gate(passed, registry)
    version = registry.get_model_version("demand", 2)
    assert version.tags[TAG_STATUS] == "passed" and version.tags["modelyard.gate.report"] == folder
    assert registry.artifacts.read_bytes(f"{folder}/report.md").startswith(b"## ")
    assert registry.get_card("demand", 2).validation_results["gate"] == "passed (demand-quality)"
    gated = registry.as_actor(registry.actor)
    gated.policy = replace(registry.policy, gate=passed_gate)
    gated.set_registered_model_alias("demand", "champion", 2)  # allowed: the gate passed
    failed = run_gate(policy, "models:/demand/1", demand, "models:/demand/2", registry=registry)
    record_gate(failed, registry)
    with pytest.raises(InvalidState, match="did not pass the quality gate"):
        gated.set_registered_model_alias("demand", "champion", 1)
    unseen = registry.register_model("models:/demand/2", "other")
    assert "has no recorded quality gate" in passed_gate(unseen, None).detail


def test_without_a_champion_relative_rules_follow_the_policy(
    policy, yard, demand, champion_and_candidate
):
    report = run_gate(policy, "models:/demand/2", demand, "models:/demand@nobody", registry=yard[1])
    assert report.passed and report.champion_eval is None
    assert any("no champion" in note for note in report.notes)
    strict = GatePolicy(**{**policy.__dict__, "on_missing_champion": "fail"})
    assert not run_gate(strict, "models:/demand/2", demand, None, registry=yard[1]).passed


def test_fairness_rules_for_classifiers(yard, demand, tmp_path):
    from sklearn.linear_model import LogisticRegression

    demand = demand.assign(group=["a", "b"] * (len(demand) // 2))
    model = LogisticRegression().fit(demand[["price", "promo"]], demand["sold_out"])
    policy = GatePolicy.from_dict(
        {
            "task": "classification",
            "target": "sold_out",
            "features": ["price", "promo"],
            "sensitive": ["group"],
            "rules": ["accuracy >= 0.8", "fairness dpd <= 0.2", "fairness eod <= 0.2"],
        }
    )
    report = run_gate(policy, model, demand)
    assert report.passed, report.summary()
    assert report.outcomes[1].detail == "worst: group"


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("rmse <= twelve", "is not a rule"),
        ("rsme <= 12", "unknown metric 'rsme'; did you mean 'rmse'"),
        ("fairness parity <= 0.1", "unknown fairness metric 'parity'"),
        ("rmse <= champion ** 2", "is not a rule"),
        ({"rule": "rmse <= 1", "severity": "fatal"}, "severity must be 'error' or 'warning'"),
        (12, "must be a rule such as"),
    ],
)
def test_bad_rules_are_named(rule, message):
    with pytest.raises(InvalidParameter, match=message):
        parse_rule(rule)


def test_bad_policies_are_named(tmp_path):
    with pytest.raises(InvalidParameter, match="unknown key 'rulez'; did you mean 'rules'"):
        GatePolicy.from_dict({"target": "y", "rulez": []})
    with pytest.raises(InvalidParameter, match="needs target"):
        GatePolicy.from_dict({"rules": ["rmse <= 1"]})
    with pytest.raises(InvalidParameter, match=r"behaviour\[0\].kind must be one of"):
        GatePolicy.from_dict({"target": "y", "rules": ["rmse <= 1"], "behaviour": [{"kind": "x"}]})
    with pytest.raises(InvalidParameter, match="does not exist"):
        GatePolicy.from_yaml(tmp_path / "missing.yaml")


def test_rules_that_need_a_section_say_so(yard, demand):
    from sklearn.linear_model import Ridge

    model = Ridge().fit(demand[["price", "promo"]], demand["units"])
    for rule, message in [
        ("contract passed", "needs contract"),
        ("behaviour passed", "needs behaviour"),
        ("slice rmse <= 3", "needs slices"),
        ("fairness dpd <= 0.1", "needs sensitive"),
    ]:
        policy = GatePolicy.from_dict(
            {"target": "units", "features": ["price", "promo"], "rules": [rule], "bootstrap": 0}
        )
        with pytest.raises(InvalidParameter, match=message):
            run_gate(policy, model, demand)


def test_a_dataset_version_as_evaluation_data_is_linked_to_the_version(
    policy, yard, demand, champion_and_candidate
):
    from modelyard.data.client import DataClient
    from modelyard.store.lineage import edges_of

    _, registry = yard
    data_client = DataClient.from_settings(registry.settings)
    version = data_client.snapshot(demand, "eval")
    report = run_gate(
        policy, "models:/demand/2", "eval@1", "models:/demand@champion",
        registry=registry, data_client=data_client,
    )  # fmt: skip
    assert report.data == "eval@1" and report.data_digest == version.digest
    record_gate(report, registry)
    tag = registry.get_model_version("demand", 2).tags["modelyard.gate.data"]
    assert tag == f"eval@1 (digest {version.digest[:16]})"
    with registry.db.read() as conn:
        edges = edges_of(conn, "model:demand/2")
    assert (f"dataset:eval@{version.digest}", "model:demand/2", "evaluated") in edges
