"""`fangxin devices import|rotate-credentials|export-mosquitto` and `fangxin simulate`."""

from __future__ import annotations

import csv
import threading
from pathlib import Path
from typing import Any

import click
from sqlalchemy import select

from fangxin.commands.common import progress, sessions, settings_of, summary
from fangxin.db import utcnow
from fangxin.devices import mosquitto_export, registry
from fangxin.devices.importer import count_rows, credentials_csv, import_devices
from fangxin.devices.models import Device, Site
from fangxin.ingest.mqtt_url import BrokerAddress


@click.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--credentials",
    "credentials_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where to write the new devices' MQTT credentials (default: PATH.credentials.csv).",
)
@click.pass_context
def devices_import(ctx: click.Context, path: Path, credentials_path: Path | None) -> None:
    """Import devices from CSV: id,site,kind[,interval_s,channel,gb_id,missed_beats]."""
    text, settings = path.read_text(encoding="utf-8-sig"), settings_of(ctx)
    with sessions(settings)() as session:
        with progress(count_rows(text), "importing devices") as update:
            lines, realm = text.splitlines(), settings.sip_realm
            result = import_devices(session, lines, utcnow(), update, realm)
        session.commit()
    if result.credentials:
        out = credentials_path or path.with_suffix(".credentials.csv")
        out.touch(mode=0o600)
        out.write_text(credentials_csv(result.credentials), encoding="utf-8")
        click.echo(f"Credentials of the {len(result.credentials)} new devices: {out}")
    summary(
        f"{result.imported} devices imported",
        (f"line {e.line} ({e.id or '-'}): {e.error}" for e in result.errors),
    )


@click.command("rotate-credentials")
@click.argument("device_ids", nargs=-1, required=True)
@click.pass_context
def devices_rotate(ctx: click.Context, device_ids: tuple[str, ...]) -> None:
    """Give devices new MQTT passwords (printed once); re-export the Mosquitto files after."""
    with sessions(settings_of(ctx))() as session:
        try:
            rotated = [registry.rotate_credentials(session, d, utcnow()) for d in device_ids]
        except registry.NotFound as exc:
            raise click.ClickException(str(exc)) from exc
        session.commit()
    for item in rotated:
        click.echo(
            f"{item.device}\tmqtt username: {item.mqtt_username}\tpassword: {item.mqtt_password}"
        )
    click.echo("run `fangxin devices export-mosquitto` and reload mosquitto (SIGHUP)", err=True)


@click.command("export-mosquitto")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option("--ingester-user", default=None, help="Default: the user of FANGXIN_MQTT_URL.")
@click.option("--ingester-password", default=None, help="Default: FANGXIN_MQTT_URL's password.")
@click.option("--bind-site", is_flag=True, help="Also pin each device to its own site's topics.")
@click.pass_context
def devices_export(
    ctx: click.Context,
    out_dir: Path,
    ingester_user: str | None,
    ingester_password: str | None,
    bind_site: bool,
) -> None:
    """Write Mosquitto's password and ACL files: devices publish and connect only as themselves."""
    settings = settings_of(ctx)
    address = BrokerAddress.parse(settings.mqtt_url) if settings.mqtt_url else None
    user = ingester_user or (address.username if address else None)
    password = ingester_password or (address.password if address else None)
    if not user or not password:
        raise click.ClickException(
            "the ingester's credentials are needed: --ingester-user/--ingester-password "
            "or mqtt://user:pass@host in FANGXIN_MQTT_URL"
        )
    with sessions(settings)() as session:
        files = mosquitto_export.build(
            session, user, mosquitto_export.ingester_hash(password), bind_site=bind_site
        )
    written = mosquitto_export.write(files, out_dir)
    click.echo(f"{files.devices} devices and the ingester user {user!r}")
    for path in written:
        click.echo(f"{path.name} {path.resolve()}")
    click.echo("mosquitto.conf: see deploy/mosquitto/mosquitto.conf; then reload it (SIGHUP)")


@click.group(invoke_without_command=True)
@click.option(
    "--duration", type=float, default=None, help="Seconds to run (default: until Ctrl-C)."
)
@click.option("--result-every", type=float, default=20.0, show_default=True)
@click.option("--interval", type=int, default=60, show_default=True, help="Heartbeat seconds.")
@click.pass_context
def simulate(
    ctx: click.Context, duration: float | None, result_every: float, interval: int
) -> None:
    """Publish the demo fleet's heartbeats and rapid-test results to FANGXIN_MQTT_URL."""
    if ctx.invoked_subcommand is not None:
        return
    # Lazy: keeps the simulators out of every other command's process (serve, ingest, ...).
    from fangxin.sim.device_clients import run_fleet
    from fangxin.sim.simulator import SimDevice, Simulator, demo_fleet

    settings = settings_of(ctx)
    if not settings.mqtt_url:
        raise click.ClickException("FANGXIN_MQTT_URL is not set")
    _, devices = demo_fleet()
    sim = Simulator(
        [SimDevice(d.site, d.id, d.kind, interval) for d in devices], result_every_s=result_every
    )
    stop = threading.Event()
    try:
        sent = run_fleet(BrokerAddress.parse(settings.mqtt_url), sim, stop, duration)
    except KeyboardInterrupt:
        stop.set()
        sent = 0
    click.echo(f"published {sent} messages")


