"""Issue 16 item 5: one name for one thing, one way to page, every JSON body described."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from pydantic import create_model

from fangxin.service.app import openapi_document
from fangxin.service.openapi import Spec


def _described(schema: dict[str, Any], schemas: dict[str, Any]) -> bool:
    if "$ref" in schema:
        return _described(schemas[schema["$ref"].rsplit("/", 1)[1]], schemas)
    alternatives: list[dict[str, Any]] = schema.get("oneOf") or schema.get("anyOf") or []
    if alternatives:
        return all(_described(s, schemas) for s in alternatives)
    if schema.get("type") == "array":
        return "items" in schema and _described(schema["items"], schemas)
    return bool(schema.get("properties")) or schema.get("type") not in (None, "object")


def test_every_2xx_json_body_has_a_schema(app: Flask) -> None:
    doc = openapi_document()
    schemas = doc["components"]["schemas"]
    bare = []
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            for status, response in op["responses"].items():
                body = response.get("content", {}).get("application/json")
                schema = (body or {}).get("schema", {})
                if status.startswith("2") and body is not None and not _described(schema, schemas):
                    bare.append(f"{method.upper()} {path} {status}")
    assert bare == []


def test_every_list_endpoint_pages_with_limit_and_cursor(app: Flask) -> None:
    doc = openapi_document()
    unpaged = []
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            ok = op["responses"].get("200", {}).get("content", {}).get("application/json")
            if method == "get" and ok and ok["schema"].get("type") == "array":
                names = {p["name"] for p in op.get("parameters", [])}
                has_link = "Link" in op["responses"]["200"].get("headers", {})
                if not {"limit", "cursor"} <= names or not has_link:
                    unpaged.append(path)
    assert unpaged == []


def test_two_models_of_one_name_cannot_share_a_component() -> None:
    """Components are keyed by class name: a second, different model of that name is refused."""
    first = create_model("RuleOut", name=(str, ...))
    second = create_model("RuleOut", rule=(str, ...))
    spec = Spec()
    assert spec.ref(first) == spec.ref(first)  # the same model twice is one component
    with pytest.raises(ValueError, match="both named RuleOut"):
        spec.ref(second)
    names = openapi_document()["components"]["schemas"]
    assert {"RuleOut", "EntryRuleOut", "ProofOut", "EntryProofOut"} <= set(names)
