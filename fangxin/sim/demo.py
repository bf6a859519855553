"""`fangxin demo`: broker, web app, ingester and simulated devices on one machine."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import FrameType

from sqlalchemy import select
from sqlalchemy.orm import Session

from fangxin.config import Settings
from fangxin.db import make_engine, make_session_factory, upgrade, utcnow
from fangxin.devices import registry
from fangxin.devices.models import Device, Site
from fangxin.ingest.mqtt_url import BrokerAddress
from fangxin.service.auth import create_key
from fangxin.service.security import session_secret
from fangxin.service.users import add_user
from fangxin.sim.broker import RunningBroker, mosquitto_binary, start_broker, wait_for_port
from fangxin.sim.broker_auth import CREDENTIALS_FILE, DemoCredentials, issue_credentials, write_auth
from fangxin.sim.camera_sim import Camera, CameraFleet, Flakiness
from fangxin.sim.device_clients import run_cameras, run_fleet
from fangxin.sim.history import DAYS, Seeded, seed_history
from fangxin.sim.simulator import SimDevice, Simulator, demo_fleet
from fangxin.trace.certificates.views import public_base
from fangxin.trace.plan.imports import import_rows
from fangxin.trace.plan.models import Licence

_LOGGER = logging.getLogger(__name__)
DEMO_HEARTBEAT_S = 15
DEMO_SIP_ID = "41040000002000000001"  # 平顶山 platform id of the demo's SIP gateway
# Kitchen cameras misbehave often enough to see outages, flapping and alarms within minutes.
DEMO_FLAKINESS = Flakiness(
    outages_per_hour=1.0,
    outage_mean_s=120,
    disconnects_per_hour=1.0,
    disconnect_mean_s=90,
    flaps_per_hour=0.5,
    power_losses_per_hour=0.3,
    power_mean_s=180,
    alarms_per_hour=6.0,
    storage_low_share=0.01,
)


DEMO_SOURCE = "演示数据（非真实许可登记）"
# The demo kitchens' licences and two licensed caterers not connected to the platform.
DEMO_LICENCES: list[dict[str, object]] = [
    {
        "licence_no": "JY34104020000011",
        "name": "市第一中学食堂",
        "category": "学校（含托幼）食堂",
        "district": "新华区",
        "address": "新华区演示路1号",
    },
    {
        "licence_no": "JY34104030000022",
        "name": "湛河区中央厨房",
        "category": "中央厨房",
        "district": "湛河区",
        "address": "湛河区演示路2号",
    },
    {
        "licence_no": "JY24104030000033",
        "name": "鹰城老字号饭店",
        "category": "大型餐饮",
        "district": "卫东区",
        "address": "卫东区演示路3号",
    },
    {
        "licence_no": "JY24104030000044",
        "name": "卫东区某中型饭店",
        "category": "中型餐饮",
        "district": "卫东区",
        "address": "卫东区演示路4号",
    },
    {
        "licence_no": "JY24104020000055",
        "name": "新华区某特大型酒楼",
        "category": "特大型餐饮",
        "district": "新华区",
        "address": "新华区演示路5号",
    },
]


def seed(session: Session, registered_at: dt.datetime | None = None) -> None:
    """Register the demo markets, kitchens and devices that are not registered yet."""
    sites, devices = demo_fleet()
    for site in sites:
        if session.get(Site, site.id) is None:
            registry.add_site(session, site)
    for device in devices:
        if session.get(Device, device.id) is None:
            registry.add_device(session, device, registered_at or utcnow())
    if session.scalar(select(Licence.licence_no).limit(1)) is None:
        now = registered_at or utcnow()
        import_rows(session, "licences", list(enumerate(DEMO_LICENCES, 2)), DEMO_SOURCE, now)
        forms = [
            {
                "licence_no": row["licence_no"],
                "form": "video",
                "accepted": "是",
                "inspected_on": now.date().isoformat(),
            }
            for row in DEMO_LICENCES[:3]
        ]
        import_rows(session, "forms", list(enumerate(forms, 2)), DEMO_SOURCE, now)


def dashboard_login(session: Session, data_dir: Path) -> tuple[str, str]:
    """Return the demo's dashboard account, created once per data dir (a city-wide regulator)."""
    path = data_dir / "dashboard_login"
    if path.exists():
        username, password = path.read_text().split("\n")[:2]
        return username, password
    username, password = "demo", secrets.token_urlsafe(12)
    add_user(session, username, password, "regulator")
    path.write_text(f"{username}\n{password}\n")
    path.chmod(0o600)
    return username, password


