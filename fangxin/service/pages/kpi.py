"""The KPI page and its XLSX export: figures from fangxin.trace.plan with their sources."""

from __future__ import annotations

import datetime as dt
import io
from zoneinfo import ZoneInfo

from flask import Response, abort, render_template, request
from openpyxl import Workbook
from openpyxl.styles import Font
from sqlalchemy.orm import Session

from fangxin.config import Settings
from fangxin.contract.cells import safe_cell
from fangxin.days import local_day
from fangxin.service.context import db_session, state
from fangxin.service.pages.dashboard import bp, login_required, viewer, xlsx_response
from fangxin.trace.plan.kpis import kpis, plan_note
from fangxin.trace.plan.rows import Kpi
from fangxin.trace.plan.targets import Target, plan

COLUMNS = (
    "县（市、区）",
    "指标",
    "条款",
    "定义",
    "分子",
    "分子来源",
    "分母",
    "分母来源",
    "期间",
    "实际",
    "目标",
    "目标性质",
    "达标",
    "说明",
)


def _this_year() -> int:
    """Return the current year in the city's time zone (the plan's years are local)."""
    return local_day(state().clock(), state().settings.timezone)[0].year


def _year() -> int:
    now_year = _this_year()
    try:
        year = int(request.args.get("year", now_year))
    except ValueError:
        abort(400)
    if not plan().first_year <= year <= now_year:
        abort(404)
    return year


@bp.get("/kpi")
@login_required
def kpi_page() -> str:
    """Show the targets against progress per district for a year, with their sources."""
    year, now, settings = _year(), state().clock(), state().settings
    rows = year_kpis(db_session(), year, now, settings, viewer().district)
    return render_template(
        "dash_kpi.html",
        rows=rows,
        year=year,
        years=list(range(_this_year(), plan().first_year - 1, -1)),
        now=now,
        plan=plan(),
        note=plan_note(plan(), year),
        share=settings.internet_mclz_min_share,
        k=Helpers,
    )


@bp.get("/kpi.xlsx")
@login_required
def kpi_xlsx() -> Response:
    """Export the year's KPIs as XLSX (the page's columns)."""
    year, now, settings = _year(), state().clock(), state().settings
    rows = year_kpis(db_session(), year, now, settings, viewer().district)
    body = xlsx(rows, year, now, settings.timezone, settings.internet_mclz_min_share)
    return xlsx_response(body, f"kpi-{year}.xlsx")


def year_kpis(
    session: Session, year: int, now: dt.datetime, settings: Settings, district: str | None
) -> list[Kpi]:
    """Return the year's KPIs for the viewer's scope, reused for the dashboard's cache time."""

    def compute() -> list[Kpi]:
        return kpis(
            session,
            year,
            now,
            tz=settings.timezone,
            district=district,
            share=settings.internet_mclz_min_share,
        )

    rows: list[Kpi] = state().figures.get(("kpis", year, district), compute)
    return rows


def fmt(value: float | None, unit: str) -> str:
    """Format a figure for people (percentages as %)."""
    if value is None:
        return "—"
    return f"{value * 100:.1f}%" if unit == "%" else f"{value:g}"


def definition(target: Target, share: float) -> str:
    """Return the target's definition with the local settings filled in."""
    return target.definition.replace("{share}", f"{share * 100:g}%")


def goal_text(k: Kpi) -> str:
    """Return the goal as people read it, with its due year."""
    if k.goal is None:
        return "无目标"
    text = fmt(k.goal, k.target.unit) + ("" if k.target.unit == "%" else f" {k.target.unit}")
    due = f"（{k.target.due}年底）" if k.target.due else ""
    return ("≤ " if k.target.lower_is_better else "≥ ") + text + due


def basis(k: Kpi) -> str:
    """Return whether the goal is the plan's or a local one."""
    if k.goal is None:
        return "—"
    return "本地目标（本地设置）" if k.local else f"方案 {k.target.clause}"


def met_text(k: Kpi) -> str:
    """Return 达标 / 未达标 / — for a figure."""
    return "—" if k.met is None else ("达标" if k.met else "未达标")


def value_text(k: Kpi) -> str:
    """Return the figure, or why there is none (未导入, never a made-up zero)."""
    if k.value is None:
        return k.missing or "—"
    unit = "" if k.target.unit == "%" else f" {k.target.unit}"
    return fmt(k.value, k.target.unit) + unit


def number(value: float | None) -> str:
    """Format a numerator or denominator."""
    return "—" if value is None else f"{value:g}"


def xlsx(rows: list[Kpi], year: int, as_of: dt.datetime, tz: str, share: float) -> bytes:
    """Return the KPIs as an XLSX workbook with clause, definition, sources and period."""
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = f"{year}年指标"
    local = as_of.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M")
    sheet.append([f"{year}年 食品安全指标完成情况（数据时间 {local} {tz}）"])
    sheet.append([plan_note(plan(), year)])
    sheet.append(list(COLUMNS))
    for cell in sheet[3]:
        cell.font = Font(bold=True)
    for k in rows:
        t = k.target
        cells = [
            k.district,
            t.name,
            f"{t.clause} {t.quote}",
            definition(t, share),
            k.numerator,
            t.numerator,
            k.denominator,
            t.denominator,
            k.period,
            k.value if k.value is not None else k.missing,
            goal_text(k),
            basis(k),
            met_text(k),
            k.note,
        ]
        sheet.append([safe_cell(v) for v in cells])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


class Helpers:
    """The formatting functions the template uses."""

    definition = staticmethod(definition)
    goal = staticmethod(goal_text)
    basis = staticmethod(basis)
    met = staticmethod(met_text)
    value = staticmethod(value_text)
    number = staticmethod(number)
