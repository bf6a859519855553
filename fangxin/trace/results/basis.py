"""What the public board applied, each rule with its source: items, category limits, follow-ups."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from fangxin.trace.results import food_categories
from fangxin.trace.results.followup_rules import RULES
from fangxin.trace.results.models import TestItem, TestItemLimit
from fangxin.trace.results.schemas import ResultOut

PATH_RULES = {
    "repeat": ("suspend", "repeats", "screening", "disposal"),
    "recheck": ("suspend", "recheck", "disposal"),
    "banned": ("banned",),
}


def _item_lines(item: TestItem, limits: Sequence[TestItemLimit]) -> list[dict[str, str]]:
    name, unit = item.name_zh, item.unit
    if not item.quantitative:
        return [{"text": f"{name}：定性判定（检出限按试剂批次）", "source": item.standard}]
    if item.positive_threshold is not None:
        sign = "≥" if item.comparator == "ge" else ">"
        lines = [
            {
                "text": f"{name}：{sign}{item.positive_threshold:g}{unit} 为阳性",
                "source": item.standard,
            }
        ]
        if item.suspect_from is not None:
            band = f"{item.suspect_from:g}–{item.positive_threshold:g}{unit}"
            source = item.suspect_basis or "本地设置"
            lines.append({"text": f"{name}：{band} 为可疑，须复测", "source": source})
        return lines
    lines = []
    for lim in limits:
        what = "检出（高于方法检出限" if lim.not_permitted else "超过限量"
        text = f"{name}（{lim.food_category}）：{what} {lim.positive_threshold:g}{unit}"
        text += "）为阳性" if lim.not_permitted else " 为阳性"
        lines.append({"text": text, "source": lim.source or item.standard})
    return lines or [{"text": f"{name}：按食品类别限量判定", "source": item.standard}]


def board_basis(
    session: Session, results: Sequence[ResultOut], positives: Sequence[ResultOut]
) -> list[dict[str, str]]:
    """Return the rules the board applies, each with its source: items judged, then follow-ups."""
    categories: dict[str, set[str]] = {}
    for r in results:
        found = categories.setdefault(r.item, set())
        if r.sample_category:
            found.add(food_categories.canonical(r.sample_category))
    basis = []
    items = select(TestItem).where(TestItem.code.in_(categories)).order_by(TestItem.code)
    judged = list(session.scalars(items))
    # Items judged by category limits: their limits for the categories seen, in one query.
    by_limit = [i.code for i in judged if i.quantitative and i.positive_threshold is None]
    limits: dict[str, list[TestItemLimit]] = {}
    if by_limit:
        for lim in session.scalars(
            select(TestItemLimit)
            .where(
                TestItemLimit.item_code.in_(by_limit),
                TestItemLimit.food_category.in_(set[str]().union(*categories.values())),
            )
            .order_by(TestItemLimit.item_code, TestItemLimit.food_category)
        ):
            if lim.food_category in categories[lim.item_code]:
                limits.setdefault(lim.item_code, []).append(lim)
    for item in judged:
        basis += _item_lines(item, limits.get(item.code, []))
    paths = {p.followup.path for p in positives if p.followup}
    wanted = [
        c for path in ("repeat", "recheck", "banned") if path in paths for c in PATH_RULES[path]
    ]
    for code in dict.fromkeys(wanted):
        basis.append({"text": RULES[code].text_zh, "source": RULES[code].source_zh})
    return basis
