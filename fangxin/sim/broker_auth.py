"""The demo broker's users: each device its own password, the ingester its own (no anonymous).

The files are the ones `fangxin devices export-mosquitto` writes for a deployment (device users
bound to their site's topics, an ingester that only reads), put on the demo's one listener.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session

from fangxin.devices import mosquitto_export, registry
from fangxin.devices.credentials import new_password

INGESTER_USER = "fangxin-demo-ingest"
CREDENTIALS_FILE = "mqtt_credentials.json"


@dataclass(frozen=True, slots=True)
class DemoCredentials:
    """The demo's MQTT users and their passwords."""

    ingester_user: str
    ingester_password: str
    devices: dict[str, str]


def issue_credentials(session: Session, device_ids: list[str], now: dt.datetime) -> DemoCredentials:
    """Give each simulated device a fresh password (its hash is stored) and the ingester one."""
    passwords = {d: registry.rotate_credentials(session, d, now).mqtt_password for d in device_ids}
    return DemoCredentials(INGESTER_USER, new_password(), passwords)


def write_auth(session: Session, creds: DemoCredentials, directory: Path, data_dir: Path) -> None:
    """Write the broker's password and ACL files, and the passwords for the operator (mode 600)."""
    files = mosquitto_export.build(
        session,
        creds.ingester_user,
        mosquitto_export.ingester_hash(creds.ingester_password),
        bind_site=True,
    )
    both = mosquitto_export.MosquittoFiles(
        files.password_file + files.ingest_password_file,
        files.acl_file + "\n" + files.ingest_acl_file,
        files.devices,
    )
    mosquitto_export.write(both, directory)
    path = data_dir / CREDENTIALS_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(
            {"ingester": {creds.ingester_user: creds.ingester_password}, "devices": creds.devices},
            fh,
            indent=1,
        )
