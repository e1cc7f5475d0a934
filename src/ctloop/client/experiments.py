"""``client.experiments``: named groups of runs."""

from __future__ import annotations

from typing import Any

from ctloop._internal.ids import ms_to_datetime
from ctloop._internal.names import check_name
from ctloop.client._local import LocalContext
from ctloop.store import experiments as repo
from ctloop.tracking.entities import Experiment


def experiment_from_row(row: dict[str, Any]) -> Experiment:
    created = ms_to_datetime(row["created_at"])
    assert created is not None
    return Experiment(
        id=row["id"],
        name=row["name"],
        created_at=created,
        description=row.get("description"),
        run_count=row.get("run_count"),
    )


class ExperimentsAPI:
    """Create, find and list experiments."""

    def __init__(self, ctx: LocalContext) -> None:
        self._ctx = ctx

    def create(self, name: str, description: str | None = None) -> Experiment:
        """Create an experiment; :class:`~ctloop.errors.Conflict` if the name is taken."""
        check_name(name, "experiment")
        with self._ctx.db.write() as conn:
            return experiment_from_row(repo.create(conn, name, description))

    def get_or_create(self, name: str) -> Experiment:
        """The experiment called ``name``, created if it does not exist yet."""
        check_name(name, "experiment")
        with self._ctx.db.write() as conn:
            return experiment_from_row(repo.get_or_create(conn, name))

    def get(self, name_or_id: str) -> Experiment:
        """An experiment by name or id; :class:`~ctloop.errors.NotFound` otherwise."""
        with self._ctx.db.read() as conn:
            return experiment_from_row(repo.get(conn, name_or_id))

    def list(self) -> list[Experiment]:
        """Every experiment with its run count, newest first."""
        with self._ctx.db.read() as conn:
            return [experiment_from_row(r) for r in repo.list_all(conn)]
