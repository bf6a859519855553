"""`fangxin serve` freezes what start-up built before gunicorn forks its workers."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask

from fangxin.service import server


@pytest.fixture
def unfrozen() -> Iterator[None]:
    """Leave the test process's collector as it found it."""
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_serve_freezes_the_app_before_gunicorn_runs(
    app: Flask, unfrozen: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At gunicorn's start the app's objects sit outside every generation a collection walks."""
    seen: dict[str, Any] = {}

    def run(_self: server.GunicornServer) -> None:
        walked = {id(obj) for obj in gc.get_objects()}
        seen["frozen"] = gc.get_freeze_count()
        seen["app walked"] = id(app) in walked
        seen["state walked"] = id(app.extensions["fangxin"]) in walked

    monkeypatch.setattr(server.GunicornServer, "run", run)
    assert id(app) in {id(obj) for obj in gc.get_objects()}  # walked before serve
    server.serve(app, "127.0.0.1", 0, workers=1, threads=1)
    assert seen["frozen"] > 10_000
    assert seen["app walked"] is False
    assert seen["state walked"] is False
