"""Verdicts derived from the catalogue, around the thresholds."""

from __future__ import annotations

import pytest
from flask import Flask
from sqlalchemy.orm import Session, sessionmaker

from fangxin.trace.results.models import TestItem
from fangxin.trace.results.verdicts import (
    VERDICT_LABELS,
    VERDICTS,
    ItemRule,
    VerdictError,
    derive_verdict,
)


@pytest.fixture
def ache(sessions: sessionmaker[Session]) -> ItemRule:
    """Return the seeded GB/T 5009.199 rule, as the migration stored it."""
    with sessions() as session:
        item = session.get(TestItem, "pesticide-ache")
        assert item is not None
        return ItemRule(
            item.code,
            item.quantitative,
            item.comparator,
            item.positive_threshold,
            item.suspect_from,
        )


@pytest.mark.parametrize(
    ("value", "verdict"),
    [
        (0.0, "negative"),
        (39.9, "negative"),
        (40.0, "suspect"),
        (49.9, "suspect"),
        (50.0, "positive"),
        (50.1, "positive"),
        (100.0, "positive"),
    ],
)
def test_enzyme_inhibition_thresholds(ache: ItemRule, value: float, verdict: str) -> None:
    assert derive_verdict(ache, value, None) == verdict


def test_device_verdict_is_not_trusted(ache: ItemRule) -> None:
    assert derive_verdict(ache, 62.0, "negative") == "positive"


def test_quantitative_needs_value(ache: ItemRule) -> None:
    with pytest.raises(VerdictError, match="needs a value"):
        derive_verdict(ache, None, "negative")


def test_qualitative_takes_reading() -> None:
    rule = ItemRule("clenbuterol", False, "ge", None, None)
    assert derive_verdict(rule, None, "positive") == "positive"
    with pytest.raises(VerdictError, match="needs a verdict"):
        derive_verdict(rule, None, None)


def test_strict_comparator() -> None:
    rule = ItemRule("x", True, "gt", 70.0, None)
    assert derive_verdict(rule, 70.0, None) == "negative"
    assert derive_verdict(rule, 70.1, None) == "positive"


def test_every_verdict_has_one_label() -> None:
    assert tuple(VERDICT_LABELS) == VERDICTS
    assert VERDICT_LABELS == {"negative": "阴性", "suspect": "可疑", "positive": "阳性"}


def test_pages_take_the_labels_from_the_one_place(app: Flask) -> None:
    assert app.jinja_env.globals["verdict_labels"] is VERDICT_LABELS
    template = app.jinja_env.from_string("{{ verdict_labels['suspect'] }}")
    assert template.render() == "可疑"
