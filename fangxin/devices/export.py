"""The uptime report as CSV and XLSX (openpyxl): summary, coverage and site sheets."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

from openpyxl import Workbook

from fangxin.contract.cells import safe_cell

# Column keys and their Chinese headers, in order.
SUMMARY = (
    ("district", "区县"),
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
    ("district", "区县"),
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
    ("district", "区县"),
    ("category", "类别"),
    ("licence_no", "许可证号"),
    ("devices", "设备数"),
    ("online_now", "当前在线数"),
    ("online_s", "在线秒数"),
    ("offline_s", "离线秒数"),
    ("unknown_s", "未知秒数"),
    ("uptime", "在线时长率"),
)


def _cells(row: dict[str, Any], columns: Sequence[tuple[str, str]]) -> list[Any]:
    return [safe_cell(row.get(key)) for key, _ in columns]


def report_csv(report: dict[str, Any], table: str = "summary") -> str:
    """Render one table of the report (summary, coverage or sites) as CSV with a header row."""
    columns = {"summary": SUMMARY, "coverage": COVERAGE, "sites": SITES}[table]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([key for key, _ in columns])
    for row in report[table]:
        writer.writerow(["" if v is None else v for v in _cells(row, columns)])
    return out.getvalue()


def report_xlsx(report: dict[str, Any]) -> bytes:
    """Render the report as a workbook: 汇总, 覆盖率, 单位 and a 说明 sheet with the window."""
    book = Workbook()
    first = book.active
    assert first is not None
    book.remove(first)
    for title, table, columns in (
        ("汇总", "summary", SUMMARY),
        ("覆盖率", "coverage", COVERAGE),
        ("单位", "sites", SITES),
    ):
        sheet = book.create_sheet(title)
        sheet.append([label for _, label in columns])
        for row in report[table]:
            sheet.append(_cells(row, columns))
        sheet.freeze_panes = "A2"
    about = book.create_sheet("说明")
    for label, key in (("开始", "from"), ("结束", "to"), ("生成时间", "as_of")):
        about.append([label, report[key]])
    about.append(["仅营业时间", "是" if report["business_hours"] else "否"])
    for period in report["unknown_periods"]:
        about.append(["未知时段(采集服务未运行)", period["from"], period["to"]])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
