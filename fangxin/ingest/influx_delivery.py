"""Posting line protocol to InfluxDB 2.x: gzip writes, Telegraf-style status handling, health."""

# Statuses as Telegraf's influxdb_v2 output, except that nothing is dropped silently:
# 400/413/422 halve the batch down to single lines; a single rejected line is reported rejected
# (the sink makes it a dead letter). 401/403/404 stop delivery (the sink keeps the points in its
# spool and problem() says why). 429/5xx retry, honouring Retry-After, until the caller's
# deadline; no answer at all (refused, timeout) stops at once.

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import cast

import urllib3
from influxdb_client.client.influxdb_client import InfluxDBClient
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.domain.write_precision import WritePrecision
from influxdb_client.rest import ApiException

from fangxin.db import utcnow
from fangxin.ingest.lineproto import parse_retry_after

# The sink's logger: operators (and alerts) find InfluxDB's state under one name.
_LOGGER = logging.getLogger("fangxin.ingest.influx")
_RETRY_BASE_S = 0.1
_RETRY_MAX_S = 5.0
REJECTED = frozenset({400, 413, 422})
# The client annotates precision as the class but its constants are plain strings.
_PRECISION_NS = cast(WritePrecision, WritePrecision.NS)


@dataclass(frozen=True, slots=True)
class Reply:
    """InfluxDB's answer to one write."""

    status: int  # 0: no HTTP answer (refused, timeout, TLS)
    message: str
    retry_after: float | None = None


@dataclass(slots=True)
class Outcome:
    """What became of a list of lines: indexes written, rejected, and where delivery stopped."""

    written: list[int] = field(default_factory=list)
    rejected: list[tuple[int, str]] = field(default_factory=list)
    unsent_from: int | None = None
    retry_after: float | None = None


class Delivery:
    """Writes lines to one bucket synchronously and remembers how InfluxDB last answered."""

    def __init__(
        self,
        url: str,
        token: str,
        org: str,
        bucket: str,
        *,
        batch_lines: int,
        timeout_s: float,
        stop: threading.Event,
    ) -> None:
        """Connect lazily; a set `stop` cuts retry waits short."""
        self.url, self.org, self.bucket = url, org, bucket
        self.batch_lines = batch_lines
        self._stop = stop
        self._client = InfluxDBClient(
            url=url, token=token, org=org, timeout=int(timeout_s * 1000), enable_gzip=True
        )
        self._write_api = self._client.write_api(write_options=SYNCHRONOUS)
        self._lock = threading.Lock()
        self._health: tuple[str, str, dt.datetime] | None = None  # (kind, message, since)

    def health(self) -> tuple[str, str, dt.datetime] | None:
        """Return (kind, message, since) while InfluxDB refuses or is unavailable, else None."""
        with self._lock:
            return self._health

    def close(self) -> None:
        """Close the HTTP client."""
        self._client.close()  # type: ignore[no-untyped-call]

    def deliver(self, lines: Sequence[str], deadline: float) -> Outcome:
        """Send lines in batches, retrying transient failures until the monotonic deadline."""
        out = Outcome()
        for lo in range(0, len(lines), self.batch_lines):
            if not self._send(lines, lo, min(lo + self.batch_lines, len(lines)), deadline, out):
                break
        return out

    def _send(self, lines: Sequence[str], lo: int, hi: int, deadline: float, out: Outcome) -> bool:
        """Deliver lines[lo:hi]; False (and out.unsent_from set) when it must wait for later."""
        attempt = 0
        while True:
            reply = self._post(lines[lo:hi])
            if 200 <= reply.status < 300:
                self._set_health(None, "")
                out.written.extend(range(lo, hi))
                return True
            if reply.status in REJECTED:
                # 400 rejects the whole batch, 413 is too big, 422 dropped some: halve until
                # single lines remain; re-sending good lines is idempotent in InfluxDB.
                if hi - lo == 1:
                    out.rejected.append((lo, f"InfluxDB {reply.status}: {reply.message}"))
                    return True
                mid = (lo + hi) // 2
                return self._send(lines, lo, mid, deadline, out) and self._send(
                    lines, mid, hi, deadline, out
                )
            transient = reply.status in (0, 408, 429, 499) or reply.status >= 500
            if transient:
                self._set_health("unavailable", f"{reply.status or 'no answer'}: {reply.message}")
                delay = max(reply.retry_after or 0.0, min(_RETRY_BASE_S * 2**attempt, _RETRY_MAX_S))
                if (
                    reply.status  # no answer at all: spool now rather than block the ingester
                    and time.monotonic() + delay <= deadline
                    and not self._stop.wait(delay)
                ):
                    attempt += 1
                    continue
            else:  # 401/403/404 and unexpected 4xx: our configuration, not the data
                self._set_health("refused", f"{reply.status}: {reply.message}")
            out.unsent_from, out.retry_after = lo, reply.retry_after
            return False

    def _post(self, lines: Sequence[str]) -> Reply:
        try:
            self._write_api.write(
                self.bucket, self.org, "\n".join(lines), write_precision=_PRECISION_NS
            )
        except ApiException as exc:
            if not exc.status:
                return Reply(0, str(exc.reason))
            return Reply(int(exc.status), str(exc.message), parse_retry_after(exc.retry_after))
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            return Reply(0, f"{type(exc).__name__}: {exc}")
        return Reply(204, "")

    def _set_health(self, kind: str | None, message: str) -> None:
        with self._lock:
            old = self._health
            self._health = None if kind is None else (kind, message, utcnow())
            if old is not None and old[0] == kind:
                self._health = (kind, message, old[2])  # same outage: keep its start
                return  # log transitions only, not every retry
            if old is None and kind is None:
                return
        if kind == "refused":
            _LOGGER.error("InfluxDB %s refuses writes, keeping points: %s", self.url, message)
        elif kind == "unavailable":
            _LOGGER.warning("InfluxDB %s unavailable, spooling: %s", self.url, message)
        elif old is not None:
            _LOGGER.info("InfluxDB %s accepts writes again", self.url)
