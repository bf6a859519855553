"""What every subcommand needs: its Settings and sessions on a database migrated to head."""

from __future__ import annotations

import click
from sqlalchemy.orm import Session, sessionmaker

from fangxin.config import Settings
from fangxin.db import NotMigratedError, check_migrated, make_engine, make_session_factory


def settings_of(ctx: click.Context) -> Settings:
    """Return the Settings the `fangxin` group read from the environment."""
    settings: Settings = ctx.obj
    return settings


def sessions(settings: Settings) -> sessionmaker[Session]:
    """Open sessions on the settings' database; refuse one not migrated to head."""
    engine = make_engine(settings.database_url)
    try:
        check_migrated(engine)
    except NotMigratedError as exc:
        raise click.ClickException(str(exc)) from exc
    return make_session_factory(engine)
