"""Ingestion throughput: a raw paho counter vs `fangxin ingest` on SQLite, PostgreSQL, and shared.

Each scenario gets its own private mosquitto (the deployment's queue settings), a persistent
session created first, then a backlog of N QoS 1 messages published to it; the consumer then
drains the backlog. Rates are N / (time of the last stored message - time of the first received).

    ./run bench ingest [--messages 100000] [--pg postgresql+psycopg://postgres@127.0.0.1/fangxin_bench]
                       [--scenarios abcd]

The PostgreSQL database named by --pg is dropped and recreated. `--messages 1000000 --scenarios ab`
measures the ingester's peak RSS through a 1,000,000-message drain (issue 17: under 150 MB);
`--scenarios b` leaves the baseline out when only the memory figure is wanted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url

from fangxin.config import Settings
from fangxin.contract.topics import SUBSCRIPTION, shared_subscription
from fangxin.db import make_engine, make_session_factory, upgrade, utcnow
from fangxin.devices import registry
from fangxin.devices.schemas import DeviceIn, SiteIn
from fangxin.sim.broker import RunningBroker, free_port, start_broker
from fangxin.trace.results.models import RapidTestResult

SITES, DEVICES_PER_SITE = 10, 5
# The counter and the sessions announce the ingester's own Receive Maximum: the same window.
RECEIVE_MAXIMUM = Settings().ingest_max_inflight


@dataclass
class Outcome:
    """One scenario's figures."""

    name: str
    messages: int
    seconds: float
    peak_rss_mb: float

    @property
    def rate(self) -> float:
        """Return messages per second."""
        return self.messages / self.seconds


def connect_props(expiry: int = 3600) -> Properties:
    """Return MQTT 5 CONNECT properties of a persistent session like the ingester's."""
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = expiry
    props.ReceiveMaximum = RECEIVE_MAXIMUM
    return props


def prepare_session(broker: RunningBroker, client_id: str, subscription: str) -> None:
    """Create a persistent session holding the subscription, so the broker queues the backlog."""
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=client_id, protocol=MQTTProtocolVersion.MQTTv5
    )
    client.connect(broker.host, broker.port, clean_start=False, properties=connect_props())
    client.loop_start()
    client.subscribe(subscription, qos=1)[1]
    time.sleep(0.3)
    client.disconnect()
    client.loop_stop()


def _value(i: int) -> float:
    # about 2 % positive and 2 % suspect, as markets see; each positive opens a follow-up
    if i % 50 == 0:
        return 62.5
    if i % 50 == 1:
        return 45.0
    return float(i % 37)


def payloads(n: int) -> Iterator[tuple[str, bytes]]:
    """Yield n messages: nine results to one heartbeat, spread over the fleet."""
    now = dt.datetime.now(dt.timezone(dt.timedelta(hours=8)))
    for i in range(n):
        site = f"bm-{i % SITES:02d}"
        device = f"{site}-d{(i // SITES) % DEVICES_PER_SITE}"
        ts = (now - dt.timedelta(milliseconds=n - i)).isoformat(timespec="milliseconds")
        if i % 10 == 9:
            body: dict[str, object] = {"ts": ts, "interval_s": 60, "fps": 25, "temp_c": 40.5}
            yield f"fangxin/v1/{site}/{device}/status", json.dumps(body).encode()
        else:
            body = {
                "id": f"r-{i:07d}",
                "ts": ts,
                "item": "pesticide-ache",
                "value": _value(i),
                "unit": "%",
                "sample": {"name": "菠菜", "category": "蔬菜", "stall": f"A-{i % 40:02d}"},
                "tester": "张三",
                "reagent_lot": "R2411",
            }
            yield (
                f"fangxin/v1/{site}/{device}/result",
                json.dumps(body, ensure_ascii=False).encode(),
            )


