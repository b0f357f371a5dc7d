"""Cron schedules: the five-field grammar users already know, read once, with the next
time it fires after a given moment.

Fields: minute (0-59), hour (0-23), day of month (1-31), month (1-12 or ``jan``-``dec``),
day of week (0-7 or ``sun``-``sat``; 0 and 7 are Sunday). Each field is ``*``, a number
or name, a range ``a-b``, a step ``*/n``, ``a-b/n`` or ``a/n`` (from ``a`` to the field's
end), or a comma-separated list of those. ``@hourly``, ``@daily`` (``@midnight``),
``@weekly``, ``@monthly`` and ``@yearly`` (``@annually``) are the usual shorthands.
As in Vixie cron, when both day of month and day of week are restricted a day matches
if *either* does (``0 0 1 * mon``: the 1st and every Monday).

Schedules run in UTC: a monitor's windows must not shift or repeat when a wall clock
changes for daylight saving. A schedule that can never fire (``0 0 30 2 *``) is refused
when parsed, so ``next_after`` always finds a time.

>>> every_quarter = parse_cron("*/15 * * * *")
>>> every_quarter.next_after(datetime(2026, 12, 6, 7, 40, tzinfo=UTC))
datetime.datetime(2026, 12, 6, 7, 45, tzinfo=datetime.timezone.utc)
>>> parse_cron("0 9 * * mon-fri").next_after(datetime(2026, 12, 5, 12, 0))  # a Saturday
datetime.datetime(2026, 12, 7, 9, 0)
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from modelyard.errors import InvalidParameter

__all__ = ["CronSchedule", "parse_cron"]

_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
#: (name, lowest, highest, names for values from ``lowest``)
_FIELDS = (
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day of month", 1, 31, ()),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 7, _DAYS),
)
_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
#: Longest leap-year cycle a schedule can wait for (Feb 29 of a restricted weekday is
#: handled as "either" matching, so eight years bounds every valid schedule).
_HORIZON = timedelta(days=366 * 8)


@dataclass(frozen=True, slots=True)
class CronSchedule:
    """A parsed schedule: the set of values each field allows."""

    text: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday … 6 = Saturday (7 folded into 0)
    days_restricted: bool
    weekdays_restricted: bool

    def matches(self, when: datetime) -> bool:
        """Whether the schedule fires at ``when`` (seconds are ignored)."""
        return (
            when.minute in self.minutes
            and when.hour in self.hours
            and when.month in self.months
            and self._day_matches(when)
        )

    def _day_matches(self, when: datetime) -> bool:
        weekday = (when.weekday() + 1) % 7  # Python: Monday = 0; cron: Sunday = 0
        in_days = when.day in self.days
        in_weekdays = weekday in self.weekdays
        if self.days_restricted and self.weekdays_restricted:
            return in_days or in_weekdays
        return in_days and in_weekdays

    def next_after(self, when: datetime) -> datetime:
        """The first time strictly after ``when`` at which the schedule fires, in UTC.

        An aware ``when`` is converted to UTC and the answer is aware (UTC); a naive one
        is taken to be UTC already and the answer is naive too.
        """
        aware = when.tzinfo is not None
        t = when.astimezone(UTC).replace(tzinfo=None) if aware else when
        t = t.replace(second=0, microsecond=0) + timedelta(minutes=1)
        limit = t + _HORIZON
        while t < limit:
            if t.month not in self.months:
                t = _first_of_next_month(t)
            elif not self._day_matches(t):
                t = datetime(t.year, t.month, t.day) + timedelta(days=1)
            elif t.hour not in self.hours:
                t = t.replace(minute=0) + timedelta(hours=1)
            elif t.minute not in self.minutes:
                t += timedelta(minutes=1)
            else:
                return t.replace(tzinfo=UTC) if aware else t
        raise InvalidParameter(  # pragma: no cover - parse_cron refuses such schedules
            f"schedule {self.text!r} does not fire within eight years", field="schedule"
        )

    def interval(self) -> timedelta:
        """The shortest gap between two firings over a year of them (a ``*/15`` schedule:
        15 minutes): how long ``for: N`` evaluations take, for Prometheus' ``for``."""
        t = datetime(2027, 1, 1)
        first = self.next_after(t)
        shortest: timedelta | None = None
        previous = first
        end = first + timedelta(days=366)
        for _ in range(2000):  # enough to see the pattern of any schedule's gaps
            current = self.next_after(previous)
            gap = current - previous
            shortest = gap if shortest is None else min(shortest, gap)
            previous = current
            if current > end:
                break
        assert shortest is not None
        return shortest


