"""Errors answered as MLflow's server answers them: its wording at the start of the message
(clients and scripts match it), our detail after it, and the same validation order."""

from __future__ import annotations

import pytest
from tests.server.conftest import assert_error

API = "/api/2.0/mlflow"


@pytest.fixture
def run_id(http, unique) -> str:
    created = http.post(f"{API}/experiments/create", json={"name": f"wording-{unique}"})
    experiment_id = created.json()["experiment_id"]
    return http.post(f"{API}/runs/create", json={"experiment_id": experiment_id}).json()["run"][
        "info"
    ]["run_id"]


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"name": 123}, "Invalid value 123 for parameter 'name' supplied: must be a string"),
        ({}, "Missing value for required parameter 'name'."),
        (
            {"name": "x", "artifact_location": 9.0},
            "Invalid value 9.0 for parameter 'artifact_location' supplied",
        ),
        ({"name": "x", "tags": "5"}, "Invalid value \"5\" for parameter 'tags' supplied"),
    ],
)
def test_a_malformed_experiment_is_refused_in_mlflows_words(http, payload, message):
    body = assert_error(
        http.post(f"{API}/experiments/create", json=payload), 400, "INVALID_PARAMETER_VALUE"
    )
    assert body["message"].startswith(message)


@pytest.mark.parametrize("path", ["runs/log-metric", "runs/log-parameter", "runs/set-tag"])
def test_a_numeric_run_id_is_a_bad_request_checked_before_the_value(http, path):
    payload = {"run_id": 31, "key": "k", "value": 41, "timestamp": 59, "step": 26}

    body = assert_error(http.post(f"{API}/{path}", json=payload), 400, "INVALID_PARAMETER_VALUE")

    assert body["message"].startswith("Invalid value 31 for parameter 'run_id' supplied")


@pytest.mark.parametrize(
    ("payload", "field", "value"),
    [
        ({"key": 31, "value": 41}, "key", "31"),
        ({"key": "k", "value": 41, "timestamp": 59, "step": "foo"}, "step", '"foo"'),
        ({"key": "k", "value": 41, "timestamp": "foo"}, "timestamp", '"foo"'),
    ],
)
def test_a_metric_field_of_the_wrong_type_is_named(http, run_id, payload, field, value):
    response = http.post(f"{API}/runs/log-metric", json={"run_id": run_id, **payload})

    body = assert_error(response, 400, "INVALID_PARAMETER_VALUE", field)
    assert body["message"].startswith(f"Invalid value {value} for parameter '{field}' supplied")


def test_a_missing_run_id_and_key_are_named_in_mlflows_words(http, run_id):
    no_run = http.post(f"{API}/runs/log-metric", json={"run_id": None, "key": "k", "value": 1})
    no_key = http.post(f"{API}/runs/log-metric", json={"run_id": run_id, "value": 1})
    inputs = http.post(f"{API}/runs/log-inputs", json={"datasets": []})

    for response, name in ((no_run, "run_id"), (no_key, "key"), (inputs, "run_id")):
        body = assert_error(response, 400, "INVALID_PARAMETER_VALUE")
        assert body["message"].startswith(f"Missing value for required parameter '{name}'")


@pytest.mark.parametrize("field", ["metrics", "params", "tags"])
def test_a_batch_list_of_the_wrong_type_is_named(http, run_id, field):
    response = http.post(f"{API}/runs/log-batch", json={"run_id": run_id, field: "foo"})

    body = assert_error(response, 400, "INVALID_PARAMETER_VALUE", field)
    assert body["message"].startswith(f"Invalid value \"foo\" for parameter '{field}' supplied")


def test_a_batch_metric_without_timestamp_is_named_by_position(http, run_id):
    response = http.post(
        f"{API}/runs/log-batch", json={"run_id": run_id, "metrics": [{"key": "mae", "value": 2}]}
    )

    body = assert_error(response, 400, "INVALID_PARAMETER_VALUE")
    assert body["message"].startswith("Missing value for required parameter 'metrics[0].timestamp'")


