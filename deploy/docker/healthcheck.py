#!/usr/bin/env python
"""Container healthcheck of a fangxin process: `fangxin-healthcheck ingest|database`."""

from __future__ import annotations

import datetime as dt
import logging
import os
import sys
from collections.abc import Mapping, Sequence

from sqlalchemy import func, select

from fangxin.config import Settings
from fangxin.db import check_migrated, make_engine, utcnow
from fangxin.devices.models import IngesterRun
from fangxin.devices.observation import STALE_AFTER

_LOGGER = logging.getLogger("fangxin.healthcheck")
# Written by the image's entry point: the client id an ingester container keeps (entrypoint.sh).
CLIENT_ID_FILE = "ingest-client-id"


def ingest_client_id(settings: Settings, env: Mapping[str, str]) -> str:
    """Return the MQTT client id this container's ingester runs under."""
    if env.get("FANGXIN_INGEST_CLIENT_ID"):
        return settings.ingest_client_id
    path = settings.data_dir / CLIENT_ID_FILE
    if path.is_file():
        text = path.read_text(encoding="utf-8").strip()
        if text:
            return text
    return settings.ingest_client_id


def check_database(settings: Settings) -> str | None:
    """Return why the database is unusable (unreachable, not migrated), or None."""
    engine = make_engine(settings.database_url)
    try:
        check_migrated(engine)
    except Exception as exc:  # a healthcheck reports every failure, it does not raise
        return f"database: {exc}"
    finally:
        engine.dispose()
    return None


def check_ingest(settings: Settings, client_id: str, now: dt.datetime) -> str | None:
    """Return why the ingester is unhealthy, or None.

    Its watchdog keeps an open observed run and touches it every 10 s while it is connected to
    the broker and can write to the database: a run silent for STALE_AFTER means neither holds.
    """
    engine = make_engine(settings.database_url)
    try:
        with engine.connect() as conn:
            last = conn.scalar(
                select(func.max(IngesterRun.last_alive_at)).where(
                    IngesterRun.client_id == client_id, IngesterRun.ended_at.is_(None)
                )
            )
    except Exception as exc:  # a healthcheck reports every failure, it does not raise
        return f"database: {exc}"
    finally:
        engine.dispose()
    if last is None:
        return f"ingester {client_id} has no open run: not connected to the broker"
    if now - last > STALE_AFTER:
        return f"ingester {client_id} last alive at {last.isoformat()}"
    return None


def main(argv: Sequence[str], env: Mapping[str, str] | None = None) -> int:
    """Run one check; exit status 0 is healthy, 1 unhealthy (Docker's convention)."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    env = os.environ if env is None else env
    if len(argv) != 1 or argv[0] not in ("ingest", "database"):
        _LOGGER.error("usage: fangxin-healthcheck ingest|database")
        return 2
    settings = Settings.from_env(env)
    if argv[0] == "ingest":
        problem = check_ingest(settings, ingest_client_id(settings, env), utcnow())
    else:
        problem = check_database(settings)
    if problem:
        _LOGGER.error("unhealthy: %s", problem)
        return 1
    _LOGGER.info("healthy")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
