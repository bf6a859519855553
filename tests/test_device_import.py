"""Device import: every bad row is reported with its line, the others are imported."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from fangxin.cli import main
from fangxin.devices.credentials import verify_password
from fangxin.devices.models import Device
from tests.devices_helpers import kitchen

CSV = """id,site,kind,interval_s,channel
cam-1,k-300,camera,60,1
cam-2,k-300,camera,,2
bad id,k-300,camera,60,
cam-3,k-nowhere,camera,60,
cam-4,k-300,toaster,60,
cam-1,k-300,camera,60,
cam-5,k-300,nvr,0,
nvr-1,k-300,nvr,30,
"""
REFUSED = {
    4: "id: String should match pattern",
    5: "site k-nowhere is not registered",
    6: "kind: Input should be",
    7: "device cam-1 is already registered",
    8: "interval_s: Input should be greater than or equal to 1",
}


@pytest.fixture
def runner(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("FANGXIN_DATABASE_URL", db_url)
    monkeypatch.setenv("FANGXIN_DATA_DIR", str(tmp_path))
    return CliRunner()


def stored(sessions: sessionmaker[Session]) -> dict[str, Device]:
    with sessions() as session:
        return {d.id: d for d in session.scalars(select(Device))}


def test_cli_import_reports_each_bad_row(
    runner: CliRunner, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    kitchen(sessions, "k-300", [])
    path = tmp_path / "devices.csv"
    path.write_text(CSV, encoding="utf-8")
    out = runner.invoke(main, ["devices", "import", str(path)])
    assert out.exit_code == 0, out.output
    for line, reason in REFUSED.items():
        assert any(
            x.startswith(f"line {line} ") and reason in x for x in out.output.splitlines()
        ), (
            line,
            out.output,
        )
    assert "3 devices imported, 5 rows refused" in out.output
    devices = stored(sessions)
    assert set(devices) == {"cam-1", "cam-2", "nvr-1"}
    assert (devices["cam-1"].channel, devices["cam-2"].interval_s, devices["nvr-1"].interval_s) == (
        1,
        60,
        30,
    )
    credentials = path.with_suffix(".credentials.csv")
    assert credentials.stat().st_mode & 0o077 == 0
    rows = list(csv.DictReader(io.StringIO(credentials.read_text(encoding="utf-8"))))
    assert [r["device"] for r in rows] == ["cam-1", "cam-2", "nvr-1"]
    for row in rows:
        assert verify_password(row["mqtt_password"], devices[row["device"]].credential_hash or "")


def test_api_import(client: FlaskClient, admin_key: str, sessions: sessionmaker[Session]) -> None:
    kitchen(sessions, "k-300", [])
    response = client.post(
        "/api/v1/devices/import",
        data=("\ufeff" + CSV).encode(),
        content_type="text/csv",
        headers={"Authorization": f"Bearer {admin_key}"},
    )
    assert response.status_code == 200
    body = response.get_json()
    assert (body["imported"], body["refused"]) == (3, 5)
    assert {e["line"]: e["id"] for e in body["errors"]} == {
        4: "bad id",
        5: "cam-3",
        6: "cam-4",
        7: "cam-1",
        8: "cam-5",
    }
    for error in body["errors"]:
        assert REFUSED[error["line"]] in error["error"]
    assert [c["device"] for c in body["credentials"]] == ["cam-1", "cam-2", "nvr-1"]
    assert set(stored(sessions)) == {"cam-1", "cam-2", "nvr-1"}
    nothing = client.post(
        "/api/v1/devices/import",
        data="id,site,kind\nx,k-none,camera\n",
        content_type="text/csv",
        headers={"Authorization": f"Bearer {admin_key}"},
    )
    assert nothing.status_code == 422
    assert nothing.get_json()["errors"] == [
        {"line": 2, "id": "x", "error": "site k-none is not registered"}
    ]
    assert set(stored(sessions)) == {"cam-1", "cam-2", "nvr-1"}  # x was not stored


def test_rotate_credentials(
    client: FlaskClient, admin_key: str, sessions: sessionmaker[Session], runner: CliRunner
) -> None:
    kitchen(sessions, "k-300", ["cam-1"])
    old = stored(sessions)["cam-1"].credential_hash
    body = client.post(
        "/api/v1/devices/cam-1/credentials", headers={"Authorization": f"Bearer {admin_key}"}
    ).get_json()
    device = stored(sessions)["cam-1"]
    assert device.credential_hash != old
    assert verify_password(body["mqtt_password"], device.credential_hash or "")
    assert device.credentials_rotated_at is not None
    out = runner.invoke(main, ["devices", "rotate-credentials", "cam-1"])
    assert out.exit_code == 0, out.output
    password = out.output.split("password: ")[1].split()[0]
    assert verify_password(password, stored(sessions)["cam-1"].credential_hash or "")
    missing = runner.invoke(main, ["devices", "rotate-credentials", "cam-nope"])
    assert missing.exit_code != 0
    assert "not registered" in missing.output
