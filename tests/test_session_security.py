"""Dashboard sessions: no constant signing secret; signed-out cookies are dead (server-side)."""

from __future__ import annotations

import stat
from pathlib import Path

from flask import Flask
from flask.sessions import SecureCookieSessionInterface
from flask.testing import FlaskClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.test import TestResponse

from fangxin.config import Settings
from fangxin.service.app import create_app
from fangxin.service.models import User
from fangxin.service.users import add_user, set_password
from tests.pages_helpers import PASSWORD, TOKEN, login


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


def _signed_in(app: Flask, username: str) -> tuple[FlaskClient, str]:
    client = app.test_client()
    assert login(client, username) == 302
    cookie = client.get_cookie("session")
    assert cookie is not None
    return client, cookie.value


def _replayed(app: Flask, cookie: str) -> TestResponse:
    thief = app.test_client()
    thief.set_cookie("session", cookie)
    return thief.get("/")


def _version(sessions: sessionmaker[Session], username: str) -> int:
    with sessions() as session:
        return session.scalars(select(User.session_version).where(User.username == username)).one()


def test_a_signed_out_cookie_is_refused_server_side(
    app: Flask, sessions: sessionmaker[Session]
) -> None:
    """§10: a copy of the cookie taken before logout must not keep the session alive."""
    with sessions.begin() as session:
        add_user(session, "xinhua", PASSWORD, "regulator", "新华区")
    client, cookie = _signed_in(app, "xinhua")
    assert _replayed(app, cookie).status_code == 200  # the copy works while signed in
    page = client.get("/").get_data(as_text=True)
    token = TOKEN.search(page)
    assert token
    assert client.post("/logout", data={"csrf_token": token[1]}).status_code == 302
    version = _version(sessions, "xinhua")
    refused = _replayed(app, cookie)
    assert refused.status_code == 302
    assert refused.headers["Location"] == "/login?ended=1&next=/"
    why = app.test_client().get(refused.headers["Location"]).get_data(as_text=True)
    assert "登录已失效" in why
    assert _version(sessions, "xinhua") == version  # the replay changed nothing
    # a new sign-in works, and an old cookie stays dead after it
    fresh, _ = _signed_in(app, "xinhua")
    assert fresh.get("/").status_code == 200
    assert _replayed(app, cookie).status_code == 302


def test_a_password_change_ends_every_session(app: Flask, sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        add_user(session, "admin", PASSWORD, "admin")
    client, cookie = _signed_in(app, "admin")
    with sessions.begin() as session:
        set_password(session, "admin", "another long password")
    assert client.get("/").headers["Location"] == "/login?ended=1&next=/"
    assert _replayed(app, cookie).status_code == 302
    assert login(app.test_client(), "admin") == 401  # the old password is gone
    assert login(app.test_client(), "admin", "another long password") == 302
