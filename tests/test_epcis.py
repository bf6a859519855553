"""EPCIS 2.0 export, validated against GS1's official JSON schema with URI format checking."""

from __future__ import annotations

import copy
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from jsonschema import Draft7Validator
from sqlalchemy.orm import Session, sessionmaker

from fangxin.trace.certificates.digital_link import gs1_check_digit
from tests.trace_helpers import (
    PURCHASER,
    auth,
    hand_over,
    issue,
    issuer,
    key,
    link_site,
    market,
    post_results,
    result,
    subject,
)

SCHEMA = json.loads((Path(__file__).parent / "data" / "EPCIS-JSON-Schema.json").read_text())
GTIN_BODY = "0695000000001"
GTIN = GTIN_BODY + str(gs1_check_digit(GTIN_BODY))


def validator() -> Draft7Validator:
    checker = Draft7Validator.FORMAT_CHECKER
    assert "uri" in checker.checkers  # rfc3986-validator installed: URIs are really checked
    return Draft7Validator(SCHEMA, format_checker=checker)


def scenario(
    client: FlaskClient, admin_key: str, sessions: sessionmaker[Session]
) -> dict[str, Any]:
    """Issue, test, re-issue, check in, recall and void: one of every event."""
    market(sessions)
    post_results(sessions, [result("evidence", 9.0)])
    subject(client, admin_key, gtin_prefix="695000000")
    link_site(client, admin_key, "s-001", "m-001")
    producer = issuer(client, admin_key, "s-001")
    parent = issue(
        client,
        producer,
        basis=["self_test"],
        gtin=GTIN,
        lot="2026-11A",
        test_result={"device": "rt-1", "id": "evidence"},
    )
    subject(client, admin_key, **PURCHASER)
    hand_over(client, producer, parent["number"])
    child = issue(
        client,
        issuer(client, admin_key, "p-001"),
        subject="p-001",
        quantity="12.5",
        upstream=[{"certificate": parent["number"], "quantity": "12.5"}],
    )
    lab = key(sessions, "lab", site_id="m-001")
    client.post(
        "/api/v1/sites/m-001/entries",
        headers=auth(lab),
        json={"certificate": child["code"], "product": "菠菜", "quantity": 12.5, "unit": "kg"},
    )
    client.post(
        "/api/v1/sites/m-001/entries",
        headers=auth(lab),
        json={"certificate": None, "product": "韭菜", "quantity": 3, "unit": "斤"},
    )
    post_results(
        sessions,
        [
            result("leek", 20.0, sample="韭菜"),
            result("lab-scan", 55.0, certificate=child["number"]),
        ],
    )
    client.post(
        f"/api/v1/certificates/{parent['number']}/recall",
        json={"reason": "阳性复检确认"},
        headers=auth(admin_key),
    )
    spare = issue(client, producer, quantity=1)
    client.post(
        f"/api/v1/certificates/{spare['number']}/revoke",
        json={"reason": "开错了"},
        headers=auth(producer),
    )
    return {"parent": parent, "child": child, "spare": spare, "producer": producer}


