"""``modelyard gate``: exit 0 when the candidate passes, 1 when it fails, 2 for bad usage;
reports are written and the verdict is recorded on the candidate version."""

from __future__ import annotations

import pytest
from tests.validation.conftest import champion_and_candidate, demand, yard  # noqa: F401
from typer.testing import CliRunner

POLICY = """
gate: demand-quality
target: units
features: [price, promo]
slices: [region]
bootstrap: 20
latency_rows: 10
rules:
  - rmse <= champion * 1.02
  - slice rmse <= champion * 1.05
  - latency p95_ms <= 1000
"""


def cli_app():
    """The root app with ``gate`` and ``data`` registered (no-ops once cli/main.py does)."""
    from tests.cli.test_data import cli_app as with_data

    from modelyard.cli import gate

    app = with_data()
    if not any(c.name == "gate" for c in app.registered_commands):
        app.command("gate")(gate.gate)
    return app


@pytest.fixture
def run(tmp_path, champion_and_candidate, demand):  # noqa: F811
    (tmp_path / "gate.yaml").write_text(POLICY)
    demand.to_parquet(tmp_path / "eval.parquet", index=False)
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(cli_app(), ["--home", str(tmp_path / "yard"), "gate", *args])

    return invoke


def args(tmp_path, candidate: str, champion: str = "models:/demand@champion") -> list[str]:
    return [
        "--candidate", candidate, "--champion", champion,
        "--data", str(tmp_path / "eval.parquet"), "--policy", str(tmp_path / "gate.yaml"),
    ]  # fmt: skip


def test_a_passing_candidate_exits_0_and_writes_the_reports(run, tmp_path, yard):  # noqa: F811
    result = run(
        *args(tmp_path, "models:/demand/2"),
        "--report", str(tmp_path / "out" / "gate.md"),
        "--junit", str(tmp_path / "out" / "gate.xml"),
        "--json", str(tmp_path / "out" / "gate.json"),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "PASSED: 3/3 rules passed" in result.stdout
    assert "rmse <= champion * 1.02" in result.stdout
    assert (tmp_path / "out" / "gate.md").read_text().startswith("## ✅ Quality gate")
    assert "<testsuite" in (tmp_path / "out" / "gate.xml").read_text()
    assert yard[1].get_model_version("demand", 2).tags["modelyard.gate.status"] == "passed"


def test_a_worse_candidate_exits_1(run, tmp_path, yard):  # noqa: F811
    result = run(*args(tmp_path, "models:/demand/1", "models:/demand/2"), "--no-record")
    assert result.exit_code == 1, result.output
    assert "FAILED" in result.stdout and "✗" in result.stdout
    assert "modelyard.gate.status" not in yard[1].get_model_version("demand", 1).tags


def test_usage_errors_exit_2_and_name_the_problem(run, tmp_path):
    missing_model = run(*args(tmp_path, "models:/demand/9"))
    assert missing_model.exit_code == 2 and "demand" in missing_model.stderr
    bad_uri = run(*args(tmp_path, "demand-4"))
    assert bad_uri.exit_code == 2 and "models:/NAME/VERSION" in bad_uri.stderr
    (tmp_path / "gate.yaml").write_text(POLICY.replace("rmse <= champion", "rsme <= champion"))
    bad_policy = run(*args(tmp_path, "models:/demand/2"))
    assert bad_policy.exit_code == 2 and "did you mean 'rmse'" in bad_policy.stderr
    (tmp_path / "gate.yaml").write_text(POLICY.replace("target: units", "target: sales"))
    bad_target = run(*args(tmp_path, "models:/demand/2"))
    assert bad_target.exit_code == 2 and "target column 'sales'" in bad_target.stderr
    missing = run("--candidate", "models:/demand/2")  # required options missing
    assert missing.exit_code == 2
