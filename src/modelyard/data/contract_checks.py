"""Stored contract checks: the verdict of each ``data check`` made on a dataset version.

Only a check on a stored version is recorded (``sales@3``, ``sales@latest``, a digest
prefix, a ``DatasetVersion``): a path is ad hoc even when its bytes equal a stored
version's, because a file is matched to a version by its name as well as its bytes (the
files manifest), the same bytes may be stored under several names, and checking a file
against a contract must keep working without a store (CI on a laptop checkout). Name the
version to record its check.

A row names the contract by name *and* content digest (``contract_digest``: sha256 of the
contract's canonical JSON), so a contract edited between two checks is told apart. With
the row, in the same transaction, the lineage edge ``dataset --checked--> contract_check``
is written: lineage shows each dataset node's newest verdict per contract.

>>> contract_digest(Contract.from_yaml("{contract: sales, columns: {units: {min: 0}}}"))[:12]
'65d028e669d7'
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import Connection, select

from modelyard.data.contracts.result import ValidationResult
from modelyard.data.contracts.spec import Contract
from modelyard.data.entities import DatasetVersion
from modelyard.data.tables import dataset_contract_checks
from modelyard.store.lineage import node, record_edges

#: The relation of the lineage edge from a dataset version to a check made on it.
CHECKED = "checked"
#: Failed checks kept in a row's summary (the count columns hold them all).
SUMMARY_FAILURES = 20


def contract_digest(contract: Contract) -> str:
    """sha256 of the contract's canonical JSON (its YAML shape, keys sorted): the same
    rules give the same digest however the file was laid out."""
    canon = json.dumps(contract.to_dict(), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canon.encode()).hexdigest()


def check_node(check_id: int) -> str:
    """The lineage node of one stored check: ``contract_check:<id>``."""
    return node("contract_check", str(check_id))


@dataclass(frozen=True, slots=True)
class ContractResult:
    """The stored verdict of one contract check on a dataset version.

    ``failed`` counts checks that failed with severity *error* (they make ``passed``
    false), ``warnings`` those that failed with severity *warning*; ``summary`` holds the
    one-line summary, row count, duration and the first ``SUMMARY_FAILURES`` failures.
    """

    id: int
    dataset: str
    version: int
    contract: str
    contract_digest: str
    passed: bool
    checks: int
    failed: int
    warnings: int
    checked_at: int  # epoch milliseconds
    checked_by: str
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def ref(self) -> str:
        """The version checked: ``sales@3``."""
        return f"{self.dataset}@{self.version}"

    @property
    def node(self) -> str:
        return check_node(self.id)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ref": self.ref}


def summarise(result: ValidationResult) -> dict[str, Any]:
    """The short JSON kept with a row: enough to say what failed without the samples."""
    return {
        "text": result.summary(),
        "num_rows": result.num_rows,
        "duration_s": round(result.duration_s, 6),
        "failures": [
            {
                "check": c.check,
                "column": c.column,
                "expected": c.expected,
                "severity": c.severity,
                "failed_rows": c.failed_rows,
                "skipped": c.skipped,
            }
            for c in result.failures[:SUMMARY_FAILURES]
        ],
    }


def record(
    conn: Connection,
    version: DatasetVersion,
    contract: Contract,
    result: ValidationResult,
    *,
    checked_by: str,
    checked_at: int,
) -> ContractResult:
    """Insert the verdict and its lineage edge on ``conn`` (the caller's transaction)."""
    row: dict[str, Any] = {
        "name": version.name,
        "version": version.version,
        "contract": result.contract[:256],
        "contract_digest": contract_digest(contract),
        "passed": result.passed,
        "checks": len(result.checks),
        "failed": sum(1 for c in result.checks if c.blocking),
        "warnings": sum(1 for c in result.checks if not c.passed and not c.blocking),
        "summary": json.dumps(summarise(result), default=str),
        "checked_at": checked_at,
        "checked_by": checked_by[:256],
    }
    inserted = conn.execute(dataset_contract_checks.insert().values(**row)).inserted_primary_key
    assert inserted is not None
    check_id = int(inserted[0])
    dataset = node("dataset", f"{version.name}@{version.digest}")
    record_edges(conn, [(dataset, check_node(check_id), CHECKED)])
    return _result({**row, "id": check_id})


def results_of(conn: Connection, name: str, version: int) -> list[ContractResult]:
    """The checks stored on one version, newest first."""
    c = dataset_contract_checks.c
    rows = conn.execute(
        select(dataset_contract_checks)
        .where(c.name == name, c.version == version)
        .order_by(c.id.desc())
    ).all()
    return [_result(r._asdict()) for r in rows]


def _result(row: dict[str, Any]) -> ContractResult:
    return ContractResult(
        id=int(row["id"]),
        dataset=row["name"],
        version=int(row["version"]),
        contract=row["contract"],
        contract_digest=row["contract_digest"],
        passed=bool(row["passed"]),
        checks=int(row["checks"]),
        failed=int(row["failed"]),
        warnings=int(row["warnings"]),
        checked_at=int(row["checked_at"]),
        checked_by=row["checked_by"],
        summary=json.loads(row["summary"]),
    )
