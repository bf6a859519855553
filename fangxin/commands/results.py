"""`fangxin catalogue` (import/export the rapid-test items) and `fangxin webhooks` (the sender)."""

from __future__ import annotations

import csv
import logging
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

import click
from pydantic import ValidationError

from fangxin.commands.common import progress, sessions, settings_of, summary
from fangxin.db import utcnow
from fangxin.trace.notify.dispatch import Dispatcher
from fangxin.trace.notify.webhooks import add_endpoint
from fangxin.trace.results.catalogue import list_items, put_item
from fangxin.trace.results.catalogue_csv import items_from_csv, items_to_csv
from fangxin.trace.results.schemas import EndpointIn

_LOGGER = logging.getLogger(__name__)


@click.group("catalogue")
def catalogue_group() -> None:
    """Manage the rapid-test item catalogue."""


@catalogue_group.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_context
def catalogue_import(ctx: click.Context, path: Path) -> None:
    """Create or replace items from a CSV (columns as `catalogue export` writes them)."""
    with path.open(encoding="utf-8-sig", newline="") as fh:
        items, errors = items_from_csv(csv.DictReader(fh))
    created = 0
    with (
        sessions(settings_of(ctx)).begin() as session,
        progress(len(items), "importing items") as update,
    ):
        now = utcnow()
        for item in items:
            created += put_item(session, item, now)
            update(1)
    summary(
        f"{len(items)} items imported ({created} new, {len(items) - created} replaced)",
        errors,
        unit="",
    )
    if errors:
        sys.exit(1)


@catalogue_group.command("export")
@click.option("--retired", is_flag=True, help="Include retired items.")
@click.pass_context
def catalogue_export(ctx: click.Context, retired: bool) -> None:
    """Write the catalogue as CSV to standard output."""
    with sessions(settings_of(ctx))() as session:
        click.echo(items_to_csv(list_items(session, include_retired=retired)), nl=False)


@click.group("webhooks", invoke_without_command=True)
@click.option("--poll", default=2.0, show_default=True, help="Seconds between looks for work.")
@click.option("--once", is_flag=True, help="Send what is due now and exit.")
@click.pass_context
def webhooks_group(ctx: click.Context, poll: float, once: bool) -> None:
    """Send webhook deliveries until SIGTERM (the default); see also `add`."""
    if ctx.invoked_subcommand is not None:
        return
    settings = settings_of(ctx)
    dispatcher = Dispatcher(sessions(settings), allow_private=settings.webhooks_allow_private)
    if once:
        click.echo(f"{dispatcher.deliver_due()} delivered")
        return
    stop = threading.Event()

    def _stop(signum: int, _frame: FrameType | None) -> None:
        _LOGGER.info("Signal %d: stopping the webhook sender", signum)
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    _LOGGER.info("Webhook sender running")
    while not stop.is_set():
        try:
            dispatcher.deliver_due()
        except Exception:  # keep serving: the database may come back
            _LOGGER.exception("Sending webhooks failed")
        stop.wait(poll)


@webhooks_group.command("add")
@click.argument("url")
@click.option("--district", default=None, help="Only cases of this district.")
@click.option("--name", default=None)
@click.option("--event", "events", multiple=True, help="Only these events (default: all).")
@click.pass_context
def webhooks_add(
    ctx: click.Context, url: str, district: str | None, name: str | None, events: tuple[str, ...]
) -> None:
    """Register a receiver and print its signing secret (shown once)."""
    try:
        data = EndpointIn(url=url, district=district, name=name, events=list(events))
    except ValidationError as exc:
        raise click.ClickException(str(exc)) from exc
    with sessions(settings_of(ctx)).begin() as session:
        endpoint = add_endpoint(session, **data.model_dump())
        click.echo(f"webhook {endpoint.id} → {endpoint.url}")
        click.echo(f"secret: {endpoint.secret}   (shown once; the receiver verifies with it)")


def register(main: click.Group) -> None:
    """Add this module's commands to `fangxin`."""
    main.add_command(catalogue_group)
    main.add_command(webhooks_group)
