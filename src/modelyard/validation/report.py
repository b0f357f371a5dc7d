"""The outcome of a quality gate, and how it is shown: a terminal table (the CLI), Markdown
for a pull-request comment, and JUnit XML so that CI systems list each rule as a test.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any
from xml.etree import ElementTree as ET

from modelyard.validation.evaluate import EvaluationResult


@dataclass(frozen=True, slots=True)
class RuleOutcome:
    """One rule of the policy: what it demanded, what was observed, and the verdict."""

    rule: str
    kind: str
    passed: bool
    observed: str
    threshold: str
    detail: str = ""
    severity: str = "error"

    @property
    def blocking(self) -> bool:
        return not self.passed and self.severity == "error"


@dataclass(frozen=True, slots=True)
class Latency:
    """Single-row prediction times in milliseconds, and the batch cost per row."""

    rows: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    batch_ms_per_row: float


@dataclass
class GateReport:
    policy: str
    candidate: str
    champion: str | None
    data: str
    outcomes: list[RuleOutcome]
    candidate_eval: EvaluationResult
    champion_eval: EvaluationResult | None = None
    latency: Latency | None = None
    contract: Any = None  # ValidationResult
    candidate_version: tuple[str, int] | None = None
    champion_version: tuple[str, int] | None = None
    notes: list[str] = field(default_factory=list)
    data_digest: str = ""  # content digest of the evaluation rows
    data_node: str | None = None  # its lineage node, when it is a dataset version
    duration_s: float = 0.0
    created_at: int = 0

    @property
    def passed(self) -> bool:
        return not any(o.blocking for o in self.outcomes)

    @property
    def failed(self) -> list[RuleOutcome]:
        return [o for o in self.outcomes if o.blocking]

    def summary(self) -> str:
        verdict = "PASSED" if self.passed else "FAILED"
        passed = sum(o.passed for o in self.outcomes)
        text = f"gate {self.policy!r} {verdict}: {passed}/{len(self.outcomes)} rules passed"
        if self.failed:
            text += "; failed: " + "; ".join(o.rule for o in self.failed)
        return text

    def to_dict(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "passed": self.passed,
            "candidate": self.candidate,
            "champion": self.champion,
            "data": self.data,
            "data_digest": self.data_digest,
            "outcomes": [asdict(o) for o in self.outcomes],
            "candidate_metrics": _metric_values(self.candidate_eval),
            "champion_metrics": _metric_values(self.champion_eval) if self.champion_eval else None,
            "latency": asdict(self.latency) if self.latency else None,
            "contract": self.contract.to_dict() if self.contract is not None else None,
            "notes": self.notes,
            "duration_s": self.duration_s,
            "created_at": self.created_at,
        }

    # -- Markdown (a pull-request comment) ----------------------------------------------

    def to_markdown(self) -> str:
        icon = "✅" if self.passed else "❌"
        lines = [
            f"## {icon} Quality gate `{self.policy}`: {'passed' if self.passed else 'failed'}",
            "",
            f"Candidate **{self.candidate}** vs champion **{self.champion or 'none'}** on "
            f"`{self.data}` ({self.candidate_eval.rows:,} rows).",
            "",
            "| | rule | observed | threshold | detail |",
            "|---|---|---|---|---|",
        ]
        for o in self.outcomes:
            mark = "✅" if o.passed else ("❌" if o.blocking else "⚠️")
            lines.append(
                f"| {mark} | `{_md(o.rule)}` | {_md(o.observed)} | {_md(o.threshold)} | "
                f"{_md(o.detail)} |"
            )
        lines += [
            "",
            "### Metrics",
            "",
            "| metric | candidate | 95% CI | champion | change |",
            "|---|---|---|---|---|",
        ]
        champion = self.champion_eval.metrics if self.champion_eval else {}
        for name, summary in self.candidate_eval.metrics.items():
            ci = (
                f"[{_num(summary.ci_low)}, {_num(summary.ci_high)}]"
                if summary.ci_low is not None
                else ""
            )
            other = champion.get(name)
            change = ""
            if other is not None and other.value not in (0, None) and not math.isnan(other.value):
                change = f"{(summary.value - other.value) / abs(other.value):+.1%}"
            lines.append(
                f"| {name} | {_num(summary.value)} | {ci} | "
                f"{_num(other.value) if other else '—'} | {change} |"
            )
        lines += self._slices_markdown()
        if self.latency is not None:
            lat = self.latency
            lines += [
                "",
                f"**Latency** (single-row predictions, {lat.rows} rows): "
                f"p50 {lat.p50_ms:.3f} ms, p95 {lat.p95_ms:.3f} ms, p99 {lat.p99_ms:.3f} ms; "
                f"batch {lat.batch_ms_per_row * 1000:.2f} µs per row.",
            ]
        if self.candidate_eval.behaviour:
            lines += [
                "",
                "### Behavioural tests",
                "",
                "| | test | kind | failing rows | detail |",
                "|---|---|---|---|---|",
            ]
            for b in self.candidate_eval.behaviour:
                lines.append(
                    f"| {'✅' if b.passed else '❌'} | {_md(b.name)} | {b.kind} | "
                    f"{b.failed_rows}/{b.total_rows} | {_md(b.detail)} |"
                )
        if self.contract is not None:
            lines += ["", f"**Data contract**: {_md(self.contract.summary())}"]
        for note in self.notes:
            lines += ["", f"> {_md(note)}"]
        lines += ["", f"<sub>modelyard gate in {self.duration_s:.1f}s</sub>", ""]
        return "\n".join(lines)

    def _slices_markdown(self) -> list[str]:
        out: list[str] = []
        metric = self.candidate_eval.primary_metric
        for column, slices in self.candidate_eval.slices.items():
            theirs = {}
            if self.champion_eval is not None:
                theirs = {s.value: s for s in self.champion_eval.slices.get(column, [])}
            out += [
                "",
                f"### {metric} by {column}",
                "",
                f"| {column} | rows | candidate | champion |",
                "|---|---|---|---|",
            ]
            worst = self.candidate_eval.worst_slices.get(column)
            for s in slices:
                flag = " ⬅ worst" if worst is not None and s.value == worst.value else ""
                other = theirs.get(s.value)
                out.append(
                    f"| {_md(str(s.value))}{flag} | {s.rows:,} | {_num(s.metrics.get(metric))} | "
                    f"{_num(other.metrics.get(metric)) if other else '—'} |"
                )
        return out

    # -- JUnit XML (CI test reports) -----------------------------------------------------

    def to_junit_xml(self) -> str:
        """One ``<testcase>`` per rule (failures carry the observed value)."""
        suite = ET.Element(
            "testsuite",
            name=f"modelyard.gate.{self.policy}",
            tests=str(len(self.outcomes)),
            failures=str(len(self.failed)),
            errors="0",
            skipped="0",
            time=f"{self.duration_s:.3f}",
        )
        for o in self.outcomes:
            case = ET.SubElement(
                suite, "testcase", classname=f"gate.{o.kind}", name=o.rule, time="0"
            )
            if o.blocking:
                failure = ET.SubElement(
                    case, "failure", message=f"observed {o.observed}, required {o.threshold}"
                )
                failure.text = o.detail or o.rule
            elif not o.passed:
                ET.SubElement(case, "system-out").text = f"warning: observed {o.observed}"
        props = ET.SubElement(suite, "properties")
        for key, value in (
            ("candidate", self.candidate),
            ("champion", self.champion or ""),
            ("data", self.data),
        ):
            ET.SubElement(props, "property", name=key, value=value)
        root = ET.Element("testsuites")
        root.append(suite)
        ET.indent(root)
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            + ET.tostring(root, encoding="unicode")
            + "\n"
        )


def _metric_values(result: EvaluationResult | None) -> dict[str, float] | None:
    if result is None:
        return None
    return {k: v.value for k, v in result.metrics.items()}


def _num(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return f"{value:.4g}"
    return str(value)


def _md(text: Any) -> str:
    """Text safe inside a Markdown table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ")
