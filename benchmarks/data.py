"""Data contracts and profiles: modelyard vs Great Expectations vs pandera vs plain pandas.

One invocation, this machine, the same 1,000,000 × 30 table (an id, 14 floats with 2%
nulls, 8 ints, 5 categoricals, a SKU string and a date; generated from a fixed seed in
every process) and the same 50 checks in every tool. Each tool runs in its own fresh
process so that peak memory is its own; the peak is the largest resident set sampled
while validating (or profiling), and includes the table itself.

1. validation: time (median of repeats), peak RSS, and the exact number of offending
   rows of every failed check — the tools must agree;
2. a full profile (types, nulls, distinct, min/max/mean/std, quantiles, histograms, top
   values): modelyard's ``profile_table`` vs the same in pandas;
3. ``import modelyard.data.contracts`` in a fresh interpreter;
4. a streamed snapshot of a Parquet file larger than ``memory_limit`` (peak RSS stays far
   below the table's size).

Great Expectations runs in its own virtualenv (``benchmarks/.work/ge-venv``: ``pip install
great_expectations==1.24.*``); it is skipped with a note when that is missing.

    python benchmarks/data.py             # full size
    python benchmarks/data.py --quick     # 100,000 rows, fewer repeats
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from memory import PeakRss, release_memory  # benchmarks/memory.py

HERE = Path(__file__).resolve().parent
WORK = HERE / ".work"
GE_PYTHON = WORK / "ge-venv" / "bin" / "python"
CATEGORIES = ["north", "south", "east", "west", "central"]
ALLOWED = ["north", "south", "east", "west"]
DAY_MIN, DAY_MAX = "2024-01-01", "2024-12-01"


# ------------------------------------------------------------------------------ the data
def make_table(rows: int, seed: int = 0):  # type: ignore[no-untyped-def]
    """The benchmark table, identical in every process (same NumPy and pandas)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    cols: dict[str, object] = {}
    ids = np.arange(rows, dtype=np.int64)
    ids[rng.choice(rows, 10, replace=False)] = 7  # 11 rows share id 7
    cols["id"] = ids
    for i in range(14):
        x = rng.normal(100, 20, rows)
        x[rng.random(rows) < 0.02] = np.nan
        cols[f"f{i}"] = x
    for i in range(8):
        cols[f"i{i}"] = rng.integers(0, 1000, rows)
    for i in range(5):
        cols[f"c{i}"] = pd.Categorical.from_codes(rng.integers(0, 5, rows), CATEGORIES)
    sku = np.char.add("SKU-", np.char.zfill(rng.integers(0, 999_999, rows).astype(str), 6))
    sku[rng.choice(rows, 1_000, replace=False)] = "SKU-X"
    cols["sku"] = pd.array(sku, dtype="str")
    cols["day"] = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 365, rows), "D")
    return pd.DataFrame(cols)


def checks(rows: int) -> list[dict]:
    """The 50 checks, tool-neutral."""
    out: list[dict] = [
        {"id": "rows", "kind": "rows", "min": int(rows * 0.9), "max": int(rows * 1.1)},
        {"id": "id.type", "kind": "type", "column": "id", "type": "int64"},
        {"id": "id.not_null", "kind": "not_null", "column": "id"},
        {"id": "id.unique", "kind": "unique", "column": "id"},
    ]
    for i in range(14):
        low, high = (50, 150) if i == 0 else (0, 250)
        out.append(
            {"id": f"f{i}.range", "kind": "range", "column": f"f{i}", "min": low, "max": high}
        )
    for i in range(6):
        limit = 0.01 if i == 0 else 0.05
        out.append({"id": f"f{i}.nulls", "kind": "null_fraction", "column": f"f{i}", "max": limit})
    for i in range(8):
        high = 990 if i == 0 else 999
        out.append({"id": f"i{i}.range", "kind": "range", "column": f"i{i}", "min": 0, "max": high})
        out.append({"id": f"i{i}.not_null", "kind": "not_null", "column": f"i{i}"})
    for i in range(5):
        allowed = ALLOWED if i == 0 else CATEGORIES
        out.append({"id": f"c{i}.allowed", "kind": "allowed", "column": f"c{i}", "values": allowed})
    out += [
        {"id": "sku.pattern", "kind": "pattern", "column": "sku", "pattern": r"SKU-\d{6}"},
        {"id": "sku.not_null", "kind": "not_null", "column": "sku"},
        {"id": "day.range", "kind": "date_range", "column": "day", "min": DAY_MIN, "max": DAY_MAX},
        {"id": "rule:i0 <= i1", "kind": "pair_le", "a": "i0", "b": "i1"},
        {"id": "unique(id, day)", "kind": "compound_unique", "columns": ["id", "day"]},
    ]
    assert len(out) == 50, len(out)
    return out


