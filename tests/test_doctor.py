"""`fangxin doctor`: every check passes against real services, and each failure says what to fix."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from fangxin.cli import main
from fangxin.sim.broker import free_port
from tests.influx_double import InfluxDouble


@pytest.fixture
def double() -> Iterator[InfluxDouble]:
    with InfluxDouble() as server:
        yield server


@pytest.fixture
def env(db_url: str, tmp_path: Path, broker_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FANGXIN_DATABASE_URL", db_url)
    monkeypatch.setenv("FANGXIN_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("FANGXIN_MQTT_URL", broker_url)
    for name in ("URL", "TOKEN", "ORG", "BUCKET"):
        monkeypatch.delenv(f"FANGXIN_INFLUX_{name}", raising=False)


def lines(out: Result) -> dict[str, str]:
    found = {}
    for line in out.output.splitlines():
        state, _, rest = line.partition(" ")
        name, _, detail = rest.strip().partition(": ")
        found[name] = f"{state} {detail}"
    return found


def use_influx(monkeypatch: pytest.MonkeyPatch, double: InfluxDouble) -> None:
    monkeypatch.setenv("FANGXIN_INFLUX_URL", double.url)
    monkeypatch.setenv("FANGXIN_INFLUX_TOKEN", double.token)
    monkeypatch.setenv("FANGXIN_INFLUX_ORG", double.org)
    monkeypatch.setenv("FANGXIN_INFLUX_BUCKET", double.bucket)


@pytest.mark.usefixtures("env")
def test_all_checks_pass(monkeypatch: pytest.MonkeyPatch, double: InfluxDouble) -> None:
    use_influx(monkeypatch, double)
    out = CliRunner().invoke(main, ["doctor"])
    assert out.exit_code == 0, out.output
    found = lines(out)
    assert list(found) == ["settings", "database", "broker", "influxdb", "signing key"]
    assert all(v.startswith("ok ") for v in found.values()), out.output
    assert "fangxin/v1/+/+/+ granted" in found["broker"]
    assert double.points() == []  # the write check stores nothing
    assert [r.status for r in double.requests] == [400]  # empty body, past token/org/bucket


@pytest.mark.usefixtures("env")
def test_influx_unauthorised_fails(monkeypatch: pytest.MonkeyPatch, double: InfluxDouble) -> None:
    use_influx(monkeypatch, double)
    double.set_mode("401")
    out = CliRunner().invoke(main, ["doctor"])
    assert out.exit_code == 1, out.output
    found = lines(out)
    assert found["influxdb"].startswith("FAIL ")
    assert "answered 401: check FANGXIN_INFLUX_TOKEN" in found["influxdb"]
    assert found["broker"].startswith("ok ")


@pytest.mark.usefixtures("env")
def test_influx_not_configured_is_ok() -> None:
    out = CliRunner().invoke(main, ["doctor"])
    assert out.exit_code == 0, out.output
    assert lines(out)["influxdb"] == "ok not configured: time series go to the SQL database"


@pytest.mark.usefixtures("env")
def test_wrong_broker_url_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FANGXIN_MQTT_URL", f"mqtt://127.0.0.1:{free_port()}")
    out = CliRunner().invoke(main, ["doctor"])
    assert out.exit_code == 1, out.output
    found = lines(out)
    assert found["broker"].startswith("FAIL cannot reach mqtt://127.0.0.1:")
    assert "check FANGXIN_MQTT_URL" in found["broker"]
    assert found["database"].startswith("ok ")


@pytest.mark.usefixtures("env")
def test_unmigrated_sqlite_fails(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FANGXIN_DATABASE_URL", f"sqlite:///{tmp_path}/empty.db")
    out = CliRunner().invoke(main, ["doctor"])
    assert out.exit_code == 1, out.output
    found = lines(out)
    assert found["database"].startswith("FAIL database sqlite:///")
    assert "is empty" in found["database"]
    assert "run `fangxin db upgrade`" in found["database"]
    assert found["settings"].startswith("ok ")
    assert found["broker"].startswith("ok ")


@pytest.mark.usefixtures("env")
def test_production_without_secrets_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FANGXIN_ENV", "production")
    out = CliRunner().invoke(main, ["doctor"])
    assert out.exit_code == 1, out.output
    found = lines(out)
    assert found["settings"].startswith("FAIL production mode needs FANGXIN_SECRET_KEY")
    assert found["signing key"].startswith("FAIL ")
