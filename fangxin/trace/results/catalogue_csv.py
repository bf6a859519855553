"""The item catalogue as CSV: one row per item, plus one per food category with its own limit."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping, Sequence

from pydantic import ValidationError

from fangxin.trace.results.catalogue import CatalogueError
from fangxin.trace.results.schemas import ItemIn, LimitIn

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
    "source",
    "category_code",
    "not_permitted",
    "banned",
    "strict_scope",
    "suspect_basis",
)
_LIST_SEPARATORS = re.compile(r"[、|;；,，]")
_TRUE = {"1", "true", "yes", "y", "定量", "是"}
_FALSE = {"0", "false", "no", "n", "定性", "否"}


def _split(text: str | None) -> list[str]:
    return [part.strip() for part in _LIST_SEPARATORS.split(text or "") if part.strip()]


def _flag(text: str | None, line: int, name: str = "quantitative", default: str = "1") -> bool:
    value = (text or default).strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise CatalogueError(f"line {line}: {name} must be 1/0, got {text!r}")


def _text(row: Mapping[str, str | None], name: str) -> str | None:
    return (row.get(name) or "").strip() or None


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
                    note=_text(r, "note"),
                    source=_text(r, "source"),
                    category_code=_text(r, "category_code"),
                    not_permitted=_flag(r.get("not_permitted"), n, "not_permitted", "0"),
                )
                for n, r in group
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
                    banned=_flag(head.get("banned"), line, "banned", "0"),
                    strict_scope=_flag(head.get("strict_scope"), line, "strict_scope", "0"),
                    suspect_basis=_text(head, "suspect_basis"),
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
            "banned": "1" if item.banned else "0",
            "strict_scope": "1" if item.strict_scope else "0",
            "suspect_basis": item.suspect_basis or "",
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
                    "source": lim.source or "",
                    "category_code": lim.category_code or "",
                    "not_permitted": "1" if lim.not_permitted else "0",
                }
            )
    return out.getvalue()
