"""What every subcommand needs: its Settings and sessions on a database migrated to head."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

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


PROGRESS_EVERY = 1000


@contextmanager
def progress(total: int, label: str) -> Iterator[Callable[[int], None]]:
    """Report an import's progress on stderr: a bar on a terminal, else a line per 1,000 rows."""
    stderr = sys.stderr
    if stderr.isatty():
        with click.progressbar(length=total, label=label, file=stderr) as bar:
            yield bar.update
        return
    done = 0

    def update(n: int) -> None:
        nonlocal done
        before, done = done, done + n
        if done // PROGRESS_EVERY > before // PROGRESS_EVERY:
            click.echo(f"{label}: {done} of {total} rows", err=True)

    yield update


def summary(stored: str, refusals: Iterable[str], unit: str = "rows ") -> None:
    """End an import with what was stored, what was refused, and each refusal's reason."""
    reasons = list(refusals)
    click.echo(f"{stored}, {len(reasons)} {unit}refused")
    for reason in reasons:
        click.echo(reason)