def publish_backlog(broker: RunningBroker, messages: Iterable[tuple[str, bytes]]) -> float:
    """Publish all messages at QoS 1; return the publish rate."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-pub")
    client.max_inflight_messages_set(1000)
    client.connect(broker.host, broker.port)
    client.loop_start()
    start = time.monotonic()
    infos = []
    count = 0
    for count, (topic, body) in enumerate(messages, start=1):
        infos.append(client.publish(topic, body, qos=1))
        if count % 5000 == 0:  # keep paho's own queue short
            infos[-1000].wait_for_publish(60)
            del infos[:-1000]
    for info in infos:
        info.wait_for_publish(120)
    elapsed = time.monotonic() - start
    client.disconnect()
    client.loop_stop()
    return count / elapsed


def memory_mb(pid: int | str = "self") -> dict[str, float]:
    """Return a process's resident set now (VmRSS) and at its peak (VmHWM), in MB."""
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    fields = dict(line.split(":", 1) for line in lines if ":" in line)
    return {
        k: int(fields[k].split()[0]) / 1024 if k in fields else float("nan")
        for k in ("VmRSS", "VmHWM")
    }


def peak_rss_mb(pid: int | str) -> float:
    """Return a process's peak resident set (VmHWM) in MB."""
    return memory_mb(pid)["VmHWM"]


COUNTER = r"""
import sys, time
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from bench.ingest import connect_props, peak_rss_mb
host, port, n, cid = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
state = {"n": 0, "first": None, "last": None}
def on_message(c, u, m):
    if state["first"] is None:
        state["first"] = time.monotonic()
    state["n"] += 1
    if state["n"] >= n:
        state["last"] = time.monotonic()
        c.disconnect()
c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=cid, protocol=MQTTProtocolVersion.MQTTv5)
c.on_message = on_message
c.connect(host, port, clean_start=False, properties=connect_props())
c.loop_forever()
print(state["last"] - state["first"], peak_rss_mb("self"))
"""


def run_counter(n: int, data: Path, messages: Iterable[tuple[str, bytes]]) -> Outcome:
    """Scenario (a): a raw paho subscriber that only counts."""
    broker = start_broker(data / "a", free_port())
    try:
        prepare_session(broker, "bench-counter", SUBSCRIPTION)
        publish_backlog(broker, messages)
        out = subprocess.run(
            [sys.executable, "-c", COUNTER, broker.host, str(broker.port), str(n), "bench-counter"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).parent.parent,
            timeout=600,
        ).stdout.split()
        return Outcome("(a) raw paho counter", n, float(out[0]), float(out[1]))
    finally:
        broker.stop()


def recreate_database(url: str) -> None:
    """Drop the PostgreSQL database at url if it exists and create it empty (SQLite: nothing)."""
    if not url.startswith("postgresql"):
        return
    parsed = make_url(url)
    admin = make_engine(
        parsed.set(database="postgres").render_as_string(hide_password=False),
        isolation_level="AUTOCOMMIT",
    )
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{parsed.database}"'))
    admin.dispose()


def fresh_database(url: str) -> str:
    """Migrate an empty database at url (PostgreSQL: recreated) and register the fleet."""
    recreate_database(url)
    engine = make_engine(url)
    upgrade(engine)
    with make_session_factory(engine)() as session:
        for s in range(SITES):
            site = f"bm-{s:02d}"
            registry.add_site(session, SiteIn(id=site, kind="market", district="新华区", name=site))
            for d in range(DEVICES_PER_SITE):
                registry.add_device(
                    session, DeviceIn(id=f"{site}-d{d}", site=site, kind="rapid_test"), utcnow()
                )
        session.commit()
    engine.dispose()
    return url


