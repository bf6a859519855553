"""The rapid-test item catalogue as data: judging results, editing items (CSV: catalogue_csv)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from fangxin.trace.results import food_categories
from fangxin.trace.results.models import ReagentLot, TestItem, TestItemLimit
from fangxin.trace.results.schemas import ItemIn, ItemOut, LimitIn, ReagentLotIn, ReagentLotOut
from fangxin.trace.results.verdicts import (
    ItemRule,
    Memo,
    Verdict,
    VerdictError,
    derive_verdict,
    normalise_unit,
)


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
    standard: str = ""
    food_categories: tuple[str, ...] = ()
    strict_scope: bool = False
    # Reagent lot -> the kit's cut-off (检出限) for qualitative items.
    cutoffs: Mapping[str, float] = field(default_factory=dict)

    def rule_for(self, category: str | None) -> ItemRule:
        """Return the rule for a food category (any alias): its own limit, else the item's."""
        name = food_categories.canonical(category) if category is not None else None
        if name is not None and name in self.limits:
            return self.limits[name]
        if name is not None and self.quantitative and self.default.positive_threshold is None:
            known = food_categories.describe(sorted(self.limits))
            raise VerdictError(
                f"item {self.code} has no limit for food category {category!r};"
                f" its categories are: {known or 'none'}"
            )
        return self.default

    def check_scope(self, category: str | None) -> None:
        """Refuse a food outside a strict item's scope (VerdictError naming the scope)."""
        if not self.strict_scope or category is None or not self.food_categories:
            return
        name = food_categories.canonical(category)
        if name in self.food_categories or food_categories.group_of(name) in self.food_categories:
            return
        raise VerdictError(
            f"item {self.code} ({self.standard}) applies only to"
            f" {'、'.join(self.food_categories)}: {category!r} is outside its scope"
        )

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
        self._rules = Memo(lambda key: self._rule(*key))

    @classmethod
    def load(cls, session: Session) -> Catalogue:
        """Read the whole catalogue."""
        limits: dict[str, dict[str, ItemRule]] = {}
        cutoffs: dict[str, dict[str, float]] = {}
        for lot in session.scalars(select(ReagentLot)):
            cutoffs.setdefault(lot.item_code, {})[lot.lot] = lot.cutoff
        for lim in session.scalars(select(TestItemLimit)):
            rule = ItemRule(
                lim.item_code,
                True,
                lim.comparator,
                lim.positive_threshold,
                lim.suspect_from,
                lim.food_category,
            )
            name = food_categories.canonical(lim.food_category)  # rows written before aliases
            limits.setdefault(lim.item_code, {})[name] = rule
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
                item.standard,
                tuple(item.food_categories or ()),
                item.strict_scope,
                cutoffs.get(item.code, {}),
            )
        return cls(entries)

    def resolve(self, code_or_name: str) -> str | None:
        """Return the code of an item given its code or its Chinese name."""
        if code_or_name in self.entries:
            return code_or_name
        return self.by_name.get(code_or_name)

    def _rule(
        self, code: str, category: str | None, unit: str | None
    ) -> tuple[Entry, ItemRule] | str:
        # What a result's item, food and unit decide, whatever its value: the entry and rule,
        # or why it cannot be judged. Kept per snapshot: every message asks the same few.
        entry = self.entries.get(code)
        if entry is None:
            return f"item {code!r} is not in the catalogue"
        if not entry.active:
            return f"item {code!r} is retired from the catalogue"
        if entry.quantitative and unit and self._units[unit] != self._units[entry.unit]:
            return f"unit {unit!r} is not the catalogue's {entry.unit!r} for {code}"
        try:
            entry.check_scope(category)
            return entry, entry.rule_for(category)
        except VerdictError as exc:
            return str(exc)

    def judge(
        self,
        code: str,
        category: str | None,
        sample_name: str,
        value: float | None,
        unit: str | None,
        device_verdict: Verdict | None,
        reagent_lot: str | None = None,
    ) -> Judgement:
        """Judge one result, or raise VerdictError saying why it cannot be judged.

        A qualitative result records its reagent lot's cut-off as its threshold when the lot
        is registered: the kit, not a fixed table, sets it.
        """
        found = self._rules[code, category, unit]
        if isinstance(found, str):
            raise VerdictError(found)
        entry, rule = found
        verdict = derive_verdict(rule, value, device_verdict)
        cutoff = entry.cutoffs.get(reagent_lot) if reagent_lot else None
        return Judgement(
            verdict,
            rule.positive_threshold if entry.quantitative else cutoff,
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
        banned=item.banned,
        strict_scope=item.strict_scope,
        suspect_basis=item.suspect_basis,
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


def list_lots(session: Session, code: str) -> list[ReagentLotOut]:
    """Return an item's registered reagent lots, by lot."""
    lots = session.scalars(
        select(ReagentLot).where(ReagentLot.item_code == code).order_by(ReagentLot.lot)
    )
    return [
        ReagentLotOut(item=code, lot=lot.lot, **ReagentLotIn.model_validate(lot).model_dump())
        for lot in lots
    ]


def put_lot(session: Session, code: str, lot: str, data: ReagentLotIn, now: dt.datetime) -> bool:
    """Register or replace a reagent lot's cut-off; return whether it was created."""
    item = session.get(TestItem, code)
    if item is None:
        raise CatalogueError(f"item {code} is not in the catalogue")
    if item.quantitative:
        raise CatalogueError(f"item {code} is quantitative: its limits are per food category")
    if not lot or len(lot) > 50:
        raise CatalogueError("a lot number has 1 to 50 characters")
    found = session.scalars(
        select(ReagentLot).where(ReagentLot.item_code == code, ReagentLot.lot == lot)
    ).first()
    created = found is None
    if found is None:
        found = ReagentLot(item_code=code, lot=lot, created_at=now)
        session.add(found)
    for name, value in data.model_dump().items():
        setattr(found, name, value)
    session.flush()
    return created
