"""`fangxin sip`: the GB/T 28181 gateway (SIP over UDP and TCP)."""

from __future__ import annotations

import signal
import threading
from types import FrameType

import click

from fangxin.commands.common import settings_of
from fangxin.config import ConfigError
from fangxin.db import NotMigratedError


@click.command("sip")
@click.option("--host", default=None, help="Address to bind (default: FANGXIN_SIP_LISTEN's).")
@click.option(
    "--port", default=None, type=int, help="UDP and TCP port (default: FANGXIN_SIP_LISTEN's)."
)
@click.pass_context
def sip(ctx: click.Context, host: str | None, port: int | None) -> None:
    """Run the GB/T 28181 gateway until SIGTERM: registration, keepalive, catalog, alarms."""
    from fangxin.gb28181.server import start  # lazy: the gateway's stack, only for this command

    settings = settings_of(ctx)
    listen_host, _, listen_port = settings.sip_listen.rpartition(":")
    stop = threading.Event()

    def _stop(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        running = start(
            settings,
            host or listen_host or "0.0.0.0",
            port if port is not None else int(listen_port),
        )
    except (NotMigratedError, ConfigError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(
        f"SIP gateway {settings.sip_id} listening on port {running.port} (udp, tcp)", err=True
    )
    while not stop.wait(1.0) and running.thread.is_alive():
        pass
    running.stop()
    click.echo(f"SIP gateway stopped: {dict(running.gateway.counters)}", err=True)


def register(main: click.Group) -> None:
    """Add `fangxin sip`."""
    main.add_command(sip)
