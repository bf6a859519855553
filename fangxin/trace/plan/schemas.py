"""Rows of the plan's imports (CSV or JSON), validated before anything is stored."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from fangxin.trace.plan.models import CATEGORIES, FORMS

Name = Annotated[str, Field(min_length=1, max_length=64)]
_YES = {"1", "true", "yes", "是", "合格", "通过", "已验收"}
_NO = {"0", "false", "no", "否", "不合格", "未通过", "未验收"}


class _Row(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class LicenceRow(_Row):
    """A line of the licence register: licence number, name, category, district, address."""

    licence_no: Name
    name: Annotated[str, Field(min_length=1, max_length=200)]
    category: str
    district: Name
    address: Annotated[str, Field(min_length=1, max_length=300)]

    @field_validator("category")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in CATEGORIES:
            raise ValueError(f"category must be one of {'、'.join(CATEGORIES)}")
        return value


class SamplingRow(_Row):
    """抽检 batches of a district in a period (inclusive dates) within one calendar year."""

    district: Name
    period_from: dt.date = Field(alias="from")
    period_to: dt.date = Field(alias="to")
    batches: Annotated[int, Field(ge=0, le=10_000_000)]

    @model_validator(mode="after")
    def _one_year(self) -> SamplingRow:
        if self.period_to < self.period_from:
            raise ValueError("to is before from")
        if self.period_to.year != self.period_from.year:
            raise ValueError("a period must lie within one calendar year (split it at 31 Dec)")
        return self


class FormRow(_Row):
    """A 明厨亮灶 form an inspection found at a licensed (or registered) kitchen."""

    licence_no: Name
    form: str
    accepted: str
    inspected_on: dt.date

    @field_validator("form")
    @classmethod
    def _form(cls, value: str) -> str:
        by_name = {v: k for k, v in FORMS.items()}
        if value in FORMS:
            return value
        if value in by_name:
            return by_name[value]
        raise ValueError("form must be glass|open|video (透明玻璃|开放式厨房|视频)")

    @field_validator("accepted")
    @classmethod
    def _flag(cls, value: str) -> str:
        if value.lower() not in _YES | _NO:
            raise ValueError("accepted must be 是 or 否 (true/false)")
        return "1" if value.lower() in _YES else "0"


class PopulationRow(_Row):
    """A unit's resident population with the document it comes from."""

    district: Name
    population: Annotated[int, Field(ge=1, le=100_000_000)]
    source: Annotated[str, Field(min_length=4, max_length=300)]


class FigureRow(_Row):
    """An imported figure of a target fangxin holds no data for (count or ratio parts)."""

    code: str
    district: Name
    year: Annotated[int, Field(ge=2000, le=2100)]
    numerator: Annotated[float, Field(ge=0)]
    denominator: Annotated[float, Field(gt=0)] | None = None

    @model_validator(mode="after")
    def _parts(self) -> FigureRow:
        if self.denominator is not None and self.numerator > self.denominator:
            raise ValueError("numerator exceeds denominator")
        return self


class RowProblem(BaseModel):
    """Why one row was refused (line counts the header as line 1)."""

    line: int
    error: str


class Imported(BaseModel):
    """What an import stored: rows new and updated."""

    kind: str
    created: int
    updated: int
