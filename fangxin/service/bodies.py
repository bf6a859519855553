"""JSON Schemas of response bodies that no pydantic model describes (for /openapi.json)."""

from __future__ import annotations

from typing import Any

S: dict[str, Any] = {"type": "string"}
INT: dict[str, Any] = {"type": "integer"}
N: dict[str, Any] = {"type": "number"}
B: dict[str, Any] = {"type": "boolean"}
OBJ: dict[str, Any] = {"type": "object"}


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    """Allow null besides the schema."""
    return {"anyOf": [schema, {"type": "null"}]}


def obj(required: tuple[str, ...] = (), **props: dict[str, Any]) -> dict[str, Any]:
    """Describe an object with these properties, of which `required` must be present."""
    return {"type": "object", "properties": props, "required": list(required)}


def array(items: dict[str, Any]) -> dict[str, Any]:
    """Describe an array of items."""
    return {"type": "array", "items": items}


COUNTS = obj(
    ("negative", "suspect", "positive", "total"), negative=INT, suspect=INT, positive=INT, total=INT
)
SITE_STATUS = obj(
    ("site", "date", "as_of", "results_today", "devices", "alarms"),
    site=OBJ,
    date={"type": "string", "format": "date"},
    as_of=S,
    results_today=COUNTS,
    last_result_at=nullable(S),
    tests_today=INT,
    pass_rate_today=nullable(N),
    open_cases=INT,
    devices=obj(("known", "online"), known=INT, online=INT),
    alarms=obj(("open",), open=INT, today=OBJ),
    entry_checks_today=OBJ,
    entry_checks_waiting_for_test=INT,
    entry_checks_waiting_for_visual_check=INT,
)
OUTCOME = obj(
    ("index", "status"),
    index=INT,
    id=S,
    device=S,
    status={"enum": ["stored", "duplicate", "rejected"]},
    verdict=S,
    error=S,
    kind=S,
)
POSTED = obj(
    ("stored", "duplicate", "rejected", "results"),
    stored=INT,
    duplicate=INT,
    rejected=INT,
    results=array(OUTCOME),
)
DAY_SUMMARY = obj(
    ("tests", "negatives", "suspect", "positives", "retests"),
    tests=INT,
    negatives=INT,
    suspect=INT,
    positives=INT,
    retests=INT,
    pass_rate=nullable(N),
    last_test_at=nullable(S),
    open_cases=INT,
)
FOLLOWUP_ROW = obj(
    ("id", "state", "state_zh", "retests", "site"),
    id=INT,
    state=S,
    state_zh=S,
    retests=INT,
    disposal=nullable(S),
    site=S,
)
ALERT = obj(
    ("id", "followup_id", "site_id", "district", "kind", "title", "created_at", "read"),
    id=INT,
    followup_id=INT,
    site_id=S,
    district=nullable(S),
    kind=S,
    title=S,
    body=nullable(S),
    created_at=S,
    read=B,
)
ALERT_READ = obj(("id", "read_at"), id=INT, read_at=S)
RETIRED = obj(("code", "active"), code=S, active=B)
WEBHOOK_CREATED = obj(("id", "url", "secret"), id=INT, url=S, secret=S)
ATTEMPT = obj(
    ("at", "ok"), at=S, ok=B, status_code=nullable(INT), error=nullable(S), duration_ms=nullable(N)
)
DELIVERY = obj(
    ("id", "event", "status", "attempts"),
    id=INT,
    endpoint=nullable(S),
    event=S,
    event_key=S,
    status=S,
    attempts=array(ATTEMPT),
    next_attempt_at=S,
    delivered_at=nullable(S),
)
ISSUER_KEY = obj(("subject", "role", "key"), subject=S, role={"const": "issuer"}, key=S)
HEALTH = obj(("status",), status={"const": "ok"})
READY = obj(("status", "checks"), status={"const": "ready"}, checks={"type": "object"})
OPENAPI_DOC = obj(("openapi", "info", "paths"), openapi=S, info=OBJ, paths=OBJ, components=OBJ)
JWKS = obj(("keys",), keys=array(OBJ))
OFFLINE_DEVICE = obj(
    ("device", "site", "kind"),
    device=S,
    site=S,
    site_name=S,
    district=nullable(S),
    category=nullable(S),
    kind=S,
    offline_since=nullable(S),
    offline_s=nullable(N),
    last_seen_at=nullable(S),
)
PERIOD = obj(("from", "to"), **{"from": S, "to": S})
DEVICE_UPTIME = obj(("device", "site", "from", "to"), device=S, site=S, **{"from": S, "to": S})
UPTIME_REPORT = obj(
    ("from", "to", "as_of", "business_hours", "sites", "devices"),
    as_of=S,
    business_hours=B,
    unknown_periods=array(PERIOD),
    sites=array(OBJ),
    devices=array(OBJ),
    **{"from": S, "to": S},
)
WORST = obj(
    ("from", "to", "devices", "sites"), devices=array(OBJ), sites=array(OBJ), **{"from": S, "to": S}
)
