"""The OpenAPI 3.1 document, built from the same pydantic models the handlers use.

Each blueprint module defines `openapi(spec: Spec) -> None` adding its paths; the app factory
(fangxin.service.app) lists them and hands them to build_document. This module imports no
blueprint: they all import Spec from here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from pydantic import BaseModel

from fangxin import __version__

PROBLEM_SCHEMA = {
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
_PROBLEM = {
    "description": "Problem details (RFC 9457)",
    "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
}


def json_response(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    """Describe a JSON response."""
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def path_param(name: str) -> dict[str, Any]:
    """Describe a required string path parameter."""
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


def query_param(name: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    """Describe an optional query parameter."""
    return {"name": name, "in": "query", "required": False, "schema": schema or {"type": "string"}}


class Spec:
    """Collects paths and component schemas."""

    def __init__(self) -> None:
        """Start empty, with the Problem schema."""
        self.paths: dict[str, dict[str, Any]] = {}
        self.schemas: dict[str, Any] = {"Problem": PROBLEM_SCHEMA}

    def ref(self, model: type[BaseModel]) -> dict[str, str]:
        """Register a model's schema and return a reference to it."""
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, found in {**schema.pop("$defs", {}), model.__name__: schema}.items():
            self._register(name, found)
        return {"$ref": f"#/components/schemas/{model.__name__}"}

    def _register(self, name: str, schema: dict[str, Any]) -> None:
        # Components are keyed by class name: two models of one name would silently share one
        # schema, and the API would be checked against the wrong one.
        known = self.schemas.setdefault(name, schema)
        if known != schema:
            raise ValueError(f"two different models are both named {name} in the OpenAPI document")

    def add(
        self,
        method: str,
        path: str,
        summary: str,
        responses: dict[str, Any],
        *,
        secured: bool = True,
        body: type[BaseModel] | dict[str, Any] | None = None,
        params: list[dict[str, Any]] | None = None,
    ) -> None:
        """Add one operation; every operation may also answer problem+json."""
        op: dict[str, Any] = {"summary": summary, "responses": {**responses, "default": _PROBLEM}}
        if secured:
            op["security"] = [{"bearer": []}]
        if body is not None:
            schema = body if isinstance(body, dict) else self.ref(body)
            op["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": schema}},
            }
        if params:
            op["parameters"] = params
        self.paths.setdefault(path, {})[method] = op


Part = Callable[[Spec], None]


def build_document(parts: Iterable[Part]) -> dict[str, Any]:
    """Return the OpenAPI document of the operations the parts add, in their order."""
    spec = Spec()
    for part in parts:
        part(spec)
    return {
        "openapi": "3.1.0",
        "info": {"title": "fangxin (放心) API", "version": __version__},
        "paths": spec.paths,
        "components": {
            "schemas": spec.schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
