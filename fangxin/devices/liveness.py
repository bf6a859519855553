"""Recording device activity (receive times, declared states, announced intervals)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from sqlalchemy.orm import Session

from fangxin.devices.connectivity import apply_activity


def record_activity(
    session: Session,
    seen: Mapping[str, dt.datetime],
    states: Mapping[str, tuple[str, dt.datetime]],
    intervals: Mapping[str, int],
    caps: Mapping[str, int] | None = None,
) -> None:
    """Store the latest receive time, declared state and interval; record connectivity events.

    The ingest pipeline calls this once per batch in the batch's transaction. Times only move
    forward, so ingesters sharing a subscription cannot rewind each other. Announced intervals
    are applied capped per device kind (caps; None: the defaults).
    """
    apply_activity(session, seen, states, intervals, caps)
