"""Dashboard page cost: 1,000 sites and 50,000 devices, server time p50/p99 per page.

Seeds a migrated SQLite file (or PostgreSQL with --pg) with the fleet, a day of rapid-test
results and a week of connectivity events, then times the overview, site and KPI pages and
GET /api/v1/sites/{id}/status through the Flask test client. The first overview and KPI
request (cold: the fleet figures are computed, then cached for a minute) is printed apart.
The baseline is /healthz measured in the same run.

    .venv/bin/python -m bench.pages [--sites 1000] [--devices 50000] [--n 30] [--pg URL]
        [--paths /sites/s-0001,...]

CPU is the process's CPU time per request (p50), steadier than wall time on a loaded host.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import statistics
import tempfile
import time
from pathlib import Path

from sqlalchemy import Engine, insert, text

from bench.ingest import recreate_database
from fangxin.config import Settings
from fangxin.db import make_engine, make_session_factory, upgrade, utcnow
from fangxin.devices.models import ConnectivityEvent, Device, IngesterRun, Site
from fangxin.service.app import create_app
from fangxin.service.users import add_user
from fangxin.trace.plan import camera_days
from fangxin.trace.results.models import RapidTestResult

DISTRICTS = (
    "新华区",
    "卫东区",
    "湛河区",
    "石龙区",
    "郏县",
    "宝丰县",
    "叶县",
    "鲁山县",
    "舞钢市",
    "汝州市",
)
PATHS = (
    "/",
    "/charts/uptime.svg",
    "/sites/s-0000",
    "/sites/s-0001",
    "/kpi",
    "/api/v1/sites/s-0000/status",
    "/m/s-0000/board",
)
CATEGORIES = ("学校食堂", "中央厨房", "集体用餐配送单位", "大型餐饮", "小餐饮")


def seed(engine: Engine, sites: int, devices: int) -> None:
    """Insert the fleet, today's results, a week of offline periods and the ingester's run."""
    rnd = random.Random(6)
    now = utcnow()
    created = now - dt.timedelta(days=40)
    site_rows = []
    for i in range(sites):
        market = i % 4 == 0
        site_rows.append(
            {
                "id": f"s-{i:04d}",
                "kind": "market" if market else "kitchen",
                "district": DISTRICTS[i % len(DISTRICTS)],
                "name": f"站点{i}",
                "category": None if market else CATEGORIES[i % len(CATEGORIES)],
                "licence_no": None if market else f"JY{i:012d}",
                "created_at": created,
                "opens": "06:00",
                "closes": "22:00",
            }
        )
    device_rows, event_rows = [], []
    for j in range(devices):
        site = site_rows[j % sites]
        device_id = f"d-{j:05d}"
        online = rnd.random() < 0.9
        device_rows.append(
            {
                "id": device_id,
                "site_id": site["id"],
                "kind": "rapid_test" if site["kind"] == "market" and j % 3 == 0 else "camera",
                "interval_s": 60,
                "active": True,
                "created_at": created,
                "conn_state": "online" if online else "offline",
                "conn_since": now - dt.timedelta(hours=3),
                "deadline": now + dt.timedelta(minutes=3) if online else None,
                "last_seen_at": now - dt.timedelta(seconds=30),
            }
        )
        for _ in range(3):
            start = now - dt.timedelta(days=rnd.uniform(0, 7))
            end = start + dt.timedelta(minutes=rnd.uniform(5, 120))
            event_rows.append(
                {
                    "device_id": device_id,
                    "state": "offline",
                    "at": start,
                    "until": end,
                    "at_s": start.timestamp(),
                    "until_s": end.timestamp(),
                    "cause": "timeout",
                    "recorded_at": start,
                }
            )
    result_rows = []
    markets = [s for s in site_rows if s["kind"] == "market"]
    for n in range(20 * len(markets)):
        site = markets[n % len(markets)]
        ts = now - dt.timedelta(minutes=rnd.uniform(0, 600))
        value = rnd.uniform(0, 70)
        result_rows.append(
            {
                "device_id": f"d-{site_rows.index(site):05d}",
                "site_id": site["id"],
                "result_id": f"r-{n}",
                "ts": ts,
                "received_at": ts,
                "item_code": "pesticide-ache",
                "value": value,
                "unit": "%",
                "sample_name": "菠菜",
                "verdict": "positive" if value >= 50 else "negative",
                "verdict_mismatch": False,
                "source": "mqtt",
                "false_positive_risk": False,
            }
        )
    with engine.begin() as conn:
        conn.execute(insert(Site), site_rows)
        conn.execute(insert(Device), device_rows)
        for i in range(0, len(event_rows), 20000):
            conn.execute(insert(ConnectivityEvent), event_rows[i : i + 20000])
        conn.execute(insert(RapidTestResult), result_rows)
        # The MQTT ingester observed the whole time (open run, alive now): without a run every
        # second would be unobserved, and the kitchens' online figures all "no data".
        conn.execute(
            insert(IngesterRun),
            [{"client_id": "bench", "started_at": created, "last_alive_at": now}],
        )
        # Planner statistics, as a live database has them (PostgreSQL's autovacuum analyzes
        # after bulk inserts; without them its plans are nested loops over 150,000 events).
        conn.execute(text("ANALYZE"))
    sessions = make_session_factory(engine)
    with sessions.begin() as session:
        add_user(session, "bench", "bench-password", "admin")
    # The settled days' outages, stored as the ingester's tick keeps them, then statistics of
    # their 350,000 rows as autovacuum would gather them.
    camera_days.refresh(sessions, utcnow(), Settings().timezone)
    analyze(engine)


def analyze(engine: Engine) -> None:
    """Give the planner statistics (and PostgreSQL its visibility map), as autovacuum does."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE" if engine.dialect.name == "postgresql" else "ANALYZE"))


