"""Reproducing a run: what a run records to be re-executed, and re-executing it.

A run can be reproduced when it recorded (tags, written when the run starts):

* ``modelyard.source.git.commit`` and ``modelyard.source.git.dirty`` — the commit of the
  repository holding the run's code, and whether tracked files differed from it (a dirty
  run's code is gone: it cannot be reproduced);
* ``modelyard.source.git.root`` — that repository's folder;
* what to execute: ``modelyard.source.kind`` (``sweep``, ``pipeline``, ``script``) and
  ``modelyard.source.target`` (``/abs/path/file.py:NAME``), or a pipeline run's
  ``modelyard.pipeline.target``, or a script run's ``modelyard.source.entry_point``;
* its inputs: params (a pipeline's), the sweep's config (``sweep.json``), and the dataset
  versions and training sets it read (the run's dataset inputs: name and digest).

``sources.source_tags(target, kind)`` writes the first three for a target whose code is in
a file (the pipelines runner and sweeps call it). A plain script run gets its commit and
entry point from ``tracking.run_context``.

``reproduce(run_id)`` checks that everything needed is still there (else
``CannotReproduce``, exit 2, saying what is gone), checks out the commit in a temporary
``git worktree``, executes the same target in a child process against the same stores
(a pipeline with its cache bypassed, so every step executes again),
and compares, run by run (the run, and its trials or steps matched by name), every metric
history, the params and the dataset inputs. Metrics match bit for bit by default; ``rtol``
allows a relative difference, for models that are not deterministic.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelyard.config import Settings, load_settings
from modelyard.errors import InvalidParameter, InvalidState, NotFound
from modelyard.pipelines.runner import TAG_EXECUTOR as PIPELINE_EXECUTOR
from modelyard.pipelines.runner import TAG_TARGET as PIPELINE_TARGET
from modelyard.pipelines.sources import (
    GIT_TIMEOUT_S,
    KIND_PIPELINE,
    KIND_SCRIPT,
    KIND_SWEEP,
    TAG_GIT_ROOT,
    TAG_KIND,
    TAG_TARGET,
)
from modelyard.pipelines.sources import git as _git
from modelyard.pipelines.sources import source_tags as source_tags  # its home before
from modelyard.tracking.client import TrackingClient
from modelyard.tracking.entities import Run
from modelyard.tracking.run_context import TAG_ENTRY_POINT, TAG_GIT_COMMIT, TAG_GIT_DIRTY

TAG_REPRODUCES = "modelyard.reproduce.of"
SWEEP_CONFIG = "sweep.json"
OUTPUT_TAIL = 3000


class CannotReproduce(InvalidState):
    """Something a reproduction needs is gone (a dirty worktree at logging time, a deleted
    dataset version, no entry point); the message says what."""


# -- what to execute --------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """How to execute a run again: its kind, its code's file and name, the repository and
    commit, and what to pass."""

    kind: str
    root: Path
    commit: str
    file: Path  # relative to root
    name: str | None  # None for a script
    params: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] | None = None
    executor: str | None = None


def plan_of(run: Run, client: TrackingClient) -> Plan:
    """Everything needed to execute ``run`` again, or ``CannotReproduce`` saying what is
    missing."""
    tags = run.data.tags
    rid = run.info.run_id
    parent = tags.get("mlflow.parentRunId")
    kind = tags.get(TAG_KIND)
    if kind is None and parent and (PIPELINE_TARGET not in tags):
        raise CannotReproduce(
            f"run {rid} is a step or trial of run {parent}; reproduce that run instead",
            field="run_id",
        )
    target = tags.get(TAG_TARGET)
    if kind is None and PIPELINE_TARGET in tags:
        kind, target = KIND_PIPELINE, tags[PIPELINE_TARGET]
    if kind is None:
        entry = tags.get(TAG_ENTRY_POINT, "")
        if entry.endswith(".py"):
            kind, target = KIND_SCRIPT, entry
    if kind is None or not target:
        raise CannotReproduce(
            f"run {rid} recorded no entry point (a script, a FILE.py:NAME pipeline or "
            "sweep), so there is nothing to execute again",
            field="run_id",
        )
    commit = tags.get(TAG_GIT_COMMIT)
    if not commit:
        raise CannotReproduce(
            f"run {rid} was not logged from a git repository (no commit recorded)",
            field="run_id",
        )
    if tags.get(TAG_GIT_DIRTY) == "true":
        raise CannotReproduce(
            f"run {rid} was logged from a dirty worktree (uncommitted changes on top of "
            f"{commit[:12]}): the code that ran is not in any commit",
            field="run_id",
        )
    if kind == KIND_SCRIPT:
        file_text, name = target, None
    else:
        file_text, _, name = target.rpartition(":")
        if not file_text.endswith(".py"):
            raise CannotReproduce(
                f"run {rid}'s target {target!r} is a module, not a file in a repository",
                field="run_id",
            )
    file = Path(file_text)
    root = _root_of(tags.get(TAG_GIT_ROOT), file, commit, rid)
    try:
        relative = file.relative_to(root)
    except ValueError:
        raise CannotReproduce(
            f"run {rid}'s code {str(file)!r} is not inside the repository {str(root)!r}",
            field="run_id",
        ) from None
    if _git(["cat-file", "-e", f"{commit}:{relative.as_posix()}"], root) is None:
        raise CannotReproduce(
            f"{relative.as_posix()} is not in commit {commit[:12]} of {root}", field="run_id"
        )
    plan = Plan(kind, root, commit, relative, name)
    if kind == KIND_SWEEP:
        try:
            config = json.loads(client.read_artifact(rid, SWEEP_CONFIG))
        except NotFound:
            raise CannotReproduce(
                f"sweep run {rid} has no {SWEEP_CONFIG} artifact (its config)", field="run_id"
            ) from None
        return Plan(kind, root, commit, relative, name, config=config)
    if kind == KIND_PIPELINE:
        params = {k: json.loads(v) for k, v in run.data.params.items()}
        return Plan(
            kind,
            root,
            commit,
            relative,
            name,
            params=params,
            executor=tags.get(PIPELINE_EXECUTOR),
        )
    return plan


def _root_of(recorded: str | None, file: Path, commit: str, rid: str) -> Path:
    candidates = [Path(recorded)] if recorded else []
    if file.parent.is_dir():
        found = _git(["rev-parse", "--show-toplevel"], file.parent)
        if found:
            candidates.append(Path(found))
    for root in candidates:
        if root.is_dir() and _git(["cat-file", "-e", f"{commit}^{{commit}}"], root) is not None:
            return root
    where = recorded or str(file.parent)
    raise CannotReproduce(
        f"run {rid}'s commit {commit[:12]} is not in a repository at {where} "
        "(the repository moved, or the commit is gone)",
        field="run_id",
    )


def check_inputs(run: Run, settings: Settings) -> None:
    """Every dataset version the run read is still stored, with the same content."""
    from modelyard.data.client import DataClient

    versions = [i for i in run.inputs if i.source_type == "modelyard"]
    if not versions:
        return
    data = DataClient.from_settings(settings)
    for used in versions:
        try:
            version = data.resolve(used.source)
        except NotFound:
            raise CannotReproduce(
                f"dataset version {used.source} that run {run.info.run_id} read is deleted",
                field="dataset",
            ) from None
        if version.digest != used.digest:
            raise CannotReproduce(
                f"dataset version {used.source} now holds other data (digest "
                f"{version.digest[:12]}, the run read {used.digest[:12]})",
                field="dataset",
            )
        missing = [f.path for f in version.files if not data.artifacts.blobs.exists(f.sha256)]
        if missing:
            raise CannotReproduce(
                f"dataset version {used.source}: its files are deleted from the artifact "
                f"store ({', '.join(missing[:3])})",
                field="dataset",
            )


# -- executing again ------------------------------------------------------------------


@contextmanager
def worktree(root: Path, commit: str) -> Iterator[Path]:
    """``commit`` checked out in a temporary worktree of ``root``, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="modelyard-reproduce-") as tmp:
        path = Path(tmp) / "worktree"
        added = subprocess.run(
            ["git", "worktree", "add", "--detach", "--quiet", str(path), commit],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_S,
        )
        if added.returncode != 0:
            raise CannotReproduce(
                f"cannot check out {commit[:12]} of {root}: {added.stderr.strip()}",
                field="run_id",
            )
        try:
            yield path
        finally:
            subprocess.run(
                ["git", "worktree", "remove", "--force", str(path)],
                cwd=root,
                capture_output=True,
                timeout=GIT_TIMEOUT_S,
            )
            subprocess.run(["git", "worktree", "prune"], cwd=root, capture_output=True)