def _measure(fn, repeat: int) -> dict:  # type: ignore[no-untyped-def]
    """Run ``fn`` ``repeat`` times; times, peak RSS over all runs, and the last result."""
    import gc

    times, cpu, peak, result = [], [], 0, None
    baseline = PeakRss().rss()
    for _ in range(repeat):
        gc.collect()
        with PeakRss() as mem:
            start, start_cpu = time.perf_counter(), time.process_time()
            result = fn()
            times.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
        peak = max(peak, mem.peak)
    return {"times": times, "median_s": statistics.median(times), "peak_mb": peak / 1e6,
            "cpu_s": statistics.median(cpu), "baseline_mb": baseline / 1e6,
            "result": result}  # fmt: skip


# ------------------------------------------------------------------------------ workers
def floor_validate(df, spec):  # type: ignore[no-untyped-def]
    """Plain vectorised pandas/NumPy: the fastest honest code for the same 50 checks."""
    import numpy as np
    import pandas as pd

    counts: dict[str, int] = {}
    n = len(df)
    for c in spec:
        kind = c["kind"]
        if kind == "rows":
            counts[c["id"]] = 0 if c["min"] <= n <= c["max"] else n
        elif kind == "type":
            counts[c["id"]] = 0 if str(df[c["column"]].dtype) == c["type"] else n
        elif kind == "not_null":
            counts[c["id"]] = int(df[c["column"]].isna().to_numpy().sum())
        elif kind == "unique":
            counts[c["id"]] = int(df[c["column"]].duplicated(keep=False).to_numpy().sum())
        elif kind == "range":
            x = df[c["column"]].to_numpy()
            counts[c["id"]] = int(np.count_nonzero((x < c["min"]) | (x > c["max"])))
        elif kind == "null_fraction":
            nulls = int(np.isnan(df[c["column"]].to_numpy()).sum())
            counts[c["id"]] = nulls if nulls / n > c["max"] else 0
        elif kind == "allowed":
            s = df[c["column"]]
            counts[c["id"]] = int((~s.isin(c["values"]) & s.notna()).to_numpy().sum())
        elif kind == "pattern":
            s = df[c["column"]]
            ok = s.str.fullmatch(c["pattern"]).fillna(True).to_numpy(dtype=bool)
            counts[c["id"]] = int((~ok).sum())
        elif kind == "date_range":
            s = df[c["column"]]
            bad = (s < pd.Timestamp(c["min"])) | (s > pd.Timestamp(c["max"]))
            counts[c["id"]] = int(bad.to_numpy().sum())
        elif kind == "pair_le":
            counts[c["id"]] = int((df[c["a"]].to_numpy() > df[c["b"]].to_numpy()).sum())
        elif kind == "compound_unique":
            counts[c["id"]] = int(df.duplicated(c["columns"], keep=False).to_numpy().sum())
    return counts


def modelyard_contract(spec):  # type: ignore[no-untyped-def]
    from modelyard.data.contracts import Column, Contract, RowCount, Rule

    columns: dict[str, dict] = {}
    rows = unique = None
    rules = []
    for c in spec:
        kind = c["kind"]
        col = columns.setdefault(c.get("column", ""), {})
        if kind == "rows":
            rows = RowCount(c["min"], c["max"])
        elif kind == "type":
            col["type"] = "int"
        elif kind == "not_null":
            col["nullable"] = False
        elif kind == "unique":
            col["unique"] = True
        elif kind == "range":
            col["min"], col["max"] = c["min"], c["max"]
        elif kind == "null_fraction":
            col["max_null_fraction"] = c["max"]
        elif kind == "allowed":
            col["allowed"] = tuple(c["values"])
        elif kind == "pattern":
            col["pattern"] = c["pattern"]
        elif kind == "date_range":
            import datetime as dt

            col["type"] = "datetime"
            col["min"] = dt.datetime.fromisoformat(c["min"])
            col["max"] = dt.datetime.fromisoformat(c["max"])
        elif kind == "pair_le":
            rules.append(Rule(f"{c['a']} <= {c['b']}"))
        elif kind == "compound_unique":
            unique = (tuple(c["columns"]),)
    columns.pop("", None)
    return Contract(
        "bench",
        columns={k: Column(**v) for k, v in columns.items()},
        rows=rows,
        unique=unique or (),
        rules=tuple(rules),
    )


