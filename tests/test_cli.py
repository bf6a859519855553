"""The `fangxin` command: registry and keys, against a migrated database."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from sqlalchemy.orm import Session, sessionmaker

from fangxin.cli import main
from fangxin.devices.credentials import verify_password
from fangxin.devices.models import Device, Site
from fangxin.service.auth import authenticate


@pytest.fixture
def runner(db_url: str, tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("FANGXIN_DATABASE_URL", db_url)
    monkeypatch.setenv("FANGXIN_DATA_DIR", str(tmp_path))
    return CliRunner()


def test_sites_devices_keys(runner: CliRunner, sessions: sessionmaker[Session]) -> None:
    out = runner.invoke(
        main,
        [
            "sites",
            "add",
            "k-001",
            "--kind",
            "kitchen",
            "--district",
            "新华区",
            "--name",
            "一中食堂",
        ],
    )
    assert out.exit_code == 0, out.output
    out = runner.invoke(main, ["devices", "add", "cam-1", "--site", "k-001", "--kind", "camera"])
    assert out.exit_code == 0, out.output
    password = out.output.split("mqtt password: ")[1].split()[0]
    with sessions() as session:
        device = session.get(Device, "cam-1")
        assert device is not None
        assert device.credential_hash is not None
        assert device.credential_hash.startswith("$7$")
        assert verify_password(password, device.credential_hash)
        assert password not in device.credential_hash
    out = runner.invoke(main, ["keys", "create", "--role", "lab", "--site", "k-001"])
    assert out.exit_code == 0, out.output
    with sessions() as session:
        principal = authenticate(session, out.output.strip())
    assert principal is not None
    assert (principal.role, principal.site_id) == ("lab", "k-001")
    listed = runner.invoke(main, ["devices", "list"])
    assert "cam-1\tk-001\tcamera\toffline" in listed.output


def test_cli_errors_are_clear(runner: CliRunner) -> None:
    out = runner.invoke(main, ["devices", "add", "cam-1", "--site", "nowhere", "--kind", "camera"])
    assert out.exit_code == 1
    assert "site nowhere is not registered" in out.output
    out = runner.invoke(main, ["keys", "create", "--role", "lab"])
    assert "a lab key must be scoped to a site" in out.output


def test_sites_import_reports_bad_rows(
    runner: CliRunner, sessions: sessionmaker[Session], tmp_path: object
) -> None:
    from pathlib import Path

    csv_path = Path(str(tmp_path)) / "sites.csv"
    csv_path.write_text(
        "id,kind,district,name,category\n"
        "m-1,market,新华区,一号市场,\n"
        "m-2,mall,新华区,二号,\n"
        "k-1,kitchen,郏县,食堂,学校食堂\n"
        "m-1,market,新华区,重复,\n",
        encoding="utf-8",
    )
    out = runner.invoke(main, ["sites", "import", str(csv_path)])
    assert out.exit_code == 0, out.output
    assert "2 sites imported, 2 rows refused" in out.output
    assert "line 3:" in out.output
    assert "line 5: site m-1 is already registered" in out.output
    with sessions() as session:
        assert session.get(Site, "k-1") is not None


def test_unmigrated_database_refused(tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FANGXIN_DATABASE_URL", f"sqlite:///{tmp_path}/empty.db")
    out = CliRunner().invoke(main, ["sites", "list"])
    assert out.exit_code == 1
    assert "is empty, migrations head is" in out.output
    assert "run `fangxin db upgrade`" in out.output
    out = CliRunner().invoke(main, ["db", "upgrade"])
    assert out.exit_code == 0
    assert CliRunner().invoke(main, ["sites", "list"]).exit_code == 0
