"""Pydantic models of the catalogue, results and follow-ups at the doors (HTTP, CLI, CSV)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from fangxin.contract.payloads import NoNul
from fangxin.trace.results.followup_rules import RETIRED_ACTIONS, is_rapid_method
from fangxin.trace.results.food_categories import canonical, code_of

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
    # GB 2760 Annex E code; filled from the alias table when the category is known there.
    category_code: Annotated[str, Field(max_length=20, pattern=r"^[0-9.]+$")] | None = None
    comparator: Comparator = "gt"
    positive_threshold: float = Field(allow_inf_nan=False)
    suspect_from: float | None = Field(default=None, allow_inf_nan=False)
    note: Annotated[str, Field(max_length=200), NoNul] | None = None
    # Edition and clause, e.g. "GB 2760-2024 表A.1" (write 待核实 when not checked).
    source: Annotated[str, Field(max_length=200), NoNul] | None = None
    # 不得使用: positive_threshold is the method's detection limit.
    not_permitted: bool = False

    @model_validator(mode="after")
    def _band(self) -> Self:
        _check_band(self.positive_threshold, self.suspect_from)
        self.food_category = canonical(self.food_category)
        self.category_code = self.category_code or code_of(self.food_category)
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
    # A banned substance: a positive is sealed and referred (行刑衔接), never cleared by repeats.
    banned: bool = False
    # Refuse results of foods outside food_categories.
    strict_scope: bool = False
    # Where the suspect band comes from (本地设置 unless a standard sets it).
    suspect_basis: Annotated[str, Field(max_length=200), NoNul] | None = None
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


class ReagentLotIn(BaseModel):
    """A reagent lot of a qualitative kit with its cut-off (检出限) from the kit's leaflet."""

    model_config = ConfigDict(extra="forbid", from_attributes=True)

    cutoff: float = Field(gt=0, allow_inf_nan=False)
    unit: Annotated[str, Field(min_length=1, max_length=16), NoNul]
    maker: Annotated[str, Field(max_length=100), NoNul] | None = None
    expires: dt.date | None = None


class ReagentLotOut(ReagentLotIn):
    """A stored reagent lot."""

    item: str
    lot: str


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
    path: str  # repeat | recheck | banned: which rules the case follows


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
    source: str = Field(default="market", description="who tested: market (self-test) or regulator")
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


class RuleOut(BaseModel):
    """A rule the follow-up applies, with its source (待核实 / 本地设置 where so)."""

    code: str
    text_zh: str
    source: str
    status: str


class FollowupOut(BaseModel):
    """A follow-up with its result, retests and history."""

    id: int
    site: str
    state: str
    state_zh: str
    path: str
    retests: int
    opened_at: dt.datetime
    recheck_deadline: dt.datetime | None
    disposal_detail: dict[str, Any] | None
    reported_at: dt.datetime | None
    report_detail: dict[str, Any] | None
    referral: dict[str, Any] | None
    agri_notice: dict[str, Any] | None
    rules: list[RuleOut] = Field(description="the rules applied in this state, with sources")
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
    "send_to_lab",
    "request_recheck",
    "accept_result",
    "lab_result",
    "dispose",
    "report",
    "refer",
    "trace_upstream",
    "notify",
    "close",
]
Text50 = Annotated[str, Field(min_length=1, max_length=50), NoNul]
Text100 = Annotated[str, Field(min_length=1, max_length=100), NoNul]
# What each step needs, as the paper record has it.
NEEDS: dict[str, tuple[str, ...]] = {
    "lab_result": ("lab_result", "lab_name", "report_no", "method"),
    "dispose": ("disposal_method", "witness", "record_no"),
    "report": ("office", "report_no"),
    "refer": ("agency", "referral_no"),
}


class ActionIn(BaseModel):
    """A step of the workflow asked for by a person."""

    model_config = ConfigDict(extra="forbid")

    action: ActionName
    # Who did it, as the market writes it on paper (the API key says which account).
    actor_name: Text50 | None = None
    note: Annotated[str, Field(max_length=500), NoNul] | None = None
    # lab_result: the lab's verdict, its report and the (non-rapid) method it used
    lab_result: Literal["positive", "negative"] | None = None
    lab_name: Text100 | None = None
    report_no: Annotated[str, Field(min_length=1, max_length=64), NoNul] | None = None
    method: Text100 | None = None
    # dispose: 销毁 or 无害化处理, who witnessed it, the record's number
    disposal_method: Literal["destroy", "harmless"] | None = None
    witness: Text100 | None = None
    record_no: Annotated[str, Field(min_length=1, max_length=64), NoNul] | None = None
    # report: the county 市场监管 office told (report_no is the report's number)
    office: Text100 | None = None
    # refer (行刑衔接): the police agency, its case or referral number, a link to the referral
    agency: Text100 | None = None
    referral_no: Annotated[str, Field(min_length=1, max_length=64), NoNul] | None = None
    link: Annotated[str, Field(max_length=500, pattern=r"^https?://"), NoNul] | None = None
    # trace_upstream: the 合格证, its issuer and the 产地 (origin) when the register lacks them
    certificate: Annotated[str, Field(min_length=1, max_length=64), NoNul] | None = None
    issuer: Annotated[str, Field(max_length=200), NoNul] | None = None
    origin: Text100 | None = None

    @model_validator(mode="before")
    @classmethod
    def _retired(cls, data: Any) -> Any:
        action = data.get("action") if isinstance(data, dict) else None
        if isinstance(action, str) and action in RETIRED_ACTIONS:
            raise ValueError(f"action {action!r}: {RETIRED_ACTIONS[action]}")
        return data

    @model_validator(mode="after")
    def _needs(self) -> Self:
        missing = [name for name in NEEDS.get(self.action, ()) if getattr(self, name) is None]
        if missing:
            raise ValueError(f"{self.action} needs {', '.join(missing)}")
        if self.action == "lab_result" and self.method and is_rapid_method(self.method):
            raise ValueError(
                f"method {self.method!r} is a rapid method: 复检 and lab confirmation must not"
                " use one (食品安全法 第八十八条)"
            )
        return self


class EndpointIn(BaseModel):
    """A webhook receiver to register."""

    model_config = ConfigDict(extra="forbid")

    url: Annotated[str, Field(min_length=8, max_length=500, pattern=r"^https?://"), NoNul]
    name: Annotated[str, Field(max_length=100), NoNul] | None = None
    district: Annotated[str, Field(max_length=64), NoNul] | None = None
    events: list[Annotated[str, Field(max_length=64), NoNul]] = Field(default_factory=list)
