"""Feature store: modelyard vs Feast, side by side on the same generated data.

Two cases: *narrow* — 100k entities × 2 rows × 10 float features (200k source rows, a
training set for 100k entity rows) — and *wide* — 200 features (10k entities × 2 rows:
Feast needs minutes per run beyond that). For each system, in its own fresh
process, on a local SQLite online store:

1. ``apply`` of one entity and one view, in-process, and as a fresh CLI process including
   imports (``feast apply`` / ``modelyard features apply``: what they cost a user);
2. ``materialize`` of every source row into an empty online store, and the peak memory
   it added;
3. a point-in-time training set for the entity rows (first call, then the median of the
   next calls), and how many rows came back with no value;
4. online lookups: 1 entity and 100 entities per call, p50 and p99.

Feast (latest) lives in its own virtualenv, ``benchmarks/.work/feast-venv``, because its
pins conflict with ours (pandas < 3); it is driven by subprocess. The machine is shared, so
each case is run ``--repeats`` times, alternating the systems, and medians are reported.

    python benchmarks/features.py                  # full size, 3 repeats
    python benchmarks/features.py --quick          # a smaller smoke run
    python benchmarks/features.py --skip-feast     # modelyard only
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
WORK = HERE / ".work" / "features"
FEAST_VENV = HERE / ".work" / "feast-venv"
FEAST_PYTHON = FEAST_VENV / "bin" / "python"
FEAST_CLI = FEAST_VENV / "bin" / "feast"

CASES = {
    "narrow": {"entities": 100_000, "rows_per": 2, "features": 10, "entity_rows": 100_000},
    "wide": {"entities": 10_000, "rows_per": 2, "features": 200, "entity_rows": 10_000},
}
QUICK = {
    "narrow": {"entities": 20_000, "rows_per": 2, "features": 10, "entity_rows": 20_000},
    "wide": {"entities": 2_000, "rows_per": 2, "features": 200, "entity_rows": 2_000},
}
#: Calls per lookup test (1 entity, 100 entities) by case and system: Feast's are slower.
LOOKUPS = {
    "narrow": {"modelyard": (20_000, 2_000), "feast": (2_000, 200)},
    "wide": {"modelyard": (5_000, 500), "feast": (500, 30)},
}
TRAINING_REPEATS = 5
DAYS = 30


def _rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu_s() -> float:
    """CPU seconds this process has used (all threads): on a shared machine, the cost of
    an operation that waiting for a core does not inflate."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _percentiles(samples_ns: list[int]) -> tuple[float, float]:
    ordered = sorted(samples_ns)
    return ordered[len(ordered) // 2] / 1e3, ordered[int(len(ordered) * 0.99)] / 1e3


def _time_training(build: Callable[[], Any], out: dict[str, Any]) -> None:
    """Build the training set TRAINING_REPEATS times: the first call apart (caches, plans),
    the median of the rest, wall and CPU, and what came back."""
    samples, cpu = [], []
    for _ in range(TRAINING_REPEATS):
        t0, c0 = time.perf_counter(), _cpu_s()
        frame = build()
        samples.append(time.perf_counter() - t0)
        cpu.append(_cpu_s() - c0)
    out["training_cpu_s"] = statistics.median(cpu[1:])
    out["training_first_s"] = samples[0]
    out["training_s"] = statistics.median(samples[1:])
    out["training_rows"] = len(frame)
    out["training_rows_without_value"] = int(frame["f0"].isna().sum())


def _time_calls(call, batches: list[list[int]], out: dict[str, float], label: str) -> None:  # type: ignore[no-untyped-def]
    """Wall-clock and on-CPU time per call. On a shared machine the wall-clock tail is
    mostly time spent descheduled; the CPU-time percentiles show the code's own tail."""
    wall, cpu = [], []
    for batch in batches:
        rows = [{"entity_id": k} for k in batch]
        t, c = time.perf_counter_ns(), time.thread_time_ns()
        call(rows)
        cpu.append(time.thread_time_ns() - c)
        wall.append(time.perf_counter_ns() - t)
    out[f"{label}_p50_us"], out[f"{label}_p99_us"] = _percentiles(wall)
    out[f"{label}_cpu_p50_us"], out[f"{label}_cpu_p99_us"] = _percentiles(cpu)


# --------------------------------------------------------------------------- data
def generate(folder: Path, size: dict[str, int]) -> None:
    """Source rows (2 per entity, random times over 30 days) and entity rows to join."""
    import numpy as np
    import pandas as pd

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    n, per, width = size["entities"], size["rows_per"], size["features"]
    base = pd.Timestamp("2024-01-01", tz="UTC")
    rows = n * per
    frame = pd.DataFrame(
        {
            "entity_id": np.repeat(np.arange(n, dtype=np.int64), per),
            "event_ts": base + pd.to_timedelta(rng.integers(0, DAYS * 86_400, rows), unit="s"),
        }
    )
    features = {f"f{i}": rng.random(rows) for i in range(width)}
    frame = pd.concat([frame, pd.DataFrame(features)], axis=1)
    frame.to_parquet(folder / "source.parquet", index=False)
    entities = pd.DataFrame(
        {
            "entity_id": rng.integers(0, n, size["entity_rows"]),
            "event_timestamp": base
            + pd.to_timedelta(rng.integers(0, DAYS * 86_400, size["entity_rows"]), unit="s"),
        }
    )
    entities.to_parquet(folder / "entities.parquet", index=False)


def _lookup_keys(n: int, count: int, width: int) -> list[list[int]]:
    return [[(i * width + j) * 7919 % n for j in range(width)] for i in range(count)]


# --------------------------------------------------------------------------- modelyard
MODELYARD_DEFS = """
from modelyard.features.definitions import Entity, FeatureView, Field, FileSource

entity = Entity("entity", join_keys=["entity_id"])
fv = FeatureView(
    "fv",
    entities=[entity],
    source=FileSource({source!r}, timestamp_field="event_ts"),
    schema=[Field(f"f{{i}}", "float64") for i in range({features})],
)
"""


def run_modelyard(folder: Path, size: dict[str, int], case: str) -> dict[str, float]:
    # modelyard imports DuckDB and Arrow on first use; import them up front, as `import
    # feast` does, so that neither system's library imports are inside a timed operation.
    import duckdb  # noqa: F401
    import pandas as pd
    import pyarrow  # noqa: F401

    from modelyard.config import Settings
    from modelyard.features.client import FeatureStore
    from modelyard.features.definitions import Entity, FeatureView, Field, FileSource

    out: dict[str, float] = {"baseline_rss_mb": _rss_mb()}
    home = folder / "modelyard-home"
    shutil.rmtree(home, ignore_errors=True)
    width = size["features"]
    store = FeatureStore.from_settings(Settings(home=home))
    entity = Entity("entity", join_keys=["entity_id"])
    view = FeatureView(
        "fv",
        entities=[entity],
        source=FileSource(folder / "source.parquet", timestamp_field="event_ts"),
        schema=[Field(f"f{i}", "float64") for i in range(width)],
    )
    t0 = time.perf_counter()
    store.apply([entity, view])
    out["apply_s"] = time.perf_counter() - t0

    base = pd.Timestamp("2024-01-01", tz="UTC")
    before = _rss_mb()
    t0, c0 = time.perf_counter(), _cpu_s()
    [report] = store.materialize(base - pd.Timedelta(days=1), base + pd.Timedelta(days=DAYS + 1))
    out["materialize_s"] = time.perf_counter() - t0
    out["materialize_cpu_s"] = _cpu_s() - c0
    out["materialize_rows"] = report.rows
    out["materialize_peak_mb"] = _rss_mb() - before

    entities = pd.read_parquet(folder / "entities.parquet")
    refs = [f"fv:f{i}" for i in range(width)]
    _time_training(lambda: store.get_training_set(entities, refs).to_df(), out)

    n = size["entities"]
    one, many = LOOKUPS[case]["modelyard"]
    for label, count, per_call in (("online1", one, 1), ("online100", many, 100)):
        keys = _lookup_keys(n, count, per_call)
        store.get_online_features([{"entity_id": k} for k in keys[0]], refs)  # warm
        _time_calls(lambda rows: store.get_online_features(rows, refs), keys, out, label)
    out["peak_rss_mb"] = _rss_mb()
    store.close()
    return out


def _children_cpu_s() -> float:
    """CPU seconds used by this process's finished children (fresh-process runs)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def compile_modelyard() -> None:
    """Cache modelyard's bytecode, as installing a wheel does. An editable install under
    ``PYTHONDONTWRITEBYTECODE`` (set on our CI machines) never writes it, so every fresh
    process would compile ~40 modules (~40 ms) that no installed user compiles — and
    Feast, installed from a wheel, has its bytecode."""
    import compileall

    import modelyard

    compileall.compile_dir(Path(modelyard.__file__).parent, quiet=1)


def modelyard_apply_fresh(folder: Path, size: dict[str, int]) -> tuple[float, float]:
    """``modelyard features apply`` in a new process, through the CLI's entry point (the
    ``modelyard`` console script runs ``modelyard.cli.main:main``): imports, loading the
    definitions file, the registry write, the printed table. Wall and CPU seconds."""
    defs = folder / "modelyard_features.py"
    defs.write_text(
        MODELYARD_DEFS.format(source=str(folder / "source.parquet"), features=size["features"])
    )
    home = folder / "modelyard-cli-home"
    shutil.rmtree(home, ignore_errors=True)
    command = [sys.executable, "-m", "modelyard.cli.main", "--home", str(home)]
    c0, t0 = _children_cpu_s(), time.perf_counter()
    subprocess.run(
        [*command, "features", "apply", str(defs)], check=True, stdout=subprocess.DEVNULL
    )
    return time.perf_counter() - t0, _children_cpu_s() - c0


# --------------------------------------------------------------------------- Feast
FEAST_YAML = """project: bench
registry: data/registry.db
provider: local
online_store:
  type: sqlite
  path: data/online.db
