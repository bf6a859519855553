"""Migration 0013 carries every follow-up of the old workflow to the new states, audited."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from alembic import command
from sqlalchemy import Engine, MetaData, Table, func, insert, select

from fangxin.db import make_engine
from fangxin.db.migrate import alembic_config

BEFORE = "0012_trust"
# (item, old state, disposal, lab result) -> (new state, path)
CASES: list[tuple[tuple[str, str, str | None, str | None], tuple[str, str]]] = [
    (("pesticide-ache", "retest_pending", None, None), ("suspended", "repeat")),
    (("pesticide-ache", "cleared", None, None), ("cleared", "repeat")),
    (("pesticide-ache", "confirmed", None, None), ("confirmed", "repeat")),
    (("pesticide-ache", "sale_stopped", None, None), ("confirmed", "repeat")),
    (("pesticide-ache", "sealed", None, None), ("confirmed", "repeat")),
    (("pesticide-ache", "destroyed", "destroy", None), ("disposed", "repeat")),
    # 退货 put the lot back on the market: the case is open again, to be disposed of
    (("pesticide-ache", "returned", "return", None), ("confirmed", "repeat")),
    (("pesticide-ache", "closed", "destroy", None), ("closed", "repeat")),
    (("clenbuterol", "sale_stopped", None, None), ("sealed", "banned")),
    (("clenbuterol", "sealed", None, "positive"), ("confirmed", "banned")),
    (("clenbuterol", "destroyed", "destroy", "positive"), ("disposed", "banned")),
]


def _run(engine: Engine, verb: str, revision: str) -> None:
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        getattr(command, verb)(cfg, revision)


def _table(engine: Engine, name: str) -> Table:
    return Table(name, MetaData(), autoload_with=engine)


def _seed_old(engine: Engine) -> None:
    sites, devices, results, followups, events = (
        _table(engine, n)
        for n in ("sites", "devices", "rapid_test_results", "followups", "followup_events")
    )
    now = dt.datetime(2026, 11, 29, 8, 0, tzinfo=dt.UTC)
    with engine.begin() as conn:
        # written with reflected tables: the ORM models carry later revisions' columns
        site = {"id": "m-1", "kind": "market", "district": "新华区", "name": "m-1"}
        conn.execute(insert(sites).values(**site, created_at=now))
        device = {"id": "rt-1", "site_id": "m-1", "kind": "rapid_test", "interval_s": 60}
        conn.execute(insert(devices).values(**device, active=True, created_at=now))
        for n, ((item, state, disposal, lab), _) in enumerate(CASES):
            row: dict[str, Any] = {"device_id": "rt-1", "site_id": "m-1", "result_id": f"r-{n}"}
            row |= {"ts": now, "received_at": now, "item_code": item, "sample_name": "样品"}
            row |= {"verdict": "positive", "source": "mqtt", "false_positive_risk": False}
            row |= {"verdict_mismatch": False}
            rid = conn.scalar(insert(results).values(**row).returning(results.c.id))
            case = {"result_id": rid, "site_id": "m-1", "state": state, "retests": 2}
            case |= {"opened_at": now, "updated_at": now, "disposal": disposal, "lab_result": lab}
            fid = conn.scalar(insert(followups).values(**case).returning(followups.c.id))
            opened = {"followup_id": fid, "at": now, "actor": "device:rt-1", "action": "open"}
            conn.execute(insert(events).values(**opened, to_state="retest_pending"))


def _states(engine: Engine) -> list[tuple[str, str | None]]:
    f = _table(engine, "followups")
    with engine.connect() as conn:
        path = f.c.path if "path" in f.c else f.c.state.label("x")
        rows = conn.execute(select(f.c.state, path).order_by(f.c.id)).all()
    return [(state, p if "path" in f.c else None) for state, p in rows]


def test_old_states_are_carried_with_an_audited_event(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/old.db")
    _run(engine, "upgrade", BEFORE)
    _seed_old(engine)
    _run(engine, "upgrade", "heads")
    assert _states(engine) == [new for _, new in CASES]
    followups, events = _table(engine, "followups"), _table(engine, "followup_events")
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(followups)) == len(CASES)
        moved = conn.execute(
            select(events.c.followup_id, events.c.from_state, events.c.to_state, events.c.detail)
            .where(events.c.action == "migrate")
            .order_by(events.c.followup_id)
        ).all()
        kept = conn.execute(select(followups.c.disposal).order_by(followups.c.id)).scalars().all()
        tested_by = conn.execute(select(_table(engine, "rapid_test_results").c.tested_by)).scalars()
        assert set(tested_by) == {"market"}
    changed = [(n + 1, old[1], new[0]) for n, (old, new) in enumerate(CASES) if old[1] != new[0]]
    assert [(f, a, b) for f, a, b, _ in moved] == changed
    assert all(detail["was"] == a for _, a, _, detail in moved)
    assert kept == [old[2] for old, _ in CASES]  # the record of a past 退货 stays
    _run(engine, "downgrade", BEFORE)
    back = [s for s, _ in _states(engine)]
    assert len(back) == len(CASES)
    assert back[0] == "retest_pending"
    assert back[5] == "destroyed"
    engine.dispose()
