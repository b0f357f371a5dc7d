"""The Prometheus export: every kind of rule becomes an alerting rule over the gauges
modelyard exports (or the data plane's metrics) that `promtool check rules` accepts, and
`promtool test rules` shows them firing when the series breach, after `for`."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml

from modelyard.monitoring.prometheus_rules import (
    alert_name,
    prometheus_rules,
    render_prometheus_rules,
)
from modelyard.monitoring.rules import parse_rules
from modelyard.monitoring.store import Monitor

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None,
    reason="promtool is not installed (Debian/Ubuntu: apt-get install prometheus; .ci/run does)",
)

EVERY_KIND = """
window: 1h
rules:
  - name: input drift
    drift_share: {above: 0.3}
    for: 2
  - name: named share
    drift_share: {above: 0.4, features: [price, "promo.flag"]}
  - name: named share floor
    drift_share: {below: 0.1, features: [price]}
  - name: price drifted
    feature_drift: {feature: price}
    trigger: retrain-demand
  - name: any feature score
    feature_drift: {above: 0.2}
  - name: prediction shift
    prediction_drift: {}
    for: 3
  - name: prediction score
    prediction_drift: {above: 0.25, below: 0.0}
  - name: mae floor north
    metric: {name: mae, above: 12, slice: "region=north"}
    severity: critical
  - name: mae each region
    metric: {name: mae, above: 15, slice: "region=*", variant: blue}
  - name: mae counted
    metric: {name: mae, above: 12, min_count: 50}
  - name: accuracy
    metric: {name: accuracy, below: 0.8}
  - name: latency SLO
    latency_p99_ms: {above: 250}
  - name: errors
    error_rate: {above: 0.01}
  - name: coverage
    feedback_coverage: {below: 0.2}
  - name: traffic
    requests: {below: 10, above: 100000}
  - name: 'quotes " and \\ backslash {{ $labels.x }} ünïcode'
    requests: {below: 1}
"""


def monitor(name: str, spec: str, schedule: str = "*/15 * * * *", deployment: str = "web"):
    return Monitor(
        name=name, deployment=deployment, schedule=schedule, rules=spec, spec=parse_rules(spec),
        window_s=3600, enabled=True, created_by="t", created_at=0, updated_at=0, last_run_at=None,
    )  # fmt: skip


def rules_by_name(doc):
    return {r["labels"]["rule"]: r for g in doc["groups"] for r in g["rules"]}


def test_each_kind_reads_the_right_series():
    rules = rules_by_name(prometheus_rules([monitor("web-drift", EVERY_KIND)]))
    own = 'monitor="web-drift",deployment="web"'
    assert rules["input drift"]["expr"] == f"modelyard_drift_share{{{own}}} > 0.3"
    assert rules["price drifted"]["expr"] == (
        f'modelyard_feature_drifted{{{own},feature=~"price"}} == 1'
    )
    assert 'feature=~"price|promo\\\\.flag"' in rules["named share"]["expr"]
    assert rules["named share"]["expr"].endswith("/ 2 > 0.4")
    assert rules["any feature score"]["expr"] == f"modelyard_feature_drift_score{{{own}}} > 0.2"
    assert rules["mae floor north"]["expr"] == (
        f'modelyard_live_metric{{{own},metric="mae",slice="region=north"}} > 12.0'
    )
    assert 'slice=~"region=.*",variant="blue"' in rules["mae each region"]["expr"]
    assert 'slice=""' in rules["accuracy"]["expr"] and rules["accuracy"]["expr"].endswith("< 0.8")
    assert rules["coverage"]["expr"] == f"modelyard_feedback_coverage{{{own}}} < 0.2"
    assert "histogram_quantile(0.99" in rules["latency SLO"]["expr"]
    assert (
        'modelyard_inference_request_duration_seconds_bucket{deployment="web"}[1h]'
        in (rules["latency SLO"]["expr"])
    )
    assert 'status!~"2.."' in rules["errors"]["expr"]
    assert "increase(modelyard_inference_requests_total" in rules["traffic"]["expr"]
    assert rules["traffic"]["expr"].count(" or ") == 1  # a band: either side


def test_rules_no_gauge_expresses_mirror_modelyards_own_alert():
    rules = rules_by_name(prometheus_rules([monitor("web-drift", EVERY_KIND)]))
    for name in ("prediction shift", "mae counted", "named share floor"):
        assert rules[name]["expr"] == (
            f'modelyard_alert_state{{monitor="web-drift",rule="{name}"}} == 2'
        )
        assert rules[name]["for"] == "0s"  # modelyard applied `for` already


def test_for_labels_and_names():
    rules = rules_by_name(prometheus_rules([monitor("web-drift", EVERY_KIND)]))
    assert rules["input drift"]["for"] == "15m"  # for: 2 on a 15-minute schedule
    assert rules["errors"]["for"] == "0s"
    assert rules["price drifted"]["labels"] == {
        "severity": "warning", "monitor": "web-drift", "deployment": "web",
        "rule": "price drifted", "trigger": "retrain-demand",
    }  # fmt: skip
    assert rules["mae floor north"]["labels"]["severity"] == "critical"
    assert rules["input drift"]["alert"] == "ModelyardInputDrift"
    assert (
        alert_name("latency SLO") == "ModelyardLatencySLO" and alert_name("!!") == "ModelyardRule"
    )
    hourly = prometheus_rules([monitor("m", EVERY_KIND, schedule="0 * * * *")])
    assert rules_by_name(hourly)["prediction score"]["for"] == "0s"
    assert rules_by_name(hourly)["input drift"]["for"] == "1h"


def test_user_text_cannot_inject_templates():
    rules = rules_by_name(prometheus_rules([monitor("web-drift", EVERY_KIND)]))
    odd = next(r for name, r in rules.items() if name.startswith("quotes"))
    assert "{{ $labels.x }}" not in odd["annotations"]["summary"]
    assert "{{ $value }}" in odd["annotations"]["summary"]


@needs_promtool
def test_promtool_accepts_the_file(tmp_path):
    monitors = [
        monitor("web-drift", EVERY_KIND),
        monitor("api.slo_2", EVERY_KIND, schedule="0 9 * * mon-fri", deployment="api"),
    ]
    path = tmp_path / "modelyard.rules.yml"
    path.write_text(render_prometheus_rules(monitors), encoding="utf-8")
    checked = subprocess.run(
        [PROMTOOL, "check", "rules", str(path)], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 32 rules found" in checked.stdout


FIRING = """
window: 1h
rules:
  - name: input drift
    drift_share: {above: 0.3}
    for: 2
  - name: errors
    error_rate: {above: 0.01}
    trigger: retrain-demand
