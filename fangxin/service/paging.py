"""One way to page every list endpoint: `limit` and an opaque `cursor`, next page in `Link`."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from flask import Response, jsonify, request

from fangxin.service.openapi import json_response
from fangxin.service.problems import Problem

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000

LIMIT_PARAM: dict[str, Any] = {
    "name": "limit",
    "in": "query",
    "required": False,
    "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
}
CURSOR_PARAM: dict[str, Any] = {
    "name": "cursor",
    "in": "query",
    "required": False,
    "schema": {"type": "string"},
    "description": "the cursor of the next page, from the previous answer's Link header",
}
PAGE_PARAMS = [LIMIT_PARAM, CURSOR_PARAM]
LINK_HEADER = {
    "Link": {
        "description": 'the next page as <url>; rel="next", absent on the last page',
        "schema": {"type": "string"},
    }
}


@dataclass(frozen=True, slots=True)
class Page:
    """Which slice of a listing the caller asked for."""

    limit: int
    offset: int

    @property
    def fetch(self) -> int:
        """Rows to fetch: one more than the page, to know whether another follows."""
        return self.limit + 1


def _encode(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"o": offset}).encode()).decode().rstrip("=")


def _decode(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        offset = json.loads(raw)["o"]
    except (ValueError, KeyError, TypeError) as exc:
        raise Problem(400, "Bad query", "cursor is not one this API gave out") from exc
    if not isinstance(offset, int) or offset < 0:
        raise Problem(400, "Bad query", "cursor is not one this API gave out")
    return offset


def page_args(default_limit: int = DEFAULT_LIMIT) -> Page:
    """Parse `limit` and `cursor` of the current request (legacy `offset` is still read)."""
    args = request.args
    try:
        limit = int(args.get("limit", default_limit))
        legacy_offset = int(args.get("offset", 0))
    except ValueError as exc:
        raise Problem(400, "Bad query", "limit must be an integer") from exc
    if not 1 <= limit <= MAX_LIMIT:
        raise Problem(400, "Bad query", f"limit must be between 1 and {MAX_LIMIT}")
    offset = _decode(args["cursor"]) if args.get("cursor") else max(legacy_offset, 0)
    return Page(limit=limit, offset=offset)


def page_of(items: Sequence[Any], page: Page) -> list[Any]:
    """Return the page's slice of a whole listing held in memory."""
    return list(items[page.offset : page.offset + page.fetch])


def paged(items: Sequence[Any], page: Page) -> Response:
    """Answer a JSON array of at most `limit` items, with a Link to the next page if any."""
    response = jsonify(list(items[: page.limit]))
    if len(items) > page.limit:
        query = {k: v for k, v in request.args.items() if k not in ("cursor", "offset")}
        query["cursor"] = _encode(page.offset + page.limit)
        response.headers["Link"] = f'<{request.path}?{urlencode(query)}>; rel="next"'
    return response


def listing(items: dict[str, Any]) -> dict[str, Any]:
    """Describe a paged JSON array for OpenAPI, its next page in the Link header."""
    return json_response({"type": "array", "items": items}) | {"headers": LINK_HEADER}
