"""Search answers as MLflow's server answers the same filter.

MLflow's own stores (``mlflow.store.*.sqlalchemy_store.SqlAlchemyStore``, what its server
runs) are filled on a temporary SQLite file with the same experiments, runs, registered
models and versions as ours (on SQLite and PostgreSQL); each filter must find the same
names in both, and a filter MLflow refuses we refuse too. The few places where we answer
differently on purpose are pinned in ``test_where_we_differ_from_mlflow_on_purpose``.
Last, the unmodified MLflow client searches a running ``modelyard server``.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from modelyard.errors import InvalidParameter
from modelyard.registry.client import RegistryClient
from modelyard.registry.entities import Actor
from modelyard.tracking.client import TrackingClient
from modelyard.tracking.entities import Metric, Param, RunTag, ViewType

mlflow = pytest.importorskip("mlflow")

EXPERIMENTS: dict[str, dict[str, str]] = {
    "salt AND pepper": {"team": "kitchen"},
    "it's": {"team": "it's ours"},
    "it\\'s": {"team": "it\\'s"},
    "back\\slash": {"team": "Kitchen"},
    "Plain": {},
    "plain": {"owner": "ana"},
    "a_b": {"team": "a%b"},
    'dq"x': {"odd key": "v"},
}
#: run name → (params, tags, metrics), all in the experiment "plain".
RUNS: dict[str, tuple[dict[str, str], dict[str, str], dict[str, float]]] = {
    "r-salt": ({"p": "salt AND pepper"}, {"t": "kitchen"}, {"m": 0.5}),
    "r-its": ({"p": "it's"}, {"t": "Kitchen"}, {"m": 1.0}),
    "r-backslash": ({"p": "it\\'s"}, {}, {"m": 2.0}),
    "R-plain": ({}, {"t": "x"}, {"m": -1.0, "n": 3.0}),
}
MODELS: dict[str, dict[str, str]] = {
    "salt AND pepper": {"team": "kitchen"},
    "it's": {"team": "it's ours"},
    "it\\'s": {},
    "back\\slash": {"team": "Kitchen"},
    "Plain": {},
    "plain": {"owner": "ana"},
    "a_b": {"team": "a%b"},
    "a prompt": {"mlflow.prompt.is_prompt": "true"},
}
VERSIONS: list[tuple[str, str, dict[str, str]]] = [
    ("salt AND pepper", "s3://bucket/salt AND pepper", {"stage": "it's"}),
    ("salt AND pepper", "s3://bucket/other", {}),
    ("it's", "s3://bucket/it's", {"stage": "Kitchen"}),
    ("Plain", "s3://bucket/plain", {"stage": "kitchen"}),
    ("Plain", "s3://bucket/plain2", {}),
    ("Plain", "s3://bucket/plain3", {"stage": "x"}),
]

EXPERIMENT_FILTERS = [
    "name = 'salt AND pepper'",
    'name = "it\'s"',
    "name = 'it\\'s'",
    "name = 'back\\slash'",
    "name = 'dq\"x'",
    "name != 'Plain'",
    "name LIKE 'p%'",
    "name ILIKE 'p%'",
    "name LIKE '%AND%'",
    "name LIKE 'a_b'",
    "name ILIKE '%LASH'",
    "experiment_id = '1'",
    "experiment_id != '1'",
    "experiment_id IN ('1', '3')",
    "experiment_id NOT IN ('0', '1')",
    "tags.team = 'kitchen'",
    "tags.team != 'kitchen'",
    "tags.team LIKE 'K%'",
    "tags.team ILIKE 'kitchen'",
    'tags.team = "it\'s ours"',
    "tags.team IS NULL",
    "tags.team IS NOT NULL AND tags.owner IS NULL",
    "tags.`odd key` = 'v'",
    "creation_time > 0",
    "creation_time >= 0 AND name LIKE 'P%'",
    "creation_time < 0",
    "creation_time <= 0",
    "creation_time = 0",
    "last_update_time != 0 AND tags.owner = 'ana'",
]
RUN_FILTERS = [
    "params.p = 'salt AND pepper'",
    'params.p = "it\'s"',
    "params.p = 'it\\'s'",
    "params.p != 'it''s ours'",
    "params.p LIKE '%AND%'",
    "params.p ILIKE 'SALT%'",
    "params.p IS NULL",
    "params.p IS NOT NULL",
    "tags.t = 'kitchen'",
    "tags.t != 'kitchen'",
    "tags.t LIKE 'K%'",
    "tags.t ILIKE 'k%'",
    "tags.t IS NULL",
    "metrics.m = 1",
    "metrics.m != 1",
    "metrics.m < 1",
    "metrics.m <= 1",
    "metrics.m > 0.5",
    "metrics.m >= 0.5 AND tags.t IS NOT NULL",
    "metrics.n > 0",
    "attributes.run_name = 'r-salt'",
    "run_name LIKE 'r-%'",
    "run_name ILIKE 'r-%'",
    "attributes.run_name != 'R-plain' AND params.p LIKE 'it%'",
    "attributes.status = 'RUNNING'",
    'start_time > 0 AND params.p = "it\'s"',
]
MODEL_FILTERS = [
    "name = 'salt AND pepper'",
    'name = "it\'s"',
    "name = 'it\\'s'",
    "name = 'back\\slash'",
    "name != 'Plain'",
    "name LIKE 'p%'",
    "name ILIKE 'p%'",
    "name LIKE '%AND%'",
    "name LIKE 'a_b'",
    "name IN ('Plain', \"it's\")",
    "name NOT IN ('Plain', 'plain', 'a_b')",
    "tags.team = 'kitchen'",
    "tags.team != 'kitchen'",
    "tags.team LIKE 'K%'",
    "tags.team ILIKE 'KITCHEN'",
    'tag.team = "it\'s ours"',
    "name LIKE '%a%' AND tags.`mlflow.prompt.is_prompt` != 'true'",
    "tags.`mlflow.prompt.is_prompt` = 'true'",
    "tags.`mlflow.prompt.is_prompt` != 'false'",
    "tags.`mlflow.prompt.is_prompt` = 'false'",
]
VERSION_FILTERS = [
    "name = 'salt AND pepper'",
    'name = "it\'s" AND version_number = 1',
    "source_path = 's3://bucket/salt AND pepper'",
    "source_path LIKE '%AND%'",
    "source_path ILIKE 'S3://BUCKET/PLAIN_'",
    "name IN ('Plain', \"it's\") AND version_number >= 2",
    "name NOT IN ('Plain') AND version_number > 1",
    "name = 'Plain' AND version_number < 3",
    "name = 'Plain' AND version_number <= 2",
    "name = 'Plain' AND version_number != 2",
    'tags.stage = "it\'s"',
    "tags.stage != 'x'",
    "tags.stage LIKE 'K%'",
    "tags.stage ILIKE 'k%'",
]
#: Filters both refuse (400 INVALID_PARAMETER_VALUE), per search.
REFUSED = {
    "experiments": [
        "name = 'a' OR name = 'b'",
        "params.x = 'a'",
        "name > 'a'",
        "creation_time > 'x'",
        "name = 'unterminated",
        "tags.team = kitchen",
    ],
    "runs": ["metrics.m LIKE '1'", "params.p > 'a'", "x.y = 'a'", "metrics.m > 1 OR tags.t = 'x'"],
    "models": ["name > 'a'", "run_id = 'x'", "name = 1", "metrics.m > 1"],
    "versions": ["version_number LIKE '1'", "foo = 'x'", "source_path IN ('a') OR name = 'b'"],
}


# --- MLflow's stores, filled once ------------------------------------------------------------


class MlflowSide:
    def __init__(self, folder: Any) -> None:
        from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore as Registry
        from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore as Tracking

        uri = f"sqlite:///{folder}/mlflow.db"
        self.tracking = Tracking(uri, str(folder / "artifacts"))
        self.registry = Registry(uri)

    def fill(self) -> None:
        from mlflow.entities import ExperimentTag, Metric, Param, RunTag
        from mlflow.entities.model_registry import ModelVersionTag, RegisteredModelTag

        ids = {}
        for name, tags in EXPERIMENTS.items():
            ids[name] = self.tracking.create_experiment(
                name, tags=[ExperimentTag(k, v) for k, v in tags.items()]
            )
        self.run_experiment = ids["plain"]
        for run_name, (params, tags, metrics) in RUNS.items():
            run = self.tracking.create_run(ids["plain"], "ana", 1, [], run_name)
            self.tracking.log_batch(
                run.info.run_id,
                [Metric(k, v, 1, 0) for k, v in metrics.items()],
                [Param(k, v) for k, v in params.items()],
                [RunTag(k, v) for k, v in tags.items()],
            )
        for name, tags in MODELS.items():
            model_tags = [RegisteredModelTag(k, v) for k, v in tags.items()]
            self.registry.create_registered_model(name, tags=model_tags)
        for name, source, tags in VERSIONS:
            version_tags = [ModelVersionTag(k, v) for k, v in tags.items()]
            self.registry.create_model_version(name, source, tags=version_tags)

    def search(self, what: str, text: str) -> list[Any]:
        from mlflow.entities import ViewType as MlflowViewType

        if what == "experiments":
            found = self.tracking.search_experiments(MlflowViewType.ALL, 1000, text)
            return sorted(e.name for e in found)
        if what == "runs":
            runs = self.tracking.search_runs(
                [self.run_experiment], text, MlflowViewType.ACTIVE_ONLY, 1000
            )
            return sorted(r.info.run_name for r in runs)
        if what == "models":
            return sorted(m.name for m in self.registry.search_registered_models(text, 1000))
        versions = self.registry.search_model_versions(text, 1000)
        return sorted((v.name, int(v.version)) for v in versions)


@pytest.fixture(scope="module")
def theirs(tmp_path_factory) -> MlflowSide:
    side = MlflowSide(tmp_path_factory.mktemp("mlflow"))
    side.fill()
    return side


# --- ours, on each backend ---------------------------------------------------------------------


class OurSide:
    def __init__(self, settings: Any) -> None:
        self.tracking = TrackingClient.from_settings(settings)
        self.registry = RegistryClient.from_settings(settings)

    def fill(self) -> None:
        ids = {}
        for name, tags in EXPERIMENTS.items():
            ids[name] = self.tracking.create_experiment(name, tags=tags)
        self.run_experiment = ids["plain"]
        for run_name, (params, tags, metrics) in RUNS.items():
            run = self.tracking.create_run(ids["plain"], run_name=run_name, start_time=1)
            self.tracking.log_batch(
                run.info.run_id,
                [Metric(k, v, 1, 0) for k, v in metrics.items()],
                [Param(k, v) for k, v in params.items()],
                [RunTag(k, v) for k, v in tags.items()],
            )
        actor = Actor("ana")
        for name, tags in MODELS.items():
            self.registry.store.create_registered_model(name, actor, tags=tags)
        for name, source, tags in VERSIONS:
            self.registry.store.create_model_version(
                name, actor, source=source, storage_location=source, tags=tags
            )

    def search(self, what: str, text: str) -> list[Any]:
        if what == "experiments":
            found = self.tracking.search_experiments(ViewType.ALL, filter_string=text)
            return sorted(e.name for e in found)
        if what == "runs":
            runs = self.tracking.search_runs([self.run_experiment], text)
            return sorted(r.info.run_name for r in runs)
        if what == "models":
            return sorted(m.name for m in self.registry.search_registered_models(text, 1000))
        versions = self.registry.search_model_versions(text, 1000)
        return sorted((v.name, v.version) for v in versions)


@pytest.fixture
def ours(backend_settings) -> OurSide:
    side = OurSide(backend_settings)
    side.fill()
    return side


@pytest.mark.parametrize(
    ("what", "filters"),
    [
        ("experiments", EXPERIMENT_FILTERS),
        ("runs", RUN_FILTERS),
        ("models", MODEL_FILTERS),
        ("versions", VERSION_FILTERS),
    ],
)
def test_each_filter_finds_what_mlflow_finds(theirs, ours, what, filters):
    answers = {text: ours.search(what, text) for text in filters}
    expected = {text: theirs.search(what, text) for text in filters}
    assert answers == expected
    assert any(answers.values())  # the table finds something


@pytest.mark.parametrize("what", sorted(REFUSED))
def test_what_mlflow_refuses_we_refuse(theirs, ours, what):
    from mlflow.exceptions import MlflowException

    for text in REFUSED[what]:
        with pytest.raises(MlflowException) as caught:
            theirs.search(what, text)
        assert caught.value.error_code == "INVALID_PARAMETER_VALUE", text
        with pytest.raises(InvalidParameter) as refused:
            ours.search(what, text)
        assert refused.value.to_dict()["error_code"] == "INVALID_PARAMETER_VALUE"


def test_where_we_differ_from_mlflow_on_purpose(theirs, ours):
    # A doubled quote stands for one quote, as in SQL and as MLflow's own client writes
    # names with both kinds of quote (mlflow.genai.datasets); MLflow's server keeps both.
    assert ours.search("models", "name = 'it''s'") == ["it's"]
    assert theirs.search("models", "name = 'it''s'") == []
    # A backslash escapes the next character of a LIKE pattern on every backend (MLflow:
    # on PostgreSQL only; on SQLite its LIKE has no escape character).
    assert ours.search("models", "name LIKE 'it\\'s'") == ["it's"]
    assert theirs.search("models", "name LIKE 'it\\'s'") == ["it\\'s"]
    # A few filters MLflow refuses are accepted as the grammar reads them.
    for what, text, found in [
        ("experiments", "name IN ('Plain', 'plain')", ["Plain", "plain"]),
        ("models", "tags.team IS NULL AND name LIKE 'p%'", ["plain"]),
        ("versions", "name = 'Plain' AND version_number = 2.0", [("Plain", 2)]),
    ]:
        assert ours.search(what, text) == found


# --- the unmodified MLflow client, against a running server ----------------------------------


def test_the_mlflow_client_searches_a_server_with_the_same_grammar(live_server, monkeypatch):
    from mlflow import MlflowClient

    monkeypatch.setenv("MLFLOW_TRACKING_URI", live_server.url)
    client = MlflowClient(live_server.url, live_server.url)
    unique = uuid.uuid4().hex[:8]
    salty = f"salt AND pepper {unique}"
    quoted = f"it's {unique}"
    for name in (salty, quoted, f"plain {unique}"):
        client.create_experiment(name, tags={"unique": unique})
        client.create_registered_model(name, tags={"unique": unique})

    def experiments(text: str) -> list[str]:
        found = client.search_experiments(filter_string=f"{text} AND tags.unique = '{unique}'")
        return sorted(e.name for e in found)

    def models(text: str) -> list[str]:
        found = client.search_registered_models(f"{text} AND tags.unique = '{unique}'")
        return sorted(m.name for m in found)

    for search in (experiments, models):
        assert search(f"name = '{salty}'") == [salty]
        assert search(f'name = "{quoted}"') == [quoted]
        assert search("name LIKE 'salt AND%'") == [salty]
        assert search("name ILIKE 'IT%'") == [quoted]
        assert len(search("name != 'x'")) == 3
    assert models(f"name IN ('{salty}', \"{quoted}\")") == sorted([salty, quoted])
    # versions need saved model files (tests/server/control/test_mlflow_registry.py makes them)
    assert client.search_model_versions(f"name = '{salty}' AND version_number > 0") == []
    newest = client.search_experiments(
        filter_string=f"tags.unique = '{unique}'", order_by=["name DESC"], max_results=2
    )
    assert [e.name for e in newest] == [salty, f"plain {unique}"]
    with pytest.raises(mlflow.exceptions.RestException, match="position 13 near 'OR'"):
        client.search_registered_models("name = 'a b' OR name = 'c'")
