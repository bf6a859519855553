"""The `fangxin` command."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click
from pydantic import ValidationError

from fangxin.commands import devices as devices_commands
from fangxin.commands import doctor as doctor_commands
from fangxin.commands import plan as plan_commands
from fangxin.commands import results as results_commands
from fangxin.commands import sip as sip_commands
from fangxin.commands import trace as trace_commands
from fangxin.commands import uptime as uptime_commands
from fangxin.commands import users as users_commands
from fangxin.commands.common import progress, sessions, settings_of, summary
from fangxin.config import ConfigError, Settings
from fangxin.db import NotMigratedError, make_engine, upgrade, utcnow
from fangxin.devices import registry
from fangxin.devices.importer import count_rows, import_sites
from fangxin.devices.schemas import DeviceIn, SiteIn
from fangxin.service.auth import create_key
from fangxin.service.security import use_json_logs


@click.group()
@click.option("--log-level", default="INFO", show_default=True, help="Python logging level.")
@click.pass_context
def main(ctx: click.Context, log_level: str) -> None:
    """Fangxin (放心): rapid tests, 合格证 traceability and 明厨亮灶 uptime."""
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        ctx.obj = Settings.from_env()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    if ctx.obj.log_format == "json":
        use_json_logs()


@main.group()
def db() -> None:
    """Manage the database schema."""


@db.command("upgrade")
@click.pass_context
def db_upgrade(ctx: click.Context) -> None:
    """Run Alembic migrations to head."""
    settings = settings_of(ctx)
    upgrade(make_engine(settings.database_url))
    click.echo("database at head")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=2, show_default=True, type=int)
@click.option("--threads", default=4, show_default=True, type=int)
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, workers: int, threads: int) -> None:
    """Serve the web app under gunicorn."""
    # Lazy: the web app's whole stack, loaded only by the command that serves it.
    from fangxin.service.app import create_app
    from fangxin.service.server import serve as run_server

    try:
        app = create_app(settings_of(ctx).served_on(port))
    except (NotMigratedError, ConfigError) as exc:
        raise click.ClickException(str(exc)) from exc
    run_server(app, host, port, workers, threads)


@main.command()
@click.option(
    "--shared", "shared", default=None, help="Join this MQTT 5 shared-subscription group."
)
@click.option("--client-id", default=None, help="Fixed MQTT client id (default: per host).")
@click.pass_context
def ingest(ctx: click.Context, shared: str | None, client_id: str | None) -> None:
    """Run one MQTT ingester until SIGTERM; it drains, flushes and exits 0."""
    from fangxin.ingest.runner import run  # lazy: the ingester's stack, only for this command

    try:
        sys.exit(run(settings_of(ctx), shared, client_id))
    except (NotMigratedError, ConfigError) as exc:
        raise click.ClickException(str(exc)) from exc


@main.command()
@click.option("--port", default=8000, show_default=True, type=int, help="Web port.")
@click.option(
    "--mqtt-port", default=1884, show_default=True, type=int, help="Embedded broker port."
)
@click.option("--broker", type=click.Choice(["auto", "mosquitto", "amqtt"]), default="auto")
@click.option(
    "--sip-port", default=15060, show_default=True, type=int, help="GB/T 28181 gateway port."
)
@click.option("--history/--no-history", default=True, help="Seed 30 days of simulated history.")
@click.pass_context
def demo(
    ctx: click.Context, port: int, mqtt_port: int, broker: str, sip_port: int, history: bool
) -> None:
    """Run everything on one machine with embedded defaults."""
    from fangxin.sim.demo import run_demo  # lazy: keeps the simulators out of other commands

    settings = settings_of(ctx).served_on(port)
    sys.exit(run_demo(settings, port, mqtt_port, broker, sip_port, history))


@main.group()
def sites() -> None:
    """Manage registered sites."""


@sites.command("add")
@click.argument("site_id")
@click.option("--kind", type=click.Choice(["market", "kitchen"]), required=True)
@click.option("--district", required=True)
@click.option("--name", required=True)
@click.option("--category", default=None, help="Kitchen category, e.g. 学校食堂.")
@click.pass_context
def sites_add(
    ctx: click.Context, site_id: str, kind: str, district: str, name: str, category: str | None
) -> None:
    """Register a site."""
    with sessions(settings_of(ctx))() as session:
        try:
            data = SiteIn(id=site_id, kind=kind, district=district, name=name, category=category)
            registry.add_site(session, data)
        except (ValidationError, registry.RegistryError) as exc:
            raise click.ClickException(str(exc)) from exc
        session.commit()
    click.echo(f"site {site_id} registered")


@sites.command("list")
@click.option("--district", default=None)
@click.pass_context
def sites_list(ctx: click.Context, district: str | None) -> None:
    """List sites."""
    with sessions(settings_of(ctx))() as session:
        for site in registry.list_sites(session, district):
            click.echo(f"{site.id}\t{site.kind}\t{site.district}\t{site.name}")


@sites.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_context
def sites_import(ctx: click.Context, path: Path) -> None:
    """Import sites from a CSV with columns id,kind,district,name[,category]."""
    text = path.read_text(encoding="utf-8-sig")
    with sessions(settings_of(ctx))() as session:
        with progress(count_rows(text), "importing sites") as update:
            result = import_sites(session, text.splitlines(), update)
        session.commit()
    summary(
        f"{result.imported} sites imported",
        (f"line {e.line}: {e.error}" for e in result.errors),
    )


@main.group()
def devices() -> None:
    """Manage registered devices."""


@devices.command("add")
@click.argument("device_id")
@click.option("--site", "site_id", required=True)
@click.option(
    "--kind", type=click.Choice(["rapid_test", "camera", "nvr", "scale", "sensor"]), required=True
)
@click.option("--interval", type=int, default=60, show_default=True, help="Heartbeat seconds.")
@click.option(
    "--missed-beats",
    type=click.IntRange(2, 10),
    default=3,
    show_default=True,
    help="Missed heartbeats before offline (最大心跳超时次数).",
)
@click.option("--gb-id", default=None, help="GB/T 28181 国标编码 (20 digits) of a camera or NVR.")
@click.pass_context
def devices_add(
    ctx: click.Context,
    device_id: str,
    site_id: str,
    kind: str,
    interval: int,
    missed_beats: int,
    gb_id: str | None,
) -> None:
    """Register a device and print its MQTT (and SIP) credentials (shown once)."""
    settings = settings_of(ctx)
    with sessions(settings)() as session:
        try:
            data = DeviceIn(
                id=device_id,
                site=site_id,
                kind=kind,
                interval_s=interval,
                missed_beats=missed_beats,
                gb_id=gb_id,
            )
            created = registry.add_device(session, data, utcnow(), settings.sip_realm)
        except (ValidationError, registry.RegistryError, registry.NotFound) as exc:
            raise click.ClickException(str(exc)) from exc
        session.commit()
    click.echo(f"device {device_id} registered at site {site_id}")
    click.echo(f"mqtt username: {created.mqtt_username}")
    click.echo(f"mqtt password: {created.mqtt_password}   (shown once; store it on the device)")
    if created.sip_password:
        click.echo(f"sip device id: {gb_id}   sip domain: {settings.sip_realm}")
        click.echo(f"sip password: {created.sip_password}   (shown once; enter it on the NVR)")


@devices.command("list")
@click.option("--site", "site_id", default=None)
@click.pass_context
def devices_list(ctx: click.Context, site_id: str | None) -> None:
    """List devices with their liveness."""
    now = utcnow()
    with sessions(settings_of(ctx))() as session:
        for device in registry.list_devices(session, site_id):
            out = registry.device_out(device, now)
            state = "online" if out.online else "offline"
            click.echo(f"{out.id}\t{out.site}\t{out.kind}\t{state}\t{out.last_seen_at or '-'}")


@main.group()
def keys() -> None:
    """Manage API keys."""


@keys.command("create")
@click.option("--role", type=click.Choice(["admin", "regulator", "lab", "issuer"]), required=True)
@click.option("--site", "site_id", default=None)
@click.option("--district", default=None)
@click.option("--subject", "subject_id", default=None)
@click.option("--name", default=None)
@click.pass_context
def keys_create(
    ctx: click.Context,
    role: str,
    site_id: str | None,
    district: str | None,
    subject_id: str | None,
    name: str | None,
) -> None:
    """Create an API key and print it once."""
    with sessions(settings_of(ctx))() as session:
        try:
            key = create_key(
                session, role, site_id=site_id, district=district, subject_id=subject_id, name=name
            )
        except ValueError as exc:
            raise click.ClickException(str(exc)) from exc
        session.commit()
    click.echo(key)


trace_commands.register(main)
results_commands.register(main)
devices_commands.register(main)
users_commands.register(main)
sip_commands.register(main)
uptime_commands.register(main)
doctor_commands.register(main)
plan_commands.register(main)

if __name__ == "__main__":
    main()
