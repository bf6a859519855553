"""`fangxin doctor`: one line per check of what a deployment needs, exit 1 if any fails."""

from __future__ import annotations

import threading
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable
from typing import Any

import click
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from sqlalchemy.exc import SQLAlchemyError

from fangxin.commands.common import settings_of
from fangxin.config import ConfigError, Settings
from fangxin.contract.topics import SUBSCRIPTION
from fangxin.db import NotMigratedError, check_migrated, make_engine
from fangxin.ingest.mqtt_url import BrokerAddress
from fangxin.trace.certificates.signing import signer_from_settings

TIMEOUT_S = 5.0


class Problem(Exception):
    """A failed check, worded as what to fix."""


def check_settings(settings: Settings) -> str:
    """Check production secrets."""
    try:
        settings.check_production()
    except ConfigError as exc:
        raise Problem(f"{exc}: set them in the environment") from exc
    return "production secrets set" if settings.production else "development mode"


def check_database(settings: Settings) -> str:
    """Check the database is reachable and migrated to head."""
    engine = make_engine(settings.database_url)
    where = engine.url.render_as_string(hide_password=True)
    try:
        check_migrated(engine)
    except NotMigratedError as exc:
        raise Problem(str(exc)) from exc
    except SQLAlchemyError as exc:
        reason = str(exc).splitlines()[0]
        raise Problem(f"cannot reach {where} ({reason}): check FANGXIN_DATABASE_URL") from exc
    finally:
        engine.dispose()
    return f"{where} at migrations head"


def check_broker(settings: Settings) -> str:
    """Log in to the broker and subscribe to the ingest subscription."""
    if not settings.mqtt_url:
        raise Problem("FANGXIN_MQTT_URL is not set: the ingester has no broker")
    try:
        address = BrokerAddress.parse(settings.mqtt_url)
    except ValueError as exc:
        raise Problem(f"{exc}: fix FANGXIN_MQTT_URL") from exc
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"fangxin-doctor-{uuid.uuid4().hex[:8]}",
        protocol=MQTTProtocolVersion.MQTTv311,
    )
    if address.username:
        client.username_pw_set(address.username, address.password)
    if address.tls:
        client.tls_set()
    connected, subscribed = threading.Event(), threading.Event()
    outcome: dict[str, Any] = {}

    def on_connect(_c: mqtt.Client, _u: object, _f: object, code: Any, _p: object) -> None:
        outcome["connack"] = code
        connected.set()

    def on_subscribe(_c: mqtt.Client, _u: object, _m: int, codes: Any, _p: object) -> None:
        outcome["suback"] = list(codes)
        subscribed.set()

    client.on_connect, client.on_subscribe = on_connect, on_subscribe
    try:
        client.connect(address.host, address.port, keepalive=30)
    except OSError as exc:
        raise Problem(f"cannot reach {address.url()} ({exc}): check FANGXIN_MQTT_URL") from exc
    client.loop_start()
    try:
        if not connected.wait(TIMEOUT_S):
            raise Problem(f"no CONNACK from {address.url()} in {TIMEOUT_S:.0f} s")
        if outcome["connack"].is_failure:
            raise Problem(
                f"{address.url()} refused the login ({outcome['connack']}): "
                "check the user and password in FANGXIN_MQTT_URL"
            )
        client.subscribe(SUBSCRIPTION, qos=1)
        if not subscribed.wait(TIMEOUT_S):
            raise Problem(f"no SUBACK from {address.url()} in {TIMEOUT_S:.0f} s")
        if any(code.is_failure for code in outcome["suback"]):
            raise Problem(
                f"{address.url()} refused the subscription {SUBSCRIPTION}: "
                "grant the ingest user `topic read fangxin/v1/#` in the broker's ACL"
            )
    finally:
        client.disconnect()
        client.loop_stop()
    return f"{address.url()} login and subscription {SUBSCRIPTION} granted"


def check_influx(settings: Settings) -> str:
    """Send an empty write to InfluxDB: authorised, org and bucket found, nothing stored."""
    if not settings.influx_url:
        return "not configured: time series go to the SQL database"
    query = urllib.parse.urlencode(
        {
            "org": settings.influx_org or "",
            "bucket": settings.influx_bucket or "",
            "precision": "ns",
        }
    )
    request = urllib.request.Request(
        f"{settings.influx_url.rstrip('/')}/api/v2/write?{query}",
        data=b"",
        headers={"Authorization": f"Token {settings.influx_token or ''}"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S):
            pass
    except urllib.error.HTTPError as exc:
        # 400 "writing requires points" comes after the token, org and bucket are accepted.
        if exc.code != 400:
            hint = {401: "FANGXIN_INFLUX_TOKEN", 403: "the token's write permission"}
            fix = hint.get(exc.code, "FANGXIN_INFLUX_ORG and FANGXIN_INFLUX_BUCKET")
            raise Problem(f"{settings.influx_url} answered {exc.code}: check {fix}") from exc
    except OSError as exc:
        raise Problem(
            f"cannot reach {settings.influx_url} ({exc}): check FANGXIN_INFLUX_URL"
        ) from exc
    return f"{settings.influx_url} accepts writes to {settings.influx_bucket}"


def check_signing(settings: Settings) -> str:
    """Load the certificate signing key."""
    try:
        signer = signer_from_settings(settings)
    except (ConfigError, ValueError, OSError) as exc:
        raise Problem(f"{exc}: check FANGXIN_SIGNING_KEY") from exc
    return f"key {signer.key_id} loaded"


CHECKS: list[tuple[str, Callable[[Settings], str]]] = [
    ("settings", check_settings),
    ("database", check_database),
    ("broker", check_broker),
    ("influxdb", check_influx),
    ("signing key", check_signing),
]


def register(main: click.Group) -> None:
    """Add `doctor` to the `fangxin` command."""
    main.add_command(doctor)


@click.command()
@click.pass_context
def doctor(ctx: click.Context) -> None:
    """Check settings, database, broker, InfluxDB and signing key; exit 1 if any fails."""
    settings = settings_of(ctx)
    failed = 0
    for name, check in CHECKS:
        try:
            click.echo(f"ok    {name}: {check(settings)}")
        except Problem as exc:
            failed += 1
            click.echo(f"FAIL  {name}: {exc}")
    ctx.exit(1 if failed else 0)