def prepare(
    settings: Settings, history: bool
) -> tuple[str, str, str, Seeded | None, DemoCredentials | None]:
    """Migrate, register the fleet, the account and (first time) the history; return secrets.

    With the embedded broker, every simulated device gets a fresh MQTT password and the broker's
    password and ACL files are written: the broker admits no anonymous client.
    """
    engine = make_engine(settings.database_url)
    upgrade(engine)
    now = utcnow()
    marker = settings.data_dir / "history_seeded"
    seeded: Seeded | None = None
    with make_session_factory(engine)() as session:
        fresh = history and not marker.exists()
        seed(session, now - dt.timedelta(days=DAYS + 1) if fresh else None)
        username, password = dashboard_login(session, settings.data_dir)
        admin_key = create_key(session, "admin", name="demo")
        if fresh:
            seeded = seed_history(session, settings, now)
        creds = None
        if not settings.mqtt_url:
            creds = issue_credentials(session, [d.id for d in demo_fleet()[1]], now)
            write_auth(session, creds, settings.data_dir / "broker" / "auth", settings.data_dir)
        session.commit()
    if seeded is not None:
        marker.write_text(f"{seeded.certificate_number}\n{seeded.certificate_code}\n")
    elif marker.exists():
        number, code = marker.read_text().split("\n")[:2]
        seeded = Seeded(number, code)
    engine.dispose()
    return username, password, admin_key, seeded, creds


def _broker(settings: Settings, mqtt_port: int, choice: str) -> tuple[str, RunningBroker | None]:
    if settings.mqtt_url:
        return settings.mqtt_url, None
    prefer = "amqtt" if choice == "amqtt" else "mosquitto"
    if choice == "mosquitto" and mosquitto_binary() is None:
        raise SystemExit("--broker mosquitto: no mosquitto binary found")
    broker_dir = settings.data_dir / "broker"
    broker = start_broker(broker_dir, mqtt_port, prefer=prefer, auth_dir=broker_dir / "auth")
    if broker.kind == "amqtt":
        _LOGGER.warning(
            "No mosquitto binary found: using the embedded amqtt broker (MQTT 3.1.1). It does not "
            "redeliver unacknowledged messages, so crash safety needs mosquitto or EMQX."
        )
    return broker.url, broker


