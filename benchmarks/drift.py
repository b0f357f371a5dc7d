"""Drift detection: modelyard vs Evidently, side by side on the same generated data.

One invocation writes a reference and a current table (20 numerical + 5 categorical
columns, 100,000 and 1,000,000 rows per side) to Parquet once; every tool then runs in a
fresh process of its own that reads those same files, so its peak memory is its own:

1. ``modelyard.monitoring.drift(reference, current)`` on the two tables (pandas frames,
   as Evidently gets them);
2. modelyard from a stored ``ReferenceProfile``: the profile is built once from the
   reference (timed apart) and written to a file; the check reads that file and the
   current rows, as a monitor does — the training data is never reloaded;
3. Evidently (latest) ``Report([DataDriftPreset()])`` with its defaults, in its own
   virtualenv ``benchmarks/.work/evidently-venv`` (``make bench-venvs``: its pins clash
   with ours); timed inside its process, ``Dataset.from_pandas`` included.

Time is wall-clock (CPU seconds beside it: the machine is shared); "memory beyond the
data" is the peak resident set sampled every 2 ms during the check minus the resident
set once the tables were loaded (freed pages returned to the OS first), and
``ru_maxrss`` is reported too.

The current table carries injected shifts beside unshifted columns (``SHIFTS``): a
0.01 σ mean shift that must *not* be flagged, a 0.5 σ mean shift, a 1.6× scale change, a
change of skew at the same mean and standard deviation, a new category taking 15 % of
rows, and one category's share falling from 60 % to 30 %. The detection table lists
which columns each tool flags: every shifted column, and no unshifted one, is right.

    python benchmarks/drift.py            # 100k and 1M rows (Evidently ~2 minutes)
    python benchmarks/drift.py --quick    # 20k and 100k rows
    python benchmarks/drift.py --skip-evidently
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from memory import PeakRss, release_memory  # benchmarks/memory.py

HERE = Path(__file__).resolve().parent
WORK = HERE / ".work"
EVIDENTLY_PYTHON = WORK / "evidently-venv" / "bin" / "python"
NUMERICAL = [f"n{i:02d}" for i in range(20)]
CATEGORICAL = [f"c{i}" for i in range(5)]
#: column → (the shift injected into the current table, whether it must be flagged).
SHIFTS: dict[str, tuple[str, bool]] = {
    "n00": ("mean +0.01 σ", False),
    "n01": ("mean +0.5 σ", True),
    "n02": ("scale ×1.6", True),
    "n03": ("skew 0 → 1.4, same mean/std", True),
    "c0": ("new category, 15 % of rows", True),
    "c1": ("share of 'a' 60 % → 30 %", True),
}
#: The issue's targets (seconds at 1M and 100k rows, from a profile at 1M, MB beyond the
#: data at 1M, speed-up over Evidently at 1M).
TARGETS = {"1M_s": 3.0, "100k_s": 0.4, "profile_1M_s": 1.0, "beyond_mb": 300.0, "ratio": 30.0}


# ------------------------------------------------------------------------------ the data
def make_tables(rows: int, seed: int = 0):  # type: ignore[no-untyped-def]
    """The reference and current frames: the same distributions but for ``SHIFTS``.

    Unshifted numerical columns vary in shape (normal, log-normal, exponential, uniform,
    Poisson counts, a bimodal mix; four with 2 % nulls on both sides), so a tool that only
    handles bell curves shows it; unshifted categorical columns have 8, 20 and 50 levels
    with Zipf-like shares.
    """
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)

    def numerical(i: int, n: int) -> np.ndarray:
        kind = i % 6
        if kind == 0:
            x = rng.normal(50 + i, 5 + i, n)
        elif kind == 1:
            x = rng.lognormal(2, 0.6, n)
        elif kind == 2:
            x = rng.exponential(3 + i, n)
        elif kind == 3:
            x = rng.uniform(-i, 10 + i, n)
        elif kind == 4:
            x = rng.poisson(4 + i, n).astype(np.float64)
        else:
            x = np.where(rng.random(n) < 0.3, rng.normal(-2, 1, n), rng.normal(3, 1.5, n))
        if 10 <= i < 14:
            x[rng.random(n) < 0.02] = np.nan
        return x

    def zipf_codes(levels: int, n: int) -> np.ndarray:
        weights = 1 / np.arange(1, levels + 1)
        return rng.choice(levels, n, p=weights / weights.sum())

    def strings(names: list[str], codes: np.ndarray) -> pd.Series:
        return pd.Series(np.asarray(names, dtype=object)[codes])

    mean, std = 100.0, 20.0
    gamma_shape = 2.0  # skewness 2 / sqrt(2) ≈ 1.41
    ref: dict[str, Any] = {}
    cur: dict[str, Any] = {}
    for name in ("n00", "n01", "n02", "n03"):
        ref[name] = rng.normal(mean, std, rows)
    cur["n00"] = rng.normal(mean + 0.01 * std, std, rows)
    cur["n01"] = rng.normal(mean + 0.5 * std, std, rows)
    cur["n02"] = rng.normal(mean, 1.6 * std, rows)
    skewed = (rng.gamma(gamma_shape, 1.0, rows) - gamma_shape) / np.sqrt(gamma_shape)
    cur["n03"] = mean + std * skewed
    for i in range(4, 20):
        ref[NUMERICAL[i]] = numerical(i, rows)
        cur[NUMERICAL[i]] = numerical(i, rows)

    five = ["north", "south", "east", "west", "central"]
    ref["c0"] = strings(five, rng.integers(0, 5, rows))
    c0 = np.asarray([*five, "online"], dtype=object)[rng.integers(0, 5, rows)]
    c0[rng.random(rows) < 0.15] = "online"  # a category the reference never had
    cur["c0"] = pd.Series(c0)
    letters = ["a", "b", "c", "d"]
    ref["c1"] = strings(letters, rng.choice(4, rows, p=[0.6, 0.2, 0.1, 0.1]))
    cur["c1"] = strings(letters, rng.choice(4, rows, p=[0.3, 0.35, 0.175, 0.175]))
    for name, levels in (("c2", 8), ("c3", 20), ("c4", 50)):
        labels = [f"{name}_{k:02d}" for k in range(levels)]
        ref[name] = strings(labels, zipf_codes(levels, rows))
        cur[name] = strings(labels, zipf_codes(levels, rows))
    order = NUMERICAL + CATEGORICAL
    return pd.DataFrame({c: ref[c] for c in order}), pd.DataFrame({c: cur[c] for c in order})


def write_tables(rows: int, folder: Path) -> dict[str, float]:
    """Write ``reference.parquet`` and ``current.parquet`` for ``rows`` into ``folder``."""
    reference, current = make_tables(rows)
    folder.mkdir(parents=True, exist_ok=True)
    reference.to_parquet(folder / "reference.parquet", index=False)
    current.to_parquet(folder / "current.parquet", index=False)
    return {"frame_mb": float(reference.memory_usage(deep=True).sum() / 1e6)}


def _measure(fn, repeat: int) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """Run ``fn`` ``repeat`` times: median wall and CPU seconds, and the largest peak
    beyond the resident set before the first run (the data, the imports)."""
    times, cpu, peak, result = [], [], 0, None
    release_memory()
    baseline = PeakRss().rss()
    for _ in range(repeat):
        release_memory()
        with PeakRss() as mem:
            start, start_cpu = time.perf_counter(), time.process_time()
            result = fn()
            times.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
        peak = max(peak, mem.peak)
    return {
        "times": times,
        "median_s": statistics.median(times),
        "cpu_s": statistics.median(cpu),
        "baseline_mb": baseline / 1e6,
        "peak_mb": peak / 1e6,
        "beyond_mb": (peak - baseline) / 1e6,
        "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6,
        "result": result,
    }


# ------------------------------------------------------------------------------ workers
def _read(folder: Path, name: str):  # type: ignore[no-untyped-def]
    import pandas as pd

    return pd.read_parquet(folder / f"{name}.parquet")


def _data_mb(*frames) -> float:  # type: ignore[no-untyped-def]
    """The frames' own size in this process (pandas 3 keeps strings in Arrow, pandas 2 as
    Python objects: Evidently's copy of the same data is larger)."""
    return float(sum(frame.memory_usage(deep=True).sum() for frame in frames) / 1e6)


