"""Pipelines: what modelyard adds per step, and what parallel executors buy (issue 13, item 8).

1. Per-step overhead (``overhead``): a chain of ``--steps`` trivial steps (``x + 1``, cache
   off) run by the in-process executor, against calling the same function as many times.
   Overhead per step = (pipeline wall time - direct wall time) / steps: the tracked nested
   run, the step rows, the output stored as an artifact (JSON), the lineage edges. Run
   with the artifact store on the benchmark's folder (``--dir``, a disk: every new blob is
   fsynced) and, for comparison, on ``/dev/shm`` (memory: no fsync cost).
2. Parallel branches (``branches``): 20 steps as 5 independent branches of 4 chained
   steps, each a fixed amount of pure-Python work (``--work`` loop iterations; it holds
   the GIL, so only processes run it in parallel). The same functions called in sequence,
   against the pipeline on the local executor, on 2 local worker processes (their start-up
   included: a run starts its workers), and on Ray (a local instance with 2 CPUs started
   once, ``ray.init`` timed apart, its workers warmed by one small run). The variants run
   interleaved, once per repeat, and each reports its median.

    python benchmarks/pipelines.py                     # both parts
    python benchmarks/pipelines.py --part overhead --steps 200
    python benchmarks/pipelines.py --part branches --work 3000000 --no-ray

Results print as a table and, with ``--json FILE``, as JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from modelyard.pipelines import pipeline, step

BRANCHES = 5
DEPTH = 4


# ------------------------------------------------------------------------- the steps
@step(cache=False)
def increment(x: int) -> int:
    return x + 1


@pipeline
def chain(steps: int = 100):
    value = increment(0)
    for _ in range(steps - 1):
        value = increment(value)
    return value


def burn(seed: int, work: int) -> int:
    """A fixed amount of pure-Python work (holds the GIL throughout)."""
    total = seed
    for i in range(work):
        total = (total * 31 + i) % 1_000_003
    return total


burn_step = step(name="burn", cache=False)(burn)


@pipeline
def branches(work: int = 2_000_000):
    """5 independent branches of 4 chained steps: 20 steps."""
    ends = []
    for branch in range(BRANCHES):
        value = burn_step(branch, work)
        for _ in range(DEPTH - 1):
            value = burn_step(value, work)
        ends.append(value)
    return ends


# ------------------------------------------------------------------------- measuring
def _settings(home: Path) -> Any:
    from modelyard.config import Settings

    return Settings(home=home)


def _run(pipe: Any, params: dict[str, Any], home: Path, executor: str, **options: Any) -> float:
    return _timed(pipe, params, home, executor, **options)[0]


def _timed(
    pipe: Any, params: dict[str, Any], home: Path, executor: str, **options: Any
) -> tuple[float, float]:
    """Wall seconds and this process's CPU seconds (all of it, for the local executor:
    on a shared, loaded machine the CPU time is the steadier measure)."""
    from modelyard.pipelines import run_pipeline

    wall, cpu = time.perf_counter(), time.process_time()
    run_pipeline(pipe, params, settings=_settings(home), executor=executor, **options)
    return time.perf_counter() - wall, time.process_time() - cpu


def overhead(steps: int, repeats: int, base: Path) -> dict[str, Any]:
    direct = []
    for _ in range(repeats):
        started = time.perf_counter()
        value = 0
        for _ in range(steps):
            value = increment.fn(value)
        direct.append(time.perf_counter() - started)
    # The direct calls' CPU time is the same as their wall time (microseconds): both
    # overheads subtract the wall time.
    found: dict[str, Any] = {"steps": steps, "direct_s": statistics.median(direct)}
    with contextlib.ExitStack() as stack:
        places = {"disk": base / "disk"}
        if Path("/dev/shm").is_dir():
            memory = tempfile.TemporaryDirectory(prefix="modelyard-bench-", dir="/dev/shm")
            places["memory"] = Path(stack.enter_context(memory))
        for label, home in places.items():
            _run(chain, {"steps": 5}, home, "local")  # create the store, import what is used
            times = [_timed(chain, {"steps": steps}, home, "local") for _ in range(repeats)]
            wall = statistics.median(t[0] for t in times)
            cpu = statistics.median(t[1] for t in times)
            found[label] = {
                "pipeline_s": wall,
                "pipeline_cpu_s": cpu,
                "overhead_ms_per_step": (wall - found["direct_s"]) / steps * 1000,
                "overhead_cpu_ms_per_step": (cpu - found["direct_s"]) / steps * 1000,
            }
    return found


def _sequential(work: int) -> float:
    started = time.perf_counter()
    for branch in range(BRANCHES):
        value = burn(branch, work)
        for _ in range(DEPTH - 1):
            value = burn(value, work)
    return time.perf_counter() - started


def parallel(work: int, repeats: int, base: Path, with_ray: bool) -> dict[str, Any]:
    """Each repeat runs every variant once, one after another (interleaved, so a shared
    machine's changing load falls on all of them alike); the medians are reported."""
    params = {"work": work}
    home = base / "branches"
    _run(chain, {"steps": 2}, home, "local")  # the store exists before timing
    found: dict[str, Any] = {"work": work}
    if with_ray:
        import ray

        started = time.perf_counter()
        ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
        found["ray_init_s"] = time.perf_counter() - started
        _run(chain, {"steps": 2}, home, "ray")  # Ray's workers start and import once
    variants: dict[str, Any] = {
        "sequential_s": lambda: _sequential(work),
        "local_s": lambda: _run(branches, params, home, "local"),
        "process_2_s": lambda: _run(branches, params, home, "process", workers=2),
    }
    if with_ray:
        variants["ray_2_s"] = lambda: _run(branches, params, home, "ray")
    times: dict[str, list[float]] = {name: [] for name in variants}
    try:
        for _ in range(repeats):
            for name, measure in variants.items():
                times[name].append(measure())
    finally:
        if with_ray:
            ray.shutdown()
    found.update({name: statistics.median(values) for name, values in times.items()})
    found["all_s"] = times
    return found


def _print(results: dict[str, Any]) -> None:
    if "overhead" in results:
        o = results["overhead"]
        print(f"per-step overhead, {o['steps']} trivial steps, local executor:")
        print(f"  direct calls            {o['direct_s'] * 1000:9.2f} ms")
        for label in ("disk", "memory"):
            if label in o:
                r = o[label]
                print(
                    f"  pipeline ({label:6})       {r['pipeline_s'] * 1000:9.1f} ms"
                    f"   -> {r['overhead_ms_per_step']:.2f} ms per step (wall), "
                    f"{r['overhead_cpu_ms_per_step']:.2f} ms (CPU)"
                )
    if "branches" in results:
        b = results["branches"]
        print(f"20 steps, {BRANCHES} branches x {DEPTH}, {b['work']:,} iterations each:")
        print(f"  functions in sequence   {b['sequential_s']:7.2f} s")
        print(f"  pipeline, local         {b['local_s']:7.2f} s")
        print(f"  pipeline, 2 processes   {b['process_2_s']:7.2f} s")
        if "ray_2_s" in b:
            ray_s, init_s = b["ray_2_s"], b["ray_init_s"]
            print(f"  pipeline, Ray (2 CPUs)  {ray_s:7.2f} s   (ray.init {init_s:.1f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["overhead", "branches", "all"], default="all")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--work", type=int, default=2_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-ray", action="store_true")
    parser.add_argument("--dir", type=Path, default=None, help="Where the stores go.")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    results: dict[str, Any] = {
        "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} CPUs",
        "python": sys.version.split()[0],
        "load_avg": os.getloadavg(),
    }
    with tempfile.TemporaryDirectory(prefix="modelyard-bench-", dir=args.dir) as tmp:
        base = Path(tmp)
        if args.part in ("overhead", "all"):
            results["overhead"] = overhead(args.steps, args.repeats, base)
        if args.part in ("branches", "all"):
            results["branches"] = parallel(args.work, args.repeats, base, not args.no_ray)
    results["load_avg_after"] = os.getloadavg()
    _print(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
