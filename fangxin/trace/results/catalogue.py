"""The rapid-test item catalogue as data: judging results, editing items, CSV import/export."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from pydantic import ValidationError
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from fangxin.trace.results.models import TestItem, TestItemLimit
from fangxin.trace.results.schemas import ItemIn, ItemOut, LimitIn
from fangxin.trace.results.verdicts import (
    ItemRule,
    Memo,
    Verdict,
    VerdictError,
    derive_verdict,
    normalise_unit,
)

CSV_COLUMNS = (
    "code",
    "name_zh",
    "method",
    "standard",
    "unit",
    "quantitative",
    "comparator",
    "threshold",
    "suspect_from",
    "food_category",
    "applies_to",
    "false_positives",
    "note",
)
_LIST_SEPARATORS = re.compile(r"[、|;；,，]")
_TRUE = {"1", "true", "yes", "y", "定量", "是"}
_FALSE = {"0", "false", "no", "n", "定性", "否"}


class CatalogueError(ValueError):
    """A catalogue edit or import that cannot be applied."""


@dataclass(frozen=True, slots=True)
class Judgement:
    """A result judged against the catalogue: the verdict and the limit it was judged by."""

    verdict: Verdict
    threshold: float | None
    comparator: str | None
    false_positive_risk: bool


@dataclass(frozen=True, slots=True)
class Entry:
    """One catalogue item, ready to judge results."""

    code: str
    name_zh: str
    unit: str
    quantitative: bool
    active: bool
    default: ItemRule
    limits: Mapping[str, ItemRule] = field(default_factory=dict)
    false_positive_foods: tuple[str, ...] = ()

    def rule_for(self, category: str | None) -> ItemRule:
        """Return the rule for a food category: its own limit if any, else the item's."""
        if category is not None and category in self.limits:
            return self.limits[category]
        if category is not None and self.default.positive_threshold is None:
            return ItemRule(
                self.code, self.quantitative, self.default.comparator, None, None, category
            )
        return self.default

    def false_positive_risk(self, sample_name: str) -> bool:
        """Tell whether the sample is a food this method is known to misjudge."""
        return any(food in sample_name for food in self.false_positive_foods)


class Catalogue:
    """A snapshot of the catalogue (the pipeline caches one for a few seconds)."""

    def __init__(self, entries: Mapping[str, Entry]) -> None:
        """Hold the entries by code, and by Chinese name for senders that use names."""
        self.entries = dict(entries)
        self.by_name = {e.name_zh: e.code for e in entries.values()}
        # Every message asks again about the same few units and foods: answers kept per snapshot.
        self._units = Memo(normalise_unit)
        self._risks = Memo(lambda key: self.entries[key[0]].false_positive_risk(key[1]))

    @classmethod
    def load(cls, session: Session) -> Catalogue:
        """Read the whole catalogue."""
        limits: dict[str, dict[str, ItemRule]] = {}
        for lim in session.scalars(select(TestItemLimit)):
            rule = ItemRule(
                lim.item_code,
                True,
                lim.comparator,
                lim.positive_threshold,
                lim.suspect_from,
                lim.food_category,
            )
            limits.setdefault(lim.item_code, {})[lim.food_category] = rule
        entries = {}
        for item in session.scalars(select(TestItem)):
            default = ItemRule(
                item.code,
                item.quantitative,
                item.comparator,
                item.positive_threshold,
                item.suspect_from,
            )
            entries[item.code] = Entry(
                item.code,
                item.name_zh,
                item.unit,
                item.quantitative,
                item.active,
                default,
                limits.get(item.code, {}) if item.quantitative else {},
                tuple(item.false_positive_foods or ()),
            )
        return cls(entries)

    def resolve(self, code_or_name: str) -> str | None:
        """Return the code of an item given its code or its Chinese name."""
        if code_or_name in self.entries:
            return code_or_name
        return self.by_name.get(code_or_name)

    def judge(
        self,
        code: str,
        category: str | None,
        sample_name: str,
        value: float | None,
        unit: str | None,
        device_verdict: Verdict | None,
    ) -> Judgement:
        """Judge one result, or raise VerdictError saying why it cannot be judged."""
        entry = self.entries.get(code)
        if entry is None:
            raise VerdictError(f"item {code!r} is not in the catalogue")
        if not entry.active:
            raise VerdictError(f"item {code!r} is retired from the catalogue")
        if entry.quantitative and unit and self._units[unit] != self._units[entry.unit]:
            raise VerdictError(f"unit {unit!r} is not the catalogue's {entry.unit!r} for {code}")
        rule = entry.rule_for(category)
        verdict = derive_verdict(rule, value, device_verdict)
        return Judgement(
            verdict,
            rule.positive_threshold if entry.quantitative else None,
            rule.comparator if entry.quantitative else None,
            self._risks[code, sample_name],
        )


def item_out(item: TestItem, limits: Sequence[TestItemLimit]) -> ItemOut:
    """Describe a stored item with its per-category limits."""
    return ItemOut(
        code=item.code,
        name_zh=item.name_zh,
        method=item.method,
        standard=item.standard,
        unit=item.unit,
        quantitative=item.quantitative,
        comparator=item.comparator,
        positive_threshold=item.positive_threshold,
        suspect_from=item.suspect_from,
        food_categories=list(item.food_categories or []),
        false_positive_foods=list(item.false_positive_foods or []),
        note=item.note,
        active=item.active,
        limits=[LimitIn.model_validate(lim) for lim in limits],
        updated_at=item.updated_at,
    )


