"""Five-field cron expressions and their next fire times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ctloop.errors import InvalidInput
from ctloop.loop.cron import parse_cron


def fire(expression: str, after: datetime) -> datetime:
    return parse_cron(expression).next_fire(after)


def test_every_minute_fires_in_the_next_minute_with_seconds_dropped() -> None:
    assert fire("* * * * *", datetime(2024, 5, 1, 10, 0, 30)) == datetime(2024, 5, 1, 10, 1)


def test_next_fire_is_strictly_after_the_given_time() -> None:
    assert fire("0 3 * * *", datetime(2024, 5, 1, 3, 0)) == datetime(2024, 5, 2, 3, 0)
    assert fire("0 3 * * *", datetime(2024, 5, 1, 2, 59, 59)) == datetime(2024, 5, 1, 3, 0)


def test_ranges_and_steps_within_a_day() -> None:
    expr = "*/15 8-18 * * 1-5"  # every quarter hour in office hours, Monday to Friday
    assert fire(expr, datetime(2024, 6, 3, 8, 1)) == datetime(2024, 6, 3, 8, 15)
    assert fire(expr, datetime(2024, 6, 3, 18, 45)) == datetime(2024, 6, 4, 8, 0)
    # Friday 18:50 → Monday 08:00
    assert fire(expr, datetime(2024, 6, 7, 18, 50)) == datetime(2024, 6, 10, 8, 0)


def test_range_with_step_and_start_with_step() -> None:
    assert parse_cron("10-30/10 * * * *").minutes == {10, 20, 30}
    assert parse_cron("50/5 * * * *").minutes == {50, 55}
    assert parse_cron("0 1,5-7,22 * * *").hours == {1, 5, 6, 7, 22}


def test_month_and_day_names_case_insensitive() -> None:
    schedule = parse_cron("30 6 * jan-MAR,Dec MON,wed")
    assert schedule.months == {1, 2, 3, 12}
    assert schedule.weekdays == {1, 3}
    # 2024-03-29 is a Friday; next Monday is April 1, outside the months → December 2
    assert schedule.next_fire(datetime(2024, 3, 29, 7, 0)) == datetime(2024, 12, 2, 6, 30)


def test_sunday_is_both_0_and_7() -> None:
    assert parse_cron("0 0 * * 7").weekdays == parse_cron("0 0 * * SUN").weekdays == {0}
    assert fire("0 0 * * 7", datetime(2024, 6, 5)) == datetime(2024, 6, 9)  # a Sunday


def test_restricted_day_fields_are_or_ed_as_in_vixie_cron() -> None:
    # the 13th or any Friday: 2024-09-06 is a Friday, before the 13th
    assert fire("0 0 13 * FRI", datetime(2024, 9, 1)) == datetime(2024, 9, 6)
    assert fire("0 0 13 * FRI", datetime(2024, 9, 12, 1)) == datetime(2024, 9, 13)
    # a star-led day-of-month does not count as restricted: Fridays only, on odd days
    assert fire("0 0 */2 * FRI", datetime(2024, 9, 1)) == datetime(2024, 9, 13)


def test_leap_day_fires_every_four_years_and_month_end_skips_short_months() -> None:
    assert fire("0 0 29 2 *", datetime(2024, 3, 1)) == datetime(2028, 2, 29)
    assert fire("0 12 31 * *", datetime(2024, 4, 1)) == datetime(2024, 5, 31, 12)


def test_year_end_rolls_over() -> None:
    assert fire("@yearly", datetime(2024, 12, 31, 23, 59)) == datetime(2025, 1, 1)
    assert fire("@hourly", datetime(2024, 12, 31, 23, 59)) == datetime(2025, 1, 1)


def test_macros() -> None:
    assert parse_cron("@daily").next_fire(datetime(2024, 1, 1, 5)) == datetime(2024, 1, 2)
    assert fire("@weekly", datetime(2024, 6, 5)) == datetime(2024, 6, 9)  # Sunday midnight
    assert fire("@monthly", datetime(2024, 6, 5)) == datetime(2024, 7, 1)


def test_timezone_of_the_given_time_is_kept() -> None:
    after = datetime(2024, 6, 5, 10, 7, tzinfo=UTC)
    assert fire("0 * * * *", after) == datetime(2024, 6, 5, 11, 0, tzinfo=UTC)


def test_matches_agrees_with_next_fire() -> None:
    schedule = parse_cron("5,35 */6 1-10 * MON-FRI")
    t = datetime(2024, 2, 27)
    for _ in range(20):
        t = schedule.next_fire(t)
        assert schedule.matches(t)
    # no minute between two fires matches
    start = datetime(2024, 3, 1, 0, 6)
    nxt = schedule.next_fire(start)
    probe = start + timedelta(minutes=1)
    while probe < nxt:
        assert not schedule.matches(probe)
        probe += timedelta(minutes=1)


def test_whitespace_is_normalised() -> None:
    assert parse_cron("  0   3 *  * MON ").expression == "0 3 * * MON"


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("61 * * * *", "minute 61 is out of range 0-59"),
        ("* 24 * * *", "hour 24 is out of range 0-23"),
        ("* * 0 * *", "day of month 0 is out of range 1-31"),
        ("* * * 13 *", "month 13 is out of range 1-12"),
        ("* * * * 8", "day of week 8 is out of range 0-7"),
        ("* * * FOO *", "month 'FOO' is not a number or a name (JAN-DEC)"),
        ("MON * * * *", "minute 'MON' is not a number"),
        ("*/0 * * * *", "a step must be 1 or more"),
        ("0 0 * * FRI-MON", "range 'FRI-MON' goes backwards"),
        ("* * * *", "it has 4 field(s)"),
        ("* * * * * *", "it has 6 field(s)"),
        ("1,,2 * * * *", "cannot read ''"),
        ("0 0 30 FEB *", "it never fires"),
        ("@often", "unknown macro"),
        ("", "write five fields"),
    ],
)
def test_invalid_expressions_name_the_problem(expression: str, message: str) -> None:
    with pytest.raises(InvalidInput, match="invalid cron expression") as err:
        parse_cron(expression)
    assert message in str(err.value)


def test_non_text_is_refused() -> None:
    with pytest.raises(InvalidInput, match="invalid cron expression 5"):
        parse_cron(5)
