"""Migrations: head matches the models; the app and the ingester refuse an unmigrated database."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine

from fangxin.config import Settings
from fangxin.db import NotMigratedError, check_migrated, make_engine
from fangxin.ingest.runner import build_ingester
from fangxin.migrations.tables import all_tables
from fangxin.service.app import create_app


def test_models_match_migrations(engine: Engine) -> None:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, all_tables())
    assert diff == []


def test_head_after_upgrade(engine: Engine) -> None:
    check_migrated(engine)  # raises if not at head


def test_app_refuses_unmigrated_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/empty.db"
    with pytest.raises(NotMigratedError, match="run `fangxin db upgrade`"):
        create_app(Settings(data_dir=tmp_path, database_url=url), make_engine(url))


def test_ingester_refuses_unmigrated_database(tmp_path: Path, settings: Settings) -> None:
    empty = replace(
        settings, database_url=f"sqlite:///{tmp_path}/empty.db", mqtt_url="mqtt://127.0.0.1:1"
    )
    with pytest.raises(NotMigratedError, match="is empty"):
        build_ingester(empty)
