"""schemathesis against the app's own /openapi.json: no 5xx, and every response as documented."""

from __future__ import annotations

import contextlib
import logging
from collections import Counter
from typing import Any

import pytest
import schemathesis
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Err
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy.orm import Session, sessionmaker

from tests import trace_helpers as th

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
EXAMPLES = 30  # per operation and strategy: 54 operations make well over 2,000 cases
MIN_CASES = 2000
_LOGGER = logging.getLogger(__name__)


def seed(client: FlaskClient, sessions: sessionmaker[Session], admin: str) -> dict[str, str]:
    """Register a market, a device, a producer, a certificate and a positive result."""
    th.market(sessions)
    _, cert = th.setup(client, admin)
    th.post_results(sessions, [th.result("r-1", 62.0, certificate=cert["number"])])
    return {
        "site_id": "m-001",
        "device_id": "rt-1",
        "subject_id": "s-001",
        "number": cert["number"],
    }


def strategies(operation: Any, known: dict[str, str]) -> list[st.SearchStrategy[Case[Any]]]:
    """Random cases, invalid cases, and random cases on the seeded rows' paths."""
    out = [
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
    ]
    names = {p.name for p in operation.path_parameters}
    if names and names <= known.keys():
        fixed = {name: known[name] for name in names}
        out.append(operation.as_strategy(GenerationMode.POSITIVE, path_parameters=fixed))
    return out


def run(
    strategy: st.SearchStrategy[Case[Any]],
    headers: dict[str, str],
    failures: list[str],
    statuses: Counter[int],
) -> int:
    """Call and validate up to EXAMPLES cases; return how many ran."""
    ran = 0

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def calls(case: Case[Any]) -> None:
        nonlocal ran
        ran += 1
        try:
            response = case.call_and_validate(headers=headers, checks=CHECKS)
            statuses[response.status_code // 100] += 1
        except (AssertionError, BaseExceptionGroup) as exc:
            # Collect instead of shrinking, so one run reports every broken operation.
            failures.append(f"{case.operation.label}: {exc}")

    # Unsatisfiable: no invalid value exists (e.g. only free-text path parameters to break).
    with contextlib.suppress(Unsatisfiable):
        calls()
    return ran


# Over 2,000 cases: a few minutes on a quiet 2-core machine, more under load (the suite's
# 300 s limit is for hangs).
@pytest.mark.timeout(900)
def test_api_conforms_to_its_openapi(
    app: Flask,
    client: FlaskClient,
    sessions: sessionmaker[Session],
    admin_key: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    known = seed(client, sessions, admin_key)
    # The 500 handler logs each error with its traceback; the failures list says enough.
    caplog.set_level(logging.CRITICAL, logger="fangxin.service.problems")
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    headers = th.auth(admin_key)
    failures: list[str] = []
    statuses: Counter[int] = Counter()
    total = 0
    operations = []
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            raise result.err()  # an operation schemathesis cannot read is a spec bug
        operations.append(result.ok())
    for operation in operations:
        for strategy in strategies(operation, known):
            total += run(strategy, headers, failures, statuses)
    _LOGGER.info("%d cases on %d operations; status classes %s", total, len(operations), statuses)
    assert len(operations) >= 50  # all but /openapi.json itself, which schemathesis skips
    assert not failures, "\n\n".join(failures[:20])
    assert total >= MIN_CASES, total
    assert statuses[2] >= 500  # the seeded rows let a good share of the cases reach the handlers


def test_spec_documents_csv_import_and_reports(client: FlaskClient) -> None:
    spec = client.get("/openapi.json").get_json()
    operation = spec["paths"]["/api/v1/devices/import"]["post"]
    assert list(operation["requestBody"]["content"]) == ["text/csv"]
    assert "422" in operation["responses"]
    report = spec["paths"]["/api/v1/uptime"]["get"]["responses"]["200"]["content"]
    assert "text/csv" in report
