"""Bad input gets a clear error naming the field, and changes nothing.

Documented behaviour: NaN and ±infinity metric values are stored faithfully; keys are at
most 250 characters of ``[/\\w.\\- :]``; param values at most 6,000 characters and tag
values at most 8,000 (refused, never truncated); text must be valid UTF-8 without NUL.
"""

from __future__ import annotations

import pytest

from modelyard.errors import InvalidParameter
from modelyard.tracking.entities import Metric, Param


@pytest.fixture
def run_id(local_client):
    return local_client.create_run(local_client.create_experiment("bad")).info.run_id


def assert_unchanged(client, run_id, before):
    after = client.get_run(run_id).data
    assert (after.metrics, after.params) == (before.metrics, before.params)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda c, r: c.log_metric(r, "k" * 251, 1.0), "251 characters"),
        (lambda c, r: c.log_metric(r, "bad key!", 1.0), "invalid metric key 'bad key!'"),
        (lambda c, r: c.log_metric(r, "../escape", 1.0), "not a relative path"),
        (lambda c, r: c.log_metric(r, "m", "1.0"), "must be a number, got str"),
        (lambda c, r: c.log_metric(r, "m", None), "must be a number, got NoneType"),
        (lambda c, r: c.log_metric(r, "m", True), "must be a number, got bool"),
        (lambda c, r: c.log_metric(r, "m", 1.0, step=1.5), "step of metric 'm'"),
        (lambda c, r: c.log_metric(r, "m", 1.0, timestamp=-1), "timestamp of metric 'm'"),
        (lambda c, r: c.log_param(r, "p", "x" * 6001), "6001 characters long; the limit is 6000"),
        (lambda c, r: c.set_tag(r, "t", "x" * 8001), "limit is 8000"),
        (lambda c, r: c.log_param(r, "p", b"\xff\xfe"), "must be a string, got bytes"),
        (lambda c, r: c.log_param(r, "p", "caf\udce9"), "not valid UTF-8"),
        (lambda c, r: c.set_tag(r, "t", "a\x00b"), "NUL"),
        (lambda c, r: c.log_param(r, "caf\udce9", "v"), "not valid UTF-8"),
    ],
)
def test_refused_with_a_message_naming_the_problem(local_client, run_id, call, match):
    before = local_client.get_run(run_id).data
    with pytest.raises(InvalidParameter, match=match):
        call(local_client, run_id)
    assert_unchanged(local_client, run_id, before)


def test_one_bad_item_refuses_the_whole_batch(local_client, run_id):
    with pytest.raises(InvalidParameter, match="'bad key!'"):
        local_client.log_batch(
            run_id,
            metrics=[Metric("good", 1.0, 1, 0), Metric("bad key!", 1.0, 1, 0)],
            params=[Param("p", "v")],
        )
    data = local_client.get_run(run_id).data
    assert data.metrics == {} and data.params == {}


def test_conflicting_values_for_one_param_in_one_batch(local_client, run_id):
    with pytest.raises(InvalidParameter, match="given twice"):
        local_client.log_batch(run_id, params=[Param("p", "1"), Param("p", "2")])


def test_unicode_text_that_is_valid_is_kept(local_client, run_id):
    local_client.log_param(run_id, "city", "Zürich — 東京")
    assert local_client.get_run(run_id).data.params["city"] == "Zürich — 東京"


def test_bad_experiment_names(local_client):
    with pytest.raises(InvalidParameter, match="must not be empty"):
        local_client.create_experiment("  ")
    with pytest.raises(InvalidParameter, match="501 characters"):
        local_client.create_experiment("e" * 501)


def test_bad_view_type(local_client):
    with pytest.raises(InvalidParameter, match="view type"):
        local_client.search_runs(["0"], run_view_type="SOME")
