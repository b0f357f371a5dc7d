"""Data contracts: declare what a table must look like (YAML or Python), validate data
against it with exact counts of offending rows, reuse it at inference and in pipelines.

>>> from modelyard.data.contracts import Contract, Column
>>> contract = Contract("sales", columns={"price": Column("float", min=0, nullable=False)})
>>> import pandas as pd
>>> contract.validate(pd.DataFrame({"price": [2.5, 4.0]})).passed
True
>>> try:
...     contract.validate(pd.DataFrame({"price": [2.5, -1.0]})).raise_for_failures()
... except ValueError as exc:  # ContractViolation
...     print(exc)
data breaks contract 'sales': price.range expected in [0, ∞] on 1 rows

Importing this package loads neither pandas nor NumPy; validation does, when it runs.
"""

from __future__ import annotations

from modelyard.data.contracts.result import (
    CheckResult,
    ContractError,
    ContractViolation,
    ValidationResult,
)
from modelyard.data.contracts.spec import (
    Column,
    Contract,
    Distribution,
    Freshness,
    RowCount,
    Rule,
)

__all__ = [
    "CheckResult",
    "Column",
    "Contract",
    "ContractError",
    "ContractViolation",
    "Distribution",
    "Freshness",
    "RowCount",
    "Rule",
    "ValidationResult",
]
