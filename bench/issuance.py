"""Certificate issuance: concurrent issuers vs a bare INSERT-and-commit loop on the same database.

Each of T threads issues certificates the way `POST /api/v1/certificates` does (load the
subject, `IssueQueue.issue`, which commits; on PostgreSQL concurrent issuers share commits).
The baseline, in the same run, is the same T threads each inserting a row and committing:
what the database's commits allow. With --http the same count also goes through the door
itself: `fangxin serve` (gunicorn, 2 workers x 4 threads), T keep-alive clients posting
`POST /api/v1/certificates` with an issuer key (auth, audit row, JSON view included), with
the server's CPU per request (gunicorn's master and workers, from /proc).
Afterwards the day's numbers are checked: unique and gap-free (1..N).

    .venv/bin/python -m bench.issuance [--certificates 2000] [--threads 8] [--pg URL] [--sqlite]
                                       [--http]
"""

from __future__ import annotations

import argparse
import atexit
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

from sqlalchemy import Engine, delete, text
from sqlalchemy.orm import Session, sessionmaker

from bench.ingest import fresh_database
from bench.scan import wait_up
from fangxin.db import make_engine, make_session_factory, utcnow
from fangxin.service.auth import create_key
from fangxin.sim.broker import free_port
from fangxin.trace.certificates.credit_code import credit_check_char
from fangxin.trace.certificates.issue_queue import IssueQueue
from fangxin.trace.certificates.models import Certificate, Subject
from fangxin.trace.certificates.schemas import CertificateIn, SubjectIn
from fangxin.trace.certificates.signing import generate
from fangxin.trace.certificates.subjects import add_subject

TZ = "Asia/Shanghai"
SUBJECT = {
    "id": "s-bench",
    "kind": "producer",
    "name": "郏县绿源蔬菜合作社",
    "credit_code": "93410425MA47XW01K" + credit_check_char("93410425MA47XW01K"),
    "contact": "0375-1234567",
    "district": "郏县",
}
BODY = CertificateIn(
    subject="s-bench",
    product="菠菜",
    quantity=Decimal(50),
    unit="kg",
    origin="河南省平顶山市郏县",
    basis=["quality_control"],
)


def in_threads(threads: int, total: int, work: Callable[[int], None]) -> float:
    """Run work(i) for i < total spread over threads; return the elapsed seconds."""
    counter = iter(range(total))
    lock = threading.Lock()
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            while True:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                work(i)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    start = time.perf_counter()
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    if errors:
        raise errors[0]
    return time.perf_counter() - start


def bare_inserts(engine: Engine, threads: int, total: int) -> float:
    """Return rows/s of T threads each inserting one row per transaction."""
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS bench_bare"))
        conn.execute(text("CREATE TABLE bench_bare (id INTEGER PRIMARY KEY, number TEXT)"))

    def work(i: int) -> None:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO bench_bare VALUES (:i, :n)"), {"i": i, "n": f"n{i}"})

    return total / in_threads(threads, total, work)


def issuing(sessions: sessionmaker[Session], threads: int, total: int) -> tuple[float, list[str]]:
    """Return certificates/s of T concurrent issuers, and the numbers they were given."""
    queue = IssueQueue(generate(), TZ)
    numbers: list[str] = []

    def work(_i: int) -> None:
        with sessions() as session:
            subject = session.get(Subject, SUBJECT["id"])
            assert subject is not None
            cert = queue.issue(session, BODY, subject, utcnow())
            session.commit()
            numbers.append(cert.number)

    return total / in_threads(threads, total, work), numbers


