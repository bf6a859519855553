"""Verdicts of rapid tests, derived from the item catalogue rather than trusted from devices."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

Verdict = Literal["negative", "suspect", "positive"]
VERDICTS: tuple[Verdict, ...] = ("negative", "suspect", "positive")
# How exports, the scan page, the market board and the dashboard write a verdict.
VERDICT_LABELS: dict[str, str] = {"negative": "阴性", "suspect": "可疑", "positive": "阳性"}
COMPARATORS = ("ge", "gt")
# Spellings of one unit that instruments and provincial platforms send.
_UNIT_SPELLINGS = str.maketrans({"％": "%", "μ": "µ", " ": ""})


class VerdictError(ValueError):
    """A result that the catalogue cannot judge."""


@dataclass(frozen=True, slots=True)
class ItemRule:
    """How one catalogue item (for one food category, where limits differ) judges a value."""

    code: str
    quantitative: bool
    comparator: str
    positive_threshold: float | None
    suspect_from: float | None
    category: str | None = None


class Memo(dict[Any, Any]):
    """A dict that computes what it lacks, emptied when it grows past its size."""

    def __init__(self, compute: Callable[[Any], Any], size: int = 10_000) -> None:
        self.compute = compute
        self.size = size

    def __missing__(self, key: Any) -> Any:
        if len(self) > self.size:
            self.clear()
        value = self[key] = self.compute(key)
        return value


def normalise_unit(unit: str) -> str:
    """Return a unit in one spelling: '％' is '%', 'mg/Kg' is 'mg/kg'."""
    return unit.translate(_UNIT_SPELLINGS).lower()


def is_over(comparator: str, value: float, threshold: float) -> bool:
    """Tell whether a value is over a threshold: >= for "ge", > for "gt"."""
    return value > threshold if comparator == "gt" else value >= threshold


def derive_verdict(rule: ItemRule, value: float | None, device_verdict: Verdict | None) -> Verdict:
    """Judge a result: threshold and suspect band for quantitative items.

    Qualitative items (colloidal gold strips, colour reactions) have no value: the instrument's
    or the tester's reading of the line is the observation, so the sent verdict is taken there.
    """
    if not rule.quantitative:
        if device_verdict is None:
            raise VerdictError(f"item {rule.code} is qualitative: the result needs a verdict")
        return device_verdict
    if value is None:
        raise VerdictError(f"item {rule.code} is quantitative: the result needs a value")
    if not math.isfinite(value):
        raise VerdictError(f"item {rule.code}: value {value} is not a finite number")
    if rule.positive_threshold is None:
        where = f" for food category {rule.category!r}" if rule.category else ""
        raise VerdictError(f"item {rule.code} has no threshold in the catalogue{where}")
    if is_over(rule.comparator, value, rule.positive_threshold):
        return "positive"
    if rule.suspect_from is not None and value >= rule.suspect_from:
        return "suspect"
    return "negative"
