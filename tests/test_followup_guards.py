"""Each follow-up guard: the action it refuses, on which path, and the reason people read."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from fangxin.trace.results.followup import allowed_actions, refusal
from fangxin.trace.results.followup_models import Followup

NOW = dt.datetime(2026, 11, 30, 8, 0, tzinfo=dt.UTC)
REPORTED = {"reported_at": NOW}
REFERRED = {"referral": {"number": "公（刑）2026-1"}}


def case(state: str, path: str = "repeat", **fields: Any) -> Followup:
    return Followup(state=state, path=path, **fields)


@pytest.mark.parametrize(
    ("followup", "action", "why"),
    [
        (case("confirmed", "repeat", **REPORTED), "refer", ": 行刑衔接 is for banned substances"),
        (
            case("confirmed", "banned"),
            "dispose",
            ": a banned substance is disposed of after the legal method confirms it",
        ),
        (
            case("confirmed", "banned", lab_result="negative"),
            "dispose",
            ": a banned substance is disposed of after the legal method confirms it",
        ),
        (case("confirmed", "banned", lab_result="positive"), "dispose", None),
        (case("confirmed", "repeat"), "dispose", None),
        (case("disposed", "repeat"), "close", ": report to the county 市场监管 office first"),
        (case("disposed", "repeat", **REPORTED), "close", None),
        (
            case("disposed", "banned", **REPORTED),
            "close",
            ": refer the case to the police (行刑衔接) first",
        ),
        (case("disposed", "banned", **REPORTED, **REFERRED), "close", None),
    ],
)
def test_each_guard_refuses_with_its_reason(
    followup: Followup, action: str, why: str | None
) -> None:
    assert refusal(followup, action, NOW) == why
    assert (action in allowed_actions(followup, NOW)) is (why is None)
