"""Verdicts of rapid tests, derived from the item catalogue rather than trusted from devices."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Verdict = Literal["negative", "suspect", "positive"]


class VerdictError(ValueError):
    """A result that the catalogue cannot judge."""


@dataclass(frozen=True, slots=True)
class ItemRule:
    """How one catalogue item turns a value into a verdict."""

    code: str
    quantitative: bool
    comparator: str
    positive_threshold: float | None
    suspect_from: float | None


def derive_verdict(rule: ItemRule, value: float | None, device_verdict: Verdict | None) -> Verdict:
    """Judge a result: threshold and suspect band for quantitative items.

    Qualitative items (colloidal gold strips) have no value: the instrument's reading of the
    line is the observation, so the device's verdict is taken there.
    """
    if not rule.quantitative:
        if device_verdict is None:
            raise VerdictError(f"item {rule.code} is qualitative: the result needs a verdict")
        return device_verdict
    if value is None:
        raise VerdictError(f"item {rule.code} is quantitative: the result needs a value")
    if rule.positive_threshold is None:
        raise VerdictError(f"item {rule.code} has no threshold in the catalogue")
    over = (
        value > rule.positive_threshold
        if rule.comparator == "gt"
        else (value >= rule.positive_threshold)
    )
    if over:
        return "positive"
    if rule.suspect_from is not None and value >= rule.suspect_from:
        return "suspect"
    return "negative"
