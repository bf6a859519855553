"""Alembic migrations: upgrade to head, and the check that refuses an unmigrated database."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect

MIGRATIONS_DIR = Path(__file__).parent.parent / "migrations"


class NotMigratedError(RuntimeError):
    """The database schema is not at the migrations' head."""


def alembic_config(url: str) -> Any:
    """Build an Alembic config pointing at the packaged migrations."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(engine: Engine) -> None:
    """Run the migrations to head on this engine."""
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "heads")


def schema_revisions(engine: Engine) -> tuple[set[str], set[str]]:
    """Return (current revisions, head revisions); branches may have several heads."""
    heads = set(ScriptDirectory.from_config(alembic_config(str(engine.url))).get_heads())
    with engine.connect() as conn:
        current = set(MigrationContext.configure(conn).get_current_heads())
    return current, heads


def check_migrated(engine: Engine) -> None:
    """Raise NotMigratedError unless the schema is at the migrations' head."""
    current, heads = schema_revisions(engine)
    if current != heads:
        where = engine.url.render_as_string(hide_password=True)
        state = "empty" if not current else f"at {', '.join(sorted(current))}"
        raise NotMigratedError(
            f"database {where} is {state}, migrations head is {', '.join(sorted(heads))}: "
            "run `fangxin db upgrade`"
        )


def table_names(engine: Engine) -> list[str]:
    """List the tables present in the database."""
    return inspect(engine).get_table_names()
