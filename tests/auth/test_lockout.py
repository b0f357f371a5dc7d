"""``FailureLockout``: failures counted per key, lockouts that end, memory that stays bounded."""

from __future__ import annotations

import pytest

from modelyard.auth.lockout import FailureLockout
from modelyard.errors import InvalidParameter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_the_failure_that_reaches_the_limit_locks_the_key_for_lockout_s(clock):
    lockout = FailureLockout(max_failures=3, window_s=60, lockout_s=30, clock=clock)
    assert [lockout.fail("addr:10.0.0.1") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert lockout.locked_for("addr:10.0.0.1") == 30
    assert lockout.locked_for("addr:10.0.0.2") == 0.0  # others are not touched
    clock.now += 10
    assert lockout.fail("addr:10.0.0.1") == 20  # already locked: reported, not counted
    assert lockout.locked_for("addr:10.0.0.1") == 20  # and never extended
    clock.now += 20
    assert lockout.locked_for("addr:10.0.0.1") == 0.0
    assert lockout.fail("addr:10.0.0.1") == 0.0  # a fresh count after the lockout
    assert lockout.locked_for("addr:10.0.0.1") == 0.0


def test_failures_spread_wider_than_the_window_never_lock(clock):
    lockout = FailureLockout(max_failures=3, window_s=60, lockout_s=30, clock=clock)
    for _ in range(10):
        lockout.fail("token:abc")
        lockout.fail("token:abc")
        clock.now += 61
    assert lockout.locked_for("token:abc") == 0.0


def test_one_failure_counts_against_every_key_it_names(clock):
    lockout = FailureLockout(max_failures=2, clock=clock)
    lockout.fail("addr:10.0.0.1", "token:abc")
    lockout.fail("addr:10.0.0.2", "token:abc")
    assert lockout.locked_for("token:abc") > 0
    assert lockout.locked_for("addr:10.0.0.1") == lockout.locked_for("addr:10.0.0.2") == 0.0
    assert lockout.fail("addr:10.0.0.3", "token:abc") > 0  # the token's lockout stands


def test_a_flood_of_new_keys_keeps_the_table_at_max_keys(clock):
    lockout = FailureLockout(max_failures=5, max_keys=1000, clock=clock)
    for i in range(50_000):  # forged token ids, each from its own address
        lockout.fail(f"addr:10.{i >> 16}.{(i >> 8) & 255}.{i & 255}", f"token:{i:012x}")
    assert len(lockout) == 1000
    for _ in range(5):  # and a key that keeps failing is still counted and locked
        lockout.fail("addr:192.0.2.1")
    assert lockout.locked_for("addr:192.0.2.1") > 0 and len(lockout) == 1000


@pytest.mark.parametrize("name", ["max_failures", "window_s", "lockout_s", "max_keys"])
def test_limits_must_be_positive(name):
    with pytest.raises(InvalidParameter, match=f"{name} must be positive"):
        FailureLockout(**{name: 0})
