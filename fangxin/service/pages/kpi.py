"""KPIs against the plan per district and year: targets as data, figures from the domain."""

from __future__ import annotations

import datetime as dt
import functools
import io
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from openpyxl.styles import Font
from sqlalchemy.orm import Session

from fangxin.contract.cells import safe_cell
from fangxin.service.pages import figures

KPI_FILE = Path(__file__).with_name("kpi_data.toml")
# Names of the coverage targets for districts without a licensed kitchen in their scope.
COVERAGE_NAMES = {"mclz": "明厨亮灶覆盖率", "internet_mclz": "互联网+明厨亮灶覆盖率"}
FIRST_YEAR = 2022


@functools.cache
def kpi_config() -> dict[str, Any]:
    """Return the packaged targets and populations."""
    with KPI_FILE.open("rb") as fh:
        return tomllib.load(fh)


@dataclass(frozen=True, slots=True)
class Kpi:
    """One figure of a district against its goal."""

    district: str
    code: str
    name: str
    goal: float | None
    value: float | None
    unit: str
    detail: str

    @property
    def met(self) -> bool | None:
        """Whether the figure reaches its goal (None when either is missing)."""
        if self.goal is None or self.value is None:
            return None
        return self.value >= self.goal


def year_window(year: int, tz: str) -> tuple[dt.datetime, dt.datetime]:
    """Return the local calendar year's bounds."""
    zone = ZoneInfo(tz)
    return dt.datetime(year, 1, 1, tzinfo=zone), dt.datetime(year + 1, 1, 1, tzinfo=zone)


def kpis(session: Session, year: int, now: dt.datetime, tz: str, district: str | None) -> list[Kpi]:
    """Return every district's KPIs for the year (cut at now)."""
    start, end = year_window(year, tz)
    end = min(end, now)
    cfg = kpi_config()
    targets, population = cfg["targets"], cfg["population"]
    market = figures.markets(session, start, end, district)
    kitchen = figures.kitchens(session, now, tz, district, (start, end))
    out: list[Kpi] = []
    for d in figures.districts(session, district):
        m = market.get(d, {})
        pop = population.get(d)
        tests = m.get("tests", 0)
        rt = targets["rapid_tests_per_1000"]
        per_1000 = round(tests / pop * 1000, 3) if pop else None
        out.append(
            Kpi(
                d,
                "rapid_tests",
                rt["name"],
                rt["goal"],
                per_1000,
                rt["unit"],
                f"{tests} 批次 / 常住人口 {pop or '未配置'}",
            )
        )
        for code in ("entry_check_rate", "certificate_rate"):
            t = targets[code]
            out.append(
                Kpi(
                    d,
                    code,
                    t["name"],
                    t["goal"],
                    m.get(code),
                    t["unit"],
                    f"查验批次 {m.get('lots', 0)}",
                )
            )
        cov = kitchen["coverage"].get(d, {})
        for code in ("mclz", "internet_mclz"):
            c = cov.get(code)
            goal = kitchen["goals"].get(code)
            detail = f"{c['covered_sites']}/{c['licensed_sites']} 家" if c else "无持证单位"
            name = c["name"] if c else COVERAGE_NAMES[code]
            out.append(Kpi(d, code, name, goal, c["coverage"] if c else None, "%", detail))
        row = kitchen["rows"].get(d, {})
        out.append(
            Kpi(
                d,
                "online_rate",
                "设备在线率(当前)",
                kitchen["goals"].get("online_rate"),
                row.get("online_rate_now"),
                "%",
                f"{row.get('online_now', 0)}/{row.get('devices', 0)} 台",
            )
        )
        out.append(Kpi(d, "uptime", "年度在线时长占比", None, row.get("uptime"), "%", ""))
    return out


def fmt(value: float | None, unit: str) -> str:
    """Format a figure for people (percentages as %)."""
    if value is None:
        return "—"
    return f"{value * 100:.1f}%" if unit == "%" else f"{value:g}"


def xlsx(rows: list[Kpi], year: int, as_of: dt.datetime, tz: str) -> bytes:
    """Return the KPIs as an XLSX workbook."""
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = f"{year}年指标"
    local = as_of.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M")
    sheet.append([f"{year}年 食品安全指标完成情况(数据时间 {local} {tz})"])
    sheet.append(["区县", "指标", "目标", "实际", "单位", "达标", "说明"])
    for cell in sheet[2]:
        cell.font = Font(bold=True)
    for k in rows:
        met = "" if k.met is None else ("是" if k.met else "否")
        cells = [k.district, k.name, k.goal, k.value, k.unit, met, k.detail]
        sheet.append([safe_cell(v) for v in cells])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()
