"""Schedules: a registered pipeline at the ticks of a cron schedule — checked when
created, fired once per tick, missed ticks coalesced into the latest, pauses not caught up."""

from __future__ import annotations

import pytest

from modelyard.errors import AlreadyExists, InvalidParameter, NotFound
from modelyard.monitoring.schedule import parse_cron
from modelyard.pipelines.schedules import Schedules, latest_due_tick
from modelyard.tracking.backends import database_for

from .scheduler_yard import BASE, HOUR_MS, Clock, register


@pytest.fixture
def schedules(settings, tmp_path):
    register(settings, tmp_path)
    clock = Clock()
    made = Schedules(database_for(settings), clock=clock)
    made.clock = clock
    return made


def test_a_schedule_is_stored_with_its_params_and_listed(schedules):
    made = schedules.create("nightly", "0 3 * * *", {"failures": 0}, executor="local")
    assert (made.name, made.pipeline, made.cron, made.params) == (
        "nightly", "nightly", "0 3 * * *", {"failures": 0}
    )  # fmt: skip
    assert made.since == BASE and not made.paused
    other = schedules.create("nightly", "@hourly", name="hourly")
    assert [s.name for s in schedules.list()] == ["hourly", "nightly"]
    assert other.executor == "process"
    schedules.delete("hourly")
    with pytest.raises(NotFound, match="no schedule 'hourly'"):
        schedules.get("hourly")


def test_bad_schedules_are_refused_naming_the_field(schedules):
    with pytest.raises(NotFound, match="no pipeline named 'nope'"):
        schedules.create("nope", "0 3 * * *")
    with pytest.raises(InvalidParameter, match="cron: '0 3 \\* \\*' has 4 fields") as bad:
        schedules.create("nightly", "0 3 * *")
    assert bad.value.field == "cron"
    with pytest.raises(InvalidParameter, match="never fires"):
        schedules.create("nightly", "0 0 30 2 *")
    with pytest.raises(InvalidParameter, match="no param 'depth'"):
        schedules.create("nightly", "@daily", {"depth": 3})
    with pytest.raises(InvalidParameter, match="unknown executor 'gpu'"):
        schedules.create("nightly", "@daily", executor="gpu")
    with pytest.raises(InvalidParameter, match="schedule name 'two words'"):
        schedules.create("nightly", "@daily", name="two words")
    schedules.create("nightly", "@daily")
    with pytest.raises(AlreadyExists, match="schedule 'nightly' exists"):
        schedules.create("nightly", "@hourly")


def test_a_required_param_the_pipeline_leaves_open_must_be_given(settings, tmp_path):
    from modelyard.pipelines import PipelineRegistry

    from . import pipeline_yard as yard

    PipelineRegistry(settings).register("bare", f"{yard.__file__}:retrying")
    schedules = Schedules(database_for(settings))
    with pytest.raises(InvalidParameter, match="missing a required argument: 'marker'"):
        schedules.create("bare", "@daily")
    assert schedules.create("bare", "@daily", {"marker": str(tmp_path)}).params


def test_the_due_tick_is_the_latest_after_the_last_fired(schedules):
    hourly = schedules.create("nightly", "0 * * * *")
    assert schedules.due(hourly, None, BASE + 59 * 60_000) is None  # created on the hour
    assert schedules.due(hourly, None, BASE + HOUR_MS) == BASE + HOUR_MS
    assert schedules.due(hourly, BASE + HOUR_MS, BASE + HOUR_MS + 60_000) is None
    # down from 01:00 to 05:30: the ticks at 02:00 … 05:00 coalesce into 05:00, once
    assert schedules.due(hourly, BASE + HOUR_MS, BASE + 5 * HOUR_MS + 1_800_000) == (
        BASE + 5 * HOUR_MS
    )


def test_a_paused_schedule_does_not_fire_and_is_not_caught_up_on_resume(schedules):
    schedules.create("nightly", "0 * * * *")
    paused = schedules.pause("nightly")
    assert paused.paused
    assert schedules.due(paused, None, BASE + 3 * HOUR_MS) is None
    schedules.clock.now = BASE + 3 * HOUR_MS + 60_000
    resumed = schedules.resume("nightly")
    assert not resumed.paused and resumed.since == schedules.clock.now
    assert schedules.due(resumed, None, BASE + 3 * HOUR_MS + 120_000) is None
    assert schedules.due(resumed, None, BASE + 4 * HOUR_MS) == BASE + 4 * HOUR_MS
    with pytest.raises(NotFound):
        schedules.pause("nope")


def test_the_latest_tick_is_found_after_any_downtime():
    minutely = parse_cron("* * * * *")
    yearly = parse_cron("0 0 1 1 *")
    now = BASE + 30_000
    assert latest_due_tick(minutely, BASE - 400 * 24 * HOUR_MS, now) == BASE
    jan_first = 1798761600000  # 2027-01-01T00:00Z
    assert latest_due_tick(yearly, 0, jan_first + 5 * 24 * HOUR_MS) == jan_first
    assert latest_due_tick(yearly, jan_first, jan_first + 300 * 24 * HOUR_MS) is None