@simulate.command("cameras")
@click.option(
    "--duration", type=float, default=None, help="Seconds to run (default: until Ctrl-C)."
)
@click.option("--site", "sites", multiple=True, help="Only cameras of these sites.")
@click.option("--district", default=None, help="Only cameras of this district's sites.")
@click.option("--limit", type=int, default=None, help="At most this many cameras.")
@click.option("--interval", type=int, default=60, show_default=True, help="Heartbeat seconds.")
@click.option(
    "--outages", type=float, default=0.5, show_default=True, help="Silent outages per camera-hour."
)
@click.option("--outage-mean", type=float, default=300.0, show_default=True, help="Seconds.")
@click.option("--disconnects", type=float, default=0.5, show_default=True, help="Per camera-hour.")
@click.option(
    "--unclean",
    type=float,
    default=0.5,
    show_default=True,
    help="Share of disconnects that leave the will to the broker.",
)
@click.option("--disconnect-mean", type=float, default=120.0, show_default=True, help="Seconds.")
@click.option(
    "--flaps", type=float, default=0.2, show_default=True, help="Flapping bursts per camera-hour."
)
@click.option("--power-losses", type=float, default=0.1, show_default=True, help="Per site-hour.")
@click.option("--power-mean", type=float, default=600.0, show_default=True, help="Seconds.")
@click.option(
    "--alarms", type=float, default=1.0, show_default=True, help="AI alarms per camera-hour."
)
@click.option(
    "--storage-low",
    type=float,
    default=0.0,
    show_default=True,
    help="Share of heartbeats reporting low storage.",
)
@click.option(
    "--credentials",
    "credentials_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="CSV of device,mqtt_username,mqtt_password (from `devices import`).",
)
@click.option("--seed", type=int, default=1, show_default=True)
@click.pass_context
def simulate_cameras(ctx: click.Context, /, **opts: Any) -> None:
    """Play the registered cameras and NVRs with random outages, flapping and power cuts."""
    # Lazy: keeps the simulators out of every other command's process (serve, ingest, ...).
    from fangxin.sim.camera_sim import Camera, CameraFleet, Flakiness
    from fangxin.sim.device_clients import run_cameras

    settings = settings_of(ctx)
    if not settings.mqtt_url:
        raise click.ClickException("FANGXIN_MQTT_URL is not set")
    stmt = (
        select(Device.id, Device.site_id)
        .join(Site, Site.id == Device.site_id)
        .where(Device.active.is_(True), Device.kind.in_(("camera", "nvr")))
        .order_by(Device.id)
        .limit(opts["limit"])
    )
    if opts["sites"]:
        stmt = stmt.where(Device.site_id.in_(opts["sites"]))
    if opts["district"]:
        stmt = stmt.where(Site.district == opts["district"])
    with sessions(settings)() as session:
        cameras = [Camera(site, device, opts["interval"]) for device, site in session.execute(stmt)]
    if not cameras:
        raise click.ClickException("no registered cameras match: register some first")
    passwords: dict[str, str] = {}
    if opts["credentials_path"]:
        with opts["credentials_path"].open(encoding="utf-8") as fh:
            passwords = {r["mqtt_username"]: r["mqtt_password"] for r in csv.DictReader(fh)}
    flakiness = Flakiness(
        outages_per_hour=opts["outages"],
        outage_mean_s=opts["outage_mean"],
        disconnects_per_hour=opts["disconnects"],
        unclean_share=opts["unclean"],
        disconnect_mean_s=opts["disconnect_mean"],
        flaps_per_hour=opts["flaps"],
        power_losses_per_hour=opts["power_losses"],
        power_mean_s=opts["power_mean"],
        alarms_per_hour=opts["alarms"],
        storage_low_share=opts["storage_low"],
    )
    fleet = CameraFleet(cameras, flakiness, seed=opts["seed"])
    click.echo(f"simulating {len(cameras)} cameras", err=True)
    stop = threading.Event()
    try:
        address = BrokerAddress.parse(settings.mqtt_url)
        sent = run_cameras(address, fleet, stop, opts["duration"], passwords=passwords)
    except KeyboardInterrupt:
        stop.set()
        sent = 0
    click.echo(f"published {sent} messages")


def register(main: click.Group) -> None:
    """Add the devices' commands to `fangxin`."""
    devices = main.commands["devices"]
    assert isinstance(devices, click.Group)
    for command in (devices_import, devices_rotate, devices_export):
        devices.add_command(command)
    main.add_command(simulate)
