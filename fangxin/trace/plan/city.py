"""The city's row of each KPI: the districts' numerators and denominators summed."""

from __future__ import annotations

from dataclasses import replace

from fangxin.trace.plan.populations import CITY
from fangxin.trace.plan.rows import NO_DATA, NOT_IMPORTED, Kpi

# Means per district do not add up to the city's without the case counts: left out.
NOT_SUMMED = frozenset({"notice_hours", "disposal_hours"})


def _sum(values: list[float | None]) -> float | None:
    given = [v for v in values if v is not None]
    return sum(given) if given else None


def city_rows(rows: list[Kpi], population: int | None) -> list[Kpi]:
    """Return one 全市 row per target from the districts' rows (population: the city's)."""
    by_code: dict[str, list[Kpi]] = {}
    for k in rows:
        if k.district != CITY:
            by_code.setdefault(k.target.code, []).append(k)
    out = []
    for code, items in by_code.items():
        if code in NOT_SUMMED:
            continue
        first, target = items[0], items[0].target
        num, den = _sum([k.numerator for k in items]), _sum([k.denominator for k in items])
        partial = any(k.missing == NOT_IMPORTED for k in items) and num is not None
        note = "仅含已导入数据的县（市、区）" if partial else ""
        if code == "sampling_per_1000":
            den = population / 1000 if population else None
            value = round(num / den, 3) if num is not None and den else None
            missing = NOT_IMPORTED if num is None else (None if population else "人口未导入")
        elif target.count or target.unit == "批次":
            value, missing = num, None if num is not None else NOT_IMPORTED
        else:
            value = round(num / den, 6) if num is not None and den else None
            missing = None if value is not None else (NOT_IMPORTED if num is None else NO_DATA)
        out.append(
            replace(
                first,
                district=CITY,
                numerator=num,
                denominator=den,
                value=value,
                missing=missing,
                note=note,
            )
        )
    return out
