"""What each node of an answer is: a label a person reads and the facts that matter.

The graph holds only ids; the rooms' tables hold what the ids stand for. ``describe``
reads them with one query per kind of node in the answer (``IN`` lists of at most
``CHUNK`` ids), never one per node: a feature view's code hash and version, a dataset
version's numbers, source and size and its newest verdict per contract (``contracts``:
the stored checks of ``data check`` on any version with that content, a second query),
a contract check's verdict, a run's name and status, a model version's status, aliases
and newest quality-gate verdict, whether a deployment revision is the one in force
(*live*), a monitor's deployment, an alert's state. A node whose row is gone (a deleted
run) keeps its id as its label and says ``missing``; a ``dataset`` node that is no
dataset version (the content digest of files a feature view or a run read without a
snapshot) says ``versioned: false``.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, func, select, tuple_

from modelyard.data.tables import dataset_contract_checks, dataset_versions
from modelyard.features.tables import feature_definitions, feature_training_sets
from modelyard.monitoring.tables import alerts, monitors
from modelyard.registry.tables import gate_verdicts, model_aliases, model_versions
from modelyard.serving.tables import deployment_revisions, deployments
from modelyard.tracking.tables import runs

CHUNK = 500


@dataclass
class Node:
    id: str
    kind: str
    label: str
    attributes: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "label": self.label, **self.attributes}


def split(node_id: str) -> tuple[str, str]:
    kind, _, rest = node_id.partition(":")
    return kind, rest


def describe(conn: Connection, node_ids: Iterable[str]) -> dict[str, Node]:
    """A ``Node`` for each id, facts read per kind in batches."""
    out = {n: Node(n, split(n)[0], split(n)[1]) for n in node_ids}
    by_kind: dict[str, list[str]] = defaultdict(list)
    for n in out.values():
        by_kind[n.kind].append(split(n.id)[1])
    for kind, rests in by_kind.items():
        reader = _READERS.get(kind)
        if reader is None:
            continue
        for start in range(0, len(rests), CHUNK):
            for rest, (label, attrs) in reader(conn, rests[start : start + CHUNK]).items():
                target = out[f"{kind}:{rest}"]
                target.label, target.attributes = label, attrs
        for rest in rests:
            target = out[f"{kind}:{rest}"]
            if target.attributes:
                continue
            if kind == "dataset":  # content read by a room, never snapshotted as a version
                name, _, digest = rest.rpartition("@")
                target.label = f"{name} (content {digest[:12]})"
                target.attributes["versioned"] = False
            else:
                target.attributes["missing"] = True
    return out


def _definitions(kind: str) -> Callable[[Connection, Sequence[str]], dict[str, Any]]:
    def read(conn: Connection, rests: Sequence[str]) -> dict[str, Any]:
        keys = [(r.rpartition("@")[0], int(r.rpartition("@")[2])) for r in rests if _versioned(r)]
        if not keys:
            return {}
        c = feature_definitions.c
        rows = conn.execute(
            select(c.name, c.version, c.digest, c.created_at, c.created_by).where(
                c.kind == kind, tuple_(c.name, c.version).in_(keys)
            )
        )
        return {
            f"{r.name}@{r.version}": (
                f"{r.name} v{r.version}",
                {
                    "name": r.name,
                    "version": int(r.version),
                    "code_hash": r.digest,
                    "created_at": int(r.created_at),
                    "created_by": r.created_by,
                },
            )
            for r in rows
        }

    return read


def _versioned(rest: str) -> bool:
    name, at, version = rest.rpartition("@")
    return bool(at and name and version.isdigit())


def _datasets(conn: Connection, rests: Sequence[str]) -> dict[str, Any]:
    keys = [tuple(r.rsplit("@", 1)) for r in rests if "@" in r]
    if not keys:
        return {}
    c = dataset_versions.c
    rows = conn.execute(
        select(c.name, c.version, c.digest, c.num_rows, c.source, c.created_at)
        .where(tuple_(c.name, c.digest).in_(keys))
        .order_by(c.version)
    )
    found: dict[str, Any] = {}
    for r in rows:
        key = f"{r.name}@{r.digest}"
        if key not in found:
            found[key] = {
                "name": r.name,
                "versions": [],
                "digest": r.digest,
                "rows": int(r.num_rows),
                "source": r.source,
                "created_at": int(r.created_at),
            }
        found[key]["versions"].append(int(r.version))
    for key, verdicts in _newest_verdicts(conn, keys).items():
        found[key]["contracts"] = verdicts
    return {
        key: (f"{a['name']}@{','.join(str(v) for v in a['versions'])}", a)
        for key, a in found.items()
    }


def _newest_verdicts(
    conn: Connection, keys: Sequence[tuple[str, ...]]
) -> dict[str, list[dict[str, Any]]]:
    """``name@digest`` → the newest stored check per contract name on any version with
    that content, by contract name: one query, the newest row found by ``max(id)``."""
    k, v = dataset_contract_checks.c, dataset_versions.c
    joined = dataset_contract_checks.join(
        dataset_versions, (v.name == k.name) & (v.version == k.version)
    )
    newest = (
        select(func.max(k.id))
        .select_from(joined)
        .where(tuple_(v.name, v.digest).in_(keys))
        .group_by(v.name, v.digest, k.contract)
    )
    rows = conn.execute(
        select(k.id, k.name, k.version, k.contract, k.contract_digest, k.passed)
        .add_columns(k.failed, k.warnings, k.checked_at, k.checked_by, v.digest)
        .select_from(joined)
        .where(k.id.in_(newest))
        .order_by(k.contract)
    )
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        out[f"{r.name}@{r.digest}"].append(_verdict(r))
    return out


def _verdict(r: Any) -> dict[str, Any]:
    return {
        "id": int(r.id),
        "contract": r.contract,
        "contract_digest": r.contract_digest,
        "version": int(r.version),
        "passed": bool(r.passed),
        "failed": int(r.failed),
        "warnings": int(r.warnings),
        "checked_at": int(r.checked_at),
        "checked_by": r.checked_by,
    }


def _contract_checks(conn: Connection, rests: Sequence[str]) -> dict[str, Any]:
    ids = [int(r) for r in rests if r.isdigit()]
    k = dataset_contract_checks.c
    rows = conn.execute(
        select(k.id, k.name, k.version, k.contract, k.contract_digest, k.passed)
        .add_columns(k.failed, k.warnings, k.checked_at, k.checked_by)
        .where(k.id.in_(ids))
    )
    return {
        str(r.id): (
            f"{r.contract} on {r.name}@{r.version} {'passed' if r.passed else 'FAILED'}",
            {"dataset": r.name, **_verdict(r)},
        )
        for r in rows
    }


def _training_sets(conn: Connection, rests: Sequence[str]) -> dict[str, Any]:
    c = feature_training_sets.c
    rows = conn.execute(
        select(c.training_set_id, c.name, c.row_count, c.created_at, c.views).where(
            c.training_set_id.in_(rests)
        )
    )
    return {
        r.training_set_id: (
            f"{r.name} ({r.training_set_id[:8]})",
            {
                "name": r.name,
                "rows": int(r.row_count),
                "created_at": int(r.created_at),
                "views": json.loads(r.views),
            },
        )
        for r in rows
    }


def _runs(conn: Connection, rests: Sequence[str]) -> dict[str, Any]:
    c = runs.c
    rows = conn.execute(
        select(c.run_id, c.run_name, c.status, c.start_time, c.end_time, c.experiment_id).where(
            c.run_id.in_(rests)
        )
    )
    return {
        r.run_id: (
            f"{r.run_name} ({r.run_id[:8]})",
            {
                "name": r.run_name,
                "status": r.status,
                "experiment_id": str(r.experiment_id),
                "start_time": int(r.start_time),
                "end_time": None if r.end_time is None else int(r.end_time),
            },
        )
        for r in rows
    }


def _models(conn: Connection, rests: Sequence[str]) -> dict[str, Any]:
    keys = [(r.rpartition("/")[0], int(r.rpartition("/")[2])) for r in rests if _numbered(r)]
    if not keys:
        return {}
    v, a = model_versions.c, model_aliases.c
    rows = conn.execute(
        select(v.name, v.version, v.status, v.stage, v.run_id, v.creation_time).where(
            tuple_(v.name, v.version).in_(keys)
        )
    ).all()
    names = list({name for name, _ in keys})
    aliases: dict[tuple[str, int], list[str]] = defaultdict(list)
    for row in conn.execute(select(a.name, a.alias, a.version).where(a.name.in_(names))):
        aliases[(row.name, int(row.version))].append(row.alias)
    g = gate_verdicts.c
    gates: dict[tuple[str, int], dict[str, Any]] = {}  # the newest verdict per version
    for verdict in conn.execute(
        select(g.name, g.version, g.passed, g.policy, g.created_at)
        .where(tuple_(g.name, g.version).in_(keys))
        .order_by(g.id)
    ):
        gates[(verdict.name, int(verdict.version))] = {
            "passed": bool(verdict.passed),
            "policy": verdict.policy,
            "at": int(verdict.created_at),
        }
    return {
        f"{r.name}/{r.version}": (
            f"models:/{r.name}/{r.version}",
            {
                "name": r.name,
                "version": int(r.version),
                "status": r.status,
                "stage": r.stage,
                "run_id": r.run_id,
                "aliases": sorted(aliases[(r.name, int(r.version))]),
                "gate": gates.get((r.name, int(r.version))),
                "created_at": int(r.creation_time),
            },
        )
        for r in rows
    }


def _numbered(rest: str) -> bool:
    head, slash, tail = rest.rpartition("/")
    return bool(slash and head and tail.isdigit())


def _deployments(conn: Connection, rests: Sequence[str]) -> dict[str, Any]:
    c = deployments.c
    rows = conn.execute(select(c.name, c.environment, c.current_revision).where(c.name.in_(rests)))
    return {
        r.name: (
            r.name,
            {"environment": r.environment, "current_revision": int(r.current_revision)},
        )
        for r in rows
    }


def _revisions(conn: Connection, rests: Sequence[str]) -> dict[str, Any]:
    keys = [(r.rpartition("/")[0], int(r.rpartition("/")[2])) for r in rests if _numbered(r)]
    if not keys:
        return {}
    r_, d = deployment_revisions.c, deployments.c
    rows = conn.execute(
        select(r_.deployment, r_.revision, r_.action, r_.created_at, d.current_revision)
        .select_from(deployment_revisions.join(deployments, d.name == r_.deployment))
        .where(tuple_(r_.deployment, r_.revision).in_(keys))
    )
    return {
        f"{r.deployment}/{r.revision}": (
            f"{r.deployment} revision {r.revision}",
            {
                "deployment": r.deployment,
                "revision": int(r.revision),
                "action": r.action,
                "created_at": int(r.created_at),
                "live": int(r.current_revision) == int(r.revision),
            },
        )
        for r in rows
    }


def _monitors(conn: Connection, rests: Sequence[str]) -> dict[str, Any]:
    c = monitors.c
    rows = conn.execute(select(c.name, c.deployment, c.schedule).where(c.name.in_(rests)))
    return {r.name: (r.name, {"deployment": r.deployment, "schedule": r.schedule}) for r in rows}


def _alerts(conn: Connection, rests: Sequence[str]) -> dict[str, Any]:
    ids = [int(r) for r in rests if r.isdigit()]
    c = alerts.c
    rows = conn.execute(
        select(c.id, c.monitor, c.rule, c.state, c.severity, c.started_at).where(c.id.in_(ids))
    )
    return {
        str(r.id): (
            f"{r.rule} ({r.state})",
            {
                "monitor": r.monitor,
                "rule": r.rule,
                "state": r.state,
                "severity": r.severity,
                "started_at": int(r.started_at),
            },
        )
        for r in rows
    }


_READERS: dict[str, Callable[[Connection, Sequence[str]], dict[str, Any]]] = {
    "dataset": _datasets,
    "feature_view": _definitions("feature_view"),
    "feature_service": _definitions("feature_service"),
    "on_demand_feature_view": _definitions("on_demand_feature_view"),
    "contract_check": _contract_checks,
    "training_set": _training_sets,
    "run": _runs,
    "step": _runs,  # a pipeline step is recorded as a nested run
    "model": _models,
    "deployment": _deployments,
    "deployment_revision": _revisions,
    "monitor": _monitors,
    "alert": _alerts,
}
