"""Rules: the YAML spec is checked key by key, and each rule says breached, within, or
unknown with the reason — never "ok" for lack of data — per variant, slice and feature."""

from __future__ import annotations

from datetime import timedelta

import pytest

from modelyard.errors import InvalidParameter
from modelyard.monitoring.observations import Observation
from modelyard.monitoring.rules import evaluate_rules, parse_rules

CONTRACT_EXAMPLE = """
window: 1h
rules:
  - name: input drift
    drift_share: {above: 0.3}
  - name: price drifted
    feature_drift: {feature: price}
  - name: prediction shift
    prediction_drift: {}
  - name: mae floor north
    metric: {name: mae, above: 12, slice: "region=north", min_count: 50}
  - name: accuracy floor
    metric: {name: accuracy, below: 0.8}
  - name: latency SLO
    latency_p99_ms: {above: 250}
  - name: errors
    error_rate: {above: 0.01}
  - name: coverage
    feedback_coverage: {below: 0.2}
    for: 2
    severity: critical
    trigger: retrain-demand
notify:
  - webhook: http://127.0.0.1:9000/hook
    secret_env: MODELYARD_WEBHOOK_SECRET
  - log: true
"""


def one_rule(body: str):
    return parse_rules(f"window: 1h\nrules:\n  - name: r\n    {body}\n")


def outcomes(body: str, observations):
    return [(o.labels, o.breached, o.value) for o in evaluate_rules(one_rule(body), observations)]


def test_the_contract_example_parses():
    spec = parse_rules(CONTRACT_EXAMPLE)
    assert spec.window == timedelta(hours=1)
    assert [r.kind for r in spec.rules] == [
        "drift_share", "feature_drift", "prediction_drift", "metric", "metric",
        "latency_p99_ms", "error_rate", "feedback_coverage",
    ]  # fmt: skip
    coverage = spec.rules[-1]
    assert (coverage.for_, coverage.severity, coverage.trigger) == (2, "critical", "retrain-demand")
    assert spec.rules[0].for_ == 1 and spec.rules[0].severity == "warning"
    assert spec.notify[0].secret_env == "MODELYARD_WEBHOOK_SECRET" and spec.notify[1].log
    assert spec.slice_columns() == ("region",)
    assert spec.metric_names() == ("accuracy", "mae")


def test_json_and_mappings_are_read_too():
    body = {"window": "PT30M", "rules": [{"name": "e", "error_rate": {"above": 0.1}}]}
    assert parse_rules(body).window == timedelta(minutes=30)
    assert parse_rules('{"rules": [{"name": "e", "requests": {"below": 10}}]}').rules[0].kind == (
        "requests"
    )


@pytest.mark.parametrize(
    ("text", "message", "field"),
    [
        ("windw: 1h\nrules: []", "unknown key 'windw'; did you mean 'window'", "windw"),
        (
            "rules:\n  - name: a\n    drift_shar: {above: 0.3}",
            "unknown key 'drift_shar'; did you mean 'drift_share'",
            "rules[0].drift_shar",
        ),
        (
            "rules:\n  - name: a\n    metric: {name: mae, abov: 3}",
            "unknown key 'abov'; did you mean 'above'",
            "rules[0].metric.abov",
        ),
        (
            "rules:\n  - name: a\n    fro: 2\n    error_rate: {above: 0.1}",
            "did you mean 'for'",
            None,
        ),
        ("rules: []", "at least one rule", "rules"),
        ("window: 1h", "rules is required", "rules"),
        ("rules:\n  - name: a", "exactly one of drift_share", "rules[0]"),
        (
            "rules:\n  - name: a\n    error_rate: {above: 0.1}\n    requests: {below: 1}",
            "got error_rate, requests",
            "rules[0]",
        ),
        ("rules:\n  - name: a\n    error_rate: {}", "needs a bound", "rules[0].error_rate"),
        ("rules:\n  - name: a\n    error_rate: {above: 5}", "share from 0 to 1", None),
        ("rules:\n  - name: a\n    latency_p99_ms: {above: .nan}", "finite number", "above"),
        ("rules:\n  - name: a\n    latency_p99_ms: {above: fast}", "must be a number", "above"),
        ("rules:\n  - name: a\n    requests: {above: 5, below: 9}", "must be less than", None),
        (
            "rules:\n  - {name: a, error_rate: {above: 0.1}}\n  - {name: a, requests: {below: 1}}",
            "used twice",
            "rules[1].name",
        ),
        ("rules:\n  - {name: a, error_rate: {above: 0.1}, for: 0}", "greater than or equal", None),
        ("rules:\n  - {name: a, error_rate: {above: 0.1}, severity: page}", "severity", None),
        (
            "rules:\n  - {name: a, metric: {name: mae, above: 1, slice: north}}",
            "column=value",
            None,
        ),
        ("rules:\n  - {name: a, feature_drift: {feature: x, features: [y]}}", "not both", None),
        ("window: 1M\nrules:\n  - {name: a, requests: {below: 1}}", "window", "window"),
        ("window: 10s\nrules:\n  - {name: a, requests: {below: 1}}", "at least 1m", "window"),
        (
            "rules:\n  - {name: a, requests: {below: 1}}\nnotify:\n  - webhook: ftp://x/y",
            "http:// or https://",
            None,
        ),
        (
            "rules:\n  - {name: a, requests: {below: 1}}\n"
            "notify:\n  - {webhook: 'http://x/', log: true}",
            "exactly one of webhook",
            "notify[0]",
        ),
        (
            "rules:\n  - {name: a, requests: {below: 1}}\nnotify:\n  - {log: true, secret_env: S}",
            "signs webhooks",
            "notify[0].secret_env",
        ),
        ("rules: [unclosed", "not valid YAML", "rules"),
        ("- just\n- a list", "must be a mapping", None),
    ],
)
def test_a_bad_spec_is_refused_naming_the_key(text, message, field):
    with pytest.raises(InvalidParameter, match=message) as caught:
        parse_rules(text)
    if field is not None:
        assert caught.value.field == field


