"""Data contracts: every rule gives exact offending-row counts and a sample; bad contracts
are refused with an error naming the key."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from tests.data.conftest import sales_frame

from modelyard.data.contracts import (
    Column,
    Contract,
    ContractError,
    ContractViolation,
    Distribution,
    RowCount,
    Rule,
)
from modelyard.errors import InvalidParameter

CONTRACT = """
contract: sales
rows: {min: 10, max: 100000}
freshness: {column: day, max_age: 2d}
columns:
  order_id: {type: int, nullable: false, unique: true}
  store:    {type: int, min: 1, max: 19}
  price:    {type: float, min: 0, max: 1000, max_null_fraction: 0.1}
  units:    {type: int, min: 0}
  region:   {type: category, allowed: [north, south, east, west]}
  sku:      {type: string, pattern: "SKU-[0-9]{6}", min_length: 10, max_length: 10}
  day:      {type: datetime, min: 2024-01-01}
  promo:    {type: bool}
unique: [[order_id, day]]
rules:
  - units >= 0
  - {name: promo_needs_price, expr: "not promo or price > 0", severity: warning}
"""
NOW = pd.Timestamp("2024-04-01")


def by_check(result):
    return {c.check: c for c in result.checks}


def test_clean_data_passes_every_check(frame):
    result = Contract.from_yaml(CONTRACT).validate(frame, now=NOW)
    assert result.passed, str(result)
    assert all(c.passed for c in result.checks)
    assert len(result.checks) == 23
    assert by_check(result)["day.freshness"].observed.startswith("2024-03-30")


def test_each_rule_counts_exactly_the_offending_rows():
    frame = sales_frame(1_000)
    frame.loc[[3, 7], "order_id"] = 5  # 3 rows now share id 5
    frame.loc[[10, 11, 12], "store"] = 0
    frame.loc[20, "price"] = -1.0
    frame["sku"] = frame["sku"].astype(object)
    frame.loc[[30, 31], "sku"] = "sku-1"
    frame["region"] = frame["region"].cat.add_categories(["mars"])
    frame.loc[40:44, "region"] = "mars"
    frame.loc[50, "units"] = -3
    checks = by_check(Contract.from_yaml(CONTRACT).validate(frame, now=NOW))
    assert checks["order_id.unique"].failed_rows == 3
    assert checks["unique(order_id, day)"].failed_rows == (
        frame.duplicated(["order_id", "day"], keep=False).sum()
    )
    assert checks["store.range"].failed_rows == 3
    assert checks["price.range"].failed_rows == 1
    assert checks["sku.pattern"].failed_rows == 2 and checks["sku.length"].failed_rows == 2
    assert checks["region.allowed"].failed_rows == 5
    assert checks["units.range"].failed_rows == 1
    assert checks["rule:units >= 0"].failed_rows == 1
    sample = checks["store.range"].sample
    assert [s["row"] for s in sample] == [10, 11, 12] and sample[0]["store"] == 0
    assert checks["region.allowed"].sample[0] == {"row": 40, "region": "mars"}


def test_nulls_are_judged_by_nullability_only():
    frame = pd.DataFrame({"x": [1.0, None, 5.0, None], "y": ["a", None, "b", "zz"]})
    contract = Contract(
        "c",
        columns={
            "x": Column("float", nullable=False, min=0, max=10),
            "y": Column("string", allowed=("a", "b"), max_null_fraction=0.1),
        },
    )
    checks = by_check(contract.validate(frame))
    assert checks["x.not_null"].failed_rows == 2 and checks["x.range"].failed_rows == 0
    assert checks["y.allowed"].failed_rows == 1
    assert checks["y.null_fraction"].observed == 0.25 and checks["y.null_fraction"].failed_rows == 1


def test_types_are_checked_and_incompatible_checks_are_skipped():
    frame = pd.DataFrame({"n": ["1", "2"], "m": [1, 2], "d": ["2024-01-01", "x"]})
    contract = Contract(
        "c", columns={"n": Column("int", min=0), "m": Column("float"), "d": Column("datetime")}
    )
    checks = by_check(contract.validate(frame))
    assert not checks["n.type"].passed and checks["n.type"].observed.startswith("string")
    assert checks["n.range"].skipped == "column is string"
    assert checks["m.type"].passed  # ints are valid floats
    assert not checks["d.type"].passed


def test_missing_and_undeclared_columns(frame):
    contract = Contract("c", columns={"ghost": Column("int")}, strict=True)
    checks = by_check(contract.validate(frame))
    assert not checks["ghost.exists"].passed
    assert set(checks["columns.strict"].observed) == set(frame.columns)


def test_row_count_freshness_and_warnings(frame):
    contract = Contract.from_yaml(CONTRACT.replace("max: 100000", "max: 500"))
    result = contract.validate(frame, now=pd.Timestamp("2024-05-01"))
    checks = by_check(result)
    assert not checks["rows"].passed and checks["rows"].observed == 1_000
    assert not checks["day.freshness"].passed and "old" in checks["day.freshness"].observed
    frame = frame.assign(price=0.0)
    warned = by_check(Contract.from_yaml(CONTRACT).validate(frame, now=NOW))
    assert not warned["rule:promo_needs_price"].passed
    assert not warned["rule:promo_needs_price"].blocking


def test_cross_column_rules_skip_rows_with_nulls_unless_they_test_for_them():
    frame = pd.DataFrame({"a": [1.0, 5.0, None, 2.0], "b": [2.0, 3.0, 1.0, None]})
    contract = Contract(
        "c",
        rules=(
            Rule("a <= b"),
            Rule("notnull(a) and notnull(b)"),
            Rule("0 <= a <= 4", name="a_small"),
        ),
    )
    checks = by_check(contract.validate(frame))
    assert checks["rule:a <= b"].failed_rows == 1
    assert checks["rule:notnull(a) and notnull(b)"].failed_rows == 2
    assert checks["rule:a_small"].failed_rows == 1
    strings = pd.DataFrame({"region": ["north", "south"], "promo": [0, 1]})
    rule = Contract("s", rules=(Rule("region in ['north'] or promo == 0"),))
    assert (
        by_check(rule.validate(strings))["rule:region in ['north'] or promo == 0"].failed_rows == 1
    )


def test_distribution_against_a_reference_profile(data_client, frame):
    data_client.snapshot(frame, "sales")
    contract = Contract(
        "c",
        reference="sales@1",
        columns={
            "price": Column("float", distribution=Distribution(max_psi=0.1)),
            "region": Column("category", distribution=Distribution(max_psi=0.1)),
        },
    )
    same = by_check(data_client.check(frame, contract))
    assert same["price.distribution"].passed and same["price.distribution"].observed < 0.01
    rng = np.random.default_rng(1)
    shifted = frame.assign(
        price=frame["price"] * 1.5,
        region=pd.Categorical(rng.choice(["north", "north", "north", "west"], len(frame))),
    )
    moved = by_check(data_client.check(shifted, contract))
    assert not moved["price.distribution"].passed and moved["price.distribution"].observed > 0.5
    assert not moved["region.distribution"].passed
    with pytest.raises(InvalidParameter, match="needs the reference"):
        contract.validate(frame)  # no resolver for sales@1 outside the client


def test_python_and_yaml_contracts_are_the_same():
    yaml_contract = Contract.from_yaml(CONTRACT)
    again = Contract.from_yaml(yaml_contract.to_yaml())
    assert again == yaml_contract
    built = Contract(
        "sales",
        columns={"store": Column("int", min=1, max=19)},
        rows=RowCount(min=10),
    )
    assert built.to_dict() == {
        "contract": "sales",
        "rows": {"min": 10},
        "columns": {"store": {"type": "int", "min": 1, "max": 19}},
    }


def test_raise_for_failures_is_for_inference_and_pipelines(frame):
    contract = Contract("c", columns={"units": Column("int", max=1)})
    with pytest.raises(ContractViolation, match=r"units\.range") as err:
        contract.validate(frame).raise_for_failures()
    assert err.value.result.failures[0].failed_rows == (frame["units"] > 1).sum()
    assert isinstance(err.value, ValueError)


def test_contracts_validate_polars_arrow_and_files(frame, tmp_path):
    polars = pytest.importorskip("polars")
    contract = Contract("c", columns={"units": Column("int", min=0), "price": Column("float")})
    path = tmp_path / "s.parquet"
    frame.to_parquet(path, index=False)
    for data in (polars.from_pandas(frame.drop(columns=["region"])), path, str(path)):
        assert contract.validate(data).passed


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "columns: {price: {maxx: 3}}",
            r"columns.price.maxx: unknown rule 'maxx'; did you mean 'max'",
        ),
        ("columns: {price: {type: flaot}}", r"unknown type 'flaot'; did you mean 'float'"),
        ("columns: {price: {min: abc}}", r"columns.price.min must be a number, got 'abc'"),
        ("columns: {price: {nullable: 'no'}}", r"columns.price.nullable must be true or false"),
        ("columns: {sku: {pattern: '[unclosed'}}", r"columns.sku.pattern .* not a valid regular"),
        ("columns: {x: {min: 5, max: 1}}", r"min 5 is greater than max 1"),
        ("columns: {x: {allowed: north}}", r"columns.x.allowed must be a list"),
        ("columns: {d: {type: datetime, min: 5}}", r"must be an ISO date"),
        ("freshness: {column: day, max_age: soon}", r"freshness.max_age must be a duration"),
        ("rows: {min: -1}", r"rows.min must be a non-negative integer"),
        ('rules: [\'__import__("os").system("x")\']', r"only abs, isnull, notnull are allowed"),
        ("rules: ['price.real > 0']", r"uses attribute"),
        ("rules: ['price >']", r"not a valid expression"),
        ("colums: {}", r"unknown rule 'colums'; did you mean 'columns'"),
        ("- just a list", r"must be a mapping"),
        ("columns: {x: {distribution: {max_psi: -1}}}", r"max_psi must be a positive number"),
    ],
)
def test_a_bad_contract_names_the_key_and_the_fix(text, message):
    with pytest.raises(ContractError, match=message):
        Contract.from_yaml(text)


def test_a_contract_file_that_does_not_exist(tmp_path):
    with pytest.raises(ContractError, match="does not exist"):
        Contract.from_yaml(tmp_path / "nope.yaml")


def test_pandera_export_finds_the_same_failures():
    pandera = pytest.importorskip("pandera.pandas")
    frame = sales_frame(300)
    frame.loc[[1, 2], "store"] = 99
    contract = Contract.from_yaml(CONTRACT)
    schema = contract.to_pandera()
    assert isinstance(schema, pandera.DataFrameSchema)
    with pytest.raises(pandera.errors.SchemaErrors) as err:
        schema.validate(frame, lazy=True)
    cases = err.value.failure_cases
    assert set(cases.loc[cases["column"] == "store", "index"]) == {1, 2}


def test_importing_contracts_does_not_import_pandas():
    import subprocess
    import sys

    code = (
        "import sys; import modelyard.data.contracts as c; "
        "c.Contract.from_yaml('columns: {x: {type: int}}'); "
        "print('pandas' in sys.modules, 'numpy' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