def server_cpu_s(pid: int) -> float:
    """Return the CPU seconds a process and its children (gunicorn's workers) have used."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    ticks = 0
    for p in (str(pid), *children):
        fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def posting(
    url: str, sessions: sessionmaker[Session], threads: int, total: int
) -> tuple[float, list[str], float]:
    """Return posts/s of T keep-alive clients of `fangxin serve`, numbers, server CPU ms/post."""
    with sessions() as session:
        key = create_key(session, "issuer", subject_id=SUBJECT["id"], name="bench")
        session.commit()
    body = json.dumps(BODY.model_dump(mode="json"), ensure_ascii=False).encode()
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    local = threading.local()
    numbers: list[str] = []
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="fangxin-bench-") as tmp:
        env = {**os.environ, "FANGXIN_DATA_DIR": tmp, "FANGXIN_DATABASE_URL": url}
        env["FANGXIN_RATELIMIT_ENABLED"] = "false"
        cmd = [sys.executable, "-m", "fangxin.cli", "--log-level", "WARNING", "serve"]
        proc = subprocess.Popen(
            [*cmd, "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

        def work(_i: int) -> None:
            conn = getattr(local, "conn", None)
            if conn is None:
                conn = local.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request("POST", "/api/v1/certificates", body, headers)
            response = conn.getresponse()
            answer = response.read()
            if response.status != 201:
                raise RuntimeError(f"{response.status}: {answer[:300]!r}")
            numbers.append(json.loads(answer)["number"])

        try:
            wait_up(port, proc)
            in_threads(threads, min(50, total), work)  # warm up both workers
            cpu = server_cpu_s(proc.pid)
            rate = total / in_threads(threads, total, work)
            return rate, numbers, (server_cpu_s(proc.pid) - cpu) / total * 1000
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)


def check_numbers(sessions: sessionmaker[Session], numbers: list[str]) -> str:
    """Say whether each day's numbers are unique and run 1..N without a gap."""
    with sessions() as session:
        stored = session.scalars(text("SELECT number FROM certificates")).all()
    by_day: dict[str, list[int]] = {}
    for number in stored:
        day, seq = number[3:].split("-")
        by_day.setdefault(day, []).append(int(seq))
    ok = sorted(numbers) == sorted(stored) and all(
        sorted(seqs) == list(range(1, len(seqs) + 1)) for seqs in by_day.values()
    )
    return f"{len(stored)} numbers, {'unique and gap-free' if ok else 'NOT unique/gap-free'}"


def run(url: str, total: int, threads: int, http_too: bool = False) -> None:
    """Measure one database and print the figure, the baseline and the ratio."""
    fresh_database(url)
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    with sessions() as session:
        add_subject(session, SubjectIn.model_validate(SUBJECT))
        session.commit()
    issuing(sessions, threads, min(50, total))  # warm up caches and connections
    with sessions.begin() as session:
        session.query(Certificate).delete()
        session.execute(text("DELETE FROM certificate_sequences"))
    base = bare_inserts(engine, threads, total)
    rate, numbers = issuing(sessions, threads, total)
    verdict = check_numbers(sessions, numbers)
    name = engine.dialect.name
    print(f"{name:<11} issuance {rate:>8.0f}/s   bare insert+commit {base:>8.0f}/s   ", end="")
    print(f"ratio {rate / base:.2f}   ({verdict})")
    if http_too:
        with sessions.begin() as session:
            session.execute(delete(Certificate))
            session.execute(text("DELETE FROM certificate_sequences"))
        door, posted, cpu_ms = posting(url, sessions, threads, total)
        verdict = check_numbers(sessions, posted)
        print(f"{name:<11} POST /api/v1/certificates {door:>8.0f}/s   ", end="")
        print(f"server CPU {cpu_ms:.2f} ms/request   ", end="")
        print(f"ratio to in-process {door / rate:.2f}, to bare {door / base:.2f}   ({verdict})")
    engine.dispose()


def parse_with_databases(
    parser: argparse.ArgumentParser,
) -> tuple[argparse.Namespace, list[str]]:
    """Parse the caller's options with --pg and --sqlite; return them and the databases to use.

    A SQLite file is made in a temporary directory that lives until the process exits.
    """
    parser.add_argument(
        "--pg",
        default=os.environ.get(
            "FANGXIN_BENCH_DATABASE_URL",
            "postgresql+psycopg://postgres@127.0.0.1:5432/fangxin_bench",
        ),
        help="PostgreSQL URL (the database is recreated), or 'none'",
    )
    parser.add_argument("--sqlite", action="store_true", help="also measure a SQLite file")
    args = parser.parse_args()
    urls = []
    if args.sqlite:
        tmp = tempfile.mkdtemp(prefix="fangxin-bench-")
        atexit.register(shutil.rmtree, tmp, ignore_errors=True)
        urls.append(f"sqlite:///{Path(tmp) / 'issue.db'}")
    if args.pg != "none":
        urls.append(args.pg)
    return args, urls


def main() -> None:
    """Parse arguments and run on PostgreSQL (and SQLite if asked)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--certificates", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--http", action="store_true", help="also issue through fangxin serve")
    args, urls = parse_with_databases(parser)
    print(f"{args.certificates} certificates, {args.threads} threads, {os.cpu_count()} cores")
    for url in urls:
        run(url, args.certificates, args.threads, args.http)


if __name__ == "__main__":
    main()
