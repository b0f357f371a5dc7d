"""Cron schedules: the five-field grammar, names, steps, lists and ranges, Vixie cron's
"either day" rule, UTC, and schedules that can never fire refused up front."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from modelyard.errors import InvalidParameter
from modelyard.monitoring.schedule import parse_cron


def brute_force_next(schedule, when: datetime) -> datetime:
    """The answer by walking minute by minute: slow, obviously right."""
    t = when.replace(second=0, microsecond=0) + timedelta(minutes=1)
    while not schedule.matches(t):
        t += timedelta(minutes=1)
    return t


@pytest.mark.parametrize(
    ("text", "when", "expected"),
    [
        ("*/15 * * * *", datetime(2026, 12, 6, 7, 40, 30), datetime(2026, 12, 6, 7, 45)),
        ("*/15 * * * *", datetime(2026, 12, 6, 7, 45), datetime(2026, 12, 6, 8, 0)),
        ("0 * * * *", datetime(2026, 12, 31, 23, 0), datetime(2027, 1, 1, 0, 0)),
        ("30 2 * * *", datetime(2026, 12, 6, 2, 30), datetime(2026, 12, 7, 2, 30)),
        ("0 9 * * mon-fri", datetime(2026, 12, 5, 12, 0), datetime(2026, 12, 7, 9, 0)),
        ("0 0 1 jan,jul *", datetime(2026, 2, 1), datetime(2026, 7, 1)),
        ("0 0 29 2 *", datetime(2026, 3, 1), datetime(2028, 2, 29)),
        ("5-10/2 3 * * *", datetime(2026, 1, 1, 3, 7), datetime(2026, 1, 1, 3, 9)),
        ("5/20 * * * *", datetime(2026, 1, 1, 3, 46), datetime(2026, 1, 1, 4, 5)),
        ("0 0 * * 7", datetime(2026, 12, 6, 0, 0), datetime(2026, 12, 13)),  # 7 is Sunday
        ("0 0 * * SUN", datetime(2026, 12, 5), datetime(2026, 12, 6)),
        ("@daily", datetime(2026, 12, 6, 7, 0), datetime(2026, 12, 7)),
        ("@weekly", datetime(2026, 12, 6, 7, 0), datetime(2026, 12, 13)),
        ("@monthly", datetime(2026, 12, 6), datetime(2027, 1, 1)),
        ("@yearly", datetime(2026, 12, 6), datetime(2027, 1, 1)),
        ("@hourly", datetime(2026, 12, 6, 7, 1), datetime(2026, 12, 6, 8, 0)),
    ],
)
def test_next_after(text, when, expected):
    schedule = parse_cron(text)
    assert schedule.next_after(when) == expected
    if expected - when < timedelta(days=40):  # longer walks cost seconds
        assert brute_force_next(schedule, when) == expected


def test_either_day_matches_when_both_are_restricted():
    schedule = parse_cron("0 0 13 * fri")  # the 13th, and every Friday
    start = datetime(2026, 11, 1)
    fired, t = [], start
    while t < datetime(2026, 12, 1):
        t = schedule.next_after(t)
        fired.append(t.day)
    assert fired[:-1] == [6, 13, 20, 27]  # Fridays 6, 20, 27 and Friday the 13th
    assert parse_cron("0 0 12 * fri").next_after(datetime(2026, 11, 7)) == datetime(2026, 11, 12)


@pytest.mark.parametrize(
    "text", ["17 */3 1,15 * *", "0 12 * 2-4 mon,wed", "*/7 1-5 * * *", "59 23 31 * *"]
)
def test_many_firings_agree_with_the_brute_force(text):
    schedule = parse_cron(text)
    t = datetime(2026, 1, 30, 22, 13)
    for _ in range(40):
        expected = brute_force_next(schedule, t)
        assert schedule.next_after(t) == expected
        t = expected


def test_aware_times_are_converted_to_utc_and_naive_ones_stay_naive():
    schedule = parse_cron("0 12 * * *")
    eastern = timezone(timedelta(hours=-5))
    found = schedule.next_after(datetime(2026, 12, 6, 6, 30, tzinfo=eastern))  # 11:30 UTC
    assert found == datetime(2026, 12, 6, 12, 0, tzinfo=UTC) and found.tzinfo is UTC
    assert schedule.next_after(datetime(2026, 12, 6, 11, 30)).tzinfo is None


def test_the_interval_is_the_shortest_gap():
    assert parse_cron("*/15 * * * *").interval() == timedelta(minutes=15)
    assert parse_cron("0 */6 * * *").interval() == timedelta(hours=6)
    assert parse_cron("0 9 * * mon-fri").interval() == timedelta(days=1)
    assert parse_cron("0,10 * * * *").interval() == timedelta(minutes=10)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("* * * *", "has 4 fields"),
        ("60 * * * *", "minute 60 is out of range 0-59"),
        ("* 24 * * *", "hour 24 is out of range 0-23"),
        ("* * 0 * *", "day of month 0 is out of range 1-31"),
        ("* * * 13 *", "month 13 is out of range"),
        ("* * * foo *", "'foo' is not a month"),
        ("* * * * funday", "'funday' is not a day of week"),
        ("10-5 * * * *", "runs backwards"),
        ("*/0 * * * *", "out of range"),
        ("0 0 30 2 *", "never fires"),
        ("0 0 31 4,6,9,11 *", "never fires"),
        ("@fortnightly", "unknown shorthand"),
        ("", "five fields"),
        (None, "five fields"),
    ],
)
def test_bad_schedules_are_refused_naming_the_part(text, message):
    with pytest.raises(InvalidParameter, match=message) as caught:
        parse_cron(text)
    assert caught.value.field == "schedule"
