"""`fangxin plan import KIND FILE.csv`: the plan's data (licences, 抽检, 明厨亮灶 forms, ...)."""

from __future__ import annotations

import io
from pathlib import Path

import click

from fangxin.commands.common import sessions, settings_of, summary
from fangxin.db import utcnow
from fangxin.devices.importer import rows
from fangxin.trace.plan.imports import KINDS, ImportRefused, import_rows

COLUMNS = {
    "licences": "licence_no,name,category,district,address",
    "sampling": "district,from,to,batches (抽检; inclusive dates within one year)",
    "forms": "licence_no,form (glass|open|video),accepted (是|否),inspected_on",
    "populations": "district,population,source",
    "figures": "code,district,year,numerator[,denominator]",
}


@click.group()
def plan() -> None:
    """Import the data of the plan's figures that fangxin does not collect itself."""


@plan.command(
    "import",
    epilog="Columns: " + "; ".join(f"{k}: {v}" for k, v in COLUMNS.items()),
)
@click.argument("kind", type=click.Choice(list(KINDS)))
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--source", default="", help="Document, office and date the rows come from.")
@click.pass_context
def import_command(ctx: click.Context, kind: str, path: Path, source: str) -> None:
    """Import a CSV (UTF-8, header row); one bad row and nothing is imported."""
    if not source and kind != "populations":
        raise click.BadParameter("name the source (document, office, date)", param_hint="--source")
    factory = sessions(settings_of(ctx))
    text = path.read_text(encoding="utf-8-sig")
    with factory() as session:
        try:
            result = import_rows(
                session, kind, list(rows(io.StringIO(text))), source or path.name, utcnow()
            )
        except ImportRefused as exc:
            session.rollback()
            summary("0 rows imported", [f"line {p.line}: {p.error}" for p in exc.problems])
            raise click.exceptions.Exit(1) from exc
        session.commit()
    click.echo(f"{kind}: {result.created} created, {result.updated} updated")


def register(main: click.Group) -> None:
    """Add the `plan` group to the `fangxin` command."""
    main.add_command(plan)
