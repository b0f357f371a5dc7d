"""One spelling for a model everywhere: parsing model URIs."""

from __future__ import annotations

import pytest

from modelyard.errors import InvalidParameter
from modelyard.registry.entities import Stage
from modelyard.registry.uris import LoggedModelRef, ModelRef, RunRef, parse_model_uri


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("models:/churn/3", ModelRef("churn", version=3)),
        ("models:/churn@champion", ModelRef("churn", alias="champion")),
        ("models:/churn/Production", ModelRef("churn", stage=Stage.PRODUCTION)),
        ("models:/churn/staging", ModelRef("churn", stage=Stage.STAGING)),
        ("models:/churn/latest", ModelRef("churn", latest=True)),
        ("models:/demand forecast/1", ModelRef("demand forecast", version=1)),
        (
            "models:/m-0123456789abcdef0123456789abcdef",
            LoggedModelRef("m-" + "0123456789abcdef" * 2),
        ),
        ("runs:/abc123/model", RunRef("abc123", "model")),
        ("runs:/abc123/nested/dir/", RunRef("abc123", "nested/dir")),
    ],
)
def test_accepted_forms(uri, expected):
    assert parse_model_uri(uri) == expected


def test_a_parsed_uri_prints_back():
    assert str(parse_model_uri("models:/churn@champion")) == "models:/churn@champion"
    assert str(parse_model_uri("models:/churn/3")) == "models:/churn/3"


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("churn", "is not one of models:/NAME/VERSION"),
        ("models:/churn", "is not one of"),
        ("models:/churn/0", "positive integer"),
        ("models:/churn/Live", "unknown stage 'Live'"),
        ("models:/churn@", "alias '' is invalid"),
        ("models:/churn@latest", "reserved"),
        ("runs:/", "names no run"),
        (3, "must be a string"),
    ],
)
def test_malformed_uris_say_what_is_accepted(uri, message):
    with pytest.raises(InvalidParameter, match=message):
        parse_model_uri(uri)
