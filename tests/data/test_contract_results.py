"""A contract check on a dataset version is recorded — verdict, counts, the contract's name
and content digest, who and when — with the lineage edge ``dataset --checked-->
contract_check`` in the same transaction (SQLite and PostgreSQL); a check on an ad-hoc
file or table records nothing; ``modelyard data check`` still exits 1 on a failed
contract, and ``modelyard data show`` lists the checks."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import typer
from sqlalchemy import func, select
from typer.testing import CliRunner

from modelyard.cli import data as data_cli
from modelyard.cli.main import ModelyardGroup, root
from modelyard.config import Settings
from modelyard.data import contract_checks
from modelyard.data.client import DataClient, dataset_node
from modelyard.data.contract_checks import CHECKED, contract_digest
from modelyard.data.contracts.spec import Contract
from modelyard.data.tables import dataset_contract_checks
from modelyard.errors import NotFound
from modelyard.store.lineage import edges_of

HOLDS = "contract: sales\ncolumns:\n  units: {type: int, min: 0}\n  store: {min: 1}\n"
# units has one negative value (an error) and store one zero (a warning only)
BREAKS = (
    "contract: sales\ncolumns:\n  units: {type: int, min: 0}\n"
    "  store: {min: 1, severity: warning}\nrows: {min: 10}\n"
)


@pytest.fixture(params=["sqlite", "postgres"])
def client(request, tmp_path):
    """A data client on a fresh store, once per metadata backend."""
    uri = None if request.param == "sqlite" else request.getfixturevalue("postgres_uri")
    settings = Settings(home=tmp_path / "yard", user="ana", store_uri=uri)
    client = DataClient.from_settings(settings)
    yield client
    client.db.dispose()


def write(path, units=(5, 0, 7), store=(1, 2, 3)):
    pd.DataFrame({"store": list(store), "units": list(units)}).to_parquet(path, index=False)
    return path


def contract(tmp_path, text, name="sales.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def stored_rows(client):
    with client.db.read() as conn:
        return conn.execute(select(func.count()).select_from(dataset_contract_checks)).scalar()


def test_a_check_on_a_version_is_recorded_with_its_lineage_edge(client, tmp_path):
    version = client.snapshot(write(tmp_path / "sales.parquet"), name="sales", pointer=False)
    spec = contract(tmp_path, HOLDS)
    result = client.check("sales@1", spec)
    assert result.passed and result.data == "sales@1"

    [stored] = client.contract_results("sales@1")
    assert (stored.dataset, stored.version, stored.ref) == ("sales", 1, "sales@1")
    assert stored.contract == "sales" and stored.passed
    assert stored.contract_digest == contract_digest(Contract.from_yaml(spec))
    assert (stored.checks, stored.failed, stored.warnings) == (len(result.checks), 0, 0)
    assert stored.checked_by == "ana" and stored.checked_at > 0
    assert stored.summary["num_rows"] == 3 and stored.summary["failures"] == []
    with client.db.read() as conn:
        edges = edges_of(conn, stored.node)
    assert edges == [(dataset_node("sales", version.digest), stored.node, CHECKED)]
    body = stored.to_dict()
    assert body["ref"] == "sales@1" and body["passed"] is True and body["id"] == stored.id
    json.dumps(body)  # what the UI reads is plain JSON


def test_a_failing_contract_is_recorded_as_failed_with_its_counts(client, tmp_path):
    client.snapshot(write(tmp_path / "s.parquet", units=(5, -1, 7), store=(0, 2, 3)), "sales")
    result = client.check("sales", contract(tmp_path, BREAKS))
    assert not result.passed

    [stored] = client.contract_results("sales@latest")
    assert not stored.passed
    assert stored.failed == 2  # units.range and the row count
    assert stored.warnings == 1  # store.range, severity warning
    failures = {f["check"]: f for f in stored.summary["failures"]}
    assert failures["units.range"]["failed_rows"] == 1
    assert failures["units.range"]["severity"] == "error"
    assert "FAILED" in stored.summary["text"]


def test_each_check_is_a_row_newest_first_and_an_edited_contract_has_another_digest(
    client, tmp_path
):
    client.snapshot(write(tmp_path / "sales.parquet"), name="sales", pointer=False)
    client.check("sales@1", contract(tmp_path, HOLDS))
    # the same rules laid out differently are the same contract
    flow = "{contract: sales, columns: {units: {min: 0, type: int}, store: {min: 1}}}"
    client.check("sales@1", contract(tmp_path, flow, "flow.yaml"))
    client.check("sales@1", contract(tmp_path, HOLDS.replace("min: 0", "min: 1"), "v2.yaml"))
    newest, same, first = client.contract_results("sales@1")
    assert newest.id > same.id > first.id
    assert same.contract_digest == first.contract_digest
    assert newest.contract_digest != first.contract_digest
    assert not newest.passed  # units holds a 0


def test_checks_stay_with_their_version(client, tmp_path):
    client.snapshot(write(tmp_path / "a.parquet"), name="sales", pointer=False)
    client.snapshot(write(tmp_path / "b.parquet", units=(1, 2, 3)), name="sales", pointer=False)
    client.check("sales@2", contract(tmp_path, HOLDS))
    assert client.contract_results("sales@1") == []
    assert [r.ref for r in client.contract_results("sales@2")] == ["sales@2"]
    version = client.resolve("sales@2")
    assert [r.ref for r in client.contract_results(version)] == ["sales@2"]


def test_an_ad_hoc_file_or_table_records_nothing(client, tmp_path):
    # even a file whose bytes are a stored version's: only a named version is recorded
    path = write(tmp_path / "sales.parquet")
    client.snapshot(path, name="sales", pointer=False)
    spec = contract(tmp_path, HOLDS)
    assert client.check(path, spec).passed
    assert client.check(str(path), spec).passed
    assert client.check(pd.read_parquet(path), spec).passed
    assert stored_rows(client) == 0
    assert client.contract_results("sales@1") == []


def test_a_contract_that_cannot_be_checked_records_nothing(client, tmp_path):
    client.snapshot(write(tmp_path / "sales.parquet"), name="sales", pointer=False)
    bad = contract(tmp_path, "contract: sales\ncolumns: {units: {maxx: 1}}\n")
    with pytest.raises(Exception, match="maxx"):
        client.check("sales@1", bad)
    with pytest.raises(NotFound):
        client.check("sales@9", contract(tmp_path, HOLDS))
    assert stored_rows(client) == 0


def test_the_row_and_its_edge_are_one_transaction(client, tmp_path, monkeypatch):
    client.snapshot(write(tmp_path / "sales.parquet"), name="sales", pointer=False)

    def broken(conn, edges):
        raise RuntimeError("the edge could not be written")

    monkeypatch.setattr(contract_checks, "record_edges", broken)
    with pytest.raises(RuntimeError, match="edge"):
        client.check("sales@1", contract(tmp_path, HOLDS))
    assert stored_rows(client) == 0


def test_results_of_an_unknown_version_is_not_found(client):
    with pytest.raises(NotFound, match="sales"):
        client.contract_results("sales@3")


# -- the command line -------------------------------------------------------------------


@pytest.fixture
def cli(tmp_path):
    """``modelyard --home <tmp> data ARGS…`` (the sub-app under the real root command)."""
    app = typer.Typer(cls=ModelyardGroup)
    app.callback()(root)
    app.add_typer(data_cli.app, name="data")
    app.command("other")(lambda: None)  # a group of two, as the real root is

    def invoke(*args: str):
        return CliRunner().invoke(app, ["--home", str(tmp_path / "yard"), "data", *args])

    return invoke


def test_the_cli_records_a_failed_check_exits_1_and_show_lists_it(cli, tmp_path):
    path = write(tmp_path / "sales.parquet", units=(5, -1, 7))
    assert cli("snapshot", str(path), "--name", "sales", "--no-pointer").exit_code == 0
    breaks = contract(tmp_path, BREAKS)
    out = cli("check", "sales@1", "--contract", str(breaks))
    assert out.exit_code == 1, out.output
    out = cli("check", str(path), "--contract", str(breaks))  # a file: checked, not recorded
    assert out.exit_code == 1, out.output
    empty = contract(tmp_path, "{}", "empty.yaml")
    assert cli("check", "sales@1", "--contract", str(empty)).exit_code == 0

    shown = cli("show", "sales@1")
    assert shown.exit_code == 0, shown.output
    assert "contract checks" in shown.output
    assert "FAILED" in shown.output and "passed" in shown.output
    assert "2/" in shown.output  # two failed checks of the first one
    as_json = json.loads(cli("show", "sales@1", "--json").output)
    verdicts = [r["passed"] for r in as_json["contract_results"]]
    assert verdicts == [True, False]  # newest first; the file's check is not there


def test_show_says_when_no_check_was_recorded(cli, tmp_path):
    path = write(tmp_path / "sales.parquet")
    assert cli("snapshot", str(path), "--name", "sales", "--no-pointer").exit_code == 0
    shown = cli("show", "sales@1")
    assert shown.exit_code == 0 and "no contract checks recorded" in shown.output
    assert json.loads(cli("show", "sales@1", "--json").output)["contract_results"] == []