def test_a_run_search_page_beyond_mlflows_cap_is_refused(http, run_id):
    experiment_id = http.get(f"{API}/runs/get", params={"run_id": run_id}).json()["run"]["info"][
        "experiment_id"
    ]
    response = http.post(
        f"{API}/runs/search", json={"experiment_ids": [experiment_id], "max_results": 123456789}
    )

    body = assert_error(response, 400, "INVALID_PARAMETER_VALUE", "max_results")
    assert body["message"].startswith(
        "Invalid value 123456789 for parameter 'max_results' supplied: must be an integer from 1"
    )


def test_unknown_runs_and_tags_are_named_as_mlflow_names_them(http, run_id):
    unknown_run = http.post(f"{API}/runs/delete-tag", json={"run_id": "fake_run_id", "key": "t"})
    unknown_tag = http.post(f"{API}/runs/delete-tag", json={"run_id": run_id, "key": "fakeTag"})
    http.post(f"{API}/runs/delete", json={"run_id": run_id})
    deleted = http.post(f"{API}/runs/set-tag", json={"run_id": run_id, "key": "t", "value": "v"})

    assert assert_error(unknown_run, 404, "RESOURCE_DOES_NOT_EXIST")["message"] == (
        "Run with id=fake_run_id not found"
    )
    assert assert_error(unknown_tag, 404, "RESOURCE_DOES_NOT_EXIST")["message"].startswith(
        "No tag with name: fakeTag"
    )
    assert assert_error(deleted, 400, "INVALID_STATE")["message"].startswith(
        f"The run {run_id} must be in the 'active' state"
    )


def test_unknown_and_duplicate_registered_models_are_named_as_mlflow_names_them(http, unique):
    name = f"wording-{unique}"
    missing = http.get(f"{API}/registered-models/get", params={"name": name})
    http.post(f"{API}/registered-models/create", json={"name": name})
    again = http.post(f"{API}/registered-models/create", json={"name": name})
    no_version = http.get(f"{API}/model-versions/get", params={"name": name, "version": "7"})

    assert assert_error(missing, 404, "RESOURCE_DOES_NOT_EXIST")["message"].startswith(
        f"Registered Model with name={name} not found"
    )
    assert assert_error(again, 400, "RESOURCE_ALREADY_EXISTS")["message"].startswith(
        f"Registered Model (name={name}) already exists"
    )
    assert assert_error(no_version, 404, "RESOURCE_DOES_NOT_EXIST")["message"].startswith(
        f"Model Version (name={name}, version=7) not found"
    )


def test_an_unknown_experiment_is_named_as_mlflow_names_it(http):
    response = http.get(f"{API}/experiments/get", params={"experiment_id": "987654"})

    assert assert_error(response, 404, "RESOURCE_DOES_NOT_EXIST")["message"] == (
        "No Experiment with id=987654 exists"
    )


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/3.0/mlflow/issues/nonexistent-issue"),
        ("POST", "/api/3.0/mlflow/issues"),
        ("GET", "/api/2.0/mlflow/traces/tr-0123"),
        ("POST", "/api/3.0/mlflow/traces/search"),
        ("POST", "/api/3.0/mlflow/scorers/register"),
        ("POST", "/api/3.0/mlflow/gateway/secrets/create"),
        ("POST", "/api/3.0/mlflow/datasets/create"),
        ("POST", "/ajax-api/2.0/mlflow/runs/create-promptlab-run"),
    ],
)
def test_resources_this_server_does_not_hold_are_unknown_resources(http, method, path):
    """As MLflow answers an unknown resource (its clients handle that), not a missing
    endpoint."""
    response = http.request(method, path, json={})

    body = assert_error(response, 404, "RESOURCE_DOES_NOT_EXIST", "path")
    assert body["message"].startswith(f"No such resource: {path}")


def test_an_artifact_listing_outside_the_run_is_an_invalid_path(http, run_id):
    response = http.get(f"{API}/artifacts/list", params={"run_id": run_id, "path": "../path"})

    body = assert_error(response, 400, "INVALID_PARAMETER_VALUE", "path")
    assert body["message"].startswith("Invalid path: ")
