"""The uptime report as CSV and XLSX (openpyxl): a row per site or device, zh-CN headers."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Sequence
from typing import Any
from zoneinfo import ZoneInfo

from openpyxl import Workbook

from fangxin.contract.cells import safe_cell
from fangxin.devices.labels import DEVICE_KINDS, SITE_KINDS, zh

# Column keys and their Chinese headers, in order.
SUMMARY = (
    ("district", "县（市、区）"),
    ("category", "类别"),
    ("sites", "单位数"),
    ("licensed_sites", "持证单位数"),
    ("covered_sites", "已覆盖单位数"),
    ("coverage", "覆盖率"),
    ("devices", "设备数"),
    ("online_now", "当前在线数"),
    ("online_rate_now", "当前在线率"),
    ("online_rate_target", "在线率目标"),
    ("online_rate_met", "在线率达标"),
    ("online_s", "在线秒数"),
    ("offline_s", "离线秒数"),
    ("unknown_s", "未知秒数"),
    ("uptime", "在线时长率"),
)
COVERAGE = (
    ("target", "目标代码"),
    ("name", "目标"),
    ("district", "县（市、区）"),
    ("licensed_sites", "持证单位数"),
    ("covered_sites", "已覆盖单位数"),
    ("coverage", "覆盖率"),
    ("goal", "目标值"),
    ("due", "期限"),
    ("met", "达标"),
)
SITES = (
    ("site", "单位编号"),
    ("name", "单位名称"),
    ("district", "县（市、区）"),
    ("category", "类别"),
    ("licence_no", "许可证号"),
    ("devices", "设备数"),
    ("online_now", "当前在线数"),
    ("online_s", "在线秒数"),
    ("offline_s", "离线秒数"),
    ("unknown_s", "未知秒数"),
    ("uptime", "在线时长率"),
)
DEVICES = (
    ("device", "设备编号"),
    ("kind", "设备类型"),
    ("site", "单位编号"),
    ("name", "单位名称"),
    ("district", "县（市、区）"),
    ("category", "类别"),
    ("online_now", "当前在线"),
    ("online_s", "在线秒数"),
    ("offline_s", "离线秒数"),
    ("unknown_s", "未知秒数"),
    ("uptime", "在线时长率"),
)
TABLES = {"summary": SUMMARY, "coverage": COVERAGE, "sites": SITES, "devices": DEVICES}
SHEETS = {"summary": "汇总", "coverage": "覆盖率", "sites": "单位", "devices": "设备"}


def _value(key: str, value: Any) -> Any:
    """Return a cell's value as a person reads it: Chinese names and 是/否, codes translated."""
    if isinstance(value, bool):
        return "是" if value else "否"
    if key == "category" and isinstance(value, str):
        return SITE_KINDS.get(value, value)
    if key == "kind" and isinstance(value, str):
        return zh(DEVICE_KINDS, value)
    return value


def _cells(row: dict[str, Any], columns: Sequence[tuple[str, str]]) -> list[Any]:
    return [safe_cell(_value(key, row.get(key))) for key, _ in columns]


def _local(iso: str, tz: str) -> str:
    """Return an ISO instant as the city's local time to the second."""
    return dt.datetime.fromisoformat(iso).astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M:%S")


def report_csv(report: dict[str, Any], table: str = "sites", *, legacy: bool = False) -> str:
    """Render one table of the report (sites, devices, summary or coverage) as zh-CN CSV.

    `legacy` keeps the v1 form of `?table=`: field keys as headers and raw codes as values.
    """
    columns = TABLES[table]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([key if legacy else label for key, label in columns])
    for row in report[table]:
        cells = [safe_cell(row.get(key)) for key, _ in columns] if legacy else _cells(row, columns)
        writer.writerow(["" if v is None else v for v in cells])
    return out.getvalue()


def report_xlsx(report: dict[str, Any], table: str = "sites", tz: str = "Asia/Shanghai") -> bytes:
    """Render the report as a workbook: the chosen rows first, 汇总, 覆盖率 and a 说明 sheet."""
    book = Workbook()
    first = book.active
    assert first is not None
    book.remove(first)
    for name in dict.fromkeys((table, "summary", "coverage")):
        columns = TABLES[name]
        sheet = book.create_sheet(SHEETS[name])
        sheet.append([label for _, label in columns])
        for row in report[name]:
            sheet.append(_cells(row, columns))
        sheet.freeze_panes = "A2"
    about = book.create_sheet("说明")
    for label, key in (("开始", "from"), ("结束", "to"), ("生成时间", "as_of")):
        about.append([label, _local(report[key], tz)])
    about.append(["时区", tz])
    about.append(["仅营业时间", "是" if report["business_hours"] else "否"])
    for period in report["unknown_periods"]:
        about.append(
            ["未知时段(采集服务未运行)", _local(period["from"], tz), _local(period["to"], tz)]
        )
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
