"""``modelyard monitor``: create a monitor from a rules file, run it (exit 1 when a rule is
breached), list, show, history, live metrics, the HTML report, Prometheus rules that
promtool accepts, a reference built on demand, and delete (``modelyard scheduler``
evaluates monitors: tests/cli/test_scheduler.py)."""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import UTC, datetime

import pytest
from typer.testing import CliRunner

from modelyard.cli.main import app

from ..monitoring.monitor_yard import END, HOUR_MS, RULES, sales, yard

__all__ = ["yard"]  # the fixture, used by name
#: The end of the served hour, as --at takes it.
AT = datetime.fromtimestamp(END / 1000, UTC).isoformat()


def invoke(yard, *args: str):
    return CliRunner().invoke(app, ["--home", str(yard.settings.home), *args])


@pytest.fixture
def served(yard, tmp_path):
    """A drifted hour of traffic with feedback, and a monitor of it."""
    yard.train()
    yard.deployments.create("shop", "models:/demand/1")
    current = sales(300, seed=7, price_shift=3.0)
    yard.serve(current, version=1, start_ms=END - HOUR_MS, prefix="r")
    yard.feedback(current, prefix="r")
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    result = invoke(
        yard, "monitor", "create", "shop", "--rules", str(rules), "--schedule", "@hourly"
    )
    assert result.exit_code == 0, result.output
    return yard


def test_run_prints_the_verdicts_and_exits_1_when_a_rule_is_breached(served):
    result = invoke(served, "monitor", "run", "shop", "--at", AT)

    assert result.exit_code == 1, result.output
    assert "breached" in result.output and "BREACHED" in result.output
    assert "price drifted" in result.output
    assert "→ firing" in result.output

    again = invoke(served, "monitor", "run", "shop", "--at", AT, "--json")
    assert again.exit_code == 1
    stored = json.loads(again.output)
    assert stored["window_end"] == END and stored["status"] == "breached"


def test_list_show_and_history_tell_the_story(served):
    invoke(served, "monitor", "run", "shop", "--at", AT)

    listed = invoke(served, "monitor", "list")
    assert listed.exit_code == 0 and "shop" in listed.output and "breached" in listed.output
    shown = invoke(served, "monitor", "show", "shop")
    assert shown.exit_code == 0, shown.output
    assert "drift_share" in shown.output  # the rules as written
    assert "alert input drift" in shown.output and "firing" in shown.output
    history = invoke(served, "monitor", "history", "shop")
    assert history.exit_code == 0 and "breached" in history.output
    transitions = invoke(served, "monitor", "history", "shop", "--alerts")
    assert transitions.exit_code == 0 and "firing" in transitions.output


def test_live_metrics_with_intervals_and_coverage(served):
    result = invoke(served, "monitor", "live", "shop", "--window", "1000d", "--json")

    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    names = {(o["name"], o["labels"].get("metric")) for o in body["observations"]}
    assert ("metric", "mae") in names and ("feedback_coverage", None) in names
    mae = next(o for o in body["observations"] if o["labels"].get("metric") == "mae")
    assert mae["count"] == 150 and mae["ci_low"] < mae["value"] < mae["ci_high"]


def test_the_report_is_one_self_contained_html_file(served, tmp_path):
    invoke(served, "monitor", "run", "shop", "--at", AT)
    out = tmp_path / "report.html"

    result = invoke(served, "monitor", "report", "shop", "--window", "1000d", "--out", str(out))

    assert result.exit_code == 0, result.output
    page = out.read_text()
    assert "<svg" in page and "price" in page and "input drift" in page
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "")


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian prometheus) missing")
def test_prometheus_rules_pass_promtool(served, tmp_path):
    out = tmp_path / "alerts.yml"

    result = invoke(served, "monitor", "rules", "--prometheus", str(out))

    assert result.exit_code == 0, result.output
    checked = subprocess.run(
        ["promtool", "check", "rules", str(out)], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_a_reference_built_on_demand_from_a_dataset_version(served):
    result = invoke(served, "monitor", "reference", "models:/demand/1", "--data", "sales@1")

    assert result.exit_code == 0, result.output
    assert "3000 rows from sales@1" in result.output and "predictions" in result.output


def test_bad_usage_exits_2_with_one_line(served, tmp_path):
    missing = invoke(served, "monitor", "run", "nope")
    assert missing.exit_code == 2 and "nope" in missing.output
    bad_time = invoke(served, "monitor", "run", "shop", "--at", "yesterday")
    assert bad_time.exit_code == 2 and "ISO time" in bad_time.output
    rules = tmp_path / "bad.yaml"
    rules.write_text("rules:\n  - name: x\n    drift_shar: {above: 1}\n")
    bad_rules = invoke(served, "monitor", "create", "shop", "--name", "x", "--rules", str(rules))
    assert bad_rules.exit_code == 2 and "drift_shar" in bad_rules.output
    assert "Traceback" not in bad_rules.output


def test_delete_removes_the_monitor(served):
    assert invoke(served, "monitor", "delete", "shop").exit_code == 0
    assert "shop" not in invoke(served, "monitor", "list").output
