"""``modelyard drift REFERENCE CURRENT``: files, dataset versions and stored profiles in;
a table, JSON or an HTML report out; exit 0 (no drift), 1 (drift) or 2 (bad usage)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from modelyard.cli.main import app

ROWS = 4_000
HOSTILE = "<script>alert(1)</script>"


def frame(rows: int = ROWS, *, seed: int = 0, shift: float = 0.0, north: float = 0.5):
    """Two numerical and one categorical column; ``shift`` moves ``price`` by that many
    standard deviations, ``north`` is the share of region ``north``."""
    rng = np.random.default_rng(seed)
    regions = np.where(rng.random(rows) < north, "north", "south")
    return pd.DataFrame(
        {
            "price": rng.normal(100 + 10 * shift, 10, rows),
            "units": rng.poisson(5, rows).astype(float),
            "region": regions,
        }
    )


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(app, ["--home", str(tmp_path / "yard"), *args])

    return invoke


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    """``reference.csv``, ``same.parquet`` (fresh draws of it) and ``shifted.parquet``
    (price up 1 σ, region's north share 50 % → 20 %: two columns of three drifted)."""
    paths = {
        "reference": tmp_path / "reference.csv",
        "same": tmp_path / "same.parquet",
        "shifted": tmp_path / "shifted.parquet",
    }
    frame(seed=10).to_csv(paths["reference"], index=False)
    frame(seed=11).to_parquet(paths["same"], index=False)
    frame(seed=12, shift=1.0, north=0.2).to_parquet(paths["shifted"], index=False)
    return paths


def test_no_drift_prints_the_table_and_exits_0(run, files) -> None:
    result = run("drift", str(files["reference"]), str(files["same"]))
    assert result.exit_code == 0, result.output
    for name in ("price", "units", "region", "dataset not drifted: 0 of 3 columns"):
        assert name in result.stdout


def test_drift_exits_1_and_names_the_drifted_columns_first(run, files) -> None:
    result = run("drift", str(files["reference"]), str(files["shifted"]))
    assert result.exit_code == 1, result.output
    assert "dataset drifted: 2 of 3 columns (66.7 %) ≥ share 50.0 %" in result.stdout
    lines = result.stdout.splitlines()
    row = {name: next(i for i, line in enumerate(lines) if f" {name} " in line)
           for name in ("price", "region", "units")}  # fmt: skip
    assert row["price"] < row["units"] and row["region"] < row["units"]


def test_json_is_the_report_document(run, files) -> None:
    result = run("drift", str(files["reference"]), str(files["shifted"]), "--json")
    assert result.exit_code == 1, result.output
    document = json.loads(result.stdout)
    assert set(document) >= {"columns", "share_drifted", "dataset_drifted"}
    assert document["dataset_drifted"] is True
    assert document["share_drifted"] == pytest.approx(2 / 3)
    for name, drifted in (("price", True), ("region", True), ("units", False)):
        column = document["columns"][name]
        assert column["drifted"] is drifted, name
        assert isinstance(column["method"], str) and isinstance(column["score"], float)
        assert isinstance(column["threshold"], float)


def test_options_choose_columns_methods_thresholds_and_the_share(run, files) -> None:
    ref, cur = str(files["reference"]), str(files["shifted"])
    only = json.loads(run("drift", ref, cur, "--json", "--column", "units").stdout)
    assert set(only["columns"]) == {"units"} and only["dataset_drifted"] is False
    chosen = run(
        "drift", ref, cur, "--json", "--method", "price=psi", "--threshold", "price=50",
        "--threshold", "region=0.9",
    )  # fmt: skip
    price = json.loads(chosen.stdout)["columns"]["price"]
    assert price["method"] == "psi" and price["threshold"] == 50.0 and price["drifted"] is False
    lenient = run("drift", ref, cur, "--share", "1")
    assert lenient.exit_code == 0, lenient.output  # 2 of 3 drifted < 100 %


def test_html_writes_a_self_contained_report(run, files, tmp_path) -> None:
    data = frame(seed=4).rename(columns={"units": HOSTILE})
    data.to_csv(tmp_path / "hostile.csv", index=False)
    out = tmp_path / "reports" / "drift.html"
    result = run("drift", str(files["reference"]), str(files["shifted"]), "--html", str(out))
    assert result.exit_code == 1, result.output
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and page.count('class="chart histogram"') == 3
    assert str(files["shifted"].name) in page
    hostile = run("drift", str(tmp_path / "hostile.csv"), str(tmp_path / "hostile.csv"),
                  "--html", str(out))  # fmt: skip
    assert hostile.exit_code == 0, hostile.output
    assert HOSTILE not in out.read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in out.read_text(encoding="utf-8")
    assert [p.name for p in out.parent.iterdir()] == ["drift.html"]  # no temporary left


def test_a_stored_reference_profile_is_a_reference(run, files, tmp_path) -> None:
    from modelyard.monitoring.profiles import ReferenceProfile

    profile = ReferenceProfile.from_table(frame(seed=10), source="reference.csv")
    path = tmp_path / "reference.profile"
    path.write_bytes(profile.to_bytes())
    calm = run("drift", str(path), str(files["same"]), "--json")
    assert calm.exit_code == 0, calm.output
    shifted = json.loads(run("drift", str(path), str(files["shifted"]), "--json").stdout)
    assert shifted["columns"]["price"]["drifted"] is True
    assert shifted["columns"]["units"]["drifted"] is False


def test_dataset_versions_are_read_from_the_store(run, files) -> None:
    for name in ("reference", "shifted"):
        frame_path = files[name]
        snap = run("data", "snapshot", str(frame_path), "--name", "sales")
        assert snap.exit_code == 0, snap.output
    result = run("drift", "sales@1", "sales@2", "--json")
    assert result.exit_code == 1, result.output
    assert json.loads(result.stdout)["columns"]["price"]["drifted"] is True
    missing = run("drift", "sales@1", "sales@9")
    assert missing.exit_code == 2 and "sales" in missing.output


def test_a_column_that_cannot_be_compared_is_named_and_counts_as_drifted(
    run, files, tmp_path
) -> None:
    frame(seed=11).drop(columns=["units"]).to_csv(tmp_path / "no_units.csv", index=False)
    result = run("drift", str(files["reference"]), str(tmp_path / "no_units.csv"))
    assert result.exit_code == 0, result.output  # 1 of 3 < 50 %
    assert "units" in result.stdout and "1 of 3 columns" in result.stdout
    document = json.loads(
        run("drift", str(files["reference"]), str(tmp_path / "no_units.csv"), "--json").stdout
    )
    assert "units" in document["errors"] and "units" not in document["columns"]


def test_a_profile_is_refused_as_the_current_data(run, files, tmp_path) -> None:
    from modelyard.monitoring.profiles import ReferenceProfile

    path = tmp_path / "reference.profile"
    path.write_bytes(ReferenceProfile.from_table(frame(seed=10), source="ref").to_bytes())
    result = run("drift", str(files["reference"]), str(path))
    assert result.exit_code == 2 and "profile" in result.output


@pytest.mark.parametrize(
    ("options", "named"),
    [
        (["--method", "price"], "--method"),
        (["--method", "=psi"], "--method"),
        (["--threshold", "price=abc"], "--threshold"),
        (["--threshold", "price=-1"], "--threshold"),
        (["--threshold", "price=nan"], "--threshold"),
        (["--share", "0"], "--share"),
        (["--share", "1.5"], "--share"),
        (["--method", "price=banana"], "banana"),
        (["--column", "nope"], "nope"),
    ],
)
def test_bad_usage_exits_2_with_one_line_naming_it(run, files, options, named) -> None:
    result = run("drift", str(files["reference"]), str(files["same"]), *options)
    assert result.exit_code == 2, result.output
    assert "error:" in result.output and named in result.output
    assert "Traceback" not in result.output


def test_a_missing_file_exits_2(run, files, tmp_path) -> None:
    result = run("drift", str(files["reference"]), str(tmp_path / "nowhere.csv"))
    assert result.exit_code == 2 and "nowhere.csv" in result.output


def test_help_imports_nothing_heavy() -> None:
    script = (
        "import sys; from modelyard.cli.main import main; sys.argv = ['modelyard', 'drift', "
        "'--help']\ntry: main()\nexcept SystemExit: pass\n"
        "print(sorted(m for m in sys.modules if m.startswith(('modelyard.', 'pandas', 'numpy'))"
        " and not m.startswith('modelyard.cli.help_format')))"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert "REFERENCE" in done.stdout and "--threshold" in done.stdout
    loaded = done.stdout.strip().splitlines()[-1]
    assert "numpy" not in loaded and "pandas" not in loaded and "monitoring" not in loaded
