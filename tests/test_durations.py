"""Durations: one grammar, ``m`` is minutes everywhere, months and years are refused, and
bad input is an ``InvalidParameter`` naming the field and the accepted forms."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelyard.durations import format_duration, parse_duration
from modelyard.errors import InvalidParameter


@pytest.mark.parametrize(
    ("given_", "expected"),
    [
        ("30s", timedelta(seconds=30)),
        ("15m", timedelta(minutes=15)),
        ("90min", timedelta(minutes=90)),
        ("2h", timedelta(hours=2)),
        ("7d", timedelta(days=7)),
        ("1w", timedelta(weeks=1)),
        ("500ms", timedelta(milliseconds=500)),
        ("250us", timedelta(microseconds=250)),
        ("1.5h", timedelta(minutes=90)),
        ("1d12h", timedelta(hours=36)),
        (" 1d 12h ", timedelta(hours=36)),
        ("15 m", timedelta(minutes=15)),
        ("90", timedelta(seconds=90)),
        ("0", timedelta(0)),
        ("PT15M", timedelta(minutes=15)),
        ("P7D", timedelta(days=7)),
        ("P1DT2H", timedelta(days=1, hours=2)),
        ("P2W", timedelta(weeks=2)),
        ("PT0.5S", timedelta(milliseconds=500)),
        ("PT1H30M15S", timedelta(hours=1, minutes=30, seconds=15)),
        ("pt15m", timedelta(minutes=15)),
        ("PT0S", timedelta(0)),
        (90, timedelta(seconds=90)),
        (1.5, timedelta(seconds=1.5)),
        (timedelta(minutes=3), timedelta(minutes=3)),
        (pd.Timedelta("2h"), timedelta(hours=2)),
    ],
)
def test_durations_read_as_a_user_means_them(given_, expected):
    assert parse_duration(given_, "field") == expected


@pytest.mark.parametrize(
    "text", ["15M", "3M", "1mo", "2 months", "1y", "2yr", "1 year", "P1M", "P1Y", "P1Y2M3D"]
)
def test_months_and_years_are_refused_as_ambiguous(text):
    with pytest.raises(InvalidParameter, match="months and years are not accepted") as info:
        parse_duration(text, "freshness.max_age")
    assert info.value.field == "freshness.max_age"
    assert "freshness.max_age" in str(info.value) and repr(text) in str(info.value)


@pytest.mark.parametrize(
    "value",
    ["soon", "", "  ", "1 day", "1x", "5m x", "m", "1e3", "PT", "P", "P1DT", "P1H", "T1H",
     "15H", "1..5h", True, None, [], float("nan"), float("inf"), {"d": 1}],
)  # fmt: skip
def test_what_is_not_a_duration_is_refused_naming_the_field_and_the_forms(value):
    with pytest.raises(InvalidParameter) as info:
        parse_duration(value, "--older-than")
    message = str(info.value)
    assert info.value.field == "--older-than" and message.startswith("--older-than")
    assert "15m (minutes)" in message and "PT15M" in message and repr(value) in message


@pytest.mark.parametrize("value", ["-3d", "-1", -5, timedelta(seconds=-1), "-PT1H"])
def test_negative_durations_are_refused(value):
    with pytest.raises(InvalidParameter, match="zero or more") as info:
        parse_duration(value, "gap")
    assert info.value.field == "gap"


@pytest.mark.parametrize("value", ["99999999999d", "9" * 30 + "w", 1e300])
def test_a_duration_past_what_a_timedelta_holds_is_refused(value):
    with pytest.raises(InvalidParameter, match="too long"):
        parse_duration(value, "ttl")


UNITS = {"w": "weeks", "d": "days", "h": "hours", "m": "minutes", "s": "seconds"}
PARTS = st.lists(
    st.tuples(st.integers(0, 10_000), st.sampled_from(sorted(UNITS))), min_size=1, max_size=5
)


@given(PARTS)
def test_a_sum_of_parts_is_the_sum_of_their_lengths(parts):
    text = "".join(f"{n}{unit}" for n, unit in parts)
    expected = sum((timedelta(**{UNITS[unit]: n}) for n, unit in parts), timedelta())
    assert parse_duration(text, "ttl") == expected


@given(
    st.integers(0, 500),
    st.integers(0, 23),
    st.integers(0, 59),
    st.integers(0, 59),
)
def test_iso_8601_and_the_short_form_agree(days, hours, minutes, seconds):
    iso = f"P{days}DT{hours}H{minutes}M{seconds}S"
    short = f"{days}d{hours}h{minutes}m{seconds}s"
    assert parse_duration(iso, "x") == parse_duration(short, "x")
    assert parse_duration(iso, "x") == timedelta(
        days=days, hours=hours, minutes=minutes, seconds=seconds
    )


@given(st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=10**6)))
def test_format_duration_reads_back_exactly(delta):
    text = format_duration(delta)
    assert parse_duration(text, "ttl") == delta


@given(st.text(max_size=12))
def test_any_text_is_a_duration_or_an_invalid_parameter(text):
    try:
        delta = parse_duration(text, "x")
    except InvalidParameter as exc:
        assert exc.field == "x"
    else:
        assert delta >= timedelta(0)


def test_m_is_minutes_in_every_room_and_the_cli():
    """The callers that used to parse durations themselves now read ``m`` the same way."""
    from modelyard.data.contracts.spec import Contract
    from modelyard.features.fields import parse_ttl
    from modelyard.validation.splits import to_timedelta

    assert parse_ttl("15m") == timedelta(minutes=15)
    assert to_timedelta("15m", "gap") == pd.Timedelta(minutes=15)
    contract = Contract.from_dict({"freshness": {"column": "day", "max_age": "15m"}})
    assert contract.freshness is not None and contract.freshness.max_age_s == 900
