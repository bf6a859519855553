"""Pydantic models of the catalogue, results and follow-ups at the doors (HTTP, CLI, CSV)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from fangxin.contract.payloads import NoNul

ItemCode = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_.\-]*$")]
Comparator = Literal["ge", "gt"]
Name = Annotated[str, Field(min_length=1, max_length=100), NoNul]
Category = Annotated[str, Field(min_length=1, max_length=50), NoNul]


def _check_band(threshold: float | None, suspect_from: float | None) -> None:
    if suspect_from is not None and (threshold is None or suspect_from >= threshold):
        raise ValueError("suspect_from must lie below positive_threshold")


class LimitIn(BaseModel):
    """The limit of an item for one food category (e.g. a GB 2760 maximum level)."""

    model_config = ConfigDict(extra="forbid", from_attributes=True)

    food_category: Category
    comparator: Comparator = "gt"
    positive_threshold: float = Field(allow_inf_nan=False)
    suspect_from: float | None = Field(default=None, allow_inf_nan=False)
    note: Annotated[str, Field(max_length=200), NoNul] | None = None

    @model_validator(mode="after")
    def _band(self) -> Self:
        _check_band(self.positive_threshold, self.suspect_from)
        return self


class ItemBody(BaseModel):
    """A catalogue item as an admin writes it (the code is in the path)."""

    model_config = ConfigDict(extra="forbid", from_attributes=True)

    name_zh: Name
    method: Name
    standard: Name
    unit: Annotated[str, Field(min_length=1, max_length=16), NoNul]
    quantitative: bool = True
    comparator: Comparator = "ge"
    positive_threshold: float | None = Field(default=None, allow_inf_nan=False)
    suspect_from: float | None = Field(default=None, allow_inf_nan=False)
    food_categories: list[Category] = Field(default_factory=list, max_length=50)
    false_positive_foods: list[Category] = Field(default_factory=list, max_length=100)
    note: Annotated[str, Field(max_length=1000), NoNul] | None = None
    active: bool = True
    limits: list[LimitIn] = Field(default_factory=list, max_length=100)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        _check_band(self.positive_threshold, self.suspect_from)
        if self.quantitative and self.positive_threshold is None and not self.limits:
            raise ValueError("a quantitative item needs positive_threshold or per-category limits")
        categories = [limit.food_category for limit in self.limits]
        if len(set(categories)) != len(categories):
            raise ValueError("limits: one row per food category")
        return self


class ItemIn(ItemBody):
    """A catalogue item with its code (CSV import)."""

    code: ItemCode


class ItemOut(ItemIn):
    """A catalogue item as stored."""

    updated_at: dt.datetime | None = None


class FollowupBrief(BaseModel):
    """How a positive is being handled, in a word."""

    id: int
    state: str
    state_zh: str
    retests: int
    disposal: str | None


class ResultOut(BaseModel):
    """A stored result as the public board and its JSON show it (no personal data)."""

    id: str = Field(description="the id its device or lab gave the result")
    device: str
    ts: dt.datetime
    item: str
    item_name: str
    value: float | None
    unit: str | None
    threshold: float | None
    sample_name: str
    sample_category: str | None
    stall: str | None
    verdict: str
    retest_of: str | None = Field(description="the id of the result this one retests")
    false_positive_risk: bool
    followup: FollowupBrief | None = None


class EventOut(BaseModel):
    """One audited transition."""

    model_config = ConfigDict(from_attributes=True)

    at: dt.datetime
    actor: str
    action: str
    from_state: str | None
    to_state: str
    detail: dict[str, Any] | None


class FollowupOut(BaseModel):
    """A follow-up with its result, retests and history."""

    id: int
    site: str
    state: str
    state_zh: str
    retests: int
    opened_at: dt.datetime
    confirmed_at: dt.datetime | None
    closed_at: dt.datetime | None
    disposal: str | None
    lab_result: str | None
    lab_detail: dict[str, Any] | None
    certificate: str | None
    upstream_issuer: str | None
    notified_at: dt.datetime | None
    allowed_actions: list[str]
    result: ResultOut
    retest_results: list[ResultOut]
    events: list[EventOut]


ActionName = Literal[
    "stop_sale", "seal", "destroy", "return", "lab_confirm", "trace_upstream", "notify", "close"
]


class ActionIn(BaseModel):
    """A step of the workflow asked for by a person."""

    model_config = ConfigDict(extra="forbid")

    action: ActionName
    # Who did it, as the market writes it on paper (the API key says which account).
    actor_name: Annotated[str, Field(max_length=50), NoNul] | None = None
    note: Annotated[str, Field(max_length=500), NoNul] | None = None
    # lab_confirm
    lab_result: Literal["positive", "negative"] | None = None
    lab_name: Annotated[str, Field(max_length=100), NoNul] | None = None
    report_no: Annotated[str, Field(max_length=64), NoNul] | None = None
    # trace_upstream
    certificate: Annotated[str, Field(min_length=1, max_length=64), NoNul] | None = None
    issuer: Annotated[str, Field(max_length=200), NoNul] | None = None

    @model_validator(mode="after")
    def _lab(self) -> Self:
        if self.action == "lab_confirm" and not (
            self.lab_result and self.lab_name and self.report_no
        ):
            raise ValueError("lab_confirm needs lab_result, lab_name and report_no (the report)")
        return self


class EndpointIn(BaseModel):
    """A webhook receiver to register."""

    model_config = ConfigDict(extra="forbid")

    url: Annotated[str, Field(min_length=8, max_length=500, pattern=r"^https?://"), NoNul]
    name: Annotated[str, Field(max_length=100), NoNul] | None = None
    district: Annotated[str, Field(max_length=64), NoNul] | None = None
    events: list[Annotated[str, Field(max_length=64), NoNul]] = Field(default_factory=list)
