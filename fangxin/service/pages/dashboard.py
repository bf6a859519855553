"""Regulators' dashboard: login, overview, site, device and KPI pages (zh-CN, no JavaScript)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import ParamSpec, TypeVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    current_app,
    g,
    redirect,
    render_template,
    request,
    send_from_directory,
    session,
)
from flask_wtf.csrf import CSRFProtect
from jinja2 import Undefined
from werkzeug.wrappers import Response as BaseResponse

from fangxin.devices import labels
from fangxin.devices.models import Site
from fangxin.service.auth import in_scope
from fangxin.service.context import db_session, state
from fangxin.service.models import User
from fangxin.service.users import DASHBOARD_ROLES, check_login, end_sessions
from fangxin.trace.results.followup_rules import STATE_LABELS as FOLLOWUP_STATES

P = ParamSpec("P")
R = TypeVar("R")
bp = Blueprint("dash", __name__)
ZH_TABLES = {
    "device_kind": labels.DEVICE_KINDS,
    "cause": labels.CAUSES,
    "alarm_status": labels.ALARM_STATUSES,
    "alarm_resolution": labels.ALARM_RESOLUTIONS,
    "connectivity": labels.CONNECTIVITY,
    "followup": FOLLOWUP_STATES,
}
csrf = CSRFProtect()


@dataclass(frozen=True, slots=True)
class Viewer:
    """The signed-in person and the district they may see (None: the whole city)."""

    user_id: int
    username: str
    role: str
    district: str | None


def init_app(app: Flask) -> None:
    """Register the pages, their CSRF checks and the session cookie settings."""
    production = bool(app.extensions["fangxin"].settings.production)
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=production,
        PERMANENT_SESSION_LIFETIME=dt.timedelta(hours=8),
        # Only the dashboard's forms carry tokens: API clients authenticate with bearer keys.
        WTF_CSRF_CHECK_DEFAULT=False,
    )
    csrf.init_app(app)
    app.register_blueprint(bp)
    app.add_template_filter(local_time, "local")
    app.add_template_filter(zh_name, "zh")
    app.add_template_filter(pct, "pct")
    app.add_template_filter(level, "level")


@bp.before_request
def _check_csrf() -> None:
    if request.method == "POST":
        csrf.protect()


def tz() -> str:
    """Return the city's time zone name."""
    return state().settings.timezone


def local_time(value: dt.datetime | str | None, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    """Format an aware datetime (or an ISO string of one) in the city's time zone."""
    if value is None:
        return "—"
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value.astimezone(ZoneInfo(tz())).strftime(fmt)


def zh_name(code: str | None, table: str) -> str:
    """Return the Chinese name of a code from one of the label tables (a template filter)."""
    return labels.zh(ZH_TABLES[table], code)


def pct(value: float | None, digits: int = 1) -> str:
    """Format a share as a percentage."""
    if value is None or isinstance(value, Undefined):  # a district without that figure
        return "—"
    return f"{value * 100:.{digits}f}%"


def level(value: float | None, goal: float | None, lower_is_better: bool = False) -> str:
    """Return the CSS class of a figure against its goal: ok, bad or na."""
    if value is None or goal is None or isinstance(value, Undefined):
        return "na"
    good = value <= goal if lower_is_better else value >= goal
    return "ok" if good else "bad"


def viewer() -> Viewer:
    """Return the signed-in viewer (login_required has run)."""
    found: Viewer = g.viewer
    return found


def signed_in_user() -> User | None:
    """Return the account of this request's session cookie, while that session is live."""
    user_id = session.get("uid")
    user = db_session().get(User, user_id) if isinstance(user_id, int) else None
    # A cookie lives until its account signs out or changes its password (§10).
    if user is None or user.disabled_at is not None or session.get("sv") != user.session_version:
        return None
    return user


def login_required(view: Callable[P, R]) -> Callable[P, R | BaseResponse]:
    """Send anonymous visitors to the login page; refuse roles without dashboard access."""

    @wraps(view)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R | BaseResponse:
        user = signed_in_user()
        if user is None:
            user_id = session.get("uid")
            ended = "ended=1&" if user_id is not None else ""  # the login page says why
            session.clear()
            return redirect(f"/login?{ended}next={request.full_path.rstrip('?')}")
        if user.role not in DASHBOARD_ROLES:
            abort(403)
        g.viewer = Viewer(user.id, user.username, user.role, user.district)
        return view(*args, **kwargs)

    return wrapper


def visible_site(site: Site | None) -> Site:
    """Return the site when the viewer may see it; 404 otherwise (no hint it exists)."""
    if site is None or not in_scope(viewer().district, site.district):
        abort(404)
    return site


def _safe_next(target: str | None) -> str:
    if not target:
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


@bp.route("/login", methods=["GET", "POST"])
def login() -> tuple[str, int] | BaseResponse:
    """Show the login form and sign in."""
    error = None
    if request.method == "POST":
        username = request.form.get("username", "").strip()
        password = request.form.get("password", "")
        user = check_login(db_session(), username, password)
        if user is not None and user.role in DASHBOARD_ROLES:
            session.clear()
            session["uid"], session["sv"] = user.id, user.session_version
            session.permanent = True
            return redirect(_safe_next(request.form.get("next")))
        error = "用户名或密码错误"
    elif request.args.get("ended"):
        error = "登录已失效（已退出或密码已更改），请重新登录"
    return render_template(
        "dash_login.html", error=error, next=_safe_next(request.args.get("next"))
    ), (401 if request.method == "POST" and error else 200)


@bp.post("/logout")
def logout() -> BaseResponse:
    """Sign out: this cookie, and every copy of it, stops working at once."""
    user_id = session.get("uid")
    user = db_session().get(User, user_id) if isinstance(user_id, int) else None
    if user is not None and session.get("sv") == user.session_version:
        end_sessions(user)
        db_session().commit()
    session.clear()
    return redirect("/login")


def xlsx_response(body: bytes, filename: str) -> Response:
    """Return an XLSX download."""
    return Response(
        body,
        mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={"Content-Disposition": f"attachment; filename={filename}"},
    )


@bp.get("/favicon.ico")
def favicon() -> Response:
    """Serve the app's icon (browsers ask for it on every page, ours and others')."""
    assert current_app.static_folder
    return send_from_directory(current_app.static_folder, "dash.svg", mimetype="image/svg+xml")
