"""SQL backends (SQLite, PostgreSQL): the only code in mloop that speaks SQL."""

from mloop.store._sql._engine import describe_uri, upgrade_store
from mloop.store._sql._store import SqlStore

__all__ = ["SqlStore", "describe_uri", "upgrade_store"]