def timed(client: object, path: str, n: int) -> tuple[float, float, float, float]:
    """Return (first, p50, p99, CPU p50) server time in ms of n GETs after the first."""
    get = client.get  # type: ignore[attr-defined]

    def one() -> tuple[float, float]:
        t0, c0 = time.perf_counter(), time.process_time()
        response = get(path)
        ms = (time.perf_counter() - t0) * 1000
        cpu = (time.process_time() - c0) * 1000
        assert response.status_code == 200, (path, response.status_code)
        return ms, cpu

    first, _ = one()
    runs = [one() for _ in range(n)]
    samples = sorted(ms for ms, _ in runs)
    p99 = samples[min(len(samples) - 1, int(len(samples) * 0.99))]
    return first, statistics.median(samples), p99, statistics.median(c for _, c in runs)


def main() -> None:
    """Seed, then time each page."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--sites", type=int, default=1000)
    parser.add_argument("--devices", type=int, default=50000)
    parser.add_argument("--n", type=int, default=30)
    parser.add_argument("--pg", default=None)
    parser.add_argument("--paths", default=None, help="comma-separated paths (default: all)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.pg or f"sqlite:///{Path(tmp) / 'bench.db'}"
        recreate_database(url)
        engine = make_engine(url)
        upgrade(engine)
        t0 = time.perf_counter()
        seed(engine, args.sites, args.devices)
        print(
            f"{engine.dialect.name}: seeded {args.sites} sites, {args.devices} devices "
            f"in {time.perf_counter() - t0:.1f} s"
        )
        app = create_app(
            Settings(data_dir=Path(tmp), database_url=url, ratelimit_enabled=False), engine
        )
        client = app.test_client()
        page = client.get("/login").get_data(as_text=True)
        token = page.split('name="csrf_token" value="')[1].split('"')[0]
        client.post(
            "/login", data={"username": "bench", "password": "bench-password", "csrf_token": token}
        )
        _, base50, _, _ = timed(client, "/healthz", args.n)
        print(f"{'path':34} {'first':>9} {'p50':>9} {'p99':>9} {'CPU p50':>9} {'p50/base':>9}")
        for path in args.paths.split(",") if args.paths else PATHS:
            first, p50, p99, cpu = timed(client, path, args.n)
            print(
                f"{path:34} {first:8.1f}ms {p50:8.1f}ms {p99:8.1f}ms {cpu:8.1f}ms "
                f"{p50 / base50:9.1f}"
            )
        print(f"baseline /healthz p50 {base50:.2f} ms")
        print("targets (issue 17 item 4): status and board p99 < 20 ms at 1,000 sites")


if __name__ == "__main__":
    main()
