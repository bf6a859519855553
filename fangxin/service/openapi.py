"""The OpenAPI 3.1 document, built from the same pydantic models the handlers use."""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic import BaseModel

from fangxin import __version__
from fangxin.devices.schemas import DeviceCreated, DeviceIn, DeviceOut, SiteIn, SiteOut

_PROBLEM = {
    "description": "Problem details (RFC 9457)",
    "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
}


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _op(
    summary: str,
    responses: dict[str, Any],
    *,
    secured: bool = True,
    body: Any = None,
    params: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "responses": {**responses, "default": _PROBLEM}}
    if secured:
        op["security"] = [{"bearer": []}]
    if body is not None:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _ref(body)}},
        }
    if params:
        op["parameters"] = params
    return op


def _path_param(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


def _query_param(name: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": {"type": "string"}}


@cache
def build_spec() -> dict[str, Any]:
    """Return the OpenAPI document (built once per process)."""
    models: list[type[BaseModel]] = [SiteIn, SiteOut, DeviceIn, DeviceOut, DeviceCreated]
    schemas: dict[str, Any] = {}
    for model in models:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    schemas["Problem"] = {
        "type": "object",
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
            "instance": {"type": "string"},
        },
        "required": ["title", "status"],
    }
    status_schema = {"type": "object", "required": ["site", "date", "results_today", "devices"]}
    paths = {
        "/api/v1/sites": {
            "post": _op("Register a site", {"201": _json(_ref(SiteOut), "Created")}, body=SiteIn),
            "get": _op(
                "List sites",
                {"200": _json({"type": "array", "items": _ref(SiteOut)})},
                params=[_query_param("district")],
            ),
        },
        "/api/v1/devices": {
            "post": _op(
                "Register a device (answer carries its MQTT password once)",
                {"201": _json(_ref(DeviceCreated), "Created")},
                body=DeviceIn,
            ),
            "get": _op(
                "List devices",
                {"200": _json({"type": "array", "items": _ref(DeviceOut)})},
                params=[_query_param("site")],
            ),
        },
        "/api/v1/sites/{site_id}/status": {
            "get": _op(
                "Smart-market status of a site",
                {"200": _json(status_schema)},
                secured=False,
                params=[_path_param("site_id")],
            ),
        },
        "/healthz": {"get": _op("Liveness", {"200": _json({"type": "object"})}, secured=False)},
        "/readyz": {
            "get": _op(
                "Readiness: database, broker, sink",
                {"200": _json({"type": "object"})},
                secured=False,
            )
        },
        "/metrics": {
            "get": _op(
                "Prometheus metrics",
                {
                    "200": {
                        "description": "OK",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
                secured=False,
            )
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "fangxin (放心) API", "version": __version__},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
