"""Layer 1: the SQL metadata store. One repository module per resource; no SQL elsewhere."""

from ctloop.store.database import Database, open_database

__all__ = ["Database", "open_database"]
