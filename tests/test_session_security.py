"""Dashboard sessions: no constant signing secret; signed-out cookies are dead (server-side)."""

from __future__ import annotations

import stat
from pathlib import Path

from flask import Flask
from flask.sessions import SecureCookieSessionInterface
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from fangxin.config import Settings
from fangxin.service.app import create_app
from fangxin.service.users import add_user
from tests.pages_helpers import PASSWORD


def forged_cookie(app: Flask, secret: str, payload: dict[str, object]) -> str:
    """Sign a session payload the way Flask does, with a secret of the attacker's choice."""
    forger = Flask("forger")
    forger.secret_key = secret
    serializer = SecureCookieSessionInterface().get_signing_serializer(forger)
    assert serializer is not None
    return str(serializer.dumps(payload))


def test_a_cookie_signed_with_the_old_constant_is_not_a_session(
    app: Flask, sessions: sessionmaker[Session], settings: Settings, engine: Engine
) -> None:
    with sessions.begin() as session:
        admin = add_user(session, "admin", PASSWORD, "admin")
        uid = admin.id
    client = app.test_client()
    forged = forged_cookie(app, "dev-only-not-secret", {"uid": uid, "_permanent": True})
    client.set_cookie("session", forged)
    response = client.get("/")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")
    # the secret is generated once per data dir, private, and shared by every process there
    path = Path(settings.data_dir) / "secret_key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(path.read_text().strip()) >= 32
    assert app.secret_key == path.read_text().strip()
    assert create_app(settings, engine).secret_key == app.secret_key