def test_simple_thresholds_breach_only_beyond_the_bound():
    body = "error_rate: {above: 0.01}"
    assert outcomes(body, [Observation("error_rate", 0.02, count=100)]) == [((), True, 0.02)]
    assert outcomes(body, [Observation("error_rate", 0.01, count=100)]) == [((), False, 0.01)]
    [outcome] = evaluate_rules(one_rule(body), [Observation("error_rate", 0.02, count=100)])
    assert outcome.detail == "error_rate is 0.02, above 0.01 (100 rows)"
    assert outcome.threshold == 0.01 and outcome.name == "r"


def test_a_band_breaches_on_either_side():
    body = "requests: {below: 10, above: 1000}"
    values = [Observation("requests", v) for v in (3, 500, 5000)]
    assert [outcomes(body, [o])[0][1] for o in values] == [True, False, True]


def test_a_value_that_cannot_be_computed_is_unknown_with_its_reason():
    why = "no feedback in the window"
    [o] = evaluate_rules(
        one_rule("feedback_coverage: {below: 0.2}"),
        [Observation("feedback_coverage", None, count=0, reason=why)],
    )
    assert o.breached is None and o.detail == f"unknown: {why}"


def test_no_observation_at_all_is_unknown_not_ok():
    for body in (
        "latency_p99_ms: {above: 250}",
        "drift_share: {above: 0.3}",
        "prediction_drift: {}",
        "feature_drift: {}",
        "metric: {name: mae, above: 3}",
    ):
        [o] = evaluate_rules(one_rule(body), [Observation("requests", 0.0)])
        assert o.breached is None and o.detail.startswith("unknown: no "), body


def test_outcomes_split_by_variant_and_version():
    body = "latency_p99_ms: {above: 250}"
    obs = [
        Observation("latency_p99_ms", 300, (("variant", "blue"), ("version", "4"))),
        Observation("latency_p99_ms", 120, (("variant", "green"), ("version", "3"))),
    ]
    assert outcomes(body, obs) == [
        ((("variant", "blue"), ("version", "4")), True, 300),
        ((("variant", "green"), ("version", "3")), False, 120),
    ]


def mae(value, slice_=None, count=200, variant=None):
    labels = [("metric", "mae")]
    if slice_:
        labels.append(("slice", slice_))
    if variant:
        labels.append(("variant", variant))
    return Observation("metric", value, tuple(labels), count=count)


def test_a_metric_rule_reads_its_slice_only():
    obs = [mae(5.0), mae(14.0, "region=north"), mae(3.0, "region=south")]
    north = "metric: {name: mae, above: 12, slice: 'region=north'}"
    assert outcomes(north, obs) == [((("metric", "mae"), ("slice", "region=north")), True, 14.0)]
    overall = "metric: {name: mae, above: 12}"
    assert outcomes(overall, obs) == [((("metric", "mae"),), False, 5.0)]
    each = "metric: {name: mae, above: 4, slice: 'region=*'}"
    assert [(dict(lb)["slice"], b) for lb, b, _ in outcomes(each, obs)] == [
        ("region=north", True),
        ("region=south", False),
    ]


def test_a_metric_on_too_few_rows_is_unknown():
    [o] = evaluate_rules(
        one_rule("metric: {name: mae, above: 12, min_count: 50}"), [mae(40.0, count=12)]
    )
    assert o.breached is None and o.value == 40.0
    assert "12 rows with feedback, fewer than min_count 50" in o.detail


def test_a_missing_slice_is_named():
    [o] = evaluate_rules(
        one_rule("metric: {name: mae, above: 12, slice: 'region = west'}"), [mae(1.0, "region=n")]
    )
    assert o.breached is None and "slice region = west" in o.detail
    assert o.labels == (("metric", "mae"), ("slice", "region=west"))