"""

LABELS = {"monitor": "web-drift", "deployment": "web"}
PLANE = 'deployment="web",variant="blue",version="3",protocol="oip"'
UNIT_TEST = {
    "rule_files": ["rules.yml"],
    "evaluation_interval": "1m",
    "tests": [
        {
            "interval": "1m",
            "input_series": [
                {
                    "series": 'modelyard_drift_share{monitor="web-drift",deployment="web",'
                    'model="demand",version="3",variant="blue"}',
                    "values": "0.1x5 0.5x60",  # breaching from minute 5
                },
                {
                    "series": f'modelyard_inference_requests_total{{{PLANE},status="200"}}',
                    "values": "0+100x120",
                },
                {
                    "series": f'modelyard_inference_requests_total{{{PLANE},status="500"}}',
                    "values": "0+5x120",  # 5 of 105 requests a minute: 4.8 %
                },
            ],
            "alert_rule_test": [
                {"eval_time": "15m", "alertname": "ModelyardInputDrift", "exp_alerts": []},
                {
                    "eval_time": "25m",  # 20 minutes in breach: past `for: 2` (15m)
                    "alertname": "ModelyardInputDrift",
                    "exp_alerts": [
                        {
                            "exp_labels": {
                                **LABELS,
                                "severity": "warning",
                                "rule": "input drift",
                                "model": "demand",
                                "version": "3",
                                "variant": "blue",
                            },
                            "exp_annotations": {
                                "summary": "web: input drift (drift_share) breached, value 0.5 "
                                "(monitor web-drift)",
                                "description": "modelyard rule 'input drift': drift_share "
                                "breaches when above 0.3.",
                            },
                        }
                    ],
                },
                {
                    "eval_time": "90m",
                    "alertname": "ModelyardErrors",
                    "exp_alerts": [
                        {
                            "exp_labels": {
                                **LABELS,
                                "severity": "warning",
                                "rule": "errors",
                                "trigger": "retrain-demand",
                                "variant": "blue",
                                "version": "3",
                            },
                            "exp_annotations": {
                                "summary": "web: errors (error_rate) breached, value "
                                f"{5 / 105!r} (monitor web-drift)",
                                "description": "modelyard rule 'errors': error_rate breaches "
                                "when above 0.01.",
                            },
                        }
                    ],
                },
            ],
        }
    ],
}


@needs_promtool
def test_promtool_sees_the_alerts_fire_after_for(tmp_path):
    (tmp_path / "rules.yml").write_text(
        render_prometheus_rules([monitor("web-drift", FIRING)]), encoding="utf-8"
    )
    (tmp_path / "test.yml").write_text(yaml.safe_dump(UNIT_TEST), encoding="utf-8")
    ran = subprocess.run(
        [PROMTOOL, "test", "rules", "test.yml"], capture_output=True, text=True, cwd=tmp_path
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr


def test_the_yaml_round_trips():
    text = render_prometheus_rules([monitor("web-drift", EVERY_KIND)])
    assert yaml.safe_load(text) == prometheus_rules([monitor("web-drift", EVERY_KIND)])
    assert text.startswith("# Prometheus alerting rules of modelyard monitors")