def parse_cron(text: object, field: str = "schedule") -> CronSchedule:
    """``text`` as a schedule; a bad one raises ``InvalidParameter`` naming the part.

    >>> parse_cron("0 0 30 2 *")
    Traceback (most recent call last):
    ...
    modelyard.errors.InvalidParameter: schedule '0 0 30 2 *' never fires: no month of it has day 30
    """
    if not isinstance(text, str) or not text.strip():
        raise InvalidParameter(
            f"{field}: a cron schedule is five fields such as '*/15 * * * *', got {text!r}",
            field=field,
        )
    source = text.strip()
    expanded = _MACROS.get(source.lower(), source)
    if expanded.startswith("@"):
        raise InvalidParameter(
            f"{field}: unknown shorthand {source!r}; use one of {', '.join(_MACROS)}",
            field=field,
        )
    parts = expanded.split()
    if len(parts) != 5:
        raise InvalidParameter(
            f"{field}: {source!r} has {len(parts)} fields; a cron schedule has five "
            "(minute hour day-of-month month day-of-week), e.g. '*/15 * * * *'",
            field=field,
        )
    values = [
        _parse_field(part, spec, source, field) for part, spec in zip(parts, _FIELDS, strict=True)
    ]
    weekdays = frozenset(d % 7 for d in values[4])
    schedule = CronSchedule(
        text=source,
        minutes=values[0],
        hours=values[1],
        days=values[2],
        months=values[3],
        weekdays=weekdays,
        days_restricted=not parts[2].startswith("*"),
        weekdays_restricted=not parts[4].startswith("*"),
    )
    if not schedule.weekdays_restricted:
        longest = max(calendar.monthrange(2024, m)[1] for m in schedule.months)  # leap year
        if min(schedule.days) > longest:
            raise InvalidParameter(
                f"schedule {source!r} never fires: no month of it has day {min(schedule.days)}",
                field=field,
            )
    return schedule


def _parse_field(
    part: str, spec: tuple[str, int, int, tuple[str, ...]], source: str, field: str
) -> frozenset[int]:
    name, low, high, names = spec
    out: set[int] = set()
    for item in part.split(","):
        range_part, _, step_part = item.partition("/")
        step = 1
        if step_part:
            step = _number(step_part, name, source, field, 1, high - low + 1, names=())
        if range_part == "*":
            start, stop = low, high
        elif "-" in range_part:
            a, _, b = range_part.partition("-")
            start = _number(a, name, source, field, low, high, names)
            stop = _number(b, name, source, field, low, high, names)
            if stop < start:
                raise InvalidParameter(
                    f"{field}: {source!r}: the {name} range {range_part!r} runs backwards",
                    field=field,
                )
        else:
            start = _number(range_part, name, source, field, low, high, names)
            stop = high if step_part else start
        out.update(range(start, stop + 1, step))
    return frozenset(out)


def _number(
    text: str,
    name: str,
    source: str,
    field: str,
    low: int,
    high: int,
    names: tuple[str, ...],
) -> int:
    lowered = text.lower()
    if lowered in names:
        return names.index(lowered) + (1 if name == "month" else 0)
    if text.isdigit():
        value = int(text)
        if low <= value <= high:
            return value
        raise InvalidParameter(
            f"{field}: {source!r}: {name} {value} is out of range {low}-{high}", field=field
        )
    hint = f" or a name ({', '.join(names)})" if names else ""
    raise InvalidParameter(
        f"{field}: {source!r}: {text!r} is not a {name} (a number {low}-{high}{hint})",
        field=field,
    )


def _first_of_next_month(t: datetime) -> datetime:
    return datetime(t.year + 1, 1, 1) if t.month == 12 else datetime(t.year, t.month + 1, 1)
