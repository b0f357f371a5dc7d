"""What changed between two versions of a model: params, metrics, training data, signature.

The rows come from each version's source run (params, latest metrics, dataset inputs) and
from the version itself (signature, flavor); a version without a run has empty sections.

>>> [r for r in version_diff(registry, "churn", 2, 3) if r.differs]     # doctest: +SKIP
[DiffRow(section='metrics', key='auc', left='0.91', right='0.93', differs=True)]
"""

from __future__ import annotations

from dataclasses import dataclass

from modelyard.registry.client import RegistryClient
from modelyard.registry.entities import ModelVersion

SECTIONS = ("version", "params", "metrics", "training data", "signature")


@dataclass(frozen=True, slots=True)
class DiffRow:
    section: str
    key: str
    left: str | None
    right: str | None

    @property
    def differs(self) -> bool:
        return self.left != self.right


def _facts(registry: RegistryClient, version: ModelVersion) -> dict[str, dict[str, str]]:
    run = registry.version_run(version)
    facts: dict[str, dict[str, str]] = {s: {} for s in SECTIONS}
    facts["version"] = {
        "flavor": version.flavor or "",
        "stage": version.stage.value,
        "run": version.run_id or "",
        "created by": version.created_by,
    }
    if run is not None:
        facts["params"] = dict(run.data.params)
        facts["metrics"] = {k: f"{v:.6g}" for k, v in run.data.metrics.items()}
        facts["training data"] = {f"{d.name} ({d.context})": d.digest for d in run.inputs}
    signature = version.signature or {}
    for side in ("inputs", "outputs"):
        for i, spec in enumerate(signature.get(side) or []):
            key = f"{side[:-1]} {spec.get('name') or i}"
            facts["signature"][key] = str(spec.get("type") if spec.get("name") else spec)
    return facts


def version_diff(registry: RegistryClient, name: str, left: int, right: int) -> list[DiffRow]:
    """Every fact of both versions, section by section; ``differs`` marks the changes."""
    a = _facts(registry, registry.get_model_version(name, left))
    b = _facts(registry, registry.get_model_version(name, right))
    rows: list[DiffRow] = []
    for section in SECTIONS:
        for key in sorted(a[section].keys() | b[section].keys()):
            rows.append(DiffRow(section, key, a[section].get(key), b[section].get(key)))
    return rows
