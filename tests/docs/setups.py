"""What each docs page assumes before its shell commands run, written as a small script.

A page's ```python blocks build most of what its ```bash blocks use (they run first, in
order, in the same folder and yard). What a page only *names* — ``features.py``,
``flows.py``, ``rules.yaml``, a model ``demand`` with four versions, a git repository — is
made here, one `PageSetup` per page, so a reader sees what the page takes for granted.
``words`` are the placeholders a reader replaces (``RUN``, a port already taken on their
machine): each is resolved when the first command that holds it runs, then kept for the
page.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

#: A placeholder's value, computed from the page's folder when a command needs it.
Word = Callable[[Path], str]


@dataclass(frozen=True)
class PageSetup:
    """``script`` runs (Python, a fresh interpreter, the page's folder and yard) before the
    page's first block; ``words`` maps a placeholder on the page to its value."""

    script: str = ""
    words: dict[str, Word] = field(default_factory=dict)
    #: The file the page's ```yaml block is saved as (the file its commands read).
    yaml_block_as: str | None = None


def free_port(_folder: Path) -> str:
    """A port nothing listens on now (the page's 5000 or 8080 may be taken here)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return str(s.getsockname()[1])


def newest_run(experiment: str) -> Word:
    """The id of the newest top-level run of ``experiment`` in the page's yard."""

    def resolve(folder: Path) -> str:
        from modelyard.config import Settings
        from modelyard.tracking.client import TrackingClient

        with TrackingClient.from_settings(Settings(home=folder / "yard")) as client:
            found = client.get_experiment_by_name(experiment)
            assert found is not None, f"no experiment {experiment!r} in {folder}"
            runs = client.search_runs([found.experiment_id], order_by=["start_time DESC"])
            top = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
            assert top, f"no run in experiment {experiment!r}"
            return top[0].info.run_id

    return resolve


def demand_versions(count: int) -> str:
    """``count`` versions of a regression model ``demand`` on columns ``a`` and ``b`` (the
    serving page's request), v1 the approved ``champion`` (later ones fit better); and the
    data and the policy a gate reads."""
    return f"""
import pandas as pd
from sklearn.linear_model import LinearRegression

import modelyard
from modelyard.registry.client import RegistryClient
from modelyard.registry.entities import Actor
from modelyard.registry.log_model import log_model

X = pd.DataFrame({{"a": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], "b": [2.0, 1.0, 4.0, 3.0, 6.0, 5.0]}})
y = 2 * X["a"] + X["b"]
registry = RegistryClient.from_settings()
for noise in (0.5, 0.0, 0.3, 0.1)[:{count}]:
    with modelyard.start_run() as run:
        model = LinearRegression().fit(X, y + noise * (X["a"] % 2))
        log_model(model, "model", input_example=X.head(2))
    registry.as_actor(Actor("ana")).register_model(f"runs:/{{run.info.run_id}}/model", "demand")
registry.as_actor(Actor("bo")).approve("demand", "1", "reviewed")
registry.as_actor(Actor("bo")).set_registered_model_alias("demand", "champion", "1")
X.assign(y=y).to_parquet("eval.parquet")
open("gate.yaml", "w").write(
    "gate: demand\\ntask: regression\\ntarget: y\\nfeatures: [a, b]\\nbootstrap: 20\\n"
    "rules: ['rmse <= 1.0', 'rmse <= champion * 1.5']\\n"
)
"""


#: A deployment ``shop`` serving ``demand`` version 2 in staging.
SHOP = """
from modelyard.serving.deployments import DeploymentService

DeploymentService.from_settings().create("shop", "models:/demand/2", environment="staging")
"""

#: The steps of the pipelines page as a module (`flows.py:forecast`), the sweep's objective
#: as a script (`train.py:objective`) with its `sweep.yaml`, committed to a git repository
#: so that `runs reproduce` finds the commit a run recorded.
PIPELINES = '''
import subprocess
from pathlib import Path

Path("flows.py").write_text("""\\
import pandas as pd

from modelyard.pipelines import pipeline, step


@step
def load(days: int) -> pd.DataFrame:
    return pd.DataFrame({"day": range(days), "sales": [10 + d % 7 for d in range(days)]})


@step
def weekly_mean(sales: pd.DataFrame) -> float:
    return float(sales["sales"].tail(7).mean())


@pipeline
def forecast(days: int = 28):
    return weekly_mean(load(days))
""")
Path("train.py").write_text("""\\
def objective(params, trial):
    floor = (params["lr"] - 0.1) ** 2
    for epoch in range(3):
        loss = floor + 1 / (epoch + 1)
        trial.log_metric("val_loss", loss, step=epoch)
    return loss
""")
Path("sweep.yaml").write_text(
    "space:\\n  lr: {type: float, low: 0.001, high: 0.3, log: true}\\n"
    "n_trials: 3\\nmetric: val_loss\\ndirection: minimize\\nseed: 7\\nname: cli-sweep\\n"
)
Path(".gitignore").write_text("yard/\\n")
git = ["git", "-c", "user.name=docs", "-c", "user.email=docs@example.com"]
subprocess.run(["git", "init", "-q"], check=True)
subprocess.run(["git", "add", "flows.py", "train.py", "sweep.yaml", ".gitignore"], check=True)
subprocess.run([*git, "commit", "-q", "-m", "flows"], check=True)
'''

SETUPS: dict[str, PageSetup] = {
    "coming-from-mlflow.md": PageSetup(
        # The unmodified mlflow client, as a reader's train.py would use it.
        script="""
from pathlib import Path
Path("train.py").write_text('''\\
import mlflow

mlflow.set_experiment("from-mlflow")
with mlflow.start_run() as run:
    mlflow.log_param("alpha", 0.5)
    mlflow.log_metric("rmse", 1.25)
print("logged run", run.info.run_id)
''')
""",
        words={"5000": free_port},
    ),
    "data.md": PageSetup(),
    "features.md": PageSetup(
        # The page's definitions as a file, reading the page's sales from Parquet.
        script="""
from pathlib import Path
import pandas as pd

pd.DataFrame({
    "store_id": [7, 7, 7, 8],
    "units": [3, 5, 9, 2],
    "day": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-01"], utc=True),
}).to_parquet("sales.parquet")
Path("features.py").write_text('''\\
from modelyard.features.definitions import (
    Entity, FeatureService, FeatureView, Field, FileSource)

store = Entity("store", join_keys=["store_id"])
daily = FeatureView("daily_sales", entities=[store], schema=[Field("units", "int64")],
                    source=FileSource("sales.parquet", timestamp_field="day"))
demand = FeatureService("demand", features=[daily])
''')
""",
    ),
    "index.md": PageSetup(),
    "monitoring.md": PageSetup(
        # The drift example's tables as files, four small versions of `sales`, the stored
        # profile; a deployment `shop` of `demand`; the page's rules as rules.yaml.
        script=demand_versions(2)
        + """
import numpy as np
import pandas as pd

from modelyard.data.client import DataClient
from modelyard.monitoring import ReferenceProfile

rng = np.random.default_rng(0)
regions = ["north", "south"]
train = pd.DataFrame({"price": rng.normal(10, 2, 2000), "region": rng.choice(regions, 2000)})
today = pd.DataFrame({"price": rng.normal(11, 2, 2000),
                      "region": rng.choice(regions, 2000, p=[0.3, 0.7])})
train.to_parquet("train.parquet")
today.to_csv("today.csv", index=False)
today.to_parquet("today.parquet")
open("ref.profile", "wb").write(ReferenceProfile.from_table(train, source="train").to_bytes())
data = DataClient.from_settings()
for month in range(4):
    data.snapshot(train.sample(500, random_state=month), "sales")
"""
        + SHOP,
        yaml_block_as="rules.yaml",
    ),
    "pipelines.md": PageSetup(script=PIPELINES, words={"RUN": newest_run("pipelines")}),
    "registry.md": PageSetup(words={"RUN": newest_run("Default")}),
    "scaling-out.md": PageSetup(script=demand_versions(2) + SHOP, words={"5000": free_port}),
    "serving.md": PageSetup(script=demand_versions(4), words={"8080": free_port}),
    "tutorial.md": PageSetup(),
    "ui.md": PageSetup(words={"8080": free_port}),
    "validation.md": PageSetup(script=demand_versions(4)),
}
