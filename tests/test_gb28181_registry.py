"""Registering GB/T 28181 devices: the 国标编码's structure, the SIP password shown once, HA1."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy.orm import Session, sessionmaker

from fangxin.cli import main
from fangxin.devices.gbcode import GbIdError, check_gb_id, ha1
from fangxin.devices.models import Device


@pytest.fixture
def runner(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("FANGXIN_DATABASE_URL", db_url)
    monkeypatch.setenv("FANGXIN_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("FANGXIN_SIP_ID", "41040000002000000001")
    return CliRunner()


@pytest.mark.parametrize(
    "code",
    [
        "4104020000132000000",  # 19 digits
        "4104020000132000000a",
        "99040200001320000001",  # no province 99
        "41040200002000000001",  # type 200 is a platform, not a device
        "41040200001990000001",
    ],
)
def test_bad_codes(code: str) -> None:
    with pytest.raises(GbIdError):
        check_gb_id(code)


def test_devices_add_with_gb_id_prints_the_sip_password_once(
    runner: CliRunner, sessions: sessionmaker[Session]
) -> None:
    args = ["sites", "add", "k-1", "--kind", "kitchen", "--district", "新华区", "--name", "食堂"]
    assert runner.invoke(main, args).exit_code == 0
    add = ["devices", "add", "nvr-1", "--site", "k-1", "--kind", "nvr"]
    out = runner.invoke(main, [*add, "--gb-id", "41040200001180000001"])
    assert out.exit_code == 0, out.output
    password = next(
        line.split()[2] for line in out.output.splitlines() if line.startswith("sip password:")
    )
    assert "sip domain: 4104000000" in out.output
    with sessions() as session:
        device = session.get(Device, "nvr-1")
        assert device is not None
        assert device.gb_id == "41040200001180000001"
        assert device.sip_ha1 == ha1("41040200001180000001", "4104000000", password)
        assert password not in (device.sip_ha1, device.credential_hash)
    again = runner.invoke(main, [*add[:2], "nvr-2", *add[3:], "--gb-id", "41040200001180000001"])
    assert again.exit_code != 0
    assert "already registered" in again.output
    bad = runner.invoke(main, [*add[:2], "nvr-3", *add[3:], "--gb-id", "41040200002000000001"])
    assert bad.exit_code != 0
    assert "type code 200" in bad.output


def test_devices_import_takes_a_gb_id_column(
    runner: CliRunner, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    args = ["sites", "add", "k-1", "--kind", "kitchen", "--district", "新华区", "--name", "食堂"]
    assert runner.invoke(main, args).exit_code == 0
    csv = tmp_path / "devices.csv"
    csv.write_text(
        "id,site,kind,gb_id\n"
        "cam-1,k-1,camera,41040200001320000001\n"
        "cam-2,k-1,camera,\n"
        "cam-3,k-1,camera,123\n",
        encoding="utf-8",
    )
    out = runner.invoke(main, ["devices", "import", str(csv)])
    assert out.exit_code == 0, out.output
    assert "2 devices imported, 1 rows refused" in out.output
    credentials = (tmp_path / "devices.credentials.csv").read_text().splitlines()
    assert credentials[0] == "device,mqtt_username,mqtt_password,sip_password"
    assert len(credentials[1].split(",")[3]) == 16
    assert credentials[2].endswith(",")
    with sessions() as session:
        device = session.get(Device, "cam-1")
        assert device is not None
        assert device.gb_id == "41040200001320000001"