def modelyard_counts(result, spec):  # type: ignore[no-untyped-def]
    """Map modelyard's check names onto the neutral ids."""
    by_name = {c.check: c for c in result.checks}
    names = {
        "rows": "rows", "type": "{column}.type", "not_null": "{column}.not_null",
        "unique": "{column}.unique", "range": "{column}.range",
        "null_fraction": "{column}.null_fraction", "allowed": "{column}.allowed",
        "pattern": "{column}.pattern", "date_range": "{column}.range",
        "pair_le": "rule:{a} <= {b}", "compound_unique": "unique(id, day)",
    }  # fmt: skip
    counts = {}
    for c in spec:
        found = by_name[names[c["kind"]].format(**c)]
        rows = found.failed_rows
        counts[c["id"]] = 0 if found.passed else (rows if rows is not None else -1)
    return counts, len(result.checks)


def pandera_schema(spec):  # type: ignore[no-untyped-def]
    import pandas as pd
    import pandera.pandas as pa

    cols: dict[str, dict] = {}
    frame_checks, unique = [], None
    for c in spec:
        kind = c["kind"]
        col = cols.setdefault(c.get("column", ""), {"checks": [], "nullable": True})
        if kind == "rows":
            low, high = c["min"], c["max"]
            frame_checks.append(
                pa.Check(lambda df, lo=low, hi=high: lo <= len(df) <= hi, name="rows")
            )
        elif kind == "type":
            col["dtype"] = "int64"
        elif kind == "not_null":
            col["nullable"] = False
        elif kind == "unique":
            col["unique"] = True
        elif kind in ("range", "date_range"):
            low, high = c["min"], c["max"]
            if kind == "date_range":
                low, high = pd.Timestamp(low), pd.Timestamp(high)
            col["checks"].append(pa.Check.in_range(low, high))
        elif kind == "null_fraction":
            limit = c["max"]
            col["checks"].append(
                pa.Check(lambda s, lim=limit: s.isna().mean() <= lim, ignore_na=False, name="nulls")
            )
        elif kind == "allowed":
            col["checks"].append(pa.Check.isin(c["values"]))
        elif kind == "pattern":
            col["checks"].append(pa.Check.str_matches(f"^(?:{c['pattern']})$"))
        elif kind == "pair_le":
            a, b = c["a"], c["b"]
            # A boolean Series here makes pandera report every column of every failing
            # row (30 × the failures; 7 s at 100k rows), so the scalar form: no row count.
            frame_checks.append(
                pa.Check(lambda df, a=a, b=b: bool((df[a] <= df[b]).all()), name="pair_le")
            )
        elif kind == "compound_unique":
            unique = c["columns"]
    cols.pop("", None)
    columns = {
        name: pa.Column(v.get("dtype"), checks=v["checks"], nullable=v["nullable"],
                        unique=v.get("unique", False))
        for name, v in cols.items()
    }  # fmt: skip
    return pa.DataFrameSchema(columns, checks=frame_checks, unique=unique)


def pandera_validate(schema, df):  # type: ignore[no-untyped-def]
    import pandera.pandas as pa

    try:
        schema.validate(df, lazy=True)
        return None
    except pa.errors.SchemaErrors as err:
        return err.failure_cases