def run_ingesters(
    name: str, n: int, data: Path, messages: Iterable[tuple[str, bytes]], db_url: str, members: int
) -> Outcome:
    """Scenarios (b)-(d): `fangxin ingest` processes (members > 1: one shared subscription)."""
    fresh_database(db_url)
    broker = start_broker(data / name[:3].strip("()"), free_port())
    group = "bench" if members > 1 else None
    ids = [f"bench-ingest-{i}" for i in range(members)]
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for cid in ids:
            prepare_session(broker, cid, shared_subscription(group))
        publish_backlog(broker, messages)
        env = {
            **os.environ,
            "FANGXIN_DATABASE_URL": db_url,
            "FANGXIN_MQTT_URL": broker.url,
            "FANGXIN_MQTT_PROTOCOL": "5",
        }
        log = (data / f"{ids[0]}-{members}.log").open("ab")
        for cid in ids:
            cmd = [
                sys.executable,
                "-m",
                "fangxin.cli",
                "--log-level",
                "WARNING",
                "ingest",
                "--client-id",
                cid,
            ]
            if group:
                cmd += ["--shared", group]
            procs.append(
                subprocess.Popen(
                    cmd, env={**env, "FANGXIN_INGEST_CLIENT_ID": cid}, stdout=log, stderr=log
                )
            )
        engine = make_engine(db_url)
        results = n - n // 10
        deadline = time.monotonic() + 900
        stored = 0
        with engine.connect() as conn:
            while time.monotonic() < deadline:
                # max(id) is one index probe where a count(*) every 0.1 s scans the growing
                # table beside the ingester it times. Ids only ever exceed the count (a
                # deduplicated redelivery spends one), so max(id) gates the exact count.
                if (conn.scalar(select(func.max(RapidTestResult.id))) or 0) >= results:
                    stored = conn.scalar(select(func.count()).select_from(RapidTestResult)) or 0
                conn.rollback()
                if stored >= results:
                    break
                time.sleep(0.1)
            done = utcnow()
            first = conn.scalar(select(func.min(RapidTestResult.received_at)))
        engine.dispose()
        if first is None or stored < results:
            raise RuntimeError(f"{name}: only {stored} of {results} results stored")
        rss = max(peak_rss_mb(p.pid) for p in procs)
        return Outcome(name, n, (done - first).total_seconds(), rss)
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.wait(60)
        broker.stop()


def main() -> None:
    """Run the scenarios and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument(
        "--pg",
        default=os.environ.get(
            "FANGXIN_BENCH_DATABASE_URL",
            "postgresql+psycopg://postgres@127.0.0.1:5432/fangxin_bench",
        ),
    )
    parser.add_argument("--scenarios", default="abcd", help="which of a, b, c, d to run")
    args = parser.parse_args()
    n = args.messages
    outcomes: list[Outcome] = []
    with tempfile.TemporaryDirectory(prefix="fangxin-bench-") as tmp:
        data = Path(tmp)
        if "a" in args.scenarios:  # leave it out only to measure memory, not speed
            outcomes.append(run_counter(n, data, payloads(n)))
        if "b" in args.scenarios:
            outcomes.append(
                run_ingesters(
                    "(b) fangxin ingest, SQLite", n, data, payloads(n), f"sqlite:///{data}/b.db", 1
                )
            )
        try:
            if "c" in args.scenarios:
                outcomes.append(
                    run_ingesters(
                        "(c) fangxin ingest, PostgreSQL", n, data, payloads(n), args.pg, 1
                    )
                )
            if "d" in args.scenarios:
                outcomes.append(
                    run_ingesters(
                        "(d) 2 ingesters, shared sub, PostgreSQL", n, data, payloads(n), args.pg, 2
                    )
                )
        except Exception as exc:  # noqa: BLE001 - a missing PostgreSQL skips those rows, loudly
            print(f"PostgreSQL scenarios not run: {exc}")
    base = outcomes[0].rate if outcomes[0].name.startswith("(a)") else float("nan")
    by_name = {o.name[:3]: o for o in outcomes}
    mix = "90 % results (2 % of them positive), 10 % heartbeats"
    print(f"\n{n} QoS 1 messages: {mix}; {os.cpu_count()} cores")
    print(f"{'scenario':<42}{'msg/s':>10}{'× (a)':>8}{'peak RSS MB':>13}")
    for o in outcomes:
        print(f"{o.name:<42}{o.rate:>10.0f}{o.rate / base:>8.2f}{o.peak_rss_mb:>13.1f}")
    for o in outcomes[1:] if not math.isnan(base) else []:
        print(f"ratio {o.name[:3]} / (a) = {o.rate / base:.2f}   (target ≥ 0.6)")
    if "(d)" in by_name and "(c)" in by_name:
        print(f"ratio (d) / (c) = {by_name['(d)'].rate / by_name['(c)'].rate:.2f}")


if __name__ == "__main__":
    main()
