"""Units the plan addresses and the census figures shipped (migration 0012 seeds them)."""

from __future__ import annotations

CITY = "全市"
CENSUS = "第七次全国人口普查（2020年11月1日零时）"
YE_BULLETIN = "叶县第七次全国人口普查公报（叶县统计局，2021年6月18日）表1"
UNCONFIRMED = "未核实（本地设置）：待管理员导入平顶山市第七次全国人口普查公报数据"
# Units the plan's notice addresses (各县（市、区）人民政府，城乡一体化示范区、高新区管委会).
UNITS = (
    "新华区",
    "卫东区",
    "湛河区",
    "石龙区",
    "宝丰县",
    "叶县",
    "鲁山县",
    "郏县",
    "舞钢市",
    "汝州市",
    "城乡一体化示范区",
    "高新区",
)
# Only the figures a source confirmed; the others ship empty rather than made up.
CONFIRMED = {CITY: 4_987_137, "叶县": 702_345}