def pandera_counts(cases, spec):  # type: ignore[no-untyped-def]
    """Offending rows per neutral check from pandera's failure-case frame."""
    if cases is None:
        return {c["id"]: 0 for c in spec}
    counts = {}
    grouped = cases.groupby(["column", "check"], dropna=False).size()
    lookup = {(str(col), str(check)): int(v) for (col, check), v in grouped.items()}

    def find(column: str, prefix: str) -> int:
        return sum(
            v for (col, check), v in lookup.items() if col == column and check.startswith(prefix)
        )

    for c in spec:
        kind, col = c["kind"], c.get("column", "")
        if kind == "rows":
            counts[c["id"]] = find("None", "rows") and c["min"]
        elif kind == "type":
            counts[c["id"]] = find(col, "dtype")
        elif kind == "not_null":
            counts[c["id"]] = find(col, "not_nullable")
        elif kind == "unique":
            counts[c["id"]] = find(col, "field_uniqueness")
        elif kind in ("range", "date_range"):
            counts[c["id"]] = find(col, "in_range")
        elif kind == "null_fraction":
            counts[c["id"]] = -1 if find(col, "nulls") else 0  # pandera gives no row count
        elif kind == "allowed":
            counts[c["id"]] = find(col, "isin")
        elif kind == "pattern":
            counts[c["id"]] = find(col, "str_matches")
        elif kind == "pair_le":
            failed = any(check == "pair_le" for (_, check) in lookup)
            counts[c["id"]] = -1 if failed else 0
        elif kind == "compound_unique":
            counts[c["id"]] = sum(
                v for (_, check), v in lookup.items() if "multiple_fields_uniqueness" in check
            )
    return counts


def ge_suite(spec, gx, gxe):  # type: ignore[no-untyped-def]
    import datetime as dt

    suite = gx.ExpectationSuite("bench")
    for c in spec:
        kind, col = c["kind"], c.get("column")
        if kind == "rows":
            e = gxe.ExpectTableRowCountToBeBetween(min_value=c["min"], max_value=c["max"])
        elif kind == "type":
            e = gxe.ExpectColumnValuesToBeOfType(column=col, type_=c["type"])
        elif kind == "not_null":
            e = gxe.ExpectColumnValuesToNotBeNull(column=col)
        elif kind == "unique":
            e = gxe.ExpectColumnValuesToBeUnique(column=col)
        elif kind == "range":
            e = gxe.ExpectColumnValuesToBeBetween(
                column=col, min_value=c["min"], max_value=c["max"]
            )
        elif kind == "date_range":
            e = gxe.ExpectColumnValuesToBeBetween(
                column=col, min_value=dt.datetime.fromisoformat(c["min"]),
                max_value=dt.datetime.fromisoformat(c["max"]),
            )  # fmt: skip
        elif kind == "null_fraction":
            e = gxe.ExpectColumnValuesToNotBeNull(column=col, mostly=1 - c["max"])
        elif kind == "allowed":
            e = gxe.ExpectColumnValuesToBeInSet(column=col, value_set=c["values"])
        elif kind == "pattern":
            e = gxe.ExpectColumnValuesToMatchRegex(column=col, regex=f"^(?:{c['pattern']})$")
        elif kind == "pair_le":
            e = gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A=c["b"], column_B=c["a"], or_equal=True
            )
        else:
            e = gxe.ExpectCompoundColumnsToBeUnique(column_list=c["columns"])
        e.meta = {"id": c["id"]}
        suite.add_expectation(e)
    return suite


def worker(tool: str, rows: int, repeat: int) -> dict:
    spec = checks(rows)
    df = make_table(rows)
    release_memory()  # generation's garbage must not count as anyone's peak
    out: dict = {"tool": tool, "rows": rows, "table_mb": df.memory_usage(deep=True).sum() / 1e6}
    if tool == "floor":
        m = _measure(lambda: floor_validate(df, spec), repeat)
        out["counts"] = m.pop("result")
    elif tool == "modelyard":
        contract = modelyard_contract(spec)
        m = _measure(lambda: contract.validate(df), repeat)
        out["counts"], out["checks"] = modelyard_counts(m.pop("result"), spec)
    elif tool == "pandera":
        schema = pandera_schema(spec)
        m = _measure(lambda: pandera_validate(schema, df), repeat)
        out["counts"] = pandera_counts(m.pop("result"), spec)
    elif tool == "ge":
        os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
        import great_expectations as gx
        import great_expectations.expectations as gxe

        context = gx.get_context(mode="ephemeral")
        try:
            from great_expectations.data_context.types.base import ProgressBarsConfig

            context.variables.progress_bars = ProgressBarsConfig(globally=False)
        except Exception:
            pass
        batch_def = (
            context.data_sources.add_pandas("p").add_dataframe_asset("a")
            .add_batch_definition_whole_dataframe("b")
        )  # fmt: skip
        suite = context.suites.add(ge_suite(spec, gx, gxe))
        definition = context.validation_definitions.add(
            gx.ValidationDefinition(data=batch_def, suite=suite, name="v")
        )
        run = lambda: definition.run(batch_parameters={"dataframe": df}, result_format="SUMMARY")  # noqa: E731
        m = _measure(run, repeat)
        counts = {}
        for r in m.pop("result").results:
            cid = r.expectation_config.meta["id"]
            unexpected = r.result.get("unexpected_count")
            counts[cid] = 0 if r.success else (unexpected if unexpected is not None else -1)
        out["counts"] = counts
    elif tool == "profile_modelyard":
        from modelyard.data.profile import profile_table

        m = _measure(lambda: profile_table(df), repeat)
        m.pop("result")
    elif tool == "profile_pandas":
        m = _measure(lambda: pandas_profile(df), repeat)
        m.pop("result")
    else:
        raise SystemExit(f"unknown tool {tool}")
    out.update(m)
    return out


