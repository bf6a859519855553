"""Food categories by GB 2760 Annex E code, with the names other standards and senders use.

The same pickle is 腌渍的蔬菜 in GB 2760 and 腌渍蔬菜 in GB 2762: limits are keyed by one
canonical name, and a result may name the category by any alias or by its code. The Annex E
codes were written from memory and are marked 待核实 until checked against the standard's text.
"""

from __future__ import annotations

from dataclasses import dataclass

ANNEX_E = "GB 2760-2024 附录E 食品分类系统（分类号待核实）"


@dataclass(frozen=True, slots=True)
class FoodCategory:
    """One food category: its GB 2760 code, canonical name, aliases and broad group."""

    # None: a market term with no GB 2760 category of its own.
    code: str | None
    name: str
    aliases: tuple[str, ...] = ()
    # The broad group market labs write (蔬菜, 水果, 肉制品, 水产品...).
    group: str | None = None


CATEGORIES: tuple[FoodCategory, ...] = (
    FoodCategory("04.01.01.02", "经表面处理的鲜水果", ("表面处理鲜水果",), "水果"),
    FoodCategory("04.01.02.02", "水果干类", ("水果干", "果干"), "水果"),
    FoodCategory("04.01.02.05", "果酱", (), "水果"),
    FoodCategory("04.01.02.08", "蜜饯凉果", ("蜜饯",), "水果"),
    FoodCategory("04.02.01.04", "豆芽菜", ("豆芽", "绿豆芽", "黄豆芽"), "蔬菜"),
    FoodCategory("04.02.02.02", "干制蔬菜", ("脱水蔬菜",), "蔬菜"),
    FoodCategory("04.02.02.03", "腌渍的蔬菜", ("腌渍蔬菜", "酱腌菜", "腌菜"), "蔬菜"),
    FoodCategory("04.03.02.02", "干制的食用菌和藻类", ("干制食用菌和藻类", "干食用菌"), "蔬菜"),
    FoodCategory("04.04.01.04", "腐竹类", ("腐竹", "油皮"), "豆制品"),
    FoodCategory("08.02.02", "腌腊肉制品类", ("腌腊肉制品", "腊肉", "咸肉"), "肉制品"),
    FoodCategory("08.03.01", "酱卤肉制品类", ("酱卤肉制品", "卤肉"), "肉制品"),
    FoodCategory("08.03.02", "熏、烧、烤肉类", ("熏烧烤肉类", "熏烧烤肉制品"), "肉制品"),
    FoodCategory("08.03.03", "油炸肉类", ("油炸肉制品",), "肉制品"),
    FoodCategory("08.03.04", "西式火腿", ("西式火腿类", "火腿"), "肉制品"),
    FoodCategory("08.03.05", "肉灌肠类", ("肉灌肠", "灌肠", "香肠"), "肉制品"),
    FoodCategory("08.03.06", "发酵肉制品类", ("发酵肉制品",), "肉制品"),
    FoodCategory("08.04", "肉罐头类", ("肉罐头", "肉类罐头"), "肉制品"),
    FoodCategory(None, "水发产品", ("水发水产品", "水发水产"), "水产品"),
    FoodCategory("09.03.04", "干水产品", ("干制水产品", "水产干制品"), "水产品"),
)
# Broad groups and the everyday names labs give their members.
GROUPS: dict[str, tuple[str, ...]] = {
    "蔬菜": ("叶菜类", "豆类蔬菜", "茄果类蔬菜", "瓜类蔬菜", "根茎类蔬菜", "鳞茎类蔬菜", "鲜蔬菜"),
    "水果": ("鲜水果", "新鲜水果", "仁果类水果", "浆果", "柑橘类水果"),
    "水产品": ("鲜活水产品", "海鲜", "淡水鱼", "海水鱼"),
}
_BY_NAME: dict[str, FoodCategory] = {}
for _category in CATEGORIES:
    for _name in (_category.code, _category.name, *_category.aliases):
        if _name:
            _BY_NAME[_name] = _category


def canonical(name: str) -> str:
    """Return the canonical name of a category given any alias or code (unknown: unchanged)."""
    found = _BY_NAME.get(name.strip())
    return found.name if found else name.strip()


def code_of(name: str) -> str | None:
    """Return the GB 2760 Annex E code of a category, or None when it has none here."""
    found = _BY_NAME.get(name.strip())
    return found.code if found else None


def group_of(name: str) -> str | None:
    """Return the broad group of a category (蔬菜, 水果, ...), or None when unknown."""
    name = name.strip()
    if name in GROUPS:
        return name
    found = _BY_NAME.get(name)
    if found is not None:
        return found.group
    return next((group for group, members in GROUPS.items() if name in members), None)


def describe(names: list[str]) -> str:
    """Describe categories with their codes and aliases, for an error message."""
    parts = []
    for name in names:
        found = _BY_NAME.get(name)
        if found is None:
            parts.append(name)
            continue
        also = f"又称 {'、'.join(found.aliases)}" if found.aliases else ""
        detail = "，".join(part for part in (found.code, also) if part)
        parts.append(f"{found.name}（{detail}）" if detail else found.name)
    return "; ".join(parts)
