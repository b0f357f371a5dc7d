"""Traffic policies and routing: JSON round trips, validation that names the field,
sticky A/B buckets, canary weights by the clock, and the canary judge's rules."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from modelyard.errors import InvalidParameter
from modelyard.serving.policy import (
    CanarySchedule,
    RollbackRules,
    Shadow,
    TrafficPolicy,
    Variant,
)
from modelyard.serving.routing import CanaryJudge, Router, bucket_of


def test_policy_round_trips_and_rejects_bad_shapes():
    policy = TrafficPolicy(
        (Variant("primary", "m", 1, 95.0), Variant("canary", "m", 2, 5.0)),
        kind="canary",
        canary=CanarySchedule("primary", "canary", (5.0, 50.0, 100.0), 60.0, 1000,
                              RollbackRules(feedback_metric="accuracy")),
        shadows=(Shadow("shadow-m-3", "m", 3, 10.0),),
    )  # fmt: skip
    assert TrafficPolicy.from_dict(policy.to_dict()) == policy
    assert policy.versions() == [("m", 1), ("m", 2), ("m", 3)]
    with pytest.raises(InvalidParameter, match="sum to 100"):
        TrafficPolicy((Variant("a", "m", 1, 60.0), Variant("b", "m", 2, 30.0)))
    with pytest.raises(InvalidParameter, match="unique"):
        TrafficPolicy((Variant("a", "m", 1, 50.0), Variant("a", "m", 2, 50.0)))
    with pytest.raises(InvalidParameter, match=r"variants\[0\].version"):
        TrafficPolicy.from_dict({"variants": [{"name": "a", "model": "m", "version": "x"}]})
    with pytest.raises(InvalidParameter, match="feedback_metric"):
        RollbackRules.from_dict({"feedback_metric": "f1"})


def test_ab_buckets_are_sticky_stable_and_split_as_asked():
    policy = TrafficPolicy((Variant("a", "m", 1, 70.0), Variant("b", "m", 2, 30.0)),
                           kind="ab", sticky_key="customer", salt="exp-1")  # fmt: skip
    router, other = Router(policy), Router(policy, random.Random(5))
    counts = Counter(router.choose(f"c{i}", 0).name for i in range(20_000))
    assert 0.28 < counts["b"] / 20_000 < 0.32
    assert all(router.choose(f"c{i}", 0) == other.choose(f"c{i}", 0) for i in range(500))
    assert all(0 <= bucket_of(f"c{i}", "exp-1") < 10_000 for i in range(100))
    moved = sum(bucket_of(f"c{i}", "exp-1") != bucket_of(f"c{i}", "exp-2") for i in range(100))
    assert moved > 90  # a new experiment (salt) reshuffles customers


def test_canary_weight_follows_the_schedule():
    schedule = CanarySchedule("primary", "canary", (10.0, 50.0, 100.0), 60.0, 0)
    policy = TrafficPolicy((Variant("primary", "m", 1, 90.0), Variant("canary", "m", 2, 10.0)),
                           kind="canary", canary=schedule)  # fmt: skip
    router = Router(policy, random.Random(0))

    def share(now_ms: int) -> float:
        picks = Counter(router.choose(None, now_ms).name for _ in range(4000))
        return picks["canary"] / 4000

    assert 0.07 < share(0) < 0.13
    assert 0.45 < share(61_000) < 0.55
    assert share(121_000) == 1.0


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_judge_rules_error_rate_latency_and_feedback():
    rules = RollbackRules(min_requests=20, max_error_rate_increase=0.05, max_p95_ratio=1.5,
                          min_p95_increase_ms=2.0, feedback_metric="accuracy",
                          max_feedback_drop=0.1, min_feedback=20, window_s=60)  # fmt: skip
    clock = Clock()
    judge = CanaryJudge(clock)
    for i in range(50):
        judge.record("primary", 0.002, False)
        judge.record("canary", 0.002, i % 10 == 0)  # 10 % errors
    verdict = judge.judge("primary", "canary", rules)
    assert verdict.rollback and "error rate 10.0% on canary vs 0.0% on primary" in verdict.reason
    judge.reset()
    for _ in range(50):
        judge.record("primary", 0.002, False)
        judge.record("canary", 0.010, False)
    assert "p95 latency 10.0 ms" in judge.judge("primary", "canary", rules).reason
    judge.reset()
    for i in range(50):
        judge.record("primary", 0.002, False)
        judge.record("canary", 0.0021, False)  # within the 2 ms floor: no rollback
        judge.record_feedback("primary", 1.0)
        judge.record_feedback("canary", 1.0 if i % 2 else 0.0)
    assert "live accuracy 0.500 on canary" in judge.judge("primary", "canary", rules).reason
    clock.now = 120.0  # everything left the window
    assert not judge.judge("primary", "canary", rules).rollback
