"""Importing devices (and sites) from CSV: every bad row is reported, the good rows imported."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session

from fangxin.devices import registry
from fangxin.devices.schemas import Credentials, DeviceIn, ImportResult, RowError, SiteIn

DEVICE_COLUMNS = ("id", "site", "kind", "interval_s", "channel", "gb_id", "missed_beats")
M = TypeVar("M", bound=BaseModel)


def rows(text: Iterable[str]) -> Iterator[tuple[int, dict[str, str | None]]]:
    """Yield (line number, row) of a CSV with a header; empty cells become None."""
    reader = csv.DictReader(text)
    for row in reader:
        if None in row:  # more cells than the header has columns
            extra = row.pop(None)
            row["__extra__"] = ",".join(str(x) for x in extra)
        yield (
            reader.line_num,
            {k.strip(): (v.strip() or None) if v else None for k, v in row.items()},
        )


def describe(exc: Exception) -> str:
    """Return an error as one line (each field of a validation error named)."""
    if isinstance(exc, ValidationError):
        return "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'row'}: {e['msg']}"
            for e in exc.errors(include_url=False)
        )
    return str(exc)


def _import(
    session: Session,
    text: Iterable[str],
    model: type[M],
    add: Callable[[M], Credentials | None],
    progress: Callable[[int], None] | None,
) -> ImportResult:
    imported, errors, credentials = 0, [], []
    for line, row in rows(text):
        try:
            # An empty cell means "the default", not "null".
            data = model.model_validate({k: v for k, v in row.items() if v is not None})
            # A savepoint per row: a refused row rolls back alone, the others stay.
            with session.begin_nested():
                created = add(data)
            imported += 1
            if created is not None:
                credentials.append(created)
        except (ValidationError, registry.RegistryError, registry.NotFound) as exc:
            errors.append(RowError(line=line, id=row.get("id"), error=describe(exc)))
        if progress:
            progress(1)
    return ImportResult(
        imported=imported, refused=len(errors), errors=errors, credentials=credentials
    )


def import_devices(
    session: Session,
    text: Iterable[str],
    now: dt.datetime,
    progress: Callable[[int], None] | None = None,
    sip_realm: str | None = None,
) -> ImportResult:
    """Import devices from CSV (id,site,kind[,interval_s,channel,gb_id,missed_beats])."""

    def add(data: DeviceIn) -> Credentials:
        created = registry.add_device(session, data, now, sip_realm)
        return Credentials(
            device=created.id,
            mqtt_username=created.mqtt_username,
            mqtt_password=created.mqtt_password,
            sip_password=created.sip_password,
        )

    return _import(session, text, DeviceIn, add, progress)


def import_sites(
    session: Session, text: Iterable[str], progress: Callable[[int], None] | None = None
) -> ImportResult:
    """Import sites from CSV (id,kind,district,name[,category,licence_no,opens,closes])."""

    def add(data: SiteIn) -> None:
        registry.add_site(session, data)

    return _import(session, text, SiteIn, add, progress)


def count_rows(text: str) -> int:
    """Return the number of data rows of a CSV text (for a progress bar's length)."""
    return sum(1 for _ in csv.DictReader(io.StringIO(text)))


def credentials_csv(credentials: Iterable[Credentials]) -> str:
    """Render credentials as CSV (device, mqtt_username, mqtt_password[, sip_password])."""
    items = list(credentials)
    sip = any(item.sip_password for item in items)  # the column only when a device has one
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        ["device", "mqtt_username", "mqtt_password"] + (["sip_password"] if sip else [])
    )
    for item in items:
        row = [item.device, item.mqtt_username, item.mqtt_password]
        writer.writerow(row + ([item.sip_password or ""] if sip else []))
    return out.getvalue()