def worker_modelyard(folder: Path, repeat: int) -> dict[str, Any]:
    """``drift(reference, current)`` on the two frames."""
    from modelyard.monitoring import drift

    reference, current = _read(folder, "reference"), _read(folder, "current")
    drift(reference.head(1000), current.head(1000))  # imports and first-call set-up
    out = _measure(lambda: drift(reference, current), repeat)
    out["flags"] = _modelyard_flags(out.pop("result"))
    return out


def worker_profile_build(folder: Path, repeat: int) -> dict[str, Any]:
    """Build the reference profile once and store it (``reference.profile``)."""
    from modelyard.monitoring import ReferenceProfile

    reference = _read(folder, "reference")
    ReferenceProfile.from_table(reference.head(1000), source="warm-up")
    out = _measure(lambda: ReferenceProfile.from_table(reference, source="bench"), repeat)
    data = out.pop("result").to_bytes()
    (folder / "reference.profile").write_bytes(data)
    out["profile_bytes"] = len(data)
    return out


def worker_profile_check(folder: Path, repeat: int) -> dict[str, Any]:
    """The check a monitor runs: the stored profile read from its file, the current rows."""
    from modelyard.monitoring import ReferenceProfile, drift

    current = _read(folder, "current")
    path = folder / "reference.profile"
    drift(ReferenceProfile.from_bytes(path.read_bytes()), current.head(1000))

    def check():  # type: ignore[no-untyped-def]
        return drift(ReferenceProfile.from_bytes(path.read_bytes()), current)

    out = _measure(check, repeat)
    out["flags"] = _modelyard_flags(out.pop("result"))
    return out


