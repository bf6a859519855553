"""Checks of a refusal: the status, a problem+json body that says why, and nothing stored."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy.orm import Session, sessionmaker
from werkzeug.test import TestResponse

from tests.helpers import count


def refused(response: TestResponse, status: int, *why: str) -> dict[str, Any]:
    """Assert a problem+json refusal with this status whose body names every `why`."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body: dict[str, Any] = response.get_json()
    text = json.dumps(body, ensure_ascii=False)
    missing = [w for w in why if w not in text]
    assert missing == [], f"the refusal does not say {missing}: {text}"
    return body


def nothing_stored(sessions: sessionmaker[Session], *models: Any) -> None:
    """Assert that none of these tables holds a row."""
    counts = {m.__tablename__: count(sessions, m) for m in models}
    assert counts == dict.fromkeys(counts, 0)
