"""Profile `POST /api/v1/certificates` in process: statements, commits and CPU per request.

The app of `fangxin serve` (create_app) on a fresh database, driven by Flask test clients: one
client in turn (each request leads its own batch), then T clients at once (concurrent issuers
share commits). An SQLAlchemy listener on the engine counts every statement the server sends,
grouped by its first words; CPU is the process's (server and clients together), per request.

    .venv/bin/python -m bench.issuance_profile [--requests 300] [--threads 8] [--pg URL] [--sqlite]
"""

from __future__ import annotations

import argparse
import collections
import json
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import Engine, event

from bench.ingest import fresh_database
from bench.issuance import BODY, SUBJECT, in_threads, parse_with_databases
from fangxin.config import Settings
from fangxin.db import make_engine, make_session_factory
from fangxin.service.app import create_app
from fangxin.service.auth import create_key
from fangxin.trace.certificates.schemas import SubjectIn
from fangxin.trace.certificates.subjects import add_subject


class StatementCounter:
    """Count the statements an engine sends (by kind) and its transactions' ends."""

    def __init__(self, engine: Engine) -> None:
        """Listen on the engine from now on."""
        self.kinds: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()
        event.listen(engine, "before_cursor_execute", self._statement)
        event.listen(engine, "commit", self._end("COMMIT"))
        event.listen(engine, "rollback", self._end("ROLLBACK"))

    def _statement(self, _conn: Any, _cursor: Any, sql: str, *_rest: Any) -> None:
        words = sql.split()
        kind = " ".join(words[:3] if words[0] in ("INSERT", "UPDATE", "DELETE") else words[:1])
        if words[0] == "SELECT":
            kind = "SELECT " + (words[words.index("FROM") + 1] if "FROM" in words else "")
        with self._lock:
            self.kinds[kind] += 1

    def _end(self, kind: str) -> Any:
        def count(_conn: Any) -> None:
            with self._lock:
                self.kinds[kind] += 1

        return count

    def take(self) -> collections.Counter[str]:
        """Return the counts so far and start again."""
        with self._lock:
            kinds, self.kinds = self.kinds, collections.Counter()
        return kinds


def _app(url: str, data_dir: Path) -> tuple[Flask, Engine, str]:
    engine = make_engine(url)
    with make_session_factory(engine)() as session:
        add_subject(session, SubjectIn.model_validate(SUBJECT))
        key = create_key(session, "issuer", subject_id=SUBJECT["id"], name="bench")
        session.commit()
    settings = Settings(data_dir=data_dir, database_url=url, ratelimit_enabled=False)
    return create_app(settings, engine), engine, key


def _report(
    label: str, n: int, cpu_s: float, wall_s: float, kinds: collections.Counter[str]
) -> None:
    ends = {k: v for k, v in kinds.items() if k in ("COMMIT", "ROLLBACK")}
    statements = sum(v for k, v in kinds.items() if k not in ends)
    print(
        f"  {label:<10} {statements / n:6.2f} statements/request  "
        f"{ends.get('COMMIT', 0) / n:5.2f} commits  {ends.get('ROLLBACK', 0) / n:5.2f} rollbacks  "
        f"CPU {cpu_s / n * 1000:6.2f} ms/request  ({n / wall_s:.0f}/s in process)"
    )
    for kind, count in sorted(kinds.items(), key=lambda kv: -kv[1]):
        print(f"      {count / n:6.2f}  {kind}")


def profile(url: str, requests: int, threads: int) -> None:
    """Issue through the app in turn and then concurrently; print per-request figures."""
    fresh_database(url)
    with tempfile.TemporaryDirectory(prefix="fangxin-bench-") as tmp:
        app, engine, key = _app(url, Path(tmp))
        counter = StatementCounter(engine)
        body = json.dumps(BODY.model_dump(mode="json"), ensure_ascii=False).encode()
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        local = threading.local()

        def work(_i: int) -> None:
            client = getattr(local, "client", None)
            if client is None:
                client = local.client = app.test_client()
            response = client.post("/api/v1/certificates", data=body, headers=headers)
            if response.status_code != 201:
                raise RuntimeError(f"{response.status_code}: {response.data[:300]!r}")

        print(f"{engine.dialect.name}: {requests} requests")
        in_threads(1, 20, work)  # warm up: compiled-statement caches, connections
        for label, t in (("one by one", 1), (f"{threads} threads", threads)):
            counter.take()
            c0, w0 = time.process_time(), time.perf_counter()
            in_threads(t, requests, work)
            cpu, wall = time.process_time() - c0, time.perf_counter() - w0
            _report(label, requests, cpu, wall, counter.take())
        engine.dispose()


def main() -> None:
    """Parse arguments and profile PostgreSQL (and SQLite if asked)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--threads", type=int, default=8)
    args, urls = parse_with_databases(parser)
    for url in urls:
        profile(url, args.requests, args.threads)


if __name__ == "__main__":
    main()
