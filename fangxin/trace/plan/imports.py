"""Imports of the plan's data: every row is checked first; one bad row and nothing is stored."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from fangxin.devices.importer import describe
from fangxin.trace.plan.models import KitchenForm, Licence, PlanFigure, Population, SamplingCount
from fangxin.trace.plan.schemas import (
    FigureRow,
    FormRow,
    Imported,
    LicenceRow,
    PopulationRow,
    RowProblem,
    SamplingRow,
)
from fangxin.trace.plan.targets import imported_codes

CHUNK = 500


class ImportRefused(Exception):
    """Rows were refused; nothing of the import was stored."""

    def __init__(self, problems: list[RowProblem]) -> None:
        super().__init__(f"{len(problems)} row(s) refused")
        self.problems = problems


@dataclass(frozen=True, slots=True)
class Kind:
    """One import: its row model, table, key columns and how a row becomes column values."""

    model: type[BaseModel]
    table: Any
    keys: tuple[str, ...]
    values: Callable[[Any, str], dict[str, Any]]


KINDS: dict[str, Kind] = {
    "licences": Kind(
        LicenceRow, Licence, ("licence_no",), lambda r, s: {**r.model_dump(), "source": s}
    ),
    "sampling": Kind(
        SamplingRow,
        SamplingCount,
        ("district", "period_start", "period_end"),
        lambda r, s: {
            "district": r.district,
            "period_start": r.period_from,
            "period_end": r.period_to,
            "batches": r.batches,
            "source": s,
        },
    ),
    "forms": Kind(
        FormRow,
        KitchenForm,
        ("licence_no", "form", "inspected_on"),
        lambda r, s: {**r.model_dump(), "accepted": r.accepted == "1", "source": s},
    ),
    "populations": Kind(
        PopulationRow, Population, ("district",), lambda r, s: {**r.model_dump(), "confirmed": True}
    ),
    "figures": Kind(
        FigureRow,
        PlanFigure,
        ("code", "district", "year"),
        lambda r, s: {**r.model_dump(), "source": s},
    ),
}


def _check(session: Session, kind: str, rows: list[tuple[int, Any]]) -> list[RowProblem]:
    """Check across rows and against stored data (duplicates, unknown codes and licences)."""
    problems: list[RowProblem] = []
    seen: dict[tuple[Any, ...], int] = {}
    spec = KINDS[kind]
    for line, row in rows:
        key = tuple(spec.values(row, "")[k] for k in spec.keys)
        if key in seen:
            problems.append(RowProblem(line=line, error=f"same key as line {seen[key]}"))
        seen.setdefault(key, line)
        if kind == "figures" and row.code not in imported_codes():
            codes = ", ".join(sorted(imported_codes()))
            problems.append(RowProblem(line=line, error=f"code must be one of {codes}"))
    if kind == "forms":
        wanted = sorted({row.licence_no for _, row in rows})
        known: set[str] = set()
        for n in range(0, len(wanted), CHUNK):
            chunk = wanted[n : n + CHUNK]
            known.update(
                session.scalars(select(Licence.licence_no).where(Licence.licence_no.in_(chunk)))
            )
        problems += [
            RowProblem(line=line, error=f"licence {row.licence_no} is not in the register")
            for line, row in rows
            if row.licence_no not in known
        ]
    return problems


def import_rows(
    session: Session,
    kind: str,
    rows: Iterable[tuple[int, Mapping[str, object]]],
    source: str,
    now: dt.datetime,
) -> Imported:
    """Validate every (line, row) and store them all, or raise ImportRefused with each problem.

    Rows with an existing key update it (an admin's correction); the caller commits.
    """
    spec = KINDS[kind]
    parsed: list[tuple[int, Any]] = []
    problems: list[RowProblem] = []
    for line, raw in rows:
        try:
            # An empty cell means "not given", as in the device import.
            parsed.append(
                (line, spec.model.model_validate({k: v for k, v in raw.items() if v is not None}))
            )
        except ValidationError as exc:
            problems.append(RowProblem(line=line, error=describe(exc)))
    if not parsed and not problems:
        problems.append(RowProblem(line=1, error="no rows"))
    problems += _check(session, kind, parsed)
    if problems:
        raise ImportRefused(sorted(problems, key=lambda p: p.line))
    values = [spec.values(row, source) for _, row in parsed]
    stamp = "updated_at" if kind == "populations" else "imported_at"
    columns = [getattr(spec.table, k) for k in spec.keys]
    keys = [tuple(v[k] for k in spec.keys) for v in values]
    existing = {}
    for n in range(0, len(keys), CHUNK):  # SQLite bounds the parameters of one statement
        chunk = keys[n : n + CHUNK]
        for obj in session.scalars(select(spec.table).where(tuple_(*columns).in_(chunk))):
            existing[tuple(getattr(obj, k) for k in spec.keys)] = obj
    created = 0
    for key, item in zip(keys, values, strict=True):
        obj = existing.get(key)
        if obj is None:
            session.add(spec.table(**item, **{stamp: now}))
            created += 1
        else:
            for name, value in {**item, stamp: now}.items():
                setattr(obj, name, value)
    session.flush()
    return Imported(kind=kind, created=created, updated=len(values) - created)
