"""Results doors: N results posted over HTTP in batches of 100 and the same N over MQTT.

One run, one machine: `fangxin serve` (gunicorn) takes the HTTP door, `fangxin ingest` with a
private mosquitto the MQTT door. Printed: results/s of each door, and the HTTP door against a
trivial JSON endpoint (/healthz) of the same app under the same server and client load.

    ./run bench results_http [--results 50000] [--pg postgresql+psycopg://...] [--clients 8]

Phases: (1) HTTP into a fresh database; (2) the same results over MQTT into that database
(every one a duplicate: dedupe across doors, the count must stay N); (3) MQTT into a fresh
database. Values: 90 % negative, 5 % suspect, 5 % positive (each positive opens a follow-up).
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from sqlalchemy import func, select

from bench.ingest import recreate_database
from fangxin.contract.topics import SUBSCRIPTION
from fangxin.db import make_engine, make_session_factory, upgrade, utcnow
from fangxin.devices import registry
from fangxin.devices.schemas import DeviceIn, SiteIn
from fangxin.service.auth import create_key
from fangxin.sim.broker import RunningBroker, free_port, start_broker, wait_for_port
from fangxin.trace.results.models import RapidTestResult

SITES, DEVICES_PER_SITE, BATCH = 10, 5, 100
CST = dt.timezone(dt.timedelta(hours=8))
ROOT = Path(__file__).parent.parent
Result = tuple[str, str, dict[str, Any]]


def make_results(n: int) -> list[Result]:
    """Return n (site, device, result) triples; each run of 100 belongs to one site."""
    now = dt.datetime.now(CST)
    out = []
    for i in range(n):
        block = i // BATCH
        site = f"bm-{block % SITES:02d}"
        device = f"{site}-d{(block // SITES) % DEVICES_PER_SITE}"
        kind = i % 20
        value = 50.0 + i % 30 if kind == 0 else 40.0 + i % 10 if kind == 1 else float(i % 400) / 10
        body = {
            "id": f"r-{i:07d}",
            "ts": (now - dt.timedelta(milliseconds=n - i)).isoformat(timespec="milliseconds"),
            "item": "pesticide-ache",
            "value": value,
            "unit": "%",
            "sample": {"name": "菠菜", "category": "蔬菜", "stall": f"A-{i % 40:02d}"},
            "tester": "张三",
            "reagent_lot": "R2411",
        }
        out.append((site, device, body))
    return out


def fresh_database(url: str) -> dict[str, str]:
    """Migrate an empty database (PostgreSQL: recreated), register the fleet; return lab keys."""
    recreate_database(url)
    engine = make_engine(url)
    upgrade(engine)
    keys = {}
    with make_session_factory(engine)() as session:
        for s in range(SITES):
            site = f"bm-{s:02d}"
            registry.add_site(session, SiteIn(id=site, kind="market", district="新华区", name=site))
            for d in range(DEVICES_PER_SITE):
                device = DeviceIn(id=f"{site}-d{d}", site=site, kind="rapid_test")
                registry.add_device(session, device, utcnow())
            keys[site] = create_key(session, "lab", site_id=site)
        session.commit()
    engine.dispose()
    return keys


def count_results(url: str) -> int:
    """Return how many results are stored."""
    engine = make_engine(url)
    with engine.connect() as conn:
        stored = conn.scalar(select(func.count()).select_from(RapidTestResult)) or 0
    engine.dispose()
    return stored


def hammer(
    port: int,
    requests: list[tuple[str, str, bytes, dict[str, str]]],
    clients: int,
    check: Callable[[int, bytes], None],
) -> float:
    """Send the requests from `clients` threads on keep-alive connections; return seconds."""
    cursor, lock, errors = iter(range(len(requests))), threading.Lock(), []

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            while True:
                with lock:
                    index = next(cursor, None)
                if index is None:
                    return
                method, path, body, headers = requests[index]
                conn.request(method, path, body=body or None, headers=headers)
                response = conn.getresponse()
                check(response.status, response.read())
        except Exception as exc:  # noqa: BLE001 - reported after the run
            errors.append(exc)
        finally:
            conn.close()

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    start = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise RuntimeError(f"{len(errors)} client errors, first: {errors[0]!r}")
    return time.monotonic() - start


def fangxin_cmd(args: argparse.Namespace) -> list[str]:
    """Return the command line of `fangxin`, optionally without the entry-check step."""
    if not args.without_entry_checks:
        return [sys.executable, "-m", "fangxin.cli"]
    launcher = (
        "import sys, fangxin.ingest.pipeline as p; p.decide_waiting_entries = lambda s, r: None; "
        "from fangxin.cli import main; sys.argv[0] = 'fangxin'; main()"
    )
    return [sys.executable, "-c", launcher]


def serve(url: str, port: int, args: argparse.Namespace, log: Path) -> subprocess.Popen[bytes]:
    """Start `fangxin serve` on the database and wait for its port."""
    env = {**os.environ, "FANGXIN_DATABASE_URL": url, "FANGXIN_DATA_DIR": str(log.parent)}
    env["FANGXIN_RATELIMIT_ENABLED"] = "false"
    cmd = [
        *fangxin_cmd(args),
        "--log-level",
        "WARNING",
        "serve",
        "--port",
        str(port),
        "--workers",
        str(args.workers),
        "--threads",
        str(args.threads),
    ]
    out = log.open("ab")
    proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=out, cwd=ROOT)
    if not wait_for_port("127.0.0.1", port, 60):
        proc.kill()
        raise RuntimeError(f"fangxin serve did not start; see {log}")
    return proc


def http_phase(
    url: str, data: Path, results: list[Result], keys: dict[str, str], args: argparse.Namespace
) -> tuple[float, float]:
    """Post the results in batches; return (results/s, /healthz requests/s)."""
    port = free_port()
    server = serve(url, port, args, data / "serve.log")
    try:
        batches = []
        for start in range(0, len(results), BATCH):
            chunk = results[start : start + BATCH]
            site = chunk[0][0]
            body = json.dumps(
                [{**r, "site": s, "device": d} for s, d, r in chunk], ensure_ascii=False
            ).encode()
            headers = {"Authorization": f"Bearer {keys[site]}", "Content-Type": "application/json"}
            batches.append(("POST", "/api/v1/results", body, headers))
        trivial: list[tuple[str, str, bytes, dict[str, str]]] = [("GET", "/healthz", b"", {})]
        trivial *= max(2000, len(batches) * 4)

        def stored_all(status: int, body: bytes) -> None:
            if status != 201 or json.loads(body)["stored"] != BATCH:
                raise RuntimeError(f"HTTP {status}: {body[:300]!r}")

        def ok(status: int, _body: bytes) -> None:
            if status != 200:
                raise RuntimeError(f"/healthz answered {status}")

        hammer(port, trivial[:200], args.clients, ok)  # warm up every worker
        healthz_s = hammer(port, trivial, args.clients, ok)
        results_s = hammer(port, batches, args.clients, stored_all)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)
    if count_results(url) != len(results):
        raise RuntimeError("HTTP phase: not every result was stored")
    return len(results) / results_s, len(trivial) / healthz_s


def connect_props() -> Properties:
    """Return MQTT 5 CONNECT properties of a persistent session like the ingester's."""
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = 3600
    props.ReceiveMaximum = 1000
    return props


