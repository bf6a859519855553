"""The follow-up page of a positive: its state, the rules applied with their sources, the steps."""

from __future__ import annotations

from flask import abort, redirect, render_template, request
from pydantic import ValidationError
from werkzeug.wrappers import Response as BaseResponse

from fangxin.contract.payloads import describe
from fangxin.devices.models import Site
from fangxin.service.context import db_session, state
from fangxin.service.pages.dashboard import bp, login_required, viewer, visible_site
from fangxin.trace.results import followup_rules, views
from fangxin.trace.results.followup import IllegalTransition
from fangxin.trace.results.followup_actions import FollowupError, apply_action
from fangxin.trace.results.followup_models import Followup
from fangxin.trace.results.models import RapidTestResult, TestItem
from fangxin.trace.results.schemas import ActionIn


def _visible(followup_id: int) -> tuple[Followup, Site]:
    """Return the follow-up and its site when the viewer may see them; 404 otherwise."""
    session = db_session()
    found = session.get(Followup, followup_id)
    if found is None:
        abort(404)
    return found, visible_site(session.get(Site, found.site_id))


def _page(followup_id: int, error: str | None = None, status: int = 200) -> tuple[str, int]:
    session = db_session()
    found, site = _visible(followup_id)
    now = state().clock()
    result = session.get(RapidTestResult, found.result_id)
    item = session.get(TestItem, result.item_code) if result else None
    return render_template(
        "dash_followup.html",
        case=views.followup_out(session, found, now),
        site=site,
        error=error,
        standard=item.standard if item else None,
        now=now,
        rules=followup_rules.RULES,
        action_rules=followup_rules.ACTION_RULES,
        labels=followup_rules.ACTION_LABELS,
        events=followup_rules.EVENT_LABELS,
        tested_by=followup_rules.TESTED_BY,
        disposal_methods=followup_rules.DISPOSAL_METHODS,
    ), status


@bp.get("/followups/<int:followup_id>")
@login_required
def followup_page(followup_id: int) -> tuple[str, int]:
    """Show a positive's follow-up with the rules it applies and the steps allowed now."""
    return _page(followup_id)


@bp.post("/followups/<int:followup_id>/act")
@login_required
def followup_act(followup_id: int) -> tuple[str, int] | BaseResponse:
    """Take a step from the page's form; on refusal show the page again with the reason."""
    _visible(followup_id)
    form = {k: v.strip() for k, v in request.form.items() if k != "csrf_token" and v.strip()}
    session = db_session()
    try:
        data = ActionIn.model_validate(form)
    except ValidationError as exc:
        return _page(followup_id, describe(exc), 422)
    actor = f"user:{viewer().username}" + (f" {data.actor_name}" if data.actor_name else "")
    try:
        # Only regulators and admins sign in to the dashboard (users.DASHBOARD_ROLES).
        apply_action(session, followup_id, data, actor, state().clock(), regulator=True)
    except IllegalTransition as exc:
        session.rollback()
        return _page(followup_id, str(exc), 409)
    except FollowupError as exc:
        session.rollback()
        return _page(followup_id, str(exc), 422)
    session.commit()
    return redirect(f"/followups/{followup_id}", 303)