def command_for(plan: Plan, tree: Path, scratch: Path, name: str) -> list[str]:
    """The child process's command line."""
    file = tree / plan.file
    if plan.kind == KIND_SCRIPT:
        return [sys.executable, str(file)]
    cli = [sys.executable, "-m", "modelyard.cli.main"]
    target = f"{file}:{plan.name}"
    if plan.kind == KIND_SWEEP:
        config = dict(plan.config or {})
        config["name"] = name
        spec = scratch / "sweep.yaml"
        spec.write_text(json.dumps(config), encoding="utf-8")  # JSON is YAML
        return [*cli, "sweep", target, "--config", str(spec)]
    # Params go as the JSON they were recorded as: ``--param k=v`` would read a text
    # param that looks like a number as the number. ``cache=False``: a step answered from
    # the cache would not be executed again, and comparing its value would prove nothing.
    return [
        sys.executable,
        "-c",
        _RUN_PIPELINE,
        target,
        json.dumps(plan.params),
        plan.executor or "process",
    ]


_RUN_PIPELINE = (
    "import json, sys\n"
    "from modelyard.pipelines import load_target, run_pipeline\n"
    "if __name__ == '__main__':\n"
    "    run_pipeline(load_target(sys.argv[1]), json.loads(sys.argv[2]), executor=sys.argv[3],\n"
    "                 cache=False)\n"
)


