"""The flat field set of provincial rapid-test platforms, mapped onto the v1 `result` payload.

Field names follow the Anhui collection interface (domain.md §2.2): instrumentNo, fName, dataNum,
testPro, contents, unit, testResult, testPerson, testTime and the optional ones. Values arrive as
strings. The MD5 `key` of that interface is not checked: our callers authenticate with API keys.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from fangxin.contract.payloads import PayloadError, describe

Text = Annotated[str, Field(max_length=200)]
Required = Annotated[str, Field(min_length=1, max_length=100)]
# testResult spellings: words, and the 1 合格 / 0 不合格 / 2 疑似 codes of vendor schemas.
VERDICT_WORDS = {
    "阴性": "negative",
    "合格": "negative",
    "negative": "negative",
    "1": "negative",
    "阳性": "positive",
    "不合格": "positive",
    "positive": "positive",
    "0": "positive",
    "可疑": "suspect",
    "疑似": "suspect",
    "suspect": "suspect",
    "2": "suspect",
}
_NO_VALUE = {"", "-", "/", "—", "无"}
_TIME_FORMATS = ("%Y-%m-%d%H:%M:%S", "%Y/%m/%d %H:%M:%S", "%Y%m%d%H%M%S")
# Optional fields kept with the record under these names.
_EXTRA = (
    "sample_no",
    "mac",
    "instrument",
    "checked_no",
    "pro_batch",
    "manu_unit",
    "standard_limit",
    "based_standard",
    "sample_time",
    "dilution",
    "test_range",
    "remark",
    "quan_or_qual",
)


class ProvinceResult(BaseModel):
    """One result in the provincial field set."""

    model_config = ConfigDict(
        extra="ignore", str_strip_whitespace=True, coerce_numbers_to_str=True, frozen=True
    )

    instrument_no: Required = Field(alias="instrumentNo")
    sample_name: Required = Field(alias="fName")
    data_num: Required = Field(alias="dataNum")
    test_pro: Required = Field(alias="testPro")
    contents: Text | None = Field(default=None, alias="contents")
    unit: Text | None = Field(default=None, alias="unit")
    test_result: Required = Field(alias="testResult")
    test_person: Required = Field(alias="testPerson")
    test_time: Required = Field(alias="testTime")
    food_type: Text | None = Field(default=None, alias="fTpye")
    checked_unit: Text | None = Field(default=None, alias="checkedUnit")
    site: Text | None = None
    sample_no: Text | None = Field(default=None, alias="sampleNo")
    mac: Text | None = None
    instrument: Text | None = None
    checked_no: Text | None = Field(default=None, alias="checkedNo")
    pro_batch: Text | None = Field(default=None, alias="proBatch")
    manu_unit: Text | None = Field(default=None, alias="manuUnit")
    standard_limit: Text | None = Field(default=None, alias="standardLimit")
    based_standard: Text | None = Field(default=None, alias="basedStandard")
    sample_time: Text | None = Field(default=None, alias="sampleTime")
    dilution: Text | None = Field(default=None, alias="dilutionRa")
    test_range: Text | None = Field(default=None, alias="testRange")
    remark: Text | None = None
    quan_or_qual: Text | None = Field(default=None, alias="quanOrQual")


def parse_local_time(text: str, zone: ZoneInfo) -> dt.datetime:
    """Parse a platform time ('yyyy-mm-dd hh:mm:ss', local unless it carries an offset)."""
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        for fmt in _TIME_FORMATS:
            try:
                parsed = dt.datetime.strptime(text, fmt)  # noqa: DTZ007 - zone added below
                break
            except ValueError:
                continue
        else:
            raise PayloadError(f"testTime: {text!r} is not yyyy-mm-dd hh:mm:ss") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=zone)


def _value(p: ProvinceResult) -> float | None:
    if p.quan_or_qual == "2" or p.contents is None or p.contents in _NO_VALUE:
        return None
    try:
        return float(p.contents.rstrip("%％"))
    except ValueError:
        raise PayloadError(f"contents: {p.contents!r} is not a number") from None


def to_result(
    raw: Any, site: str | None, zone: ZoneInfo, resolve: Callable[[str], str | None]
) -> dict[str, Any] | PayloadError:
    """Map one provincial object onto a v1 result with site and device, or say why not."""
    if not isinstance(raw, dict):
        return PayloadError(f"expected a JSON object, got {type(raw).__name__}")
    try:
        p = ProvinceResult.model_validate(raw)
        verdict = VERDICT_WORDS.get(p.test_result.lower())
        if verdict is None:
            raise PayloadError(
                f"testResult: {p.test_result!r} is not 阴性/阳性/可疑 or 合格/不合格"
            )
        body: dict[str, Any] = {
            "site": p.site or site,
            "device": p.instrument_no,
            "id": p.data_num,
            "ts": parse_local_time(p.test_time, zone).isoformat(),
            "item": resolve(p.test_pro) or p.test_pro,
            "value": _value(p),
            "unit": p.unit or None,
            "sample": {
                "name": p.sample_name,
                "category": p.food_type or None,
                # tested-unit number 0 means "not used" in the interface
                "stall": p.checked_unit if p.checked_unit not in (None, "", "0") else None,
            },
            "tester": p.test_person,
            "verdict": verdict,
        }
    except ValidationError as exc:
        return PayloadError(describe(exc))
    except PayloadError as exc:
        return exc
    if body["site"] is None:
        return PayloadError("site: required when the API key is not scoped to a site")
    extra = {name: getattr(p, name) for name in _EXTRA if getattr(p, name)}
    if extra:
        body["extra"] = extra
    return body
