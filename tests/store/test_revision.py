"""The revision constant the fast schema check relies on matches the migration scripts."""

from __future__ import annotations

from pathlib import Path

from ctloop.store.database import HEAD_REVISION, Database


def test_head_revision_constant_matches_the_newest_migration(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'x.db'}")
    assert db.migration_head() == HEAD_REVISION
    db.upgrade()
    assert db.current_revision() == HEAD_REVISION