def _child_env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELYARD_")}
    env["MODELYARD_HOME"] = str(settings.home.absolute())
    env["MODELYARD_STORE_URI"] = settings.resolved_store_uri()
    env["MODELYARD_ARTIFACTS_URI"] = settings.resolved_artifacts_uri()
    return env


# -- comparing --------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One compared value: a metric's history (shown by its last value), a param, or a
    dataset input."""

    run: str  # the run's name in the pair: the reproduced run itself, trial-3, train
    what: str  # "metric", "param", "input"
    key: str
    original: str
    reproduced: str
    matches: bool


@dataclass(frozen=True)
class Reproduction:
    run_id: str
    reproduced_run_id: str
    kind: str
    commit: str
    rtol: float
    rows: list[Row]

    @property
    def matches(self) -> bool:
        return all(r.matches for r in self.rows)

    @property
    def differing(self) -> list[Row]:
        return [r for r in self.rows if not r.matches]


def reproduce(run_id: str, *, settings: Settings | None = None, rtol: float = 0.0) -> Reproduction:
    """Execute run ``run_id`` again from its commit and compare what it logs.

    Raises ``CannotReproduce`` when something it needs is gone, ``InvalidState`` when the
    re-executed code fails or logs no run (the output's tail attached).
    """
    if not (isinstance(rtol, (int, float)) and 0 <= rtol < 1) or isinstance(rtol, bool):
        raise InvalidParameter(f"rtol must be in [0, 1), got {rtol!r}", field="rtol")
    settings = settings or load_settings()
    with TrackingClient.from_settings(settings) as client:
        original = client.get_run(run_id)
        plan = plan_of(original, client)
        check_inputs(original, settings)
        with worktree(plan.root, plan.commit) as tree:
            scratch = tree.parent
            name = f"{original.info.run_name or 'run'}-reproduce-{scratch.name[-8:]}"
            command = command_for(plan, tree, scratch, name)
            done = subprocess.run(
                command,
                cwd=(tree / plan.file).parent,
                env=_child_env(settings),
                capture_output=True,
                text=True,
            )
            new = _find_reproduced(client, original, plan, tree, name)
            if done.returncode != 0 or new is None:
                tail = (done.stdout + done.stderr)[-OUTPUT_TAIL:]
                what = f"exited with code {done.returncode}" if done.returncode else "logged no run"
                raise InvalidState(
                    f"the code of run {run_id} at {plan.commit[:12]} {what}:\n{tail}",
                    field="run_id",
                )
        client.set_tag(new.info.run_id, TAG_REPRODUCES, run_id)
        rows = compare_runs(client, original, new, rtol)
    return Reproduction(run_id, new.info.run_id, plan.kind, plan.commit, float(rtol), rows)


def _find_reproduced(
    client: TrackingClient, original: Run, plan: Plan, tree: Path, name: str
) -> Run | None:
    """The top-level run the child process logged: found by the worktree path it ran
    from (unique to this reproduction)."""
    file = tree / plan.file
    if plan.kind == KIND_SCRIPT:
        key, value = TAG_ENTRY_POINT, str(file.resolve())
    elif plan.kind == KIND_PIPELINE:
        key, value = PIPELINE_TARGET, f"{file.resolve()}:{plan.name}"
    else:
        key, value = TAG_TARGET, f"{file.resolve()}:{plan.name}"
    experiments = [original.info.experiment_id]
    if plan.kind == KIND_SWEEP and plan.config and plan.config.get("experiment"):
        found = client.get_experiment_by_name(str(plan.config["experiment"]))
        if found is not None:
            experiments.append(found.experiment_id)
    escaped = value.replace("'", "\\'")
    runs = client.search_runs(
        experiments, f"tags.`{key}` = '{escaped}'", max_results=100, order_by=["start_time ASC"]
    ).items
    top = [r for r in runs if not r.data.tags.get("mlflow.parentRunId")]
    return top[0] if top else None


def compare_runs(client: TrackingClient, original: Run, new: Run, rtol: float) -> list[Row]:
    """Rows for the two runs and for their children matched by run name."""
    rows = _compare_pair(client, "(run)", original, new, rtol)
    old_children = _children(client, original)
    new_children = _children(client, new)
    for label in sorted(set(old_children) | set(new_children), key=_natural):
        a, b = old_children.get(label), new_children.get(label)
        if a is None or b is None:
            rows.append(
                Row(
                    label,
                    "run",
                    "(run)",
                    "present" if a else "missing",
                    "present" if b else "missing",
                    False,
                )
            )
            continue
        rows.extend(_compare_pair(client, label, a, b, rtol))
    return rows


def _natural(label: str) -> tuple[str, int]:
    head, _, tail = label.rpartition("-")
    return (head, int(tail)) if tail.isdigit() else (label, -1)


def _children(client: TrackingClient, run: Run) -> dict[str, Run]:
    found = client.search_runs(
        [run.info.experiment_id],
        f"tags.`mlflow.parentRunId` = '{run.info.run_id}'",
        max_results=50_000,
    ).items
    return {r.info.run_name or r.info.run_id: r for r in found}


def _compare_pair(client: TrackingClient, label: str, a: Run, b: Run, rtol: float) -> list[Row]:
    rows: list[Row] = []
    for key in sorted(set(a.data.metrics) | set(b.data.metrics)):
        old = _history(client, a, key)
        new = _history(client, b, key)
        rows.append(
            Row(label, "metric", key, _shown(old), _shown(new), _same_history(old, new, rtol))
        )
    for key in sorted(set(a.data.params) | set(b.data.params)):
        va, vb = a.data.params.get(key), b.data.params.get(key)
        rows.append(Row(label, "param", key, _text(va), _text(vb), va == vb))
    old_inputs = {i.name: i.digest for i in a.inputs}
    new_inputs = {i.name: i.digest for i in b.inputs}
    for key in sorted(set(old_inputs) | set(new_inputs)):
        da, db = old_inputs.get(key), new_inputs.get(key)
        rows.append(Row(label, "input", key, _short(da), _short(db), da == db))
    return rows


def _history(client: TrackingClient, run: Run, key: str) -> list[tuple[int, float]]:
    if key not in run.data.metrics:
        return []
    points = client.get_metric_history(run.info.run_id, key)
    return [(p.step, p.value) for p in sorted(points, key=lambda p: (p.step, p.timestamp))]


def _same_history(
    a: Sequence[tuple[int, float]], b: Sequence[tuple[int, float]], rtol: float
) -> bool:
    if len(a) != len(b) or not a:
        return False
    return all(sa == sb and _close(va, vb, rtol) for (sa, va), (sb, vb) in zip(a, b, strict=True))


def _close(a: float, b: float, rtol: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if rtol == 0:
        return a == b
    return math.isclose(a, b, rel_tol=rtol, abs_tol=0.0)


def _shown(points: Sequence[tuple[int, float]]) -> str:
    if not points:
        return "—"
    last = repr(points[-1][1])
    return last if len(points) == 1 else f"{last} ({len(points)} points)"


def _text(value: str | None) -> str:
    return "—" if value is None else value


def _short(digest: str | None) -> str:
    return "—" if digest is None else digest[:12]
