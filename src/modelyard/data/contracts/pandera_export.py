"""Export a contract as a ``pandera`` schema, for teams that already validate with pandera.

modelyard validates natively (``checks.py``): pandera's lazy validation builds a frame of
every failure case, which costs more than the check itself on a million rows, and it has
no reference-version distribution checks. The export carries everything else: types,
nullability, ranges, allowed values, patterns, lengths, uniqueness (single and compound),
row counts, null fractions, freshness and cross-column rules.

>>> import pandas as pd
>>> from modelyard.data.contracts import Column, Contract
>>> contract = Contract("sales", columns={"price": Column("float", min=0)})
>>> schema = contract.to_pandera()
>>> schema.validate(pd.DataFrame({"price": [1.0, 2.5]}), lazy=True)["price"].tolist()
[1.0, 2.5]
"""

from __future__ import annotations

import time
from typing import Any

from modelyard.data.contracts.expressions import parse
from modelyard.data.contracts.spec import Column, Contract
from modelyard.errors import MissingExtra

_DTYPES = {
    "int": "int64",
    "float": "float64",
    "bool": "bool",
    "datetime": "datetime64[ns]",
    "category": "category",
}


def to_pandera(contract: Contract) -> Any:
    try:
        import pandera.pandas as pa
    except ImportError as exc:
        raise MissingExtra("pandera", "data", "Exporting a contract to pandera") from exc
    columns = {name: _column(pa, name, col) for name, col in contract.columns.items()}
    checks = []
    rows = contract.rows
    if rows is not None:
        low, high = rows.min, rows.max
        checks.append(
            pa.Check(
                lambda df: (low is None or len(df) >= low) and (high is None or len(df) <= high),
                name="rows",
                error=f"row count outside [{low}, {high}]",
            )
        )
    for rule in contract.rules:
        expr = parse(rule.expr)
        checks.append(pa.Check(_rule_check(expr), name=f"rule:{rule.label}", error=rule.expr))
    if contract.freshness is not None:
        fresh = contract.freshness
        checks.append(
            pa.Check(
                lambda df: (time.time() - df[fresh.column].max().timestamp()) <= fresh.max_age_s,
                name=f"{fresh.column}.freshness",
            )
        )
    return pa.DataFrameSchema(
        columns,
        checks=checks,
        strict=contract.strict,
        unique=[list(key) for key in contract.unique] or None,
        name=contract.name,
    )


def _column(pa: Any, name: str, col: Column) -> Any:
    checks = []
    if col.min is not None and col.max is not None:
        checks.append(pa.Check.in_range(col.min, col.max))
    elif col.min is not None:
        checks.append(pa.Check.ge(col.min))
    elif col.max is not None:
        checks.append(pa.Check.le(col.max))
    if col.allowed is not None:
        checks.append(pa.Check.isin(list(col.allowed)))
    if col.pattern is not None:
        checks.append(pa.Check.str_matches(f"^(?:{col.pattern})$"))
    if col.min_length is not None or col.max_length is not None:
        checks.append(pa.Check.str_length(col.min_length, col.max_length))
    if col.max_null_fraction is not None:
        limit = col.max_null_fraction
        checks.append(
            pa.Check(
                lambda s: s.isna().mean() <= limit,
                ignore_na=False,
                name="null_fraction",
            )
        )
    return pa.Column(
        _DTYPES.get(col.type or ""),
        checks=checks,
        nullable=col.nullable,
        unique=col.unique,
        required=True,
        name=name,
    )


def _rule_check(expr: Any) -> Any:
    def check(df: Any) -> Any:
        import numpy as np

        holds = np.asarray(expr.evaluate({c: df[c] for c in expr.columns}), dtype=bool)
        if not expr.handles_nulls:
            holds |= df[list(expr.columns)].isna().any(axis=1).to_numpy()
        return holds

    return check