def list_items(session: Session, include_retired: bool = False) -> list[ItemOut]:
    """Return the catalogue, item by item, with limits."""
    stmt = select(TestItem).order_by(TestItem.code)
    if not include_retired:
        stmt = stmt.where(TestItem.active.is_(True))
    limits: dict[str, list[TestItemLimit]] = {}
    order = (TestItemLimit.item_code, TestItemLimit.food_category)
    for lim in session.scalars(select(TestItemLimit).order_by(*order)):
        limits.setdefault(lim.item_code, []).append(lim)
    return [item_out(item, limits.get(item.code, [])) for item in session.scalars(stmt)]


def get_item(session: Session, code: str) -> ItemOut | None:
    """Return one item with its limits, or None."""
    item = session.get(TestItem, code)
    if item is None:
        return None
    limits = session.scalars(
        select(TestItemLimit)
        .where(TestItemLimit.item_code == code)
        .order_by(TestItemLimit.food_category)
    ).all()
    return item_out(item, limits)


def put_item(session: Session, data: ItemIn, now: dt.datetime) -> bool:
    """Create or replace an item and its limits; return whether it was created."""
    item = session.get(TestItem, data.code)
    created = item is None
    if item is None:
        item = TestItem(code=data.code)
        session.add(item)
    for name in ItemIn.model_fields:
        if name not in ("code", "limits"):
            setattr(item, name, getattr(data, name))
    item.updated_at = now
    session.flush()
    session.execute(delete(TestItemLimit).where(TestItemLimit.item_code == data.code))
    for lim in data.limits:
        session.add(TestItemLimit(item_code=data.code, **lim.model_dump()))
    session.flush()
    return created


def retire_item(session: Session, code: str, now: dt.datetime) -> bool:
    """Retire an item (results naming it stay; new ones are refused); False if unknown."""
    item = session.get(TestItem, code)
    if item is None:
        return False
    item.active, item.updated_at = False, now
    return True


def _split(text: str | None) -> list[str]:
    return [part.strip() for part in _LIST_SEPARATORS.split(text or "") if part.strip()]


def _flag(text: str | None, line: int) -> bool:
    value = (text or "1").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise CatalogueError(f"line {line}: quantitative must be 1/0 (定量/定性), got {text!r}")


def _number(text: str | None) -> float | None:
    return float(text) if text and text.strip() else None


def items_from_csv(rows: Iterable[Mapping[str, str | None]]) -> tuple[list[ItemIn], list[str]]:
    """Build items from CSV rows (one per item, plus one per food category with its own limit).

    Returns the valid items and a message per refused item.
    """
    grouped: dict[str, list[tuple[int, Mapping[str, str | None]]]] = {}
    for line, row in enumerate(rows, start=2):
        code = (row.get("code") or "").strip()
        grouped.setdefault(code, []).append((line, row))
    items, errors = [], []
    for code, group in grouped.items():
        try:
            base = next((r for r in group if not (r[1].get("food_category") or "").strip()), None)
            line, head = base or group[0]
            limits = [
                LimitIn(
                    food_category=(r.get("food_category") or "").strip(),
                    comparator=(r.get("comparator") or "gt").strip(),
                    positive_threshold=_number(r.get("threshold")),
                    suspect_from=_number(r.get("suspect_from")),
                    note=(r.get("note") or "").strip() or None,
                )
                for _, r in group
                if (r.get("food_category") or "").strip()
            ]
            items.append(
                ItemIn(
                    code=code,
                    name_zh=(head.get("name_zh") or "").strip(),
                    method=(head.get("method") or "").strip(),
                    standard=(head.get("standard") or "").strip(),
                    unit=(head.get("unit") or "").strip(),
                    quantitative=_flag(head.get("quantitative"), line),
                    comparator=((head.get("comparator") or "ge").strip() if base else "ge"),
                    positive_threshold=_number(head.get("threshold")) if base else None,
                    suspect_from=_number(head.get("suspect_from")) if base else None,
                    food_categories=_split(head.get("applies_to")),
                    false_positive_foods=_split(head.get("false_positives")),
                    note=((head.get("note") or "").strip() or None) if base else None,
                    limits=limits,
                )
            )
        except (ValidationError, ValueError) as exc:
            lines = ", ".join(str(n) for n, _ in group)
            errors.append(f"item {code or '(no code)'} (line {lines}): {exc}")
    return items, errors


def items_to_csv(items: Sequence[ItemIn]) -> str:
    """Write items as CSV in the import's layout (UTF-8 text, one row per limit)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for item in items:
        common = {
            "code": item.code,
            "name_zh": item.name_zh,
            "method": item.method,
            "standard": item.standard,
            "unit": item.unit,
            "quantitative": "1" if item.quantitative else "0",
            "applies_to": "、".join(item.food_categories),
            "false_positives": "、".join(item.false_positive_foods),
        }
        writer.writerow(
            {
                **common,
                "comparator": item.comparator,
                "threshold": item.positive_threshold if item.positive_threshold is not None else "",
                "suspect_from": item.suspect_from if item.suspect_from is not None else "",
                "note": item.note or "",
            }
        )
        for lim in item.limits:
            writer.writerow(
                {
                    **common,
                    "comparator": lim.comparator,
                    "threshold": lim.positive_threshold,
                    "suspect_from": lim.suspect_from if lim.suspect_from is not None else "",
                    "food_category": lim.food_category,
                    "note": lim.note or "",
                }
            )
    return out.getvalue()