def _modelyard_flags(report) -> dict[str, dict[str, Any]]:  # type: ignore[no-untyped-def]
    flags = {
        name: {"drifted": col.drifted, "method": col.method, "score": col.score,
               "threshold": col.threshold}
        for name, col in report.columns.items()
    }  # fmt: skip
    for name, reason in report.errors.items():
        flags[name] = {"drifted": True, "method": "error", "score": None, "error": reason}
    return flags


def worker_evidently(folder: Path, repeat: int) -> dict[str, Any]:
    """Evidently's ``DataDriftPreset`` with its defaults; the column types are declared
    (numerical / categorical) as its documentation shows, nothing else is set."""
    import evidently
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    reference, current = _read(folder, "reference"), _read(folder, "current")
    definition = DataDefinition(numerical_columns=NUMERICAL, categorical_columns=CATEGORICAL)

    def run():  # type: ignore[no-untyped-def]
        ref = Dataset.from_pandas(reference, data_definition=definition)
        cur = Dataset.from_pandas(current, data_definition=definition)
        return Report([DataDriftPreset()]).run(cur, ref)

    out = _measure(run, repeat)
    out["flags"] = _evidently_flags(out.pop("result").dict())
    out["version"] = evidently.__version__
    return out


def _evidently_flags(snapshot: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per column: Evidently's ``ValueDrift`` metric (its method, threshold and score).

    Its scores are p-values for the tests (drifted below the threshold) and distances
    otherwise (drifted at or above it), as ours are.
    """
    flags: dict[str, dict[str, Any]] = {}
    count = None
    for metric in snapshot["metrics"]:
        config = metric.get("config", {})
        if str(config.get("type", "")).endswith("DriftedColumnsCount"):
            count = int(metric["value"]["count"])
        if not str(config.get("type", "")).endswith("ValueDrift"):
            continue
        column, method = config["column"], str(config.get("method") or "")
        score = float(metric["value"])
        threshold = float(config["threshold"])
        p_value = "p_value" in method
        drifted = score < threshold if p_value else score >= threshold
        flags[column] = {"drifted": bool(drifted), "method": method, "score": score,
                         "threshold": threshold}  # fmt: skip
    ours = sum(flag["drifted"] for flag in flags.values())
    if count != ours:  # the rule above must be Evidently's own
        raise RuntimeError(f"Evidently counts {count} drifted columns, its scores say {ours}")
    return flags


WORKERS = {
    "modelyard": worker_modelyard,
    "profile_build": worker_profile_build,
    "profile_check": worker_profile_check,
    "evidently": worker_evidently,
}


def run_worker(tool: str, folder: Path, repeat: int) -> dict[str, Any]:
    python = EVIDENTLY_PYTHON if tool == "evidently" else Path(sys.executable)
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "DO_NOT_TRACK": "1"}
    args = [str(python), str(Path(__file__).resolve()), "--worker", tool, "--folder",
            str(folder), "--repeat", str(repeat)]  # fmt: skip
    load = os.getloadavg()[0]
    done = subprocess.run(args, capture_output=True, text=True, env=env, timeout=3600)
    if done.returncode != 0:
        raise RuntimeError(f"{tool} failed:\n{done.stderr[-3000:]}")
    out = json.loads(done.stdout.strip().splitlines()[-1])
    out["load_before"] = load  # the machine is shared: a wall time needs its load beside it
    return out


# ------------------------------------------------------------------------------ the run
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20k and 100k rows")
    parser.add_argument("--sizes", default=None, help="comma-separated rows per side")
    parser.add_argument("--repeat", type=int, default=None, help="runs of modelyard's checks")
    parser.add_argument("--skip-evidently", action="store_true")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--folder", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        out = WORKERS[args.worker](Path(args.folder), args.repeat)
        print(json.dumps(out, default=float))
        return
    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else (
        [20_000, 100_000] if args.quick else [100_000, 1_000_000]
    )  # fmt: skip
    repeat = args.repeat or 5
    evidently = not args.skip_evidently and EVIDENTLY_PYTHON.exists()
    results: dict[str, Any] = {"sizes": sizes, "repeat": repeat, "runs": {}}
    if not evidently:
        results["evidently_note"] = (
            "Evidently skipped" if args.skip_evidently
            else f"Evidently skipped: {EVIDENTLY_PYTHON} is missing (make bench-venvs)"
        )  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="modelyard-bench-drift-") as tmp:
        for rows in sizes:
            folder = Path(tmp) / str(rows)
            _say(f"{rows:,} rows per side: writing the tables…")
            run: dict[str, Any] = write_tables(rows, folder)
            for tool in ("modelyard", "profile_build", "profile_check"):
                _say(f"{rows:,} rows: {tool}…")
                run[tool] = run_worker(tool, folder, repeat)
            if evidently:
                _say(f"{rows:,} rows: Evidently DataDriftPreset…")
                run["evidently"] = run_worker("evidently", folder, 1)
            results["runs"][str(rows)] = run
    results["load_average"] = os.getloadavg()[0]
    report(results)
    WORK.mkdir(exist_ok=True)
    (WORK / "drift_results.json").write_text(json.dumps(results, indent=2, default=str))


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def report(results: dict[str, Any]) -> None:
    print(results.get("evidently_note", ""))
    for rows, run in results["runs"].items():
        rows = int(rows)
        print(f"\n{rows:,} rows per side × 25 columns ({run['frame_mb']:.0f} MB a frame)")
        print(f"{'':<34}{'seconds':>9}{'CPU s':>8}{'beyond MB':>11}{'maxrss MB':>11}{'load':>6}")
        for tool, label in (
            ("modelyard", "modelyard drift(tables)"),
            ("profile_build", "modelyard profile build (once)"),
            ("profile_check", "modelyard drift(stored profile)"),
            ("evidently", "Evidently DataDriftPreset"),
        ):
            if tool not in run:
                continue
            r = run[tool]
            print(
                f"{label:<34}{r['median_s']:>9.3f}{r['cpu_s']:>8.2f}{r['beyond_mb']:>11.0f}"
                f"{r['maxrss_mb']:>11.0f}{r['load_before']:>6.1f}"
            )
        if "evidently" in run:
            ev = run["evidently"]
            less = ev["beyond_mb"] / max(run["modelyard"]["beyond_mb"], 1)
            print(
                f"speed-up over Evidently {ev['median_s'] / run['modelyard']['median_s']:.1f}× "
                f"(tables), {ev['median_s'] / run['profile_check']['median_s']:.1f}× (stored "
                f"profile); memory beyond the data {less:.1f}× less"
            )
        _targets(rows, run)
        _detection(run)
    print(f"\nload average {results['load_average']:.1f} on {os.cpu_count()} CPUs")


def _targets(rows: int, run: dict[str, Any]) -> None:
    def mark(ok: bool) -> str:
        return "✓" if ok else "✗"

    tables, profile = run["modelyard"], run["profile_check"]
    if rows == 1_000_000:
        checks = [
            (f"tables ≤ {TARGETS['1M_s']} s", tables["median_s"] <= TARGETS["1M_s"]),
            (f"beyond the data ≤ {TARGETS['beyond_mb']:.0f} MB",
             tables["beyond_mb"] <= TARGETS["beyond_mb"]),
            (f"stored profile ≤ {TARGETS['profile_1M_s']} s",
             profile["median_s"] <= TARGETS["profile_1M_s"]),
        ]  # fmt: skip
        if "evidently" in run:
            ratio = run["evidently"]["median_s"] / tables["median_s"]
            checks.append((f"≥ {TARGETS['ratio']:.0f}× Evidently", ratio >= TARGETS["ratio"]))
        print("targets: " + ", ".join(f"{text} {mark(ok)}" for text, ok in checks))
    elif rows == 100_000:
        ok = tables["median_s"] <= TARGETS["100k_s"]
        print(f"target: tables ≤ {TARGETS['100k_s']} s {mark(ok)}")


def _detection(run: dict[str, Any]) -> None:
    tools = [t for t in ("modelyard", "profile_check", "evidently") if t in run]
    names = {"modelyard": "modelyard", "profile_check": "from profile", "evidently": "Evidently"}
    print(f"\n{'column':<7}{'injected':<30}" + "".join(f"{names[t]:<36}" for t in tools))
    right = dict.fromkeys(tools, True)
    for column in NUMERICAL + CATEGORICAL:
        shift, expected = SHIFTS.get(column, ("—", False))
        cells = []
        for tool in tools:
            flag = run[tool]["flags"].get(column, {})
            drifted = bool(flag.get("drifted"))
            right[tool] &= drifted == expected
            score = flag.get("score")
            text = "—" if score is None else f"{flag.get('method', '')} {score:.3g}"
            mark = "" if drifted == expected else " ✗"
            cells.append(f"{('FLAG ' if drifted else 'ok   ') + text + mark:<36}")
        print(f"{column:<7}{shift:<30}" + "".join(cells))
    for tool in tools:
        verdict = "yes" if right[tool] else "NO"
        print(f"{names[tool]}: every shifted column flagged and no unshifted one: {verdict}")


if __name__ == "__main__":
    main()
