"""The flaky camera simulator, and LWT through a real broker into connectivity events."""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter
from dataclasses import replace
from functools import partial

import pytest
from click.testing import CliRunner
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from fangxin.cli import main
from fangxin.config import Settings
from fangxin.contract.topics import topic_for
from fangxin.devices.models import ConnectivityEvent, IngesterRun
from fangxin.ingest.mqtt_url import BrokerAddress
from fangxin.ingest.runner import build_ingester, start_watchdog
from fangxin.sim.camera_sim import Action, Camera, CameraFleet, Flakiness
from fangxin.sim.device_clients import device_client, drop_uncleanly, say_offline
from tests.conftest import unique
from tests.devices_helpers import kitchen, status_body
from tests.helpers import wait_until

NOW = dt.datetime(2026, 11, 2, tzinfo=dt.UTC)


def play(fleet: CameraFleet, seconds: float, step: float = 0.5) -> list[tuple[float, Action]]:
    out, t = [], 0.0
    while t < seconds:
        out += [(t, a) for a in fleet.due(t, NOW)]
        t += step
    return out


def cameras(sites: int, per_site: int) -> list[Camera]:
    return [Camera(f"k-{s}", f"cam-{s}-{n}", 60) for s in range(sites) for n in range(per_site)]


def test_quiet_fleet_heartbeats_on_time() -> None:
    actions = play(CameraFleet(cameras(1, 2)), 600)
    kinds = Counter(a.kind for _, a in actions)
    assert kinds == {"connect": 2, "publish": 2 * 10}


def test_power_loss_drops_a_whole_site_at_once() -> None:
    fleet = CameraFleet(cameras(2, 3), Flakiness(power_losses_per_hour=2, power_mean_s=300), seed=3)
    actions = play(fleet, 3 * 3600)
    drops = [(t, a.site_id) for t, a in actions if a.kind.startswith("disconnect")]
    assert drops
    assert all(a.kind == "disconnect_unclean" for _, a in actions if a.kind.startswith("disc"))
    by_time = Counter(drops)
    assert set(by_time.values()) == {3}  # every camera of the site, at the same instant


def test_clean_and_unclean_disconnects() -> None:
    clean = CameraFleet(cameras(1, 4), Flakiness(disconnects_per_hour=4, unclean_share=0.0))
    kinds = Counter(a.kind for _, a in play(clean, 3600))
    assert kinds["disconnect_clean"] > 0
    assert kinds["disconnect_unclean"] == 0
    unclean = CameraFleet(cameras(1, 4), Flakiness(disconnects_per_hour=4, unclean_share=1.0))
    kinds = Counter(a.kind for _, a in play(unclean, 3600))
    assert kinds["disconnect_unclean"] > 0
    assert kinds["disconnect_clean"] == 0


def test_flapping_reconnects_quickly_several_times() -> None:
    fleet = CameraFleet(cameras(1, 1), Flakiness(flaps_per_hour=1, flap_cycles=4, flap_down_s=3))
    actions = play(fleet, 4 * 3600)
    drops = [t for t, a in actions if a.kind == "disconnect_unclean"]
    connects = [t for t, a in actions if a.kind == "connect"]
    assert len(drops) >= 4
    first = drops[:4]
    assert first[-1] - first[0] < 4 * 6  # four quick cycles, not four separate faults
    assert all(any(d < c < d + 4 for c in connects) for d in first)


def test_silent_outage_stops_heartbeats_without_disconnecting() -> None:
    fleet = CameraFleet(cameras(1, 1), Flakiness(outages_per_hour=2, outage_mean_s=900), seed=2)
    actions = play(fleet, 2 * 3600)
    assert not any(a.kind.startswith("disconnect") for _, a in actions)
    beats = [t for t, a in actions if a.kind == "publish"]
    assert max(b - a for a, b in zip(beats, beats[1:], strict=False)) > 180  # an outage


def test_lwt_and_clean_offline_through_mosquitto(
    settings: Settings, sessions: sessionmaker[Session], broker_url: str
) -> None:
    site, cam_a, cam_b = unique("k"), unique("cam"), unique("cam")
    kitchen(sessions, site, [cam_a, cam_b])
    ingester = build_ingester(replace(settings, mqtt_url=broker_url, session_expiry_s=120))
    ingester.start()
    watchdog = start_watchdog(ingester, tick_s=0.2)
    thread = threading.Thread(target=ingester.run, daemon=True)
    thread.start()
    address = BrokerAddress.parse(broker_url)
    try:
        clients = {d: device_client(address, site, d) for d in (cam_a, cam_b)}
        for device, client in clients.items():
            client.publish(
                topic_for(site, device, "status"), status_body(NOW), qos=1
            ).wait_for_publish(5)

        def causes(device: str) -> list[tuple[str, str]]:
            with sessions() as session:
                rows = session.execute(
                    select(ConnectivityEvent.state, ConnectivityEvent.cause)
                    .where(ConnectivityEvent.device_id == device)
                    .order_by(ConnectivityEvent.at_s)
                ).all()
            return [(s, c) for s, c in rows]

        def last_is(device: str, event: tuple[str, str]) -> bool:
            return causes(device)[-1:] == [event]

        for device in (cam_a, cam_b):
            assert wait_until(partial(last_is, device, ("online", "message")))
        drop_uncleanly(clients[cam_a])  # the broker publishes the will at once
        say_offline(clients[cam_b], site, cam_b)  # a clean goodbye says offline itself
        for device in (cam_a, cam_b):
            assert wait_until(partial(last_is, device, ("offline", "lwt")))
    finally:
        ingester.stop()
        thread.join(30)
        watchdog.stop()
    with sessions() as session:
        run = session.scalars(select(IngesterRun)).one()
    assert run.ended_at is not None
    assert run.ended_at >= run.started_at


def test_simulate_cameras_command(
    db_url: str,
    sessions: sessionmaker[Session],
    broker_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    kitchen(sessions, unique("k"), [unique("cam"), unique("cam")])
    monkeypatch.setenv("FANGXIN_DATABASE_URL", db_url)
    monkeypatch.setenv("FANGXIN_MQTT_URL", broker_url)
    out = CliRunner().invoke(
        main,
        [
            "simulate",
            "cameras",
            "--duration",
            "2",
            "--interval",
            "1",
            "--disconnects",
            "3600",
        ],
    )
    assert out.exit_code == 0, out.output
    assert "simulating 2 cameras" in out.output
    assert int(out.output.split("published ")[1].split()[0]) > 0
    help_ = CliRunner().invoke(main, ["simulate", "--help"])
    assert "cameras" in help_.output
    assert "--result-every" in help_.output
