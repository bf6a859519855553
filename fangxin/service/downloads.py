"""File downloads shared by the API and the dashboard: the same bytes whichever door asks."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Response

from fangxin.devices.export import report_csv, report_xlsx
from fangxin.devices.schemas import ReportQuery

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def uptime_name(start: dt.datetime, end: dt.datetime, query: ReportQuery) -> str:
    """Return the export's file name without extension."""
    rows = query.table or ("devices" if query.by == "device" else "sites")
    return f"uptime-{start:%Y%m%d}-{end:%Y%m%d}-{rows}"


def uptime_download(report: dict[str, Any], query: ReportQuery, tz: str) -> Response:
    """Return the uptime report as the CSV or XLSX file the query asks for."""
    start = dt.datetime.fromisoformat(report["from"])
    end = dt.datetime.fromisoformat(report["to"])
    name = uptime_name(start, end, query)
    table = "devices" if query.by == "device" else "sites"
    if query.format == "csv":
        legacy = query.table is not None
        text = report_csv(report, query.table or table, legacy=legacy)
        return Response(
            "\ufeff" + text,  # the BOM lets Excel read UTF-8
            mimetype="text/csv",
            headers={"Content-Disposition": f"attachment; filename={name}.csv"},
        )
    return Response(
        report_xlsx(report, table, tz),
        mimetype=XLSX,
        headers={"Content-Disposition": f"attachment; filename={name}.xlsx"},
    )
