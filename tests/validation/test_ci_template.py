"""``modelyard init ci --github``: the workflow, and the same commands run locally."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from modelyard.errors import AlreadyExists, InvalidParameter
from modelyard.validation.ci_template import (
    GITHUB_ONLY_STEPS,
    CiOptions,
    github_workflow,
    write_github_workflow,
)

TRAIN = """
import pandas as pd
from sklearn.linear_model import Ridge

import modelyard

frame = pd.read_parquet("data/eval.parquet")
with modelyard.start_run():
    model = Ridge().fit(frame[["price", "promo"]], frame["units"])
    modelyard.log_model(model, "model", input_example=frame[["price", "promo"]].head(3),
                        registered_model_name="demand")
"""
POLICY = """
gate: demand-quality
target: units
features: [price, promo]
bootstrap: 10
latency_rows: 5
rules: [rmse <= 3, rmse <= champion * 1.02, latency p95_ms <= 1000]
"""
CONTRACT = "columns: {price: {type: float, min: 0}, units: {type: float}}\n"


def steps(text: str) -> list[dict]:
    return yaml.safe_load(text)["jobs"]["gate"]["steps"]


def test_the_workflow_tests_trains_gates_and_comments():
    text = github_workflow(CiOptions(model="churn", contract="contracts/eval.yaml"))
    body = yaml.safe_load(text)
    assert set(body[True]) == {"pull_request", "push"}  # YAML 1.1 reads `on:` as True
    assert body["permissions"]["pull-requests"] == "write"
    runs = {s.get("id"): s.get("run") for s in steps(text)}
    assert runs["tests"] == "pytest -q"
    assert runs["data"] == "modelyard data pull data/eval.parquet.dataset.yaml"
    assert runs["contract"].endswith("--contract contracts/eval.yaml")
    assert runs["gate"].startswith(
        "modelyard gate --candidate models:/churn/latest --champion models:/churn@champion"
    )
    assert "gh pr comment" in runs["comment"] and "gate-report.md" in runs["comment"]
    comment = next(s for s in steps(text) if s.get("id") == "comment")
    assert "pull_request" in comment["if"] and "always()" in comment["if"]


def test_options_are_checked_and_files_are_not_overwritten(tmp_path):
    with pytest.raises(InvalidParameter, match="train must be a one-line value"):
        CiOptions(train="python a.py\nrm -rf /")
    with pytest.raises(InvalidParameter, match="must not contain GitHub expressions"):
        CiOptions(model="${{ secrets.X }}")
    write_github_workflow(tmp_path)
    with pytest.raises(AlreadyExists, match="--force"):
        write_github_workflow(tmp_path)
    write_github_workflow(tmp_path, CiOptions(model="other"), force=True)
    assert "models:/other/latest" in (tmp_path / ".github/workflows/modelyard.yml").read_text()


def test_init_ci_command(tmp_path):
    from modelyard.cli import init, main

    app = main.app
    if not any(group.name == "init" for group in app.registered_groups):
        app.add_typer(init.app, name="init")
    runner = CliRunner()
    result = runner.invoke(
        app, ["init", "ci", "--github", "--model", "churn", "--root", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    assert "models:/churn/latest" in (tmp_path / ".github/workflows/modelyard.yml").read_text()
    assert runner.invoke(app, ["init", "ci", "--root", str(tmp_path)]).exit_code == 2
    again = runner.invoke(app, ["init", "ci", "--github", "--root", str(tmp_path)])
    assert again.exit_code == 2 and "--force" in again.stderr


@pytest.mark.slow
def test_the_workflow_commands_run_locally(tmp_path):
    """Every `run:` step except installing and commenting, in order, in a fresh project."""
    from tests.validation.conftest import demand_frame

    project = tmp_path / "project"
    (project / "data").mkdir(parents=True)
    (project / "tests").mkdir()
    (project / "contracts").mkdir()
    demand_frame(400).to_parquet(project / "data" / "eval.parquet", index=False)
    (project / "train.py").write_text(TRAIN)
    (project / "gate.yaml").write_text(POLICY)
    (project / "contracts" / "eval.yaml").write_text(CONTRACT)
    (project / "tests" / "test_smoke.py").write_text("def test_ok():\n    assert True\n")
    bin_dir = _modelyard_shim(tmp_path)
    env = {
        **os.environ,
        "PATH": os.pathsep.join(
            [str(bin_dir), str(Path(sys.executable).parent), os.environ["PATH"]]
        ),
        "MODELYARD_HOME": str(tmp_path / "yard"),
        "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
    }
    env.pop("MODELYARD_STORE_URI", None)
    env.pop("MODELYARD_ARTIFACTS_URI", None)
    _run(["modelyard", "data", "snapshot", "data/eval.parquet", "--name", "eval"], project, env)
    (project / "data" / "eval.parquet").unlink()  # CI starts from a checkout: pointer only
    options = CiOptions(contract="contracts/eval.yaml", tests="pytest -q -p no:cacheprovider tests")
    path = write_github_workflow(project, options)
    for round_ in range(2):  # the second round has a champion (version 1) to beat
        for step in steps(path.read_text()):
            if "run" not in step or step.get("id") in GITHUB_ONLY_STEPS:
                continue
            if round_ == 1 and step["id"] not in ("train", "gate"):
                continue
            _run(["bash", "-e", "-c", step["run"]], project, env)
        report = (project / "gate-report.md").read_text()
        assert report.startswith("## ✅ Quality gate"), report
        assert "<testsuite" in (project / "gate-junit.xml").read_text()
        if round_ == 0:
            assert "no champion" in report
            _set_champion(tmp_path / "yard")
    assert "(= models:/demand/1)" in (project / "gate-report.md").read_text()


def _set_champion(home: Path) -> None:
    from modelyard.config import Settings
    from modelyard.registry.client import RegistryClient

    RegistryClient.from_settings(Settings(home=home)).set_registered_model_alias(
        "demand", "champion", 1
    )


def _modelyard_shim(tmp_path: Path) -> Path:
    """A `modelyard` executable whose command tree includes data, gate and init (the
    registration lines in cli/main.py make this a plain `modelyard`)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "modelyard"
    shim.write_text(
        f"#!{sys.executable}\n"
        "from modelyard.cli import data, gate, init, main\n"
        "app = main.app\n"
        "if not any(g.name == 'data' for g in app.registered_groups):\n"
        "    app.add_typer(data.app, name='data')\n"
        "if not any(g.name == 'init' for g in app.registered_groups):\n"
        "    app.add_typer(init.app, name='init')\n"
        "if not any(c.name == 'gate' for c in app.registered_commands):\n"
        "    app.command('gate')(gate.gate)\n"
        "main.main()\n"
    )
    shim.chmod(0o755)
    return bin_dir


def _run(cmd: list[str], cwd: Path, env: dict[str, str], check: bool = True) -> None:
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=240)
    if check and done.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} exited {done.returncode}\n{done.stdout}\n{done.stderr}"
        )
