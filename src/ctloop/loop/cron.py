"""Cron expressions: five fields, and when they next fire.

``minute hour day-of-month month day-of-week``, as in crontab(5)::

    0 3 * * MON          03:00 every Monday
    */15 8-18 * * 1-5    every 15 minutes from 08:00 to 18:45, Monday to Friday
    0 0 1,15 * *         midnight on the 1st and the 15th
    30 6 * JAN-MAR,DEC *  06:30 every day of January to March and of December

Each field is ``*``, a value, a range ``a-b``, a step ``*/n``, ``a-b/n`` or ``a/n`` (from
``a`` to the field's end), or a comma-separated list of those. Months take ``JAN``–``DEC``
and days of the week ``SUN``–``SAT`` (case-insensitive; 0 and 7 are both Sunday). The
macros ``@hourly``, ``@daily`` (``@midnight``), ``@weekly``, ``@monthly`` and ``@yearly``
(``@annually``) stand for their usual expressions.

As in Vixie cron, when both day fields are restricted (neither starts with ``*``) a day
matches if *either* matches: ``0 0 13 * FRI`` fires on every 13th and every Friday.
Times are wall-clock times in the timezone of the datetime given to
:meth:`CronSchedule.next_fire` (the controller uses UTC).
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from ctloop.errors import InvalidInput

__all__ = ["CronSchedule", "parse_cron"]

_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
# name, lowest, highest, the names of its values (from the lowest)
_FIELDS: tuple[tuple[str, int, int, tuple[str, ...]], ...] = (
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day of month", 1, 31, ()),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 7, _DAYS),
)
MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_HELP = (
    "write five fields, minute hour day-of-month month day-of-week, e.g. '0 3 * * MON' "
    "or '*/15 8-18 * * 1-5'"
)
_ITEM = re.compile(r"^(?P<base>\*|[A-Za-z0-9]+(?:-[A-Za-z0-9]+)?)(?:/(?P<step>[0-9]+))?$")
# the longest a valid schedule can wait: Feb 29 on a given weekday is rarer, but the day
# fields are OR-ed then, so a leap day (at most 8 years apart) is the worst case
_HORIZON_YEARS = 9


@dataclass(frozen=True)
class CronSchedule:
    """A parsed five-field cron expression (see the module docstring).

    Attributes:
        expression: the expression, fields separated by single spaces (macros as given).
        minutes, hours, days, months: the values each field allows.
        weekdays: the days of the week allowed, 0 = Sunday … 6 = Saturday.
        days_restricted, weekdays_restricted: whether the day-of-month and day-of-week
            fields are restricted (do not start with ``*``); both → a day matches either.
    """

    expression: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    days_restricted: bool
    weekdays_restricted: bool

    def __str__(self) -> str:
        return self.expression

    def matches(self, when: datetime) -> bool:
        """Whether the schedule fires in the minute of ``when``."""
        return (
            when.minute in self.minutes
            and when.hour in self.hours
            and when.month in self.months
            and self._day_matches(when)
        )

    def next_fire(self, after: datetime) -> datetime:
        """The first minute strictly after ``after`` at which the schedule fires.

        The result has ``after``'s tzinfo (naive stays naive); seconds are zero.
        """
        tz = after.tzinfo
        t = after.replace(tzinfo=None, second=0, microsecond=0) + timedelta(minutes=1)
        give_up = t.year + _HORIZON_YEARS
        minutes, hours = sorted(self.minutes), sorted(self.hours)
        while t.year <= give_up:
            if t.month not in self.months:
                first = t.replace(day=1, hour=0, minute=0)
                t = (
                    first.replace(year=t.year + 1, month=1)
                    if t.month == 12
                    else (first.replace(month=t.month + 1))
                )
                continue
            if not self._day_matches(t):
                t = t.replace(hour=0, minute=0) + timedelta(days=1)
                continue
            if t.hour not in self.hours:
                later = [h for h in hours if h > t.hour]
                if later:
                    t = t.replace(hour=later[0], minute=0)
                else:
                    t = t.replace(hour=0, minute=0) + timedelta(days=1)
                continue
            later = [m for m in minutes if m >= t.minute]
            if later:
                return t.replace(minute=later[0], tzinfo=tz)
            t = t.replace(minute=0) + timedelta(hours=1)
        # parse_cron refuses schedules that never fire, so this is a bug if reached
        raise InvalidInput(f"cron expression {self.expression!r} never fires")  # pragma: no cover

    def _day_matches(self, when: datetime) -> bool:
        weekday = (when.weekday() + 1) % 7  # Python counts from Monday, cron from Sunday
        in_days, in_weekdays = when.day in self.days, weekday in self.weekdays
        if self.days_restricted and self.weekdays_restricted:
            return in_days or in_weekdays
        return in_days and in_weekdays


def parse_cron(text: object) -> CronSchedule:
    """Parse a five-field cron expression (or a macro such as ``@daily``).

    Raises:
        InvalidInput: naming the field and the value that is wrong, e.g.
            ``invalid cron expression '61 * * * *': minute 61 is out of range 0-59``;
            a schedule that can never fire (``0 0 30 FEB *``) is refused too.
    """
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput(f"invalid cron expression {text!r}: {_HELP}")
    given = " ".join(text.split())
    expanded = MACROS.get(given.lower(), given)
    if expanded.startswith("@"):
        raise InvalidInput(
            f"invalid cron expression {text!r}: unknown macro; use one of {', '.join(MACROS)}"
        )
    parts = expanded.split(" ")
    if len(parts) != 5:
        raise InvalidInput(
            f"invalid cron expression {text!r}: it has {len(parts)} field(s); {_HELP}"
        )
    try:
        values = [_field(part, *spec) for part, spec in zip(parts, _FIELDS, strict=True)]
    except _FieldError as exc:
        raise InvalidInput(f"invalid cron expression {text!r}: {exc}") from None
    minutes, hours, days, months, weekdays = values
    weekdays = frozenset(d % 7 for d in weekdays)  # 7 is Sunday too
    schedule = CronSchedule(
        expression=given,
        minutes=minutes,
        hours=hours,
        days=days,
        months=months,
        weekdays=weekdays,
        days_restricted=not parts[2].startswith("*"),
        weekdays_restricted=not parts[4].startswith("*"),
    )
    if not (schedule.days_restricted and schedule.weekdays_restricted) and not any(
        day <= calendar.monthrange(2024, month)[1] for month in months for day in days
    ):
        raise InvalidInput(
            f"invalid cron expression {text!r}: it never fires (no month selected has "
            f"day {', '.join(str(d) for d in sorted(days))})"
        )
    return schedule


class _FieldError(ValueError):
    pass


def _value(token: str, name: str, low: int, high: int, names: tuple[str, ...]) -> int:
    if token.isdigit():
        number = int(token)
    elif token.upper() in names:
        number = names.index(token.upper()) + low
    else:
        hint = f" or a name ({names[0]}-{names[-1]})" if names else ""
        raise _FieldError(f"{name} {token!r} is not a number{hint}")
    if not low <= number <= high:
        raise _FieldError(f"{name} {number} is out of range {low}-{high}")
    return number


def _field(text: str, name: str, low: int, high: int, names: tuple[str, ...]) -> frozenset[int]:
    found: set[int] = set()
    for item in text.split(","):
        match = _ITEM.match(item)
        if match is None:
            raise _FieldError(f"{name} field {text!r}: cannot read {item!r}")
        base, step_text = match["base"], match["step"]
        step = int(step_text) if step_text is not None else 1
        if step < 1:
            raise _FieldError(f"{name} field {text!r}: a step must be 1 or more, got {step}")
        if base == "*":
            start, end = low, high
        elif "-" in base:
            first, last = base.split("-")
            start = _value(first, name, low, high, names)
            end = _value(last, name, low, high, names)
            if end < start:
                raise _FieldError(
                    f"{name} range {base!r} goes backwards; put the lower value first"
                )
        else:
            start = _value(base, name, low, high, names)
            end = high if step_text is not None else start  # a/n: from a to the end
        found.update(range(start, end + 1, step))
    return frozenset(found)
