"""RFC 9457 problem details for every HTTP error."""

from __future__ import annotations

import logging
from typing import Any, TypeVar

from flask import Flask, Response, json, request
from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import DataError
from werkzeug.exceptions import HTTPException

from fangxin.devices import registry

M = TypeVar("M", bound=BaseModel)

_LOGGER = logging.getLogger(__name__)
PROBLEM_TYPE = "application/problem+json"


class Problem(Exception):
    """An error answered as problem+json with the given status."""

    def __init__(self, status: int, title: str, detail: str = "", **extra: Any) -> None:
        """Describe the problem; extra members go into the body."""
        super().__init__(detail or title)
        self.status = status
        self.title = title
        self.detail = detail
        self.extra = extra


def problem_response(status: int, title: str, detail: str = "", **extra: Any) -> Response:
    """Build a problem+json response."""
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    body["instance"] = request.path
    body.update(extra)
    return Response(json.dumps(body, ensure_ascii=False), status=status, mimetype=PROBLEM_TYPE)


def validation_problem(exc: ValidationError) -> Response:
    """Answer 422 with each field's error."""
    errors = [
        {"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]}
        for e in exc.errors(include_url=False)
    ]
    return problem_response(
        422, "Invalid request body", f"{len(errors)} invalid field(s)", errors=errors
    )


def init_app(app: Flask) -> None:
    """Register the handlers that turn every error into problem+json."""

    @app.errorhandler(Problem)
    def _problem(exc: Problem) -> Response:
        return problem_response(exc.status, exc.title, exc.detail, **exc.extra)

    @app.errorhandler(ValidationError)
    def _invalid(exc: ValidationError) -> Response:
        return validation_problem(exc)

    @app.errorhandler(registry.NotFound)
    def _not_registered(exc: registry.NotFound) -> Response:
        return problem_response(404, "Not Found", str(exc))

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Response:
        response = problem_response(exc.code or 500, exc.name, exc.description or "")
        if exc.code == 405 and exc.valid_methods:  # type: ignore[attr-defined]
            response.headers["Allow"] = ", ".join(exc.valid_methods)  # type: ignore[attr-defined]
        return response

    @app.errorhandler(DataError)
    def _unstorable(exc: DataError) -> Response:
        # The database refused a value (NUL in text, a number out of range): bad input, not a bug.
        _LOGGER.warning("Refused value on %s %s: %s", request.method, request.path, exc.orig)
        return problem_response(400, "Bad Request", "a value cannot be stored or searched")

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        _LOGGER.error("Unhandled error on %s %s", request.method, request.path, exc_info=exc)
        return problem_response(500, "Internal Server Error", "the error was logged")


def parse_body(model: type[M]) -> M:
    """Validate the JSON body against a model (errors become 422 problem+json)."""
    data = request.get_json(silent=True)
    if data is None:
        raise Problem(400, "Bad Request", "the body must be a JSON document")
    return model.model_validate(data)
