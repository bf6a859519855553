"""Issue 16 item 5: one name for one thing, one way to page, every JSON body described."""

from __future__ import annotations

from typing import Any

from flask import Flask

from fangxin.service.app import openapi_document


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
