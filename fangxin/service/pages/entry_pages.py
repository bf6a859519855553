"""The dashboard's entry-check page of a market: lots, outcomes and the rules applied, sourced."""

from __future__ import annotations

from flask import Response, abort, render_template
from sqlalchemy import select

from fangxin.devices.models import Site
from fangxin.service.context import db_session, state
from fangxin.service.pages.dashboard import bp, login_required, visible_site
from fangxin.trace.certificates import entry_proofs, entry_rules
from fangxin.trace.certificates.entry_decisions import FLAG_LABELS, STATUS_LABELS, applied_rules
from fangxin.trace.certificates.models import Certificate, EntryCheck
from fangxin.trace.certificates.records import format_quantity
from fangxin.trace.results.models import TestItem

RECENT = 100


@bp.get("/sites/<site_id>/entries")
@login_required
def entries_page(site_id: str) -> str:
    """Show a market's latest entry checks with the rule (and its source) behind each outcome."""
    session = db_session()
    site = visible_site(session.get(Site, site_id))
    rows = session.execute(
        select(EntryCheck, Certificate.number)
        .outerjoin(Certificate, Certificate.id == EntryCheck.certificate_id)
        .where(EntryCheck.site_id == site.id)
        .order_by(EntryCheck.checked_at.desc(), EntryCheck.id.desc())
        .limit(RECENT)
    ).all()
    names = {code: name for code, name in session.execute(select(TestItem.code, TestItem.name_zh))}
    lots = []
    for entry, number in rows:
        proofs = entry_proofs.proofs_of(session, entry.id)
        lots.append(
            {
                "entry": entry,
                "certificate": number or entry.certificate_ref,
                "quantity": format_quantity(entry.quantity_milli),
                "proofs": proofs,
                "rules": applied_rules(entry, proofs, names),
            }
        )
    return render_template(
        "dash_entries.html",
        site=site,
        lots=lots,
        statuses=STATUS_LABELS,
        flags=FLAG_LABELS,
        categories=entry_rules.rules()["categories"],
        names=names,
        now=state().clock(),
    )


@bp.get("/sites/<site_id>/entries/<int:entry_id>/proofs/<int:proof_id>/photo")
@login_required
def proof_photo_page(site_id: str, entry_id: int, proof_id: int) -> Response:
    """Show a proof's photo to a signed-in viewer of the market's district."""
    session = db_session()
    visible_site(session.get(Site, site_id))
    entry = session.get(EntryCheck, entry_id)
    proof = entry_proofs.photo_of(session, entry_id, proof_id)
    if entry is None or entry.site_id != site_id or proof is None:
        abort(404)
    return Response(proof.photo, mimetype=proof.photo_type)
