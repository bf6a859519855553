"""Migration 0014 carries existing entry checks and certificates to the new states, none lost."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from alembic import command
from sqlalchemy import Engine, MetaData, func, insert, select

from fangxin.db import make_engine
from fangxin.db.migrate import alembic_config

BEFORE = "0013_followup_rules"
AFTER = "0014_entry_checks"
NOW = dt.datetime(2026, 11, 29, 8, 0, tzinfo=dt.UTC)


def _to(engine: Engine, revision: str, direction: str = "up") -> None:
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        if direction == "up":
            command.upgrade(cfg, revision)
        else:
            command.downgrade(cfg, revision)


def _seed(engine: Engine) -> None:
    meta = MetaData()
    meta.reflect(engine)
    t = meta.tables
    cert: dict[str, Any] = {
        "subject_id": "s-1",
        "template": "producer",
        "product": "菠菜",
        "quantity_milli": 50_000,
        "unit": "kg",
        "origin": "郏县",
        "issued_at": NOW,
        "subject_name": "合作社",
        "contact": "0375-1234567",
        "commitment": "我承诺…",
        "status": "valid",
        "key_id": "k1",
        "signature": "x",
        "created_at": NOW,
    }
    entry: dict[str, Any] = {
        "site_id": "m-1",
        "product": "菠菜",
        "quantity_milli": 20_000,
        "unit": "kg",
        "checked_at": NOW,
        "certificate_ref": None,
        "decided_at": None,
    }
    with engine.begin() as conn:
        conn.execute(
            insert(t["sites"]).values(
                id="m-1", kind="market", district="新华区", name="市场", created_at=NOW
            )
        )
        conn.execute(
            insert(t["subjects"]).values(
                id="s-1",
                kind="producer",
                name="合作社",
                contact="0375-1234567",
                district="郏县",
                created_at=NOW,
            )
        )
        conn.execute(
            insert(t["signing_keys"]).values(
                key_id="k1", algorithm="Ed25519", public_key="p", created_at=NOW
            )
        )
        conn.execute(
            insert(t["certificates"]),
            [
                {
                    **cert,
                    "number": "N1",
                    "code": "C1",
                    "template_version": "2026",
                    "basis": ["quality_control", "commissioned_test"],
                },
                {
                    **cert,
                    "number": "N2",
                    "code": "C2",
                    "template_version": "2019",
                    "basis": ["quality_control"],
                },
            ],
        )
        conn.execute(
            insert(t["entry_checks"]),
            [
                {
                    **entry,
                    "status": "refused",
                    "flags": ["certificate_unknown"],
                    "certificate_ref": "PAPER-1",
                    "decided_at": NOW,
                },
                {**entry, "status": "refused", "flags": ["certificate_voided"], "decided_at": NOW},
                {**entry, "status": "admitted", "flags": [], "decided_at": NOW},
                {**entry, "status": "pending_test", "flags": ["no_certificate"]},
            ],
        )


def _rows(engine: Engine, table: str, *columns: str) -> list[tuple[Any, ...]]:
    meta = MetaData()
    meta.reflect(engine, only=[table])
    t = meta.tables[table]
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(*(t.c[c] for c in columns)).order_by(t.c.id))]


def test_existing_entries_and_certificates_are_carried(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/old.db")
    _to(engine, BEFORE)
    _seed(engine)
    _to(engine, AFTER)
    entries = _rows(engine, "entry_checks", "status", "flags", "decided_at")
    assert [(s, f) for s, f, _ in entries] == [
        ("external_certificate", ["certificate_unknown", "refused_as_unknown"]),
        ("refused", ["certificate_voided"]),
        ("admitted", []),
        ("pending_test", ["no_certificate"]),
    ]
    assert entries[0][2] is not None  # when it was refused is kept
    certs = _rows(engine, "certificates", "number", "basis", "basis_printed")
    assert certs == [
        ("N1", ["quality_control", "commissioned_test"], ["质量安全控制符合要求", "委托检测合格"]),
        ("N2", ["quality_control"], None),  # printed labels were not kept at import: unknown
    ]
    _to(engine, BEFORE, "down")  # and back, with the old states
    assert [s for (s,) in _rows(engine, "entry_checks", "status")] == [
        "refused",
        "refused",
        "admitted",
        "pending_test",
    ]
    with engine.connect() as conn:
        meta = MetaData()
        meta.reflect(engine, only=["certificates"])
        assert conn.scalar(select(func.count()).select_from(meta.tables["certificates"])) == 2
    engine.dispose()
