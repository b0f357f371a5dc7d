"""``modelyard features …`` end to end, in-process."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from modelyard.cli import features
from modelyard.cli.main import ModelyardGroup, root

BASE = pd.Timestamp("2024-01-01", tz="UTC")


@pytest.fixture
def cli(tmp_path):
    """``modelyard --home <tmp> features ARGS…`` (the sub-app under the real root command)."""
    app = typer.Typer(cls=ModelyardGroup)
    app.callback()(root)
    app.add_typer(features.app, name="features")
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(app, ["--home", str(tmp_path / "yard"), "features", *args])

    return invoke


@pytest.fixture
def defs(tmp_path, sales_file):
    path = tmp_path / "features.py"
    path.write_text(
        textwrap.dedent(f"""
        from modelyard.features.definitions import *

        store = Entity("store", join_keys=["store_id"])
        sales = FeatureView(
            "sales", entities=[store], ttl="1h",
            source=FileSource({str(sales_file)!r}, timestamp_field="event_ts"),
            schema=[Field("units"), Field("promo", "bool")],
        )
        demand = FeatureService("demand", features=[sales])
    """)
    )
    return path


def test_apply_list_show_and_diff(cli, defs):
    applied = cli("apply", str(defs))
    assert applied.exit_code == 0, applied.output
    assert "created" in applied.stdout and "sales" in applied.stdout
    assert "unchanged" in cli("apply", str(defs)).stdout
    listed = cli("list")
    assert "feature_service" in listed.stdout and "demand" in listed.stdout
    shown = cli("show", "sales")
    assert '"timestamp_field": "event_ts"' in shown.stdout and "version 1" in shown.stdout
    assert "no changes" in cli("diff", str(defs)).stdout
    defs.write_text(defs.read_text().replace('ttl="1h"', 'ttl="2h"'))
    diff = cli("diff", str(defs))
    assert "ttl: '1h' → '2h'" in diff.stdout
    cli("apply", str(defs))
    assert "ttl: '1h' → '2h'" in cli("diff", "sales").stdout


def test_materialize_get_training_set_and_skew(cli, defs, tmp_path):
    cli("apply", str(defs))
    done = cli("materialize", "--start", "2024-01-01", "--end", "2024-01-02")
    assert done.exit_code == 0, done.output
    assert "sales" in done.stdout
    wal = tmp_path / "yard" / "online.db-wal"  # the command closed the store: all checkpointed
    assert not wal.exists() or wal.stat().st_size == 0
    got = cli("get", "--service", "demand", "--entity", "store_id=1", "-e", "store_id=9", "--json")
    payload = json.loads(got.stdout)
    assert payload["values"]["store_id"] == [1, 9]
    assert payload["statuses"]["units"][1] == "missing"
    entities = tmp_path / "entities.csv"
    pd.DataFrame({"store_id": [1, 2], "event_timestamp": ["2024-01-01T00:20:00Z"] * 2}).to_csv(
        entities, index=False
    )
    out = tmp_path / "train.parquet"
    built = cli("training-set", str(entities), "--service", "demand", "--out", str(out))
    assert built.exit_code == 0, built.output
    assert pd.read_parquet(out)["units"].tolist() == [2.0, 5.0]
    skew = cli("skew", "--service", "demand", "--sample", "10")
    assert skew.exit_code == 0, skew.output


def test_skew_exits_1_when_online_values_differ_from_offline(cli, defs, sales_file):
    cli("apply", str(defs))
    assert cli("materialize", "--start", "2024-01-01", "--end", "2024-01-02").exit_code == 0
    frame = pd.read_parquet(sales_file)
    frame["units"] = frame["units"] + 100  # the offline source moves on; online is stale
    frame.to_parquet(sales_file, index=False)
    skew = cli("skew", "--service", "demand", "--sample", "10")
    assert skew.exit_code == 1, skew.output
    assert "≠ online" in skew.stdout


def test_without_duckdb_it_says_which_extra_and_exits_2(cli, defs, monkeypatch):
    cli("apply", str(defs))
    monkeypatch.setitem(sys.modules, "duckdb", None)  # as if it were not installed
    result = cli("materialize", "--start", "2024-01-01", "--end", "2024-01-02")
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines() == [
        "error: The feature store needs the 'duckdb' package: pip install 'modelyard[features]'"
    ]


def test_errors_are_one_line_and_exit_2(cli, defs):
    cli("apply", str(defs))
    result = cli("get", "--feature", "sales:nope", "--entity", "store_id=1")
    assert result.exit_code == 2
    assert "unknown feature 'sales:nope'" in result.stderr
    bad = cli("get", "--service", "demand", "--entity", "store_id=abc")
    assert bad.exit_code == 2 and "integer" in bad.stderr
    missing = cli("apply", "nope.py")
    assert missing.exit_code == 2 and "does not exist" in missing.stderr


def test_apply_loads_only_what_registering_needs(defs, tmp_path):
    """``features apply`` must start fast (its target is 0.5 s in a fresh process): it
    never loads the data stack, the artifact store or the materialiser."""
    script = textwrap.dedent(f"""
        import sys
        from modelyard.cli.main import main
        sys.argv = ["modelyard", "--home", {str(tmp_path / "yard")!r}, "features", "apply",
                    {str(defs)!r}]
        try:
            main()
        except SystemExit:
            pass
        heavy = ["pandas", "fsspec", "duckdb", "modelyard.features.materialize"]
        print(",".join(m for m in heavy if m in sys.modules), file=sys.stderr)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0 and "sales" in done.stdout, done.stdout + done.stderr
    assert done.stderr.strip().splitlines()[-1:] in ([], [""]), done.stderr
