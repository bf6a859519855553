"""Exports of rapid-test results for regulators: CSV and XLSX with Chinese headers."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable, Iterator
from typing import Any
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font
from sqlalchemy import select
from sqlalchemy.orm import Session

from fangxin.contract.cells import safe_cell
from fangxin.devices.models import Site
from fangxin.trace.results.followup import STATES
from fangxin.trace.results.followup_models import Followup
from fangxin.trace.results.models import RapidTestResult, TestItem
from fangxin.trace.results.verdicts import VERDICT_LABELS

HEADERS = (
    "检测时间",
    "市场编号",
    "市场名称",
    "县（市、区）",
    "摊位",
    "样品名称",
    "样品类别",
    "合格证编号",
    "检测项目",
    "项目编码",
    "检测方法",
    "检测值",
    "单位",
    "判定限",
    "判定结果",
    "设备判定",
    "判定不一致",
    "假阳性风险",
    "复测原结果",
    "处置状态",
    "检测员",
    "试剂批号",
    "设备编号",
    "结果编号",
    "来源",
    "接收时间",
)
_R = RapidTestResult
_BATCH = 1000


def _yes(flag: bool) -> str:
    return "是" if flag else "否"


def export_rows(
    session: Session,
    start: dt.datetime,
    end: dt.datetime,
    zone: ZoneInfo,
    *,
    site_id: str | None = None,
    district: str | None = None,
) -> Iterator[list[Any]]:
    """Yield one row per result tested in [start, end), of a site or district, oldest first.

    Times are local (the city's zone) and naive, as spreadsheets show them.
    """
    stmt = (
        select(_R, Site.name, Site.district, TestItem.name_zh, TestItem.method, Followup.state)
        .join(Site, Site.id == _R.site_id)
        .join(TestItem, TestItem.code == _R.item_code)
        .outerjoin(Followup, Followup.result_id == _R.id)
        .where(_R.ts >= start, _R.ts < end)
        .order_by(_R.ts, _R.id)
        .execution_options(yield_per=_BATCH)
    )
    if site_id:
        stmt = stmt.where(_R.site_id == site_id)
    if district:
        stmt = stmt.where(Site.district == district)
    for r, site_name, site_district, item_name, method, state in session.execute(stmt):
        yield [
            r.ts.astimezone(zone).replace(tzinfo=None),
            r.site_id,
            site_name,
            site_district,
            r.stall,
            r.sample_name,
            r.sample_category,
            r.certificate,
            item_name,
            r.item_code,
            method,
            r.value,
            r.unit,
            r.threshold,
            VERDICT_LABELS.get(r.verdict, r.verdict),
            VERDICT_LABELS.get(r.device_verdict or "", r.device_verdict),
            _yes(r.verdict_mismatch),
            _yes(r.false_positive_risk),
            r.parent_id,
            STATES.get(state, state) if state else None,
            r.tester,
            r.reagent_lot,
            r.device_id,
            r.result_id,
            r.source,
            r.received_at.astimezone(zone).replace(tzinfo=None),
        ]


def _text(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return safe_cell(value)


def csv_chunks(rows: Iterable[list[Any]]) -> Iterator[str]:
    """Yield CSV text in chunks: a BOM first so that Excel reads the Chinese as UTF-8."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    buffer.write("\ufeff")
    writer.writerow(HEADERS)
    for count, row in enumerate(rows, start=1):
        writer.writerow([_text(v) for v in row])
        if count % _BATCH == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def xlsx_bytes(rows: Iterable[list[Any]], title: str = "快检结果") -> bytes:
    """Write an XLSX workbook (streamed write-only, so memory stays flat) and return it."""
    book = Workbook(write_only=True)
    sheet = book.create_sheet(title[:31])
    sheet.freeze_panes = "A2"
    bold = Font(bold=True)
    header = []
    for name in HEADERS:
        cell = WriteOnlyCell(sheet, value=name)
        cell.font = bold
        header.append(cell)
    sheet.append(header)
    for row in rows:
        cells = []
        for value in row:
            value = safe_cell(value)  # no formulas, no control characters
            cell = WriteOnlyCell(sheet, value=value)
            if isinstance(value, dt.datetime):
                cell.number_format = "yyyy-mm-dd hh:mm:ss"
            cells.append(cell)
        sheet.append(cells)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
