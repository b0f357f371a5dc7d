"""The outcome of validating data against a contract: one record per expectation.

Row-level checks carry the exact number of offending rows and a sample of them (row
position, index label and the values involved); table-level checks (row count,
freshness, type, distribution) carry what was observed instead.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from modelyard.errors import InvalidParameter


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One expectation. ``failed_rows`` is None for checks that are not about rows."""

    check: str  # e.g. "price.range", "rows", "rule:discount <= price"
    column: str | None
    expected: str
    passed: bool
    failed_rows: int | None = None
    total_rows: int | None = None
    observed: Any = None
    sample: tuple[dict[str, Any], ...] = ()
    severity: str = "error"
    skipped: str | None = None  # why it could not run (e.g. the column is missing)

    @property
    def failed_fraction(self) -> float | None:
        if self.failed_rows is None or not self.total_rows:
            return None
        return self.failed_rows / self.total_rows

    @property
    def blocking(self) -> bool:
        """Failed with severity "error": this makes the whole validation fail."""
        return not self.passed and self.severity == "error"


@dataclass(frozen=True)
class ValidationResult:
    contract: str
    num_rows: int
    checks: tuple[CheckResult, ...]
    duration_s: float = 0.0
    data: str = ""  # what was validated (a path, a dataset ref, "DataFrame")
    warnings: tuple[str, ...] = field(default_factory=tuple)

    @property
    def passed(self) -> bool:
        return not any(c.blocking for c in self.checks)

    @property
    def failures(self) -> list[CheckResult]:
        """Failed checks, blocking ones first."""
        failed = [c for c in self.checks if not c.passed]
        return sorted(failed, key=lambda c: c.severity != "error")

    def summary(self) -> str:
        failed = [c for c in self.checks if c.blocking]
        warned = [c for c in self.checks if not c.passed and not c.blocking]
        verdict = "passed" if self.passed else "FAILED"
        text = (
            f"contract {self.contract!r} {verdict}: {len(self.checks) - len(failed) - len(warned)}"
            f"/{len(self.checks)} checks passed on {self.num_rows:,} rows"
        )
        if failed:
            text += f"; {len(failed)} failed"
        if warned:
            text += f"; {len(warned)} warning{'s' if len(warned) != 1 else ''}"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {
            "contract": self.contract,
            "passed": self.passed,
            "num_rows": self.num_rows,
            "duration_s": self.duration_s,
            "data": self.data,
            "checks": [asdict(c) for c in self.checks],
        }

    def raise_for_failures(self) -> ValidationResult:
        """Raise ``ContractViolation`` when a blocking check failed; return self otherwise.

        For inference and pipelines: ``contract.validate(batch).raise_for_failures()``.
        """
        if not self.passed:
            raise ContractViolation(self)
        return self

    def __str__(self) -> str:
        lines = [self.summary()]
        for c in self.failures:
            count = "" if c.failed_rows is None else f" ({c.failed_rows:,} rows)"
            lines.append(f"  {'✗' if c.blocking else '!'} {c.check}: expected {c.expected}{count}")
        return "\n".join(lines)


class ContractError(InvalidParameter):
    """A contract file or object that is malformed; ``field`` is the path of the key."""


class ContractViolation(InvalidParameter):
    """Data broke its contract; ``result`` holds every check (a 400 on the server)."""

    def __init__(self, result: ValidationResult) -> None:
        first = result.failures[0]
        count = "" if first.failed_rows is None else f" on {first.failed_rows:,} rows"
        more = len([c for c in result.checks if c.blocking]) - 1
        tail = f" and {more} more check{'s' if more != 1 else ''}" if more > 0 else ""
        super().__init__(
            f"data breaks contract {result.contract!r}: {first.check} expected "
            f"{first.expected}{count}{tail}",
            field=first.column or first.check,
        )
        self.result = result
