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
    normalise_unit,
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


@pytest.mark.parametrize(
    ("rule", "value", "why"),
    [
        (ItemRule("x", True, "ge", 50.0, None), float("inf"), "item x: value inf is not a finite"),
        (ItemRule("x", True, "ge", 50.0, None), float("nan"), "item x: value nan is not a finite"),
        (ItemRule("x", True, "ge", None, None), 1.0, "item x has no threshold in the catalogue"),
        (
            ItemRule("so2", True, "gt", None, None, "蜜饯凉果"),
            1.0,
            "item so2 has no threshold in the catalogue for food category '蜜饯凉果'",
        ),
        (ItemRule("x", True, "ge", 50.0, None), None, "item x is quantitative: the result needs"),
        (ItemRule("y", False, "ge", None, None), None, "item y is qualitative: the result needs"),
    ],
)
def test_a_refused_judgement_says_why(rule: ItemRule, value: float | None, why: str) -> None:
    with pytest.raises(VerdictError) as refused:
        derive_verdict(rule, value, None)
    assert str(refused.value).startswith(why)


def test_no_category_no_category_in_the_reason() -> None:
    with pytest.raises(VerdictError) as refused:
        derive_verdict(ItemRule("x", True, "ge", None, None), 1.0, None)
    assert str(refused.value) == "item x has no threshold in the catalogue"


def test_suspect_band_starts_at_its_edge() -> None:
    rule = ItemRule("x", True, "ge", 50.0, 40.0)
    assert [derive_verdict(rule, v, None) for v in (39.999, 40.0, 49.999, 50.0)] == [
        "negative",
        "suspect",
        "suspect",
        "positive",
    ]


def test_units_have_one_spelling() -> None:
    assert [normalise_unit(u) for u in ("％", "mg/Kg", "MG/KG", "μg/kg", " % ")] == [
        "%",
        "mg/kg",
        "mg/kg",
        "µg/kg",
        "%",
    ]
