"""Log the runs the browser tests look at, with the unmodified mlflow client, as a user's
script would (run as a subprocess with ``MLFLOW_TRACKING_URI`` set; it prints the links the
client prints, which the tests open).

* experiment ``ui-table``: ``TABLE_RUNS`` runs with params ``model`` (a/b) and ``lr`` and
  a ``loss`` history of 50 steps, for the table's filter, sort and pages;
* experiment ``ui-run``: one run with every artifact kind, a dataset input and a source
  commit; one run named like an HTML tag; one run whose ``long`` metric has
  ``LONG_POINTS`` points.
"""

from __future__ import annotations

import base64
import sys
import tempfile
import time
from pathlib import Path

import mlflow
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from mlflow.entities import Metric

TABLE_RUNS = 60
LONG_POINTS = 100_000
SPIKE_STEP = 71_234
HOSTILE_NAME = "<img src=x onerror=alert(1)>"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
# A 2x2 red PNG.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAEklEQVR4nGP4z8DAwMDAxMDAAAAQ5wEAkp3j"
    "LQAAAABJRU5ErkJggg=="
)
HTML = (
    "<html><head><title>report</title></head><body><h1 id='made'>Model report</h1>"
    "<script>parent.document.title = 'pwned'; document.getElementById('made').textContent"
    " = 'scripts ran';</script></body></html>"
)


def table_runs() -> None:
    mlflow.set_experiment("ui-table")
    for i in range(TABLE_RUNS):
        with mlflow.start_run(run_name=f"table-{i:03d}"):
            mlflow.log_params({"model": "a" if i % 2 else "b", "lr": i / 1000})
            mlflow.log_metric("score", float(i))
            mlflow.log_metrics({"loss": 1.0 / (i + 1)}, step=0)


def artifact_run(folder: Path) -> None:
    mlflow.set_experiment("ui-run")
    with mlflow.start_run(run_name="artifacts-run") as run:
        mlflow.set_tag("mlflow.source.git.commit", COMMIT)
        mlflow.set_tag("team", "forecasting")
        mlflow.log_params({"model": "lgbm", "depth": 7})
        for step in range(50):
            mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
            mlflow.log_metric("accuracy", step / 50, step=step)
        (folder / "plot.png").write_bytes(PNG)
        (folder / "notes.txt").write_text("hello from the run\n<b>not bold</b>\n")
        (folder / "report.html").write_text(HTML)
        pd.DataFrame({"store": [1, 2, 3], "demand": [10.5, 20.25, 30.0]}).to_csv(
            folder / "predictions.csv", index=False
        )
        pq.write_table(pa.table({"sku": ["x", "y"], "units": [3, 4]}), folder / "sample.parquet")
        for name in ("plot.png", "notes.txt", "report.html", "predictions.csv"):
            mlflow.log_artifact(str(folder / name))
        mlflow.log_artifact(str(folder / "sample.parquet"), artifact_path="tables")
        frame = pd.DataFrame({"store": [1, 2], "units": [3, 4]})
        mlflow.log_input(mlflow.data.from_pandas(frame, name="sales-2026"), context="training")
    print(f"ARTIFACT_RUN {run.info.run_id}")


def hostile_run() -> None:
    with mlflow.start_run(run_name=HOSTILE_NAME) as run:
        mlflow.log_param("html", HOSTILE_NAME)
        mlflow.set_tag("note", HOSTILE_NAME)
        mlflow.log_metric("m", 1.0)
    print(f"HOSTILE_RUN {run.info.run_id}")


def long_run() -> None:
    client = mlflow.MlflowClient()
    with mlflow.start_run(run_name="long-history") as run:
        now = int(time.time() * 1000)
        for start in range(0, LONG_POINTS, 1000):
            # A saw tooth with one spike, which a shape-preserving sample keeps.
            values = [
                ((s % 1000) - 500) / 500.0 + (10.0 if s == SPIKE_STEP else 0.0)
                for s in range(start, start + 1000)
            ]
            batch = [Metric("long", v, now + s, s) for s, v in enumerate(values, start)]
            client.log_batch(run.info.run_id, metrics=batch)
    print(f"LONG_RUN {run.info.run_id}")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        table_runs()
        artifact_run(Path(tmp))
        hostile_run()
        long_run()
    sys.stdout.flush()


if __name__ == "__main__":
    main()