def backlog(broker: RunningBroker, client_id: str, results: list[Result]) -> None:
    """Create the ingester's persistent session, then publish every result to it at QoS 1."""
    sub = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=client_id, protocol=MQTTProtocolVersion.MQTTv5
    )
    sub.connect(broker.host, broker.port, clean_start=False, properties=connect_props())
    sub.loop_start()
    sub.subscribe(SUBSCRIPTION, qos=1)
    time.sleep(0.3)
    sub.disconnect()
    sub.loop_stop()
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{client_id}-pub")
    pub.max_inflight_messages_set(1000)
    pub.connect(broker.host, broker.port)
    pub.loop_start()
    infos = []
    for i, (site, device, body) in enumerate(results, start=1):
        topic = f"fangxin/v1/{site}/{device}/result"
        infos.append(pub.publish(topic, json.dumps(body, ensure_ascii=False).encode(), qos=1))
        if i % 5000 == 0:
            infos[-1000].wait_for_publish(60)
    for info in infos:
        info.wait_for_publish(120)
    pub.disconnect()
    pub.loop_stop()


def _marker(name: str) -> Result:
    body = {
        "id": name,
        "ts": dt.datetime.now(CST).isoformat(timespec="milliseconds"),
        "item": "pesticide-ache",
        "value": 1.0,
        "unit": "%",
        "sample": {"name": "marker"},
    }
    return "bm-00", "bm-00-d0", body


