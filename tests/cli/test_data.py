"""``modelyard data …``: snapshot, pull, list, show, diff and check from the command line."""

from __future__ import annotations

import json
import sys

import pytest
from tests.data.conftest import sales_frame
from typer.testing import CliRunner


def cli_app():
    """The root app with ``data`` registered (a no-op once cli/main.py registers it)."""
    from modelyard.cli import data, main

    if not any(group.name == "data" for group in main.app.registered_groups):
        main.app.add_typer(data.app, name="data")
    return main.app


@pytest.fixture
def run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    app = cli_app()

    def invoke(*args: str):
        return runner.invoke(app, ["--home", str(tmp_path / "yard"), "data", *args])

    return invoke


@pytest.fixture
def sales(tmp_path):
    path = tmp_path / "data" / "sales.parquet"
    path.parent.mkdir()
    sales_frame(500).to_parquet(path, index=False)
    return path


CONTRACT = """
contract: sales
columns:
  store: {type: int, min: 1, max: 19}
  units: {type: int, min: 0, max: 5}
  region: {allowed: [north, south, east, west]}
"""


def test_snapshot_then_pull_restores_the_file(run, sales):
    original = sales.read_bytes()
    result = run("snapshot", str(sales), "--name", "sales", "-m", "first")
    assert result.exit_code == 0, result.output
    assert "recorded sales@1: 500 rows × 8 columns" in result.stdout
    assert "sales.parquet.dataset.yaml" in result.stdout
    again = run("snapshot", str(sales), "--name", "sales")
    assert "already recorded as sales@1" in again.stdout
    sales.unlink()
    pulled = run("pull", str(sales) + ".dataset.yaml")
    assert pulled.exit_code == 0, pulled.output
    assert "1 file(s) restored" in pulled.stdout and sales.read_bytes() == original


def test_list_show_and_diff(run, sales):
    run("snapshot", str(sales), "--name", "sales")
    sales_frame(400, seed=2).assign(units=lambda f: f["units"] * 3).to_parquet(sales, index=False)
    run("snapshot", str(sales), "--name", "sales")
    listed = run("list")
    assert listed.exit_code == 0 and "sales@2" in listed.stdout and "sales@1" in listed.stdout
    shown = run("show", "sales@1")
    assert shown.exit_code == 0 and "price" in shown.stdout and "float64" in shown.stdout
    as_json = json.loads(run("show", "sales", "--json").stdout)
    assert as_json["version"] == 2 and as_json["num_rows"] == 400
    diffed = run("diff", "sales@1", "sales@2")
    assert diffed.exit_code == 0, diffed.output
    assert "rows 500 → 400" in diffed.stdout and "units" in diffed.stdout


def test_check_prints_a_table_and_exits_1_on_failure(run, sales, tmp_path):
    contract = tmp_path / "sales.yaml"
    contract.write_text(CONTRACT)
    result = run("check", str(sales), "--contract", str(contract))
    assert result.exit_code == 1, result.output
    assert "units.range" in result.stdout and "✗" in result.stdout
    assert "FAILED" in result.stdout and "row " in result.stdout  # a sample row
    contract.write_text(CONTRACT.replace("max: 5", "max: 50"))
    ok = run("check", str(sales), "--contract", str(contract))
    assert ok.exit_code == 0, ok.output
    assert "passed" in ok.stdout
    payload = json.loads(run("check", str(sales), "-c", str(contract), "--json").stdout)
    assert payload["passed"] and len(payload["checks"]) == 5


def test_check_a_stored_version_by_reference(run, sales, tmp_path):
    run("snapshot", str(sales), "--name", "sales")
    contract = tmp_path / "sales.yaml"
    contract.write_text(CONTRACT)
    result = run("check", "sales@1", "--contract", str(contract))
    assert result.exit_code == 1 and "sales@1" in result.stdout


def test_bad_input_is_a_usage_error_naming_it(run, sales, tmp_path):
    contract = tmp_path / "bad.yaml"
    contract.write_text("columns: {units: {maxx: 3}}")
    result = run("check", str(sales), "--contract", str(contract))
    assert result.exit_code == 2
    assert "columns.units.maxx: unknown rule 'maxx'; did you mean 'max'" in result.stderr
    missing = run("check", str(sales), "--contract", str(tmp_path / "nope.yaml"))
    assert missing.exit_code == 2 and "does not exist" in missing.stderr
    assert run("snapshot", "missing.csv", "--name", "x").exit_code == 2
    assert run("show", "nope@3").exit_code == 2


@pytest.mark.parametrize("data", ["sales.csv", "sales@1"])
def test_a_missing_package_is_an_environment_error_not_a_failed_check(
    run, sales, tmp_path, monkeypatch, data
):
    sales_frame(50).to_csv(tmp_path / "sales.csv", index=False)
    run("snapshot", str(sales), "--name", "sales")
    contract = tmp_path / "sales.yaml"
    contract.write_text(CONTRACT)
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # `import pyarrow` now fails
    result = run("check", data, "--contract", str(contract))
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines() == [
        "error: Dataset snapshots and profiles needs the 'pyarrow' package: "
        "pip install 'modelyard[data]'"
    ]
