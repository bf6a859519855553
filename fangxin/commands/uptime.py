"""`fangxin uptime report`: the regulators' uptime report as JSON, CSV or XLSX."""

from __future__ import annotations

import json
from pathlib import Path

import click

from fangxin.commands.common import sessions, settings_of
from fangxin.days import WindowError, resolve
from fangxin.db import utcnow
from fangxin.devices.export import report_csv, report_xlsx
from fangxin.devices.fleet import Filters
from fangxin.devices.report import uptime_report


@click.group()
def uptime() -> None:
    """明厨亮灶 uptime figures."""


@uptime.command("report")
@click.option("--from", "start", default=None, help="YYYY-MM-DD or RFC 3339 (default: 24 h ago).")
@click.option("--to", "end", default=None, help="YYYY-MM-DD (included) or RFC 3339.")
@click.option("--district", default=None)
@click.option("--category", default=None)
@click.option("--business-hours", is_flag=True, help="Count only the sites' business hours.")
@click.option("--format", "fmt", type=click.Choice(["json", "csv", "xlsx"]), default="json")
@click.option("--by", type=click.Choice(["site", "device"]), default="site")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None)
@click.pass_context
def uptime_report_command(
    ctx: click.Context,
    start: str | None,
    end: str | None,
    district: str | None,
    category: str | None,
    business_hours: bool,
    fmt: str,
    by: str,
    out: Path | None,
) -> None:
    """Print or write the uptime report: online rate and coverage per district and category."""
    settings = settings_of(ctx)
    now = utcnow()
    try:
        begin, stop = resolve(start, end, now, settings.timezone)
    except WindowError as exc:
        raise click.BadParameter(str(exc)) from exc
    with sessions(settings)() as session:
        report = uptime_report(
            session,
            begin,
            stop,
            now,
            tz=settings.timezone,
            business_hours=business_hours,
            filters=Filters(district=district, category=category),
        )
    table = "devices" if by == "device" else "sites"
    if fmt == "xlsx":
        if out is None:
            raise click.BadParameter("--format xlsx needs --out FILE")
        out.write_bytes(report_xlsx(report, table, settings.timezone))
        click.echo(f"wrote {out}")
        return
    text = (
        report_csv(report, table)
        if fmt == "csv"
        else json.dumps(report, ensure_ascii=False, indent=2)
    )
    if out is None:
        click.echo(text)
    else:
        out.write_text(text, encoding="utf-8")
        click.echo(f"wrote {out}")


def register(main: click.Group) -> None:
    """Add `fangxin uptime` to `fangxin`."""
    main.add_command(uptime)
