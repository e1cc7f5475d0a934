"""Windows over the prediction log: the last hour (``--window 1h``) or rows (``--last 5000``)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from ctloop.errors import InvalidInput
from ctloop.serving.log_reader import moment

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["SHADOW", "parse_window", "window_from_log"]

#: The variant shadow answers are logged under; a window leaves them out by default.
SHADOW = "shadow"

_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_WINDOW = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")


def parse_window(text: str | timedelta) -> timedelta:
    """A duration from ``45s``, ``30m``, ``1h``, ``2d`` or ``1w`` (or a timedelta as is).

    Raises:
        InvalidInput: any other spelling, or a duration that is not positive.
    """
    if isinstance(text, timedelta):
        span = text
    else:
        match = _WINDOW.match(str(text))
        if match is None:
            raise InvalidInput(
                f"window {text!r} is not a duration: write a number and a unit, "
                "s (seconds), m (minutes), h (hours), d (days) or w (weeks), e.g. 1h or 30m"
            )
        number, unit = match.groups()
        span = timedelta(**{_UNITS[unit]: float(number)})
    if span <= timedelta(0):
        raise InvalidInput(f"window {text!r} must be longer than zero")
    return span


def window_from_log(
    root: str,
    deployment: str,
    *,
    window: str | timedelta | None = None,
    last: int | None = None,
    until: datetime | date | str | None = None,
    variant: str | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """The features and predictions of a window of the prediction log, ready to profile.

    ``window="1h"`` takes the rows with ``until - 1h <= timestamp < until`` (``until``
    defaults to now); ``last=5000`` the newest 5000 rows before ``until``; both together
    the newest 5000 of the last hour; neither, the whole log. Rows are read with DuckDB
    (:func:`ctloop.serving.log_reader.read_log`); with ``last`` alone every row before
    ``until`` is scanned, so bound large logs with a ``window`` too.

    Args:
        root: the artifact store root holding ``logs/``.
        deployment: the deployment name.
        window: a duration (``"1h"``, ``"30m"``, ``"2d"``, ``"45s"``) or a timedelta.
        last: how many of the newest rows to keep.
        until: the end of the window (excluded): a datetime, date or ISO string, naive = UTC.
        variant: only the rows this variant answered; by default every row except the
            shadows' (a shadow answers a copy of a served row, so its features would count
            twice).
        storage_options: fsspec options for a remote root.

    Returns:
        one column per feature (``f.age`` becomes ``age``), then ``prediction`` and the
        ``p.<class>`` probabilities, oldest row first. A feature whose name would clash
        with those keeps its ``f.`` prefix.

    Raises:
        InvalidInput: a malformed window or ``until``, or ``last`` below 1.
    """
    from ctloop.serving.log_reader import read_log

    span = None if window is None else parse_window(window)
    if last is not None and (isinstance(last, bool) or not isinstance(last, int) or last < 1):
        raise InvalidInput(f"last={last!r}: give the number of newest rows to keep, at least 1")
    end = moment(until, "until") or datetime.now(UTC)
    since = None if span is None else end - span
    rows = read_log(
        root,
        deployment,
        "predictions",
        since=since,
        until=end,
        storage_options=storage_options,
    )
    if variant is not None:
        rows = rows[rows["variant"] == variant]
    else:
        rows = rows[rows["variant"].isna() | (rows["variant"] != SHADOW)]
    if last is not None:
        rows = rows.tail(last)
    probabilities = [c for c in rows.columns if c.startswith("p.")]
    taken = {"prediction", *probabilities}
    renamed: dict[str, str] = {}
    for column in rows.columns:
        if column.startswith("f."):
            bare = column[2:]
            renamed[column] = column if bare in taken else bare
    out = rows[[*renamed, "prediction", *probabilities]].rename(columns=renamed)
    return out.reset_index(drop=True)
