"""Scan page under the production server, against /healthz of the same app; issuance rate.

1. Issuance: certificates issued in-process as the API does (validate, number, sign, store and
   commit through IssueQueue: concurrent issuers share commits on PostgreSQL) plus the SVG QR
   of each; certificates per second.
2. Serving: `fangxin serve` (gunicorn, 2 workers x 4 threads) on a free port; keep-alive client
   threads hit /healthz, then the scan page /c/{code} (which logs each scan), for the same time
   each. Requests/s, p50 and p99 latency; the scan page's rate as a ratio to /healthz's.

    ./run bench scan [--seconds 5] [--clients 8] [--issue 500] [--issuers 1]
                     [--pg postgresql+psycopg://...]   (drops and recreates that database)
"""

from __future__ import annotations

import argparse
import http.client
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import text

from bench.ingest import recreate_database
from fangxin.db import make_engine, make_session_factory, upgrade, utcnow
from fangxin.sim.broker import free_port
from fangxin.trace.certificates import qr
from fangxin.trace.certificates.issue_queue import IssueQueue
from fangxin.trace.certificates.schemas import CertificateIn, SubjectIn
from fangxin.trace.certificates.signing import generate
from fangxin.trace.certificates.subjects import add_subject

CERT = {
    "subject": "s-bench",
    "product": "菠菜",
    "quantity": 50,
    "unit": "kg",
    "origin": "河南省平顶山市郏县",
    "basis": ["quality_control", "self_test"],
}


@dataclass
class Load:
    """One endpoint's figures."""

    path: str
    requests: int
    seconds: float
    latencies_ms: list[float]
    failed: int = 0

    @property
    def rate(self) -> float:
        """Requests per second."""
        return self.requests / self.seconds

    def pct(self, q: float) -> float:
        """Latency percentile in ms."""
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def issue_rate(url: str, count: int, issuers: int) -> tuple[float, list[str]]:
    """Issue certificates with signing and the SVG QR from issuer threads; (per second, codes)."""
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    queue = IssueQueue(generate(), "Asia/Shanghai")
    data = CertificateIn.model_validate(CERT)
    with sessions() as session:
        subject = add_subject(
            session,
            SubjectIn(
                id="s-bench",
                kind="producer",
                name="郏县绿源蔬菜合作社",
                contact="0375-1234567",
                district="郏县",
            ),
        )
        session.commit()
    codes: list[str] = []

    def issuer(n: int) -> None:
        for _ in range(n):
            with sessions() as session:
                cert = queue.issue(session, data, subject, utcnow())  # commits, as the API does
                svg = qr.svg(qr.make(f"http://localhost:8000/c/{cert.code}", 4))
                assert svg.startswith("<svg")
                codes.append(cert.code)

    threads = [threading.Thread(target=issuer, args=(count // issuers,)) for _ in range(issuers)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rate = len(codes) / (time.perf_counter() - start)
    engine.dispose()
    return rate, codes


def hammer(
    port: int,
    paths: list[str],
    clients: int,
    seconds: float,
    name: str = "",
    stop_after: int | None = None,
) -> Load:
    """Hit paths (round robin) from keep-alive client threads for a fixed time (or count)."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    failures: list[int] = []
    stop = time.perf_counter() + seconds

    def client(out: list[float], offset: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        n = offset
        while time.perf_counter() < stop and (stop_after is None or n < stop_after):
            path = paths[n % len(paths)]
            n += clients
            t0 = time.perf_counter()
            conn.request("GET", path, headers={"User-Agent": "bench"})
            response = conn.getresponse()
            response.read()
            if response.status != 200:
                failures.append(response.status)
                continue
            out.append((time.perf_counter() - t0) * 1000)
        conn.close()

    threads = [threading.Thread(target=client, args=(out, i)) for i, out in enumerate(latencies)]
    begin = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - begin
    merged = [x for out in latencies for x in out]
    return Load(name or paths[0], len(merged), elapsed, merged, len(failures))


def visit_all(port: int, paths: list[str], clients: int, rounds: int) -> None:
    """Open every path `rounds` times over keep-alive clients (both workers then know them)."""
    hammer(port, paths * rounds, clients, float("inf"), stop_after=len(paths) * rounds)


def scans_logged(url: str) -> int:
    """Return the scans the server wrote."""
    engine = make_engine(url)
    with engine.connect() as conn:
        total = conn.execute(text("SELECT COALESCE(SUM(count), 0) FROM certificate_scans")).scalar()
    engine.dispose()
    return int(total or 0)


def wait_up(port: int, proc: subprocess.Popen[bytes], timeout_s: float = 30) -> None:
    """Wait until the server answers /healthz."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("fangxin serve exited early")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("fangxin serve did not come up")


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--issue", type=int, default=500)
    parser.add_argument("--issuers", type=int, default=1, help="concurrent issuing threads")
    parser.add_argument("--pg", default=None, help="PostgreSQL URL (dropped and recreated)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fangxin-bench-") as tmp:
        url = args.pg or f"sqlite:///{Path(tmp) / 'fangxin.db'}"
        recreate_database(url)
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        rate, codes = issue_rate(url, args.issue, args.issuers)
        port = free_port()
        env = {**os.environ, "FANGXIN_DATA_DIR": tmp, "FANGXIN_DATABASE_URL": url}
        env["FANGXIN_RATELIMIT_ENABLED"] = "false"
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "fangxin.cli",
                "--log-level",
                "WARNING",
                "serve",
                "--port",
                str(port),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        hot_path, cold_paths = [f"/c/{codes[0]}"], [f"/c/{c}" for c in codes[1:]]
        try:
            wait_up(port, proc)
            warm = hammer(port, hot_path, args.clients, 1.0)
            health = hammer(port, ["/healthz"], args.clients, args.seconds)
            hot = hammer(port, hot_path, args.clients, args.seconds, "/c/{code} one label")
            cold = hammer(port, cold_paths, args.clients, args.seconds, "/c/{code} first sight")
            visit_all(port, cold_paths, args.clients, rounds=4)
            seen = hammer(port, cold_paths, args.clients, args.seconds, "/c/{code} seen before")
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
        logged = scans_logged(url)
    db = "PostgreSQL" if args.pg else "SQLite"
    print(f"database: {db}; server: gunicorn 2 workers x 4 threads; {args.clients} clients")
    print(
        f"issuance (sign + store + SVG QR, {args.issuers} issuer thread(s)): "
        f"{rate:.0f} certificates/s   (target >= 300)"
    )
    for load in (health, hot, cold, seen):
        print(
            f"{load.path[:24]:<24} {load.rate:8.0f} req/s  p50 {load.pct(0.5):6.2f} ms  "
            f"p99 {load.pct(0.99):6.2f} ms  mean {statistics.fmean(load.latencies_ms):6.2f} ms"
            f"  errors {load.failed}"
        )
    print(f"{len(cold_paths)} different labels. First sight: each worker renders each label once")
    print("(<= 3 queries), then serves it. Seen before: every page is kept until the change feed")
    print("names its lot; each worker reads the feed once a second (issue 17 item 2)")
    for load in (hot, cold, seen):
        print(f"{load.path}: {load.rate / health.rate:.2f} of /healthz's rate (target >= 0.6)")
    sent = sum(x.requests + x.failed for x in (warm, hot, cold, seen)) + len(cold_paths) * 4
    print(f"scans logged {logged} of {sent} scan requests (writer threads; the rest at exit)")


if __name__ == "__main__":
    main()