offline_store:
  type: file
entity_key_serialization_version: 3
"""

FEAST_DEFS = """
from datetime import timedelta

from feast import Entity, FeatureView, Field, FileSource, ValueType
from feast.types import Float64

entity = Entity(name="entity", join_keys=["entity_id"], value_type=ValueType.INT64)
fv = FeatureView(
    name="fv",
    entities=[entity],
    ttl=timedelta(0),
    schema=[Field(name=f"f{{i}}", dtype=Float64) for i in range({features})],
    source=FileSource(path={source!r}, timestamp_field="event_ts"),
    online=True,
)
"""


def _feast_repo(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    (path / "data").mkdir(parents=True)
    (path / "feature_store.yaml").write_text(FEAST_YAML)
    return path


def run_feast(folder: Path, size: dict[str, int], case: str) -> dict[str, float]:
    import logging

    import pandas as pd

    logging.disable(logging.WARNING)
    from feast import Entity, FeatureStore, FeatureView, Field, FileSource, ValueType
    from feast.types import Float64

    out: dict[str, float] = {"baseline_rss_mb": _rss_mb()}
    repo = _feast_repo(folder / "feast-repo")
    width = size["features"]
    entity = Entity(name="entity", join_keys=["entity_id"], value_type=ValueType.INT64)
    view = FeatureView(
        name="fv",
        entities=[entity],
        ttl=timedelta(0),
        schema=[Field(name=f"f{i}", dtype=Float64) for i in range(width)],
        source=FileSource(path=str(folder / "source.parquet"), timestamp_field="event_ts"),
        online=True,
    )
    store = FeatureStore(repo_path=str(repo))
    t0 = time.perf_counter()
    store.apply([entity, view])
    out["apply_s"] = time.perf_counter() - t0

    base = pd.Timestamp("2024-01-01", tz="UTC").to_pydatetime()
    before = _rss_mb()
    t0, c0 = time.perf_counter(), _cpu_s()
    store.materialize(base - timedelta(days=1), base + timedelta(days=DAYS + 1))
    out["materialize_s"] = time.perf_counter() - t0
    out["materialize_cpu_s"] = _cpu_s() - c0
    out["materialize_peak_mb"] = _rss_mb() - before

    entities = pd.read_parquet(folder / "entities.parquet")
    refs = [f"fv:f{i}" for i in range(width)]
    _time_training(
        lambda: store.get_historical_features(entity_df=entities, features=refs).to_df(), out
    )

    n = size["entities"]
    one, many = LOOKUPS[case]["feast"]
    for label, count, per_call in (("online1", one, 1), ("online100", many, 100)):
        keys = _lookup_keys(n, count, per_call)
        store.get_online_features(features=refs, entity_rows=[{"entity_id": keys[0][0]}])
        _time_calls(
            lambda rows: store.get_online_features(features=refs, entity_rows=rows).to_dict(),
            keys,
            out,
            label,
        )
    out["peak_rss_mb"] = _rss_mb()
    return out


def feast_apply_fresh(folder: Path, size: dict[str, int]) -> tuple[float, float]:
    """``feast apply`` in a new process: imports, repo parsing, registry write. Wall and
    CPU seconds."""
    repo = _feast_repo(folder / "feast-cli-repo")
    (repo / "features.py").write_text(
        FEAST_DEFS.format(source=str(folder / "source.parquet"), features=size["features"])
    )
    c0, t0 = _children_cpu_s(), time.perf_counter()
    subprocess.run(
        [str(FEAST_CLI), "apply"],
        cwd=repo,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - t0, _children_cpu_s() - c0


# --------------------------------------------------------------------------- driver
def _worker(system: str, folder: Path, size: dict[str, int], case: str) -> dict[str, float]:
    python = sys.executable if system == "modelyard" else str(FEAST_PYTHON)
    args = [
        python,
        __file__,
        "--worker",
        system,
        "--folder",
        str(folder),
        "--size",
        json.dumps(size),
        "--case",
        case,
    ]
    done = subprocess.run(args, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


ROWS = [
    ("apply (in-process)", "apply_s", "s"),
    ("apply (fresh process, CLI)", "apply_fresh_s", "s"),
    ("  CPU time it used", "apply_fresh_cpu_s", "s"),
    ("materialize all rows", "materialize_s", "s"),
    ("  CPU time it used", "materialize_cpu_s", "s"),
    ("  memory added by it", "materialize_peak_mb", "MiB"),
    ("training set, first call", "training_first_s", "s"),
    ("training set, median", "training_s", "s"),
    ("  CPU time, median", "training_cpu_s", "s"),
    ("  rows returned", "training_rows", "rows"),
    ("  rows with no value", "training_rows_without_value", "rows"),
    ("online 1 entity p50", "online1_p50_us", "µs"),
    ("online 1 entity p99", "online1_p99_us", "µs"),
    ("online 100 entities p50", "online100_p50_us", "µs"),
    ("online 100 entities p99", "online100_p99_us", "µs"),
    ("online 1 entity, CPU p50", "online1_cpu_p50_us", "µs"),
    ("online 1 entity, CPU p99", "online1_cpu_p99_us", "µs"),
    ("online 100 entities, CPU p50", "online100_cpu_p50_us", "µs"),
    ("online 100 entities, CPU p99", "online100_cpu_p99_us", "µs"),
    ("peak memory (process)", "peak_rss_mb", "MiB"),
]
_NO_RATIO = {"training_rows", "training_rows_without_value"}


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit == "s":
        return f"{value:.3f} s"
    if unit in ("rows",):
        return f"{int(value):,}"
    return f"{value:,.1f} {unit}"


def report(case: str, size: dict[str, int], results: dict[str, list[dict[str, float]]]) -> None:
    medians = {
        system: {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        for system, runs in results.items()
        if runs
    }
    print(
        f"\n== {case}: {size['entities']:,} entities × {size['rows_per']} rows × "
        f"{size['features']} features; training set for {size['entity_rows']:,} entity rows "
        f"(medians of {len(next(iter(results.values())))} runs)"
    )
    ours, feast = medians.get("modelyard", {}), medians.get("feast", {})
    print(f"{'':30s} {'modelyard':>14s} {'Feast':>14s} {'Feast / ours':>13s}")
    for label, key, unit in ROWS:
        a, b = ours.get(key), feast.get(key)
        ratio = f"{b / a:12.1f}×" if a and b and key not in _NO_RATIO else ""
        print(f"{label:30s} {_fmt(a, unit):>14s} {_fmt(b, unit):>14s} {ratio:>13s}")
    print(json.dumps({"case": case, "size": size, "medians": medians}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--skip-feast", action="store_true")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--case", choices=[*CASES, "all"], default="all")
    parser.add_argument("--worker", choices=["modelyard", "feast"])
    parser.add_argument("--folder")
    parser.add_argument("--size")
    args = parser.parse_args()
    if args.worker:
        folder, size = Path(args.folder), json.loads(args.size)
        run = run_modelyard if args.worker == "modelyard" else run_feast
        print(json.dumps(run(folder, size, args.case)))
        return
    sizes = QUICK if args.quick else CASES
    use_feast = not args.skip_feast
    if use_feast and not FEAST_PYTHON.exists():
        sys.exit(
            textwrap.dedent(f"""\
            Feast is not installed; create its own virtualenv (its pins conflict with ours):
                python -m venv {FEAST_VENV} && {FEAST_VENV}/bin/pip install feast
            or run with --skip-feast""")
        )
    compile_modelyard()
    for case in CASES if args.case == "all" else [args.case]:
        size = sizes[case]
        folder = WORK / case
        generate(folder, size)
        results: dict[str, list[dict[str, float]]] = {"modelyard": [], "feast": []}
        for _ in range(args.repeats):
            for system in ("modelyard", "feast") if use_feast else ("modelyard",):
                run = _worker(system, folder, size, case)
                fresh = modelyard_apply_fresh if system == "modelyard" else feast_apply_fresh
                run["apply_fresh_s"], run["apply_fresh_cpu_s"] = fresh(folder, size)
                results[system].append(run)
                print(f"  {case} {system}: {json.dumps(run)}", file=sys.stderr, flush=True)
        report(case, size, results)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    main()