def pandas_profile(df):  # type: ignore[no-untyped-def]
    """The same profile with pandas: describe, nulls, distinct, histograms, top values."""
    import numpy as np

    numeric = df.select_dtypes("number")
    profile = {
        "describe": numeric.describe(
            percentiles=[0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99]
        ),
        "nulls": df.isna().sum(),
        "distinct": df.nunique(),
        "histograms": {c: np.histogram(numeric[c].dropna(), bins=20) for c in numeric},
        "top": {c: df[c].value_counts().head(10) for c in df.columns},
        "minmax_other": {
            c: (df[c].min(), df[c].max())
            for c in df.columns
            if c not in numeric and df[c].dtype != "category"
        },
    }
    return profile


# ------------------------------------------------------------------------------ the rest
def import_cost(repeat: int = 7) -> dict:
    code = (
        "import time; t = time.perf_counter(); import modelyard.data.contracts; "
        "print(time.perf_counter() - t)"
    )
    times = [float(_python(sys.executable, ["-c", code]).strip()) for _ in range(repeat)]
    with_pandas = (
        "import time; t = time.perf_counter(); import modelyard.data.contracts.checks, pandas; "
        "print(time.perf_counter() - t)"
    )
    full = [float(_python(sys.executable, ["-c", with_pandas]).strip()) for _ in range(3)]
    return {
        "median_s": statistics.median(times),
        "times": times,
        "with_pandas_s": statistics.median(full),
    }


