"""Webhook delivery: claim due deliveries under a lease, post them signed, retry with backoff."""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from dataclasses import dataclass

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from fangxin.db import utcnow
from fangxin.trace.notify.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from fangxin.trace.notify.transport import Resolver, post, system_resolve
from fangxin.trace.notify.webhooks import USER_AGENT, sign

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Backoff:
    """Retry schedule: base * 2^(attempt-1) seconds, capped; give up after max_attempts."""

    base_s: float = 30.0
    cap_s: float = 3600.0
    max_attempts: int = 10

    def delay(self, attempts: int) -> dt.timedelta:
        """Return the wait after the given number of failed attempts."""
        return dt.timedelta(seconds=min(self.cap_s, self.base_s * 2 ** (attempts - 1)))


@dataclass(frozen=True, slots=True)
class _Job:
    id: int
    url: str
    secret: str
    event: str
    body: bytes
    attempt: int


class Dispatcher:
    """Sends due deliveries; several may run (web processes, workers): leases keep them apart."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        backoff: Backoff | None = None,
        timeout_s: float = 10.0,
        lease_s: float = 60.0,
        *,
        allow_private: bool = False,
        resolve: Resolver = system_resolve,
    ) -> None:
        """Send with these sessions, retry schedule and HTTP timeout (private hosts if allowed)."""
        self.sessions = sessions
        self.allow_private = allow_private
        self.resolve = resolve
        self.backoff = backoff or Backoff()
        self.timeout_s = timeout_s
        self.lease = dt.timedelta(seconds=lease_s)

    def _claim(self, now: dt.datetime, limit: int) -> list[_Job]:
        deliveries = WebhookDelivery
        free = or_(deliveries.lease_until.is_(None), deliveries.lease_until < now)
        jobs = []
        with self.sessions.begin() as session:
            due = session.execute(
                select(deliveries, WebhookEndpoint)
                .join(WebhookEndpoint, WebhookEndpoint.id == deliveries.endpoint_id)
                .where(deliveries.status == "pending", deliveries.next_attempt_at <= now, free)
                .order_by(deliveries.next_attempt_at, deliveries.id)
                .limit(limit)
            ).all()
            for delivery, endpoint in due:
                # A conditional update: only one sender wins the lease.
                won = session.execute(
                    update(deliveries)
                    .where(deliveries.id == delivery.id, deliveries.status == "pending", free)
                    .values(lease_until=now + self.lease)
                    .execution_options(synchronize_session=False)
                )
                if won.rowcount == 1:  # type: ignore[attr-defined]
                    jobs.append(
                        _Job(
                            delivery.id,
                            endpoint.url,
                            endpoint.secret,
                            delivery.event,
                            delivery.body.encode(),
                            delivery.attempts + 1,
                        )
                    )
        return jobs

    def _post(self, job: _Job, now: dt.datetime) -> tuple[int | None, str | None]:
        timestamp = int(now.timestamp())
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": USER_AGENT,
            "X-Fangxin-Event": job.event,
            "X-Fangxin-Delivery": str(job.id),
            "X-Fangxin-Timestamp": str(timestamp),
            "X-Fangxin-Signature": sign(job.secret, timestamp, job.body),
        }
        return post(
            job.url,
            job.body,
            headers,
            self.timeout_s,
            allow_private=self.allow_private,
            resolve=self.resolve,
        )

    def _record(
        self, job: _Job, now: dt.datetime, code: int | None, error: str | None, ms: int
    ) -> bool:
        ok = code is not None and 200 <= code < 300
        with self.sessions.begin() as session:
            session.add(
                WebhookAttempt(
                    delivery_id=job.id,
                    at=now,
                    attempt=job.attempt,
                    ok=ok,
                    status_code=code,
                    error=error,
                    duration_ms=ms,
                )
            )
            delivery = session.get(WebhookDelivery, job.id)
            assert delivery is not None
            delivery.attempts = job.attempt
            delivery.last_status = code
            delivery.last_error = error
            delivery.lease_until = None
            if ok:
                delivery.status, delivery.delivered_at = "delivered", now
            elif job.attempt >= self.backoff.max_attempts:
                delivery.status = "failed"
                _LOGGER.error("Webhook %d to %s gave up: %s", job.id, job.url, error)
            else:
                delivery.next_attempt_at = now + self.backoff.delay(job.attempt)
        return ok

    def deliver_due(self, now: dt.datetime | None = None, limit: int = 50) -> int:
        """Send what is due at now (default: the clock); return how many were delivered."""
        delivered = 0
        for job in self._claim(now or utcnow(), limit):
            sent_at = now or utcnow()
            started = time.monotonic()
            code, error = self._post(job, sent_at)
            ms = int((time.monotonic() - started) * 1000)
            delivered += self._record(job, sent_at, code, error, ms)
            if error:
                _LOGGER.warning("Webhook %d attempt %d: %s", job.id, job.attempt, error)
        return delivered

    def next_due(self) -> dt.datetime | None:
        """Return when the next pending delivery is due, or None when none is pending."""
        with self.sessions() as session:
            return session.scalar(
                select(WebhookDelivery.next_attempt_at)
                .where(WebhookDelivery.status == "pending")
                .order_by(WebhookDelivery.next_attempt_at)
                .limit(1)
            )


class BackgroundSender:
    """Sends deliveries from a daemon thread of this process until none is pending.

    The web door kicks it after committing a transaction that enqueued deliveries; the thread
    also retries on the backoff schedule while the process lives. `fangxin webhooks` is the
    long-running worker that sends everything, including what the ingesters enqueue.
    """

    def __init__(self, dispatcher: Dispatcher, max_sleep_s: float = 30.0) -> None:
        """Send with this dispatcher; wake at least every max_sleep_s."""
        self.dispatcher = dispatcher
        self.max_sleep_s = max_sleep_s
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def kick(self) -> None:
        """Send now, starting the thread if it is not running."""
        with self._lock:
            self._wake.set()
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="fangxin-webhooks", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                self.dispatcher.deliver_due()
                due = self.dispatcher.next_due()
            except Exception:  # a database hiccup must not kill the sender for good
                _LOGGER.exception("Webhook sender failed; retrying")
                due = utcnow() + dt.timedelta(seconds=self.max_sleep_s)
            if due is None:
                with self._lock:
                    if not self._wake.is_set():
                        self._thread = None
                        return
                continue
            wait = (due - utcnow()).total_seconds()
            if wait > 0:
                self._wake.wait(min(wait, self.max_sleep_s))

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the thread (tests and shutdown)."""
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout_s)