def mqtt_phase(
    url: str, data: Path, results: list[Result], name: str, args: argparse.Namespace
) -> float:
    """Drain the results through `fangxin ingest`; return results/s (first to last receipt).

    On a database that holds them already, every result is a duplicate and stores nothing, so
    a new marker result before and after them (one ingester keeps the order) times the run.
    """
    before = count_results(url)
    if before:
        results = [_marker("mark-first"), *results, _marker("mark-last")]
    broker = start_broker(data / name, free_port())
    client_id = f"bench-{name}"
    proc = None
    try:
        backlog(broker, client_id, results)
        env = {
            **os.environ,
            "FANGXIN_DATABASE_URL": url,
            "FANGXIN_MQTT_URL": broker.url,
            "FANGXIN_MQTT_PROTOCOL": "5",
            "FANGXIN_INGEST_CLIENT_ID": client_id,
        }
        log = (data / f"{name}.log").open("ab")
        proc = subprocess.Popen(
            [*fangxin_cmd(args), "--log-level", "WARNING", "ingest"],
            env=env,
            stdout=log,
            stderr=log,
            cwd=ROOT,
        )
        target = before + (2 if before else len(results))
        deadline = time.monotonic() + 900
        while count_results(url) < target:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name}: ingestion did not finish")
            time.sleep(0.1)
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
        broker.stop()
    engine = make_engine(url)
    with engine.connect() as conn:
        received = RapidTestResult.received_at
        query = select(func.min(received), func.max(received))
        if before:
            query = query.where(RapidTestResult.result_id.in_(["mark-first", "mark-last"]))
        else:
            query = query.where(RapidTestResult.result_id.like("r-%"))
        first, last = conn.execute(query).one()
    engine.dispose()
    n = len(results) - (2 if before else 0)
    return n / (last - first).total_seconds()


def main() -> None:
    """Run the phases and print the figures."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--results", type=int, default=50_000)
    parser.add_argument("--pg", default=None, help="PostgreSQL URL (default: SQLite files)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--keep", default=None, help="Keep logs and SQLite files in this folder.")
    parser.add_argument(
        "--without-entry-checks",
        action="store_true",
        help="Run both doors without the entry-check step (isolates the door itself).",
    )
    args = parser.parse_args()
    results = make_results(args.results)
    with tempfile.TemporaryDirectory(prefix="fangxin-bench-results-") as tmp:
        data = Path(args.keep or tmp)
        data.mkdir(parents=True, exist_ok=True)
        url = args.pg or f"sqlite:///{data}/http.db"
        keys = fresh_database(url)
        http_rate, healthz_rate = http_phase(url, data, results, keys, args)
        dup_rate = mqtt_phase(url, data, results, "mqtt-dup", args)
        stored = count_results(url) - 2  # the two timing markers
        url2 = args.pg or f"sqlite:///{data}/mqtt.db"
        fresh_database(url2)
        mqtt_rate = mqtt_phase(url2, data, results, "mqtt", args)
    engine = "PostgreSQL" if args.pg else "SQLite"
    n = args.results
    print(
        f"\n{n} results, {engine}, {os.cpu_count()} cores; gunicorn {args.workers} workers x "
        f"{args.threads} threads, {args.clients} HTTP clients, batches of {BATCH}; entry-check "
        f"step: {'off' if args.without_entry_checks else 'on'}"
    )
    print(
        f"HTTP  POST /api/v1/results  {http_rate:>9.0f} results/s  "
        f"({http_rate / BATCH:.0f} requests/s)"
    )
    print(f"HTTP  GET /healthz          {healthz_rate:>9.0f} requests/s")
    print(
        f"      ratio (results requests/s ÷ /healthz requests/s) = "
        f"{http_rate / BATCH / healthz_rate:.3f}; results/s ÷ /healthz requests/s = "
        f"{http_rate / healthz_rate:.2f}"
    )
    print(f"MQTT  fangxin ingest, fresh  {mqtt_rate:>9.0f} results/s")
    print(
        f"MQTT  same results again     {dup_rate:>9.0f} results/s  (all duplicates of HTTP; "
        f"stored once: {stored})"
    )
    print(f"target HTTP >= 5000 results/s: {'met' if http_rate >= 5000 else 'NOT met'}")


if __name__ == "__main__":
    main()
