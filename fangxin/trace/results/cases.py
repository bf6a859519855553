"""A positive's case described for the regulator (webhook body, alert text)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from fangxin.devices.models import Site
from fangxin.trace.results.followup_models import Followup
from fangxin.trace.results.models import RapidTestResult, TestItem


def case_payload(session: Session, followup: Followup) -> dict[str, Any]:
    """Describe a case for the regulator (webhook body, alert text)."""
    result = session.get(RapidTestResult, followup.result_id)
    site = session.get(Site, followup.site_id)
    assert result is not None
    assert site is not None
    item = session.get(TestItem, result.item_code)
    return {
        "followup": followup.id,
        "state": followup.state,
        "site": {"id": site.id, "name": site.name, "district": site.district},
        "result": {
            "id": result.result_id,
            "device": result.device_id,
            "ts": result.ts.isoformat(),
            "item": result.item_code,
            "item_name": item.name_zh if item else result.item_code,
            "value": result.value,
            "unit": result.unit,
            "threshold": result.threshold,
            "sample": result.sample_name,
            "category": result.sample_category,
            "stall": result.stall,
            "certificate": result.certificate,
        },
        "retests": followup.retests,
        "confirmed_at": followup.confirmed_at.isoformat() if followup.confirmed_at else None,
    }
