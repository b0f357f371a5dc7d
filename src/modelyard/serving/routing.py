"""Routing: which variant answers a request, which shadows get a copy, and the canary judge.

* Weighted random choice for blue-green and canary; a canary's weight follows its stepped
  schedule by the clock, so every replica agrees without coordination.
* A/B is sticky: the bucket is a keyed BLAKE2 hash of the request key (never Python's
  ``hash``, which differs between processes), so one customer sees one variant in every
  worker and replica, and across restarts.
* ``CanaryJudge`` keeps a sliding window of each variant's latency and errors (and live
  feedback) and says when the candidate is worse than the primary by the configured
  margins; the data plane then records a rollback revision.

>>> policy = TrafficPolicy((Variant("a", "m", 1, 50.0), Variant("b", "m", 2, 50.0)),
...                        sticky_key="customer_id", salt="exp1")
>>> router = Router(policy)
>>> router.choose("customer-42", 0).name == router.choose("customer-42", 0).name
True
"""

from __future__ import annotations

import hashlib
import random
import threading
import time
from collections import deque
from dataclasses import dataclass

from modelyard.serving.policy import RollbackRules, Shadow, TrafficPolicy, Variant

BUCKETS = 10_000
_MAX_SAMPLES = 20_000  # per variant and window: bounded memory under any load


def bucket_of(key: str, salt: str = "") -> int:
    """A stable bucket in ``[0, BUCKETS)`` for ``key`` (the same in every process)."""
    digest = hashlib.blake2b(key.encode("utf-8"), digest_size=8, key=salt.encode()[:64]).digest()
    return int.from_bytes(digest, "big") % BUCKETS


class Router:
    """Chooses variants for one policy. Immutable after construction: a new revision gets a
    new router, so a request routed by the old one finishes on the old one."""

    def __init__(self, policy: TrafficPolicy, rng: random.Random | None = None) -> None:
        self.policy = policy
        self._rng = rng or random.Random()
        self._serving = policy.serving
        self._static = self._cumulative(
            [(v, v.weight) for v in self._serving if v.weight > 0] or [(self._serving[0], 100)]
        )

    @staticmethod
    def _cumulative(weighted: list[tuple[Variant, float]]) -> list[tuple[float, Variant]]:
        total, out = 0.0, []
        for variant, weight in weighted:
            total += weight
            out.append((total, variant))
        return [(edge / total * 100.0, v) for edge, v in out]

    def weights_at(self, now_ms: int) -> list[tuple[float, Variant]]:
        """Cumulative weights in force at ``now_ms`` (a canary moves by the clock)."""
        canary = self.policy.canary
        if canary is None:
            return self._static
        share = canary.weight_at(now_ms)
        primary = self.policy.variant(canary.primary)
        candidate = self.policy.variant(canary.candidate)
        return self._cumulative([(primary, 100.0 - share), (candidate, share)])

    def choose(self, key: str | None, now_ms: int) -> Variant:
        """The variant for a request with sticky key ``key`` (None: random by weight)."""
        table = self.weights_at(now_ms)
        if len(table) == 1:
            return table[0][1]
        if key is not None and (self.policy.sticky_key or self.policy.canary):
            point = bucket_of(key, self.policy.salt) * 100.0 / BUCKETS
        else:
            point = self._rng.random() * 100.0
        for edge, variant in table:
            if point < edge:
                return variant
        return table[-1][1]

    def shadows_for(self) -> list[Shadow]:
        """The shadows that get a copy of this request (each samples its own percent)."""
        shadows = self.policy.shadows
        if not shadows:
            return []
        return [s for s in shadows if s.percent >= 100 or self._rng.random() * 100 < s.percent]


@dataclass(frozen=True, slots=True)
class Verdict:
    """The judge's answer: ``rollback`` with a reason naming the rule and the numbers."""

    rollback: bool
    reason: str = ""


class _Window:
    """Recent (time, latency, error) samples and feedback of one variant."""

    def __init__(self) -> None:
        self.samples: deque[tuple[float, float, bool]] = deque(maxlen=_MAX_SAMPLES)
        self.feedback: deque[tuple[float, float]] = deque(maxlen=_MAX_SAMPLES)

    def trim(self, oldest: float) -> None:
        while self.samples and self.samples[0][0] < oldest:
            self.samples.popleft()
        while self.feedback and self.feedback[0][0] < oldest:
            self.feedback.popleft()


class CanaryJudge:
    """Compares a canary with its primary over a sliding window; thread-safe."""

    def __init__(self, clock: object = time.monotonic) -> None:
        self._clock = clock
        self._windows: dict[str, _Window] = {}
        self._lock = threading.Lock()

    def _window(self, variant: str) -> _Window:
        window = self._windows.get(variant)
        if window is None:
            window = self._windows.setdefault(variant, _Window())
        return window

    def record(self, variant: str, latency_s: float, error: bool) -> None:
        """One answered request (``error``: the model failed, not a client mistake)."""
        self._window(variant).samples.append((self._clock(), latency_s, error))  # type: ignore[operator]

    def record_feedback(self, variant: str, value: float) -> None:
        """One outcome: 1.0/0.0 for accuracy, or the outcome value for ``mean``."""
        self._window(variant).feedback.append((self._clock(), value))  # type: ignore[operator]

    def reset(self) -> None:
        with self._lock:
            self._windows.clear()

    def judge(self, primary: str, candidate: str, rules: RollbackRules) -> Verdict:
        """Whether ``candidate`` must be rolled back now, and why."""
        import numpy as np

        oldest = self._clock() - rules.window_s  # type: ignore[operator]
        with self._lock:
            a, b = self._window(primary), self._window(candidate)
            a.trim(oldest)
            b.trim(oldest)
            pa, pb = list(a.samples), list(b.samples)
            fa, fb = [v for _, v in a.feedback], [v for _, v in b.feedback]
        if len(pa) >= rules.min_requests and len(pb) >= rules.min_requests:
            err_a = sum(1 for s in pa if s[2]) / len(pa)
            err_b = sum(1 for s in pb if s[2]) / len(pb)
            if err_b - err_a > rules.max_error_rate_increase:
                return Verdict(
                    True,
                    f"error rate {err_b:.1%} on {candidate} vs {err_a:.1%} on {primary} "
                    f"(allowed increase {rules.max_error_rate_increase:.1%}, "
                    f"{len(pb)} and {len(pa)} requests)",
                )
            p95_a = float(np.percentile([s[1] for s in pa if not s[2]] or [0.0], 95)) * 1000
            p95_b = float(np.percentile([s[1] for s in pb if not s[2]] or [0.0], 95)) * 1000
            limit = max(p95_a * rules.max_p95_ratio, p95_a + rules.min_p95_increase_ms)
            if p95_b > limit:
                return Verdict(
                    True,
                    f"p95 latency {p95_b:.1f} ms on {candidate} vs {p95_a:.1f} ms on {primary} "
                    f"(limit {limit:.1f} ms: ×{rules.max_p95_ratio:g}, at least "
                    f"+{rules.min_p95_increase_ms:g} ms)",
                )
        if rules.feedback_metric and min(len(fa), len(fb)) >= rules.min_feedback:
            mean_a, mean_b = float(np.mean(fa)), float(np.mean(fb))
            if mean_a - mean_b > rules.max_feedback_drop:
                return Verdict(
                    True,
                    f"live {rules.feedback_metric} {mean_b:.3f} on {candidate} vs {mean_a:.3f} "
                    f"on {primary} (allowed drop {rules.max_feedback_drop:g}, "
                    f"{len(fb)} and {len(fa)} outcomes)",
                )
        return Verdict(False)
