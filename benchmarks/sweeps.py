"""Sweeps: what ``modelyard.sweep`` adds per trial over plain Optuna (issue 13, item 8).

The same objective (a quadratic in a float and an int; microseconds of work), the same
TPE sampler and seed, ``--trials`` trials (64):

1. plain Optuna: ``optuna.create_study()`` with its in-memory storage, ``study.optimize``;
2. Optuna on modelyard's journal alone: the study in the journal beside the metadata
   database (``sweep_journal.SqlJournal``), no tracking — the storage's share;
3. ``modelyard.sweep``: the journal, plus a sweep run, a child run per trial (its params,
   its value, its state tag), the best run tagged.

Overhead per trial = (variant's time - plain Optuna's) / trials, in wall-clock and in CPU
time of this process (the machine is shared: CPU time is the steadier figure). The
variants run interleaved, once per repeat, each on a fresh store; medians are reported.
Every variant must find the same best value (same seed, same sampling order).

    python benchmarks/sweeps.py                 # 64 trials, 5 repeats
    python benchmarks/sweeps.py --trials 64 --repeats 3 --parallel 2

``--parallel N`` adds ``modelyard.sweep(parallel=N)`` on local worker processes (their
start-up included; the best value may differ: parallel TPE is not deterministic).
Results print as a table and, with ``--json FILE``, as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

SEED = 7
SPACE = {
    "x": {"type": "float", "low": -10.0, "high": 10.0},
    "y": {"type": "int", "low": 0, "high": 10},
}


def loss(x: float, y: int) -> float:
    return (x - 2.0) ** 2 + 0.1 * (y - 3) ** 2


def optuna_objective(trial: Any) -> float:
    return loss(trial.suggest_float("x", -10.0, 10.0), trial.suggest_int("y", 0, 10))


def modelyard_objective(params: dict[str, Any]) -> float:
    return loss(params["x"], params["y"])


def _timed(fn: Callable[[], float]) -> tuple[float, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    best = fn()
    return time.perf_counter() - wall, time.process_time() - cpu, best


def plain_optuna(trials: int) -> float:
    import optuna

    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=SEED))
    study.optimize(optuna_objective, n_trials=trials)
    return float(study.best_value)


def journal_only(trials: int, home: Path, name: str) -> float:
    import optuna
    from optuna.storages import JournalStorage

    from modelyard.config import Settings
    from modelyard.pipelines.sweep_journal import SqlJournal

    journal = SqlJournal(Settings(home=home), name, sole_writer=True)
    study = optuna.create_study(
        study_name=name,
        storage=JournalStorage(journal),
        sampler=optuna.samplers.TPESampler(seed=SEED),
    )
    # as a sweep does: the journal written when a trial starts and when it ends
    study.optimize(
        lambda trial: (journal.flush(), optuna_objective(trial))[1],
        n_trials=trials,
        callbacks=[lambda *_: journal.flush()],
    )
    return float(study.best_value)


def modelyard_sweep(trials: int, name: str, parallel: int = 1) -> float:
    import modelyard

    result = modelyard.sweep(
        modelyard_objective,
        SPACE,
        n_trials=trials,
        sampler="tpe",
        seed=SEED,
        name=name,
        parallel=parallel,
    )
    assert result.best_value is not None
    return result.best_value


def run(trials: int, repeats: int, parallel: int, base: Path) -> dict[str, Any]:
    import optuna

    import modelyard

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    variants: dict[str, list[tuple[float, float, float]]] = {
        "optuna, in-memory storage": [],
        "optuna on modelyard's journal": [],
        "modelyard.sweep": [],
    }
    if parallel > 1:
        variants[f"modelyard.sweep, parallel={parallel} processes"] = []
    for repeat in range(repeats + 1):  # the first round warms imports, migrations, caches
        home = base / f"yard-{repeat}"
        modelyard.configure(home=home)
        rounds = {
            "optuna, in-memory storage": lambda: plain_optuna(trials),
            "optuna on modelyard's journal": lambda home=home: journal_only(trials, home, "j"),
            "modelyard.sweep": lambda: modelyard_sweep(trials, "sweep"),
        }
        if parallel > 1:
            rounds[f"modelyard.sweep, parallel={parallel} processes"] = lambda: modelyard_sweep(
                trials, "parallel", parallel
            )
        for label, fn in rounds.items():
            measured = _timed(fn)
            if repeat:
                variants[label].append(measured)
    baseline_wall = statistics.median(m[0] for m in variants["optuna, in-memory storage"])
    baseline_cpu = statistics.median(m[1] for m in variants["optuna, in-memory storage"])
    rows = []
    for label, measured in variants.items():
        wall = statistics.median(m[0] for m in measured)
        cpu = statistics.median(m[1] for m in measured)
        rows.append(
            {
                "variant": label,
                "wall_s": wall,
                "cpu_s": cpu,
                "wall_ms_per_trial": wall / trials * 1e3,
                "overhead_wall_ms_per_trial": (wall - baseline_wall) / trials * 1e3,
                "overhead_cpu_ms_per_trial": (cpu - baseline_cpu) / trials * 1e3,
                "best_values": sorted({m[2] for m in measured}),
            }
        )
    return {
        "trials": trials,
        "repeats": repeats,
        "seed": SEED,
        "python": platform.python_version(),
        "optuna": optuna.__version__,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "load_average": os.getloadavg(),
        "rows": rows,
    }


def _print(results: dict[str, Any]) -> None:
    print(
        f"{results['trials']} trials, TPE seed {results['seed']}, medians of "
        f"{results['repeats']}; Optuna {results['optuna']}, Python {results['python']}, "
        f"{results['machine']}, load {results['load_average'][0]:.1f}"
    )
    head = f"{'variant':<44} {'wall s':>7} {'cpu s':>7} {'ms/trial':>9} "
    print(head + f"{'+wall ms':>9} {'+cpu ms':>8}  best value")
    for r in results["rows"]:
        best = ", ".join(f"{v:.12g}" for v in r["best_values"])
        print(
            f"{r['variant']:<44} {r['wall_s']:7.3f} {r['cpu_s']:7.3f} "
            f"{r['wall_ms_per_trial']:9.2f} {r['overhead_wall_ms_per_trial']:9.2f} "
            f"{r['overhead_cpu_ms_per_trial']:8.2f}  {best}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--trials", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--parallel", type=int, default=1)
    parser.add_argument("--dir", type=Path, default=None, help="Where the stores go.")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-sweeps-", dir=args.dir) as tmp:
        results = run(args.trials, args.repeats, args.parallel, Path(tmp))
    _print(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    same = {tuple(r["best_values"]) for r in results["rows"] if "parallel" not in r["variant"]}
    if len(same) != 1:
        print("best values differ between variants", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