def run_demo(
    settings: Settings,
    port: int,
    mqtt_port: int,
    broker_choice: str = "auto",
    sip_port: int = 15060,
    history: bool = True,
) -> int:
    """Run the demo until Ctrl-C; return the exit code."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    username, password, admin_key, seeded, creds = prepare(settings, history)

    mqtt_url, broker = _broker(settings, mqtt_port, broker_choice)
    ingest_url = mqtt_url
    if creds is not None:  # our broker: the ingester logs in as its own user
        ingest_url = mqtt_url.replace(
            "mqtt://", f"mqtt://{creds.ingester_user}:{creds.ingester_password}@", 1
        )
    env = {
        **os.environ,
        "FANGXIN_DATA_DIR": str(settings.data_dir),
        "FANGXIN_DATABASE_URL": settings.database_url,
        "FANGXIN_MQTT_URL": ingest_url,
        "FANGXIN_SECRET_KEY": session_secret(settings),
        # With use_username_as_clientid the broker uses the username anyway: keep them equal.
        "FANGXIN_INGEST_CLIENT_ID": creds.ingester_user if creds else "fangxin-demo-ingest",
        "FANGXIN_SIP_ID": settings.sip_id or DEMO_SIP_ID,
        "FANGXIN_PUBLIC_URL": public_base(settings),
    }
    if broker is not None and broker.kind == "amqtt":
        env["FANGXIN_MQTT_PROTOCOL"] = "3.1.1"  # amqtt speaks no MQTT 5: skip the probe
    cli = [sys.executable, "-m", "fangxin.cli"]
    children = [
        subprocess.Popen([*cli, "ingest"], env=env),
        subprocess.Popen(
            [*cli, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"], env=env
        ),
        subprocess.Popen([*cli, "sip", "--host", "127.0.0.1", "--port", str(sip_port)], env=env),
    ]
    stop = threading.Event()

    def _on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    _, devices = demo_fleet()
    sim = Simulator(
        [SimDevice(d.site, d.id, d.kind, DEMO_HEARTBEAT_S) for d in devices if d.kind != "camera"],
        result_every_s=10,
    )
    cameras = CameraFleet(
        [Camera(d.site, d.id, DEMO_HEARTBEAT_S) for d in devices if d.kind == "camera"],
        DEMO_FLAKINESS,
    )
    address = BrokerAddress.parse(mqtt_url)
    passwords = creds.devices if creds else None
    fleet = threading.Thread(
        target=run_fleet, args=(address, sim, stop), kwargs={"passwords": passwords}, daemon=True
    )
    fleet.start()
    camera_fleet = threading.Thread(
        target=run_cameras,
        args=(address, cameras, stop),
        kwargs={"passwords": passwords},
        daemon=True,
    )
    camera_fleet.start()
    web_up = wait_for_port("127.0.0.1", port, 30)
    base = f"http://127.0.0.1:{port}"
    _LOGGER.info("fangxin demo is running%s", "" if web_up else " (web app slow to start)")
    example = json.dumps(
        {
            "id": "manual-1",
            "ts": utcnow().astimezone().isoformat(timespec="seconds"),
            "item": "pesticide-ache",
            "value": 62.5,
            "unit": "%",
            "sample": {"name": "菠菜", "stall": "A-12"},
        },
        ensure_ascii=False,
    )
    topic = "fangxin/v1/m-001/rt-m-001/result"
    login, broker_note = "", "external"
    if broker is not None:
        broker_note = broker.kind
    if creds is not None:
        login = f"-u rt-m-001 -P {creds.devices['rt-m-001']} "
        where = settings.data_dir.resolve() / CREDENTIALS_FILE
        broker_note += f"; no anonymous clients, device passwords in {where}"
    sample = ""
    if seeded is not None:
        sample = (
            f"  certificate {public_base(settings)}/c/{seeded.certificate_code}\n"
            f"  label PDF   {base}/labels/{seeded.certificate_number}.pdf\n"
        )
    sys.stderr.write(
        f"""
  dashboard   {base}/   (login: {username} / {password})
  market      {base}/m/m-001/board
  kitchen     {base}/sites/k-001
{sample}  web app     {base}/healthz  {base}/openapi.json
  status      {base}/api/v1/sites/m-001/status
  MQTT broker {mqtt_url} ({broker_note})
  GB/T 28181  sip:{env["FANGXIN_SIP_ID"]}@127.0.0.1:{sip_port} (udp, tcp)
  admin key   {admin_key}
  data dir    {settings.data_dir.resolve()}

  try:  mosquitto_pub -h {address.host} -p {address.port} {login}-q 1 -t {topic} \\
          -m '{example}'
  stop: Ctrl-C
"""
    )
    while not stop.is_set():
        if any(child.poll() is not None for child in children):
            _LOGGER.error("A demo process exited; stopping the demo")
            stop.set()
        stop.wait(0.5)
    fleet.join(10)
    camera_fleet.join(10)
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 20
    for child in children:
        try:
            child.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
    if broker is not None:
        broker.stop()
    _LOGGER.info("demo stopped")
    return 0