def test_a_floor_breaches_below_it_per_variant():
    acc = [
        Observation("metric", 0.7, (("metric", "accuracy"), ("variant", "a")), count=90),
        Observation("metric", 0.9, (("metric", "accuracy"), ("variant", "b")), count=90),
    ]
    body = "metric: {name: accuracy, below: 0.8}"
    assert [b for _, b, _ in outcomes(body, acc)] == [True, False]
    only_b = "metric: {name: accuracy, below: 0.8, variant: b}"
    assert [b for _, b, _ in outcomes(only_b, acc)] == [False]


def feature(name, score, method, threshold, **extra):
    labels = {"feature": name, "method": method, **extra}
    return Observation("feature_drift", score, tuple(labels.items()), threshold=threshold)


def test_feature_drift_follows_each_columns_method_and_threshold():
    obs = [
        feature("price", 0.001, "ks", 0.05),  # a p-value under the threshold: drifted
        feature("promo", 0.40, "ks", 0.05),
        feature("store", 0.25, "psi", 0.2),  # a distance over the threshold: drifted
        feature("day", 0.05, "wasserstein", 0.1),
    ]
    got = {dict(lb)["feature"]: b for lb, b, _ in outcomes("feature_drift: {}", obs)}
    assert got == {"price": True, "promo": False, "store": True, "day": False}
    # the method describes how, not what: it never becomes part of the alert's identity
    assert all("method" not in dict(lb) for lb, _, _ in outcomes("feature_drift: {}", obs))


def test_a_drifted_label_wins_over_the_score():
    # the missing rate drifted although the values did not
    obs = [feature("price", 0.4, "ks", 0.05, drifted="true")]
    assert outcomes("feature_drift: {feature: price}", obs) == [
        ((("feature", "price"),), True, 0.4)
    ]


def test_feature_drift_with_bounds_and_named_features():
    obs = [feature("price", 0.25, "psi", 0.2), feature("promo", 0.1, "psi", 0.2)]
    assert [
        b for _, b, _ in outcomes("feature_drift: {features: [price, promo], above: 0.3}", obs)
    ] == [
        False,
        False,
    ]
    [o] = evaluate_rules(one_rule("feature_drift: {feature: region}"), obs)
    assert o.breached is None and "'region' is not in the window's drift results" in o.detail
    assert o.labels == (("feature", "region"),)


def test_drift_share_over_all_or_named_features():
    obs = [
        Observation("drift_share", 0.4, count=1000),
        feature("price", 0.001, "ks", 0.05),
        feature("promo", 0.5, "ks", 0.05),
        feature("store", 0.3, "psi", 0.2),
    ]
    assert outcomes("drift_share: {above: 0.3}", obs) == [((), True, 0.4)]
    [o] = evaluate_rules(one_rule("drift_share: {above: 0.5, features: [price, promo]}"), obs)
    assert (o.breached, o.value) == (False, 0.5)
    assert "1 of 2 (drifted: price)" in o.detail
    [o] = evaluate_rules(one_rule("drift_share: {above: 0.5, features: [price, qty]}"), obs)
    assert o.breached is None and "qty" in o.detail


def test_prediction_drift_default_and_bounds():
    obs = [Observation("prediction_drift", 0.31, (("method", "psi"),), threshold=0.2)]
    [o] = evaluate_rules(one_rule("prediction_drift: {}"), obs)
    assert o.breached is True and o.detail == "predictions drifted: psi score 0.31 vs threshold 0.2"
    assert outcomes("prediction_drift: {above: 0.5}", obs) == [((), False, 0.31)]
    no_threshold = [Observation("prediction_drift", 0.31)]
    [o] = evaluate_rules(one_rule("prediction_drift: {}"), no_threshold)
    assert o.breached is None and "no threshold" in o.detail


def test_outcomes_serialise_for_the_stored_evaluation():
    [o] = evaluate_rules(one_rule("requests: {below: 10}"), [Observation("requests", 3)])
    assert o.to_dict() == {
        "rule": "r", "kind": "requests", "labels": {}, "breached": True, "value": 3.0,
        "threshold": 10.0, "detail": "requests is 3, below 10", "severity": "warning",
    }  # fmt: skip


def test_p_value_methods_are_the_comparisons_own():
    from modelyard.monitoring.comparison import PVALUE_METHODS
    from modelyard.monitoring.rules import P_VALUE_METHODS

    assert P_VALUE_METHODS == PVALUE_METHODS


def test_a_distance_at_its_threshold_has_drifted_as_the_comparison_says():
    obs = [feature("price", 0.2, "psi", 0.2)]
    assert outcomes("feature_drift: {}", obs) == [((("feature", "price"),), True, 0.2)]


def test_a_column_drifted_by_its_missing_rate_alone_is_drifted_even_without_a_score():
    all_null = Observation(
        "feature_drift",
        None,
        (("feature", "price"), ("method", "ks"), ("drifted", "True")),
        threshold=0.05,
        reason="no current values: all null",
    )
    [o] = evaluate_rules(one_rule("feature_drift: {feature: price}"), [all_null])
    assert o.breached is True and "no current values: all null" in o.detail
    [o] = evaluate_rules(one_rule("feature_drift: {feature: price, above: 0.1}"), [all_null])
    assert o.breached is None  # a bound on the score needs a score
