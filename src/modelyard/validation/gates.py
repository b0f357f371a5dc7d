"""Quality gates: a candidate model must beat its rules — and the champion — on the same data.

A policy file::

    gate: demand-quality
    task: regression
    target: units
    slices: [region]
    contract: contracts/eval.yaml        # relative to this file
    behaviour:
      - {name: price_up, kind: directional, column: price, change: {multiply: 1.1},
         expect: not_increase}
    rules:
      - rmse <= 12                        # absolute
      - rmse <= champion * 1.02           # relative to the champion on the same data
      - slice rmse <= champion * 1.05     # no slice worse than the champion's by > 5%
      - fairness demographic_parity_difference <= 0.1   (binary classifiers, sensitive=)
      - contract passed
      - behaviour passed
      - latency p95_ms <= 5               # single-row prediction time
      - {rule: "mape <= 0.2", severity: warning}

Keys: ``gate`` (name), ``task``, ``target``, ``features``, ``positive``, ``slices``,
``sensitive``, ``contract``, ``behaviour``, ``rules``, ``on_missing_champion`` (``pass``:
relative rules pass when there is no champion yet, the default; ``fail``),
``min_slice_rows`` (slices smaller than this are not judged; default 30),
``latency_rows`` (default 200), ``bootstrap`` (resamples for intervals; default 200).

``run_gate`` evaluates both models, ``record_gate`` writes the verdict on the candidate
version — in the registry's ``gate_verdicts`` table, tied to the digest of the files it
judged (only this function writes there; no API takes a verdict from a client), and for
people as tags ``modelyard.gate.*``, the card's validation results, and the reports as
artifacts — and ``passed_gate`` is the promotion-policy hook:
``PromotionPolicy(gate=passed_gate)`` (what ``MODELYARD_REGISTRY_REQUIRE_GATE=true``
sets) refuses Production or ``champion`` to a version whose latest gate did not pass on
the files it holds.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import field_validator

from modelyard.artifacts import namespaces
from modelyard.errors import InvalidParameter, NotFound
from modelyard.registry.policy import GATE_STATUS_TAG, recorded_gate
from modelyard.specs import Spec, parse_spec
from modelyard.validation import metrics as m
from modelyard.validation.behaviour import BehaviouralTest, from_spec
from modelyard.validation.evaluate import TASKS, EvaluationResult, evaluate
from modelyard.validation.report import GateReport, Latency, RuleOutcome
from modelyard.validation.rules import OPS, Rule, parse_rule

TAG_STATUS = GATE_STATUS_TAG
TAG_POLICY = "modelyard.gate.policy"
TAG_SUMMARY = "modelyard.gate.summary"
TAG_DATA = "modelyard.gate.data"
TAG_CHAMPION = "modelyard.gate.champion"
TAG_REPORT = "modelyard.gate.report"
TAG_TIME = "modelyard.gate.time"


class PolicySpec(Spec):
    """A gate policy file's keys, each checked as it is read; the policy needs ``target``
    and ``rules`` (checked after, so an unknown key is named first)."""

    gate: str | None = None
    name: str | None = None
    description: str | None = None
    task: str = "regression"
    target: Any = None
    features: tuple[str, ...] | None = None
    positive: Any = None
    slices: tuple[str, ...] = ()
    sensitive: tuple[str, ...] = ()
    contract: str | None = None
    behaviour: tuple[BehaviouralTest, ...] | None = None
    behavior: tuple[BehaviouralTest, ...] | None = None  # the American spelling, also read
    rules: tuple[Rule, ...] | None = None
    on_missing_champion: str = "pass"
    min_slice_rows: int = 30
    latency_rows: int = 200
    bootstrap: int = 200

    @field_validator("task", mode="before")
    @classmethod
    def _task(cls, task: Any) -> Any:
        if task not in TASKS:
            raise InvalidParameter(
                f"task must be 'regression' or 'classification', got {task!r}", field="task"
            )
        return task

    @field_validator("features", "slices", "sensitive", mode="before")
    @classmethod
    def _columns(cls, value: Any, info: Any) -> tuple[str, ...] | None:
        names = _names(value, info.field_name)
        return (names or None) if info.field_name == "features" else names

    @field_validator("behaviour", "behavior", mode="before")
    @classmethod
    def _behaviour(cls, specs: Any) -> tuple[BehaviouralTest, ...]:
        if specs is None:
            return ()
        if not isinstance(specs, list):
            raise InvalidParameter("behaviour must be a list of tests", field="behaviour")
        return tuple(from_spec(s, f"behaviour[{i}]") for i, s in enumerate(specs))

    @field_validator("rules", mode="before")
    @classmethod
    def _rules(cls, rules: Any) -> tuple[Rule, ...]:
        if not isinstance(rules, list) or not rules:
            raise InvalidParameter("the gate policy needs rules: a list of rules", field="rules")
        return tuple(parse_rule(r, f"rules[{i}]") for i, r in enumerate(rules))

    @field_validator("on_missing_champion", mode="before")
    @classmethod
    def _on_missing(cls, value: Any) -> Any:
        if value not in ("pass", "fail"):
            raise InvalidParameter(
                "on_missing_champion must be 'pass' or 'fail'", field="on_missing_champion"
            )
        return value

    @field_validator("min_slice_rows", "latency_rows", "bootstrap", mode="before")
    @classmethod
    def _counts(cls, value: Any, info: Any) -> int:
        return _count(value, info.field_name)


@dataclass(frozen=True)
class GatePolicy:
    name: str
    task: str
    target: str
    rules: tuple[Rule, ...]
    features: tuple[str, ...] | None = None
    positive: Any = None
    slices: tuple[str, ...] = ()
    sensitive: tuple[str, ...] = ()
    contract: Path | None = None
    behaviour: tuple[BehaviouralTest, ...] = ()
    on_missing_champion: str = "pass"
    min_slice_rows: int = 30
    latency_rows: int = 200
    bootstrap: int = 200
    source: str = ""
    digest: str = field(default="", compare=False)

    @classmethod
    def from_yaml(cls, path: str | Path) -> GatePolicy:
        import yaml

        path = Path(path)
        if not path.is_file():
            raise InvalidParameter(f"gate policy {str(path)!r} does not exist", field="policy")
        text = path.read_text(encoding="utf-8")
        try:
            body = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise InvalidParameter(
                f"gate policy {str(path)!r} is not valid YAML: {exc}", field="policy"
            ) from None
        policy = cls.from_dict(body, base_dir=path.parent, source=str(path))
        digest = hashlib.sha256(text.encode()).hexdigest()
        return GatePolicy(**{**policy.__dict__, "digest": digest})

    @classmethod
    def from_dict(
        cls, body: object, *, base_dir: Path | None = None, source: str = ""
    ) -> GatePolicy:
        if not isinstance(body, Mapping):
            raise InvalidParameter("a gate policy must be a mapping of keys", field="policy")
        spec = parse_spec(PolicySpec, body, label="gate policy")
        target = spec.target
        if not isinstance(target, str) or not target:
            raise InvalidParameter("the gate policy needs target: the label column", field="target")
        if spec.rules is None:
            raise InvalidParameter("the gate policy needs rules: a list of rules", field="rules")
        contract_path = None
        if spec.contract is not None:
            contract_path = Path(spec.contract)
            if base_dir is not None and not contract_path.is_absolute():
                contract_path = base_dir / contract_path
        return cls(
            name=spec.gate or spec.name or "gate",
            task=spec.task,
            target=target,
            rules=spec.rules,
            features=spec.features,
            positive=spec.positive,
            slices=spec.slices,
            sensitive=spec.sensitive,
            contract=contract_path,
            behaviour=spec.behaviour or spec.behavior or (),
            on_missing_champion=spec.on_missing_champion,
            min_slice_rows=spec.min_slice_rows,
            latency_rows=spec.latency_rows,
            bootstrap=spec.bootstrap,
            source=source,
        )


def _names(value: Any, key: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidParameter(f"{key} must be a list of column names, got {value!r}", field=key)
    return tuple(value)


def _count(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidParameter(f"{key} must be a non-negative integer, got {value!r}", field=key)
    return value


# -- running a gate ------------------------------------------------------------------------


def run_gate(
    policy: GatePolicy,
    candidate: Any,
    data: Any,
    champion: Any = None,
    *,
    registry: Any = None,
    data_client: Any = None,
    trusted: bool = False,
) -> GateReport:
    """Evaluate ``candidate`` (and ``champion``, if any) on the same ``data`` and apply the
    policy. Models are objects or URIs (``models:/demand/4``, ``models:/demand@champion``);
    URIs need ``registry``. ``data`` is a table, a CSV/Parquet path, or a dataset version
    (``sales@3``, with ``data_client``)."""
    started = time.perf_counter()
    notes: list[str] = []
    cand_model, cand_label, cand_version = _load(candidate, registry, trusted, "candidate")
    champ_model = champ_label = champ_version = None
    if champion is not None:
        try:
            champ_model, champ_label, champ_version = _load(champion, registry, trusted, "champion")
        except NotFound as exc:
            notes.append(f"no champion: {exc}")
            champ_label = str(champion)
    frame, data_label, data_digest, data_node = _data(data, data_client)
    contract_result = None
    if policy.contract is not None:
        from modelyard.data.contracts.spec import Contract

        contract = Contract.from_yaml(policy.contract)
        contract_result = (
            data_client.check(frame, contract)
            if data_client is not None
            else contract.validate(frame)
        )
    kwargs = dict(
        target=policy.target, task=policy.task, slices=policy.slices, sensitive=policy.sensitive,
        features=policy.features, positive=policy.positive, n_bootstrap=policy.bootstrap,
        min_slice_rows=policy.min_slice_rows, log=False,
    )  # fmt: skip
    cand_eval = evaluate(cand_model, frame, behaviour=policy.behaviour, **kwargs)
    champ_eval = evaluate(champ_model, frame, **kwargs) if champ_model is not None else None
    latency = None
    if any(r.kind == "latency" for r in policy.rules):
        features = (
            frame[list(policy.features)] if policy.features else frame.drop(columns=[policy.target])
        )
        latency = measure_latency(cand_model, features, rows=policy.latency_rows)
    outcomes = [
        _judge(rule, policy, cand_eval, champ_eval, contract_result, latency)
        for rule in policy.rules
    ]
    return GateReport(
        policy=policy.name,
        candidate=cand_label,
        champion=champ_label,
        data=data_label,
        data_digest=data_digest,
        data_node=data_node,
        outcomes=outcomes,
        candidate_eval=cand_eval,
        champion_eval=champ_eval,
        latency=latency,
        contract=contract_result,
        candidate_version=cand_version,
        champion_version=champ_version,
        notes=notes,
        duration_s=time.perf_counter() - started,
        created_at=int(time.time() * 1000),
    )


def _load(
    model: Any, registry: Any, trusted: bool, role: str
) -> tuple[Any, str, tuple[str, int] | None]:
    """(model object, label, (name, version) when it is a registered version)."""
    if not isinstance(model, str):
        return model, type(model).__name__, None
    if registry is None:
        raise InvalidParameter(
            f"the {role} {model!r} is a URI; pass registry= to resolve it", field=role
        )
    resolved = registry.resolve(model)
    loaded = registry.load_model(model, trusted=trusted)
    version = resolved.version
    if version is None:
        return loaded, model, None
    label = model if model == version.uri else f"{model} (= {version.uri})"
    return loaded, label, (version.name, version.version)


def _data(data: Any, data_client: Any) -> tuple[Any, str, str, str | None]:
    """(frame, label, content digest, lineage node when it is a dataset version)."""
    if isinstance(data, str) and data_client is not None and not Path(data).exists():
        from modelyard.data.client import dataset_node

        version = data_client.resolve(data)
        node = dataset_node(version.name, version.digest)
        return data_client.load(version), version.ref, version.digest, node
    from modelyard.data.contracts.checks import as_frame
    from modelyard.data.digest import TableHasher
    from modelyard.data.sources import to_arrow

    frame, label = as_frame(data)
    table = to_arrow(frame)
    hasher = TableHasher(table.schema)
    for batch in table.to_batches():
        hasher.update(batch)
    return frame, label, hasher.hexdigest(), None


def measure_latency(model: Any, X: Any, *, rows: int = 200, seed: int = 0) -> Latency:
    """Time ``rows`` single-row predictions (after a warm-up) and one batch prediction."""
    import numpy as np

    rows = max(1, min(rows, len(X)))
    sample = X.sample(n=rows, random_state=seed) if len(X) > rows else X
    single = [sample.iloc[[i]] for i in range(rows)]
    for frame in single[:3]:
        model.predict(frame)
    times = np.empty(rows)
    for i, frame in enumerate(single):
        start = time.perf_counter_ns()
        model.predict(frame)
        times[i] = (time.perf_counter_ns() - start) / 1e6
    batch = X.iloc[: min(len(X), 10_000)]
    start = time.perf_counter_ns()
    model.predict(batch)
    per_row = (time.perf_counter_ns() - start) / 1e6 / max(len(batch), 1)
    p50, p95, p99 = np.percentile(times, [50, 95, 99])
    return Latency(rows, float(p50), float(p95), float(p99), float(per_row))


def _judge(
    rule: Rule,
    policy: GatePolicy,
    cand: EvaluationResult,
    champ: EvaluationResult | None,
    contract: Any,
    latency: Latency | None,
) -> RuleOutcome:
    def outcome(passed: bool, observed: Any, threshold: Any, detail: str = "") -> RuleOutcome:
        return RuleOutcome(
            rule.text,
            rule.kind,
            bool(passed),
            _fmt(observed),
            _fmt(threshold),
            detail,
            rule.severity,
        )

    if rule.kind == "contract":
        if contract is None:
            raise InvalidParameter(
                "rule 'contract passed' needs contract: in the policy", field="contract"
            )
        failed = [c.check for c in contract.checks if c.blocking]
        return outcome(
            contract.passed,
            "passed" if contract.passed else f"{len(failed)} failed",
            "passed",
            ", ".join(failed[:5]),
        )
    if rule.kind == "behaviour":
        if not policy.behaviour:
            raise InvalidParameter(
                "rule 'behaviour passed' needs behaviour: tests in the policy", field="behaviour"
            )
        failed = [b.name for b in cand.behaviour if not b.passed]
        return outcome(
            not failed,
            f"{len(cand.behaviour) - len(failed)}/{len(cand.behaviour)} passed",
            "all pass",
            ", ".join(failed),
        )
    if rule.kind == "latency":
        assert latency is not None
        value = getattr(latency, rule.metric)
        return outcome(
            OPS[rule.op](value, rule.number), f"{value:.3f} ms", f"{rule.op} {rule.number:g} ms"
        )
    if rule.kind == "fairness":
        if not cand.fairness:
            raise InvalidParameter(
                f"rule {rule.text!r} needs sensitive: columns in the policy", field="sensitive"
            )
        worst_col, worst = max(
            ((c, getattr(f, rule.metric)) for c, f in cand.fairness.items()), key=lambda cv: cv[1]
        )
        return outcome(
            OPS[rule.op](worst, rule.number),
            worst,
            f"{rule.op} {rule.number:g}",
            f"worst: {worst_col}",
        )
    m.check_metric(rule.metric, tuple(cand.metrics), f"rule {rule.text!r}: metric")
    if rule.kind == "absolute":
        value = cand.metrics[rule.metric].value
        return outcome(OPS[rule.op](value, rule.number), value, f"{rule.op} {rule.number:g}")
    if rule.kind == "slice":
        return _judge_slices(rule, policy, cand, None, outcome)
    if champ is None:
        passed = policy.on_missing_champion == "pass"
        return outcome(
            passed, "no champion", "champion", f"on_missing_champion: {policy.on_missing_champion}"
        )
    if rule.kind == "relative":
        value, base = cand.metrics[rule.metric].value, champ.metrics[rule.metric].value
        bound = _bound(rule, base)
        return outcome(
            OPS[rule.op](value, bound), value, f"{rule.op} {bound:.4g}", f"champion {base:.4g}"
        )
    return _judge_slices(rule, policy, cand, champ, outcome)


def _judge_slices(
    rule: Rule,
    policy: GatePolicy,
    cand: EvaluationResult,
    champ: EvaluationResult | None,
    outcome: Any,
) -> RuleOutcome:
    if not cand.slices:
        raise InvalidParameter(
            f"rule {rule.text!r} needs slices: columns in the policy", field="slices"
        )
    failing: list[str] = []
    worst_gap: tuple[str, float, float] | None = None
    for column, slices in cand.slices.items():
        theirs = {s.value: s for s in (champ.slices.get(column, []) if champ else [])}
        for s in slices:
            if s.rows < policy.min_slice_rows:
                continue
            value = s.metrics[rule.metric]
            if champ is None:
                bound = float(rule.number)  # type: ignore[arg-type]
            else:
                other = theirs.get(s.value)
                if other is None or math.isnan(other.metrics[rule.metric]):
                    continue  # the champion never saw this slice: nothing to compare
                bound = _bound(rule, other.metrics[rule.metric])
            if not OPS[rule.op](value, bound):
                failing.append(f"{column}={s.value} ({value:.4g} vs {bound:.4g})")
                if worst_gap is None or abs(value - bound) > abs(worst_gap[1] - worst_gap[2]):
                    worst_gap = (f"{column}={s.value}", value, bound)
    observed = "all slices" if not failing else f"{len(failing)} slice(s) fail"
    threshold = f"{rule.op} {'champion' if champ else ''}{_factor_text(rule)}".strip()
    return outcome(not failing, observed, threshold, "; ".join(failing[:5]))


def _bound(rule: Rule, base: float) -> float:
    if rule.champion_op is None:
        return base
    factor = float(rule.factor or 0)
    return {"*": base * factor, "+": base + factor, "-": base - factor}[rule.champion_op]


def _factor_text(rule: Rule) -> str:
    if rule.kind in ("slice", "absolute"):
        return f"{rule.number:g}"
    return f" {rule.champion_op} {rule.factor:g}" if rule.champion_op else ""


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4g}"
    return str(value)


# -- recording the verdict -----------------------------------------------------------------


def record_gate(report: GateReport, registry: Any) -> str | None:
    """Write the verdict on the candidate version: ``modelyard.gate.*`` tags (audited),
    the card's validation results, and the Markdown/JSON/JUnit reports as artifacts under
    ``validation/gates/<model>/<version>/<time>/``. Returns that artifact folder, or None
    when the candidate is not a registered version."""
    if report.candidate_version is None:
        return None
    name, version = report.candidate_version
    folder = f"{namespaces.VALIDATION}/gates/{name}/{version}/{report.created_at}"
    artifacts = registry.artifacts
    artifacts.log_bytes(f"{folder}/report.md", report.to_markdown().encode())
    artifacts.log_bytes(
        f"{folder}/report.json", json.dumps(report.to_dict(), indent=2, default=str).encode()
    )
    artifacts.log_bytes(f"{folder}/junit.xml", report.to_junit_xml().encode())
    tags = {
        TAG_STATUS: "passed" if report.passed else "failed",
        TAG_POLICY: report.policy,
        TAG_SUMMARY: report.summary()[:7900],
        TAG_DATA: f"{report.data[:7800]} (digest {report.data_digest[:16]})",
        TAG_CHAMPION: report.champion or "",
        TAG_REPORT: folder,
        TAG_TIME: str(report.created_at),
    }
    registry.record_gate_verdict(
        name,
        version,
        passed=report.passed,
        policy=report.policy,
        summary=report.summary()[:7900],
        report=folder,
        created_at=report.created_at,
    )
    for key, value in tags.items():
        registry.set_model_version_tag(name, version, key, value)
    if report.data_node is not None:  # the lineage graph: which data judged this version
        from modelyard.store.lineage import node, record_edges

        with registry.db.write() as conn:
            record_edges(conn, [(report.data_node, node("model", name, str(version)), "evaluated")])
    try:
        card = registry.get_card(name, version)
        results = dict(card.validation_results or {})
        results.update(
            {f"gate.{k}": v for k, v in (report.to_dict()["candidate_metrics"] or {}).items()}
        )
        results["gate"] = f"{tags[TAG_STATUS]} ({report.policy})"
        registry.update_card(name, version, validation_results=results)
    except (NotFound, InvalidParameter, AttributeError):  # pragma: no cover - cards optional
        pass
    return folder


#: The promotion-policy hook: ``PromotionPolicy(gate=passed_gate)``. Passes when the
#: version's newest verdict passed on the files it holds; otherwise says what to run.
passed_gate = recorded_gate
