"""A forged page token is a 400 naming ``page_token`` on every search the server pages with
seek tokens (registered models, model versions, experiments, dataset versions); a token is
opaque and changes nothing."""

from __future__ import annotations

import base64

import pytest
from tests.server.conftest import assert_error

FORGED = [
    "not-a-token",
    base64.urlsafe_b64encode(b'{"offset": -5}').decode(),
    base64.urlsafe_b64encode(b'{"v": 1, "s": "registered_models:name+", "k": [1]}').decode(),
    "' OR 1=1 --",
]


@pytest.mark.parametrize(
    "path",
    [
        "/api/2.0/mlflow/registered-models/search",
        "/api/2.0/mlflow/model-versions/search",
        "/api/2.0/mlflow/experiments/search",
        "/api/v1/datasets",
    ],
)
def test_a_forged_page_token_is_400_naming_page_token(http, path):
    for token in FORGED:
        assert_error(
            http.get(path, params={"page_token": token}),
            400,
            "INVALID_PARAMETER_VALUE",
            "page_token",
        )


def test_dataset_pages_take_a_bounded_page_size(http):
    for size in ("0", "1001", "x"):
        assert_error(
            http.get("/api/v1/datasets", params={"max_results": size}),
            400,
            "INVALID_PARAMETER_VALUE",
            "max_results",
        )
    assert (
        http.get("/api/v1/datasets", params={"max_results": "5"}).json()["next_page_token"] is None
    )
