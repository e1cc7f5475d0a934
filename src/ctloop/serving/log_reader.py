"""Read the prediction and feedback logs back as DataFrames.

Segments are found by listing ``logs/<deployment>/<kind>/date=*/*.parquet`` (date
partitions outside ``since``/``until`` are skipped without being opened) and queried with
DuckDB, which unions segments whose columns differ (a feature added later is null in the
older rows). A local store is read by DuckDB's own Parquet reader; an ``s3://`` store is
read through fsspec and pyarrow (DuckDB's httpfs extension is not assumed to be
installable) and then queried by the same SQL.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from ctloop.artifacts.filesystems import remote_filesystem
from ctloop.errors import InvalidInput, MissingExtraError
from ctloop.serving.payload_log import FEEDBACK_COLUMNS, PREDICTION_COLUMNS, check_names

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["JOINED_EXTRA_COLUMNS", "joined", "read_log"]

#: Columns :func:`joined` adds to the prediction columns.
JOINED_EXTRA_COLUMNS = ("label", "value", "feedback_time")

Moment = datetime | date | str | None


def read_log(
    root: str,
    deployment: str,
    kind: str,
    *,
    since: Moment = None,
    until: Moment = None,
    storage_options: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """The rows of one log with ``since <= timestamp < until``, oldest first.

    Args:
        root: the artifact store root (a local folder or ``s3://bucket/prefix``).
        deployment: the deployment name.
        kind: ``"predictions"`` or ``"feedback"``.
        since: first moment included (a datetime, date or ISO string; naive means UTC).
        until: first moment excluded.
        storage_options: fsspec options for a remote root.

    Returns:
        the core columns first (see ``docs/logs.md``), then ``f.*``, ``p.*`` and any
        others; an empty frame with the core columns when nothing matches.
    """
    check_names(deployment, kind)
    lo, hi = moment(since, "since"), moment(until, "until")
    core = PREDICTION_COLUMNS if kind == "predictions" else FEEDBACK_COLUMNS
    try:
        import duckdb
    except ImportError as exc:  # a core dependency, but say so clearly if it went missing
        raise MissingExtraError("duckdb", "all", "reading the prediction logs") from exc

    root = root.rstrip("/")
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")  # else timestamps come back in the machine's zone
        if "://" in root:
            fs = remote_filesystem(root, storage_options)
            files = _remote_segments(fs, root, deployment, kind, lo, hi)
            if not files:
                return _empty(core)
            tables = [pq.read_table(f, filesystem=fs) for f in files]
            table = pa.concat_tables(tables, promote_options="permissive")
            # the order rows were written in breaks ties between equal timestamps
            order = pa.array(range(table.num_rows), pa.int64())
            con.register("segments", table.append_column("__row", order))
            source, exclude, tiebreak = "segments", " EXCLUDE (__row)", "__row"
            params: list[Any] = []
        else:
            files = _local_segments(root, deployment, kind, lo, hi)
            if not files:
                return _empty(core)
            source = (
                "read_parquet(?, union_by_name = true, hive_partitioning = true,"
                " filename = true, file_row_number = true)"
            )
            params = [files]
            # the partition key repeats the timestamp; segment and row break ties
            exclude = " EXCLUDE (date, filename, file_row_number)"
            tiebreak = "filename, file_row_number"
        where = []
        if lo is not None:
            where.append("timestamp >= ?")
            params.append(lo)
        if hi is not None:
            where.append("timestamp < ?")
            params.append(hi)
        sql = f"SELECT *{exclude} FROM {source}"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += f" ORDER BY timestamp, {tiebreak}"
        relation = con.sql(sql, params=params)
        # duckdb 1.4 renamed fetch_arrow_table (deprecated since) to to_arrow_table
        to_arrow = getattr(relation, "to_arrow_table", None) or relation.fetch_arrow_table
        table = to_arrow()
    finally:
        con.close()
    first = [c for c in core if c in table.column_names]
    rest = [c for c in table.column_names if c not in core]
    return table.select(first + rest).to_pandas()


def joined(
    root: str,
    deployment: str,
    since: Moment = None,
    until: Moment = None,
    *,
    storage_options: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """Predictions (``since <= timestamp < until``) with their latest feedback.

    A left join on ``prediction_id``: every prediction appears once, with ``label``,
    ``value`` and ``feedback_time`` from the most recent feedback for it (null if none).
    Feedback is read from a day before ``since`` on, to allow for clock skew between
    replicas; it may arrive any time after the prediction.
    """
    preds = read_log(
        root, deployment, "predictions", since=since, until=until, storage_options=storage_options
    )
    lo = moment(since, "since")
    feedback = read_log(
        root,
        deployment,
        "feedback",
        since=None if lo is None else lo - timedelta(days=1),
        storage_options=storage_options,
    )
    feedback = feedback.sort_values("timestamp", kind="stable").drop_duplicates(
        "prediction_id", keep="last"
    )
    latest = feedback[["prediction_id", "label", "value", "timestamp"]].rename(
        columns={"timestamp": "feedback_time"}
    )
    return preds.merge(latest, on="prediction_id", how="left", suffixes=("", "_feedback"))


# --- helpers ------------------------------------------------------------------------------


def moment(value: Moment, name: str) -> datetime | None:
    """A moment (datetime, date or ISO string; naive means UTC) as an aware UTC datetime."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise InvalidInput(
                f"{name}={value!r} is not a date or time: use ISO 8601, e.g. 2026-01-31T12:00"
            ) from None
    if not isinstance(value, datetime):  # a date: its midnight, UTC
        value = datetime(value.year, value.month, value.day)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _in_range(folder: str, lo: datetime | None, hi: datetime | None) -> bool:
    """Whether the partition ``date=YYYY-MM-DD`` can hold rows in ``[lo, hi)``."""
    try:
        day = date.fromisoformat(folder.removeprefix("date="))
    except ValueError:
        return False  # not a partition we wrote
    if lo is not None and day < lo.date():
        return False
    return not (hi is not None and datetime(day.year, day.month, day.day, tzinfo=UTC) >= hi)


def _local_segments(
    root: str, deployment: str, kind: str, lo: datetime | None, hi: datetime | None
) -> list[str]:
    base = os.path.join(root, "logs", deployment, kind)
    files = glob.glob(os.path.join(glob.escape(base), "date=*", "*.parquet"))
    return sorted(f for f in files if _in_range(os.path.basename(os.path.dirname(f)), lo, hi))


def _remote_segments(
    fs: Any, root: str, deployment: str, kind: str, lo: datetime | None, hi: datetime | None
) -> list[str]:
    fs.invalidate_cache()  # new segments appear all the time; never trust a stale listing
    files = fs.glob(f"{root}/logs/{deployment}/{kind}/date=*/*.parquet")
    return sorted(f for f in files if _in_range(f.rsplit("/", 2)[-2], lo, hi))


def _empty(core: Mapping[str, pa.DataType | None]) -> pd.DataFrame:
    schema = pa.schema([(name, type_ or pa.null()) for name, type_ in core.items()])
    return schema.empty_table().to_pandas()
