"""The database layer: typed base, engines and sessions, migrations, duplicate-safe bulk writes.

The names below are the ones the rest of fangxin uses; each lives in the module named beside it.
"""

from fangxin.db.base import NAMING_CONVENTION, Base, UTCDateTime, utcnow
from fangxin.db.engine import make_engine, make_reader, make_session_factory
from fangxin.db.migrate import (
    MIGRATIONS_DIR,
    NotMigratedError,
    alembic_config,
    check_migrated,
    schema_revisions,
    table_names,
    upgrade,
)

__all__ = [
    "MIGRATIONS_DIR",
    "NAMING_CONVENTION",
    "Base",
    "NotMigratedError",
    "UTCDateTime",
    "alembic_config",
    "check_migrated",
    "make_engine",
    "make_reader",
    "make_session_factory",
    "schema_revisions",
    "table_names",
    "upgrade",
    "utcnow",
]