def test_export_validates_against_the_official_schema(
    client: FlaskClient, admin_key: str, sessions: sessionmaker[Session]
) -> None:
    made = scenario(client, admin_key, sessions)
    regulator = key(sessions, "regulator")
    response = client.get("/api/v1/epcis/events", headers=auth(regulator))
    assert response.status_code == 200
    assert response.mimetype == "application/ld+json"
    doc = response.get_json()
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator().iter_errors(doc)]
    assert errors == []
    assert doc["@context"][0] == "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
    events = doc["epcisBody"]["eventList"]
    kinds = Counter((e["type"], e.get("bizStep"), e.get("disposition")) for e in events)
    assert kinds[("ObjectEvent", "commissioning", "active")] == 2  # parent and spare
    assert kinds[("TransformationEvent", "repackaging", None)] == 1
    assert kinds[("ObjectEvent", "receiving", "sellable_accessible")] == 2
    assert kinds[("ObjectEvent", "inspecting", "conformant")] == 2  # evidence, leek
    assert kinds[("ObjectEvent", "inspecting", "non_conformant")] == 1  # the lab scan
    assert kinds[("ObjectEvent", "holding", "recalled")] == 1
    assert kinds[("ObjectEvent", "decommissioning", "inactive")] == 1
    issued = next(
        e
        for e in events
        if e.get("bizStep") == "commissioning"
        and e["ilmd"]["fx:certificateNumber"] == made["parent"]["number"]
    )
    assert issued["quantityList"] == [
        {"epcClass": f"http://localhost:8000/01/{GTIN}/10/2026-11A", "quantity": 50.0, "uom": "KGM"}
    ]
    merged = next(e for e in events if e["type"] == "TransformationEvent")
    assert merged["inputQuantityList"][0]["quantity"] == 12.5
    sensor = next(e for e in events if e.get("disposition") == "non_conformant")[
        "sensorElementList"
    ]
    assert sensor[0]["sensorReport"][0]["value"] == 55.0
    assert sensor[0]["sensorReport"][0]["uom"] == "P1"
    recall = next(e for e in events if e.get("disposition") == "recalled")
    assert recall["persistentDisposition"] == {"set": ["recalled"]}
    assert len(recall["quantityList"]) == 2  # the recalled lot and the one re-issued from it
    jin = next(
        e for e in events if e.get("bizStep") == "receiving" and "bizTransactionList" not in e
    )
    assert jin["quantityList"][0]["epcClass"].startswith("http://localhost:8000/id/entry/")


def test_filters_and_issuer_scope(
    client: FlaskClient, admin_key: str, sessions: sessionmaker[Session]
) -> None:
    made = scenario(client, admin_key, sessions)
    family = client.get(
        f"/api/v1/epcis/events?certificate={made['spare']['number']}", headers=auth(admin_key)
    ).get_json()
    steps = sorted(e["bizStep"] for e in family["epcisBody"]["eventList"])
    assert steps == ["commissioning", "decommissioning"]
    assert validator().is_valid(family)
    own = client.get("/api/v1/epcis/events", headers=auth(made["producer"])).get_json()
    numbers = {
        e["ilmd"]["fx:certificateNumber"] for e in own["epcisBody"]["eventList"] if "ilmd" in e
    }
    assert made["child"]["number"] not in numbers
    assert made["parent"]["number"] in numbers
    empty = client.get(
        "/api/v1/epcis/events?from=2099-01-01T00:00:00%2B08:00", headers=auth(admin_key)
    )
    assert empty.get_json()["epcisBody"]["eventList"] == []
    assert (
        client.get("/api/v1/epcis/events?from=yesterday", headers=auth(admin_key)).status_code
        == 400
    )
    lab = key(sessions, "lab", site_id="m-001")
    assert client.get("/api/v1/epcis/events", headers=auth(lab)).status_code == 403


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("bizStep",), "transforming"),  # not a CBV word
        (("disposition",), "in_transport"),
        (("ilmd",), {"origin": "郏县"}),  # ilmd keys must be namespaced
        (("eventTimeZoneOffset",), "+8:00"),
        (("quantityList", 0, "uom"), "kg"),
    ],
)
def test_schema_check_is_not_vacuous(path: tuple[Any, ...], value: Any) -> None:
    event = {
        "type": "ObjectEvent",
        "eventTime": "2026-11-29T08:00:00+08:00",
        "eventTimeZoneOffset": "+08:00",
        "action": "ADD",
        "bizStep": "commissioning",
        "disposition": "active",
        "quantityList": [
            {"epcClass": "http://localhost:8000/id/certificate/X", "quantity": 1.0, "uom": "KGM"}
        ],
        "ilmd": {"fx:origin": "郏县"},
    }
    doc: dict[str, Any] = {
        "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": "2026-11-29T00:00:00Z",
        "epcisBody": {"eventList": [event]},
    }
    assert validator().is_valid(doc)
    broken = copy.deepcopy(doc)
    target: Any = broken["epcisBody"]["eventList"][0]
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    assert not validator().is_valid(broken)