def write_stream_file(rows: int, path: Path) -> float:
    """A Parquet file of ``rows`` written 250,000 rows (one row group) at a time; returns
    the table's in-memory size in MB."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    writer = None
    uncompressed = 0
    for start in range(0, rows, 250_000):
        part = make_table(min(250_000, rows - start), seed=start + 1)
        table = pa.Table.from_pandas(part, preserve_index=False)
        uncompressed += table.nbytes
        writer = writer or pq.ParquetWriter(path, table.schema)
        writer.write_table(table)
    assert writer is not None
    writer.close()
    return uncompressed / 1e6


def stream_worker(path: Path) -> dict:
    """Snapshot ``path`` streamed (memory limit 64 MB), in a fresh process."""
    from modelyard.config import Settings
    from modelyard.data.client import DataClient

    client = DataClient.from_settings(Settings(home=path.parent / "yard"))
    before = PeakRss().rss()
    with PeakRss() as mem:
        start = time.perf_counter()
        version = client.snapshot(path, "big", pointer=False, memory_limit=64 << 20)
        elapsed = time.perf_counter() - start
    return {
        "rows": version.num_rows,
        "baseline_mb": before / 1e6,
        "peak_mb": mem.peak / 1e6,
        "seconds": elapsed,
        "exact_profile": version.profile["exact"],
    }


def _python(python: str | Path, args: list[str], env: dict | None = None) -> str:
    done = subprocess.run(
        [str(python), *args], capture_output=True, text=True, env=env, timeout=3600
    )
    if done.returncode != 0:
        raise RuntimeError(f"{python} {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return done.stdout


def run_worker(tool: str, rows: int, repeat: int) -> dict:
    python = GE_PYTHON if tool == "ge" else sys.executable
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "GX_ANALYTICS_ENABLED": "False"}
    out = _python(python, [str(Path(__file__).resolve()), "--worker", tool, "--rows", str(rows),
                           "--repeat", str(repeat)], env)  # fmt: skip
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100,000 rows, fewer repeats")
    parser.add_argument("--rows", type=int, default=None)
    parser.add_argument("--repeat", type=int, default=None)
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--stream-rows", type=int, default=None)
    parser.add_argument("--stream", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.stream:
        print(json.dumps(stream_worker(Path(args.stream))))
        return
    rows = args.rows or (100_000 if args.quick else 1_000_000)
    repeat = args.repeat or (3 if args.quick else 5)
    if args.worker:
        print(json.dumps(worker(args.worker, rows, repeat), default=str))
        return
    results: dict = {"rows": rows, "repeat": repeat}
    tools = ["floor", "modelyard", "pandera"]
    if GE_PYTHON.exists():
        tools.append("ge")
    else:
        results["ge_note"] = f"Great Expectations skipped: {GE_PYTHON} is missing"
    for tool in tools:
        reps = max(2, repeat // 2) if tool == "ge" else repeat
        print(f"validating with {tool}…", file=sys.stderr, flush=True)
        results[tool] = run_worker(tool, rows, reps)
    for tool in ("profile_modelyard", "profile_pandas"):
        print(f"{tool}…", file=sys.stderr, flush=True)
        results[tool] = run_worker(tool, rows, repeat)
    results["import"] = import_cost()
    with tempfile.TemporaryDirectory(prefix="modelyard-bench-") as tmp:
        stream_rows = args.stream_rows or (500_000 if args.quick else 4_000_000)
        print(f"streamed snapshot of {stream_rows:,} rows…", file=sys.stderr, flush=True)
        path = Path(tmp) / "big.parquet"
        table_mb = write_stream_file(stream_rows, path)
        out = _python(sys.executable, [str(Path(__file__).resolve()), "--stream", str(path)])
        results["stream"] = {
            **json.loads(out.strip().splitlines()[-1]),
            "table_mb": table_mb,
            "file_mb": path.stat().st_size / 1e6,
        }
    report(results, tools)
    WORK.mkdir(exist_ok=True)
    (WORK / "data_results.json").write_text(json.dumps(results, indent=2, default=str))


def report(results: dict, tools: list[str]) -> None:
    rows = results["rows"]
    floor = results["floor"]["median_s"]
    print(f"\nvalidation of {rows:,} rows × 30 columns, 50 checks (median of repeats)")
    print(f"{'tool':<12}{'seconds':>9}{'× floor':>9}{'CPU s':>8}{'peak MB':>9}{'before':>8}")
    for tool in tools:
        r = results[tool]
        print(
            f"{tool:<12}{r['median_s']:>9.3f}{r['median_s'] / floor:>9.2f}{r['cpu_s']:>8.2f}"
            f"{r['peak_mb']:>9.0f}{r['baseline_mb']:>8.0f}"
        )
    print(
        f"('before': RSS with the {results['floor']['table_mb']:.0f} MB table loaded and the "
        f"tool imported; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)"
    )
    if "ge" in results:
        speedup = results["ge"]["median_s"] / results["modelyard"]["median_s"]
        print(f"modelyard is {speedup:.1f}× faster than Great Expectations")
    print("\noffending rows of failed checks (floor | modelyard | pandera | GE):")
    reference = results["floor"]["counts"]
    agree = True
    for cid, count in reference.items():
        others = [results[t]["counts"].get(cid) for t in tools[1:]]
        if count or any(others):
            same = all(o in (count, -1) for o in others)
            agree &= results["modelyard"]["counts"].get(cid) == count
            print(
                f"  {cid:<18}{count:>10,} | "
                + " | ".join(f"{o:,}" if o is not None else "—" for o in others)
                + ("" if same else "   ≠")
            )
    print(f"modelyard counts match the floor exactly: {agree}")
    pm, pp = results["profile_modelyard"], results["profile_pandas"]
    print(
        f"\nfull profile: modelyard {pm['median_s']:.2f}s (CPU {pm['cpu_s']:.2f}s, "
        f"{pm['peak_mb']:.0f} MB peak), pandas {pp['median_s']:.2f}s "
        f"(CPU {pp['cpu_s']:.2f}s, {pp['peak_mb']:.0f} MB peak)"
    )
    imp = results["import"]
    print(
        f"import modelyard.data.contracts: {imp['median_s'] * 1000:.0f} ms "
        f"(with pandas and the checks module: {imp['with_pandas_s']:.2f}s)"
    )
    s = results["stream"]
    print(
        f"streamed snapshot: {s['rows']:,} rows, {s['table_mb']:.0f} MB in memory as a table "
        f"({s['file_mb']:.0f} MB Parquet), peak RSS {s['peak_mb']:.0f} MB, {s['seconds']:.1f}s"
    )


if __name__ == "__main__":
    main()
