"""Pydantic models of the v1 payloads, shared by the MQTT and HTTP doors."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
)

from fangxin.contract.ids import Id
from fangxin.contract.topics import Channel

Verdict = Literal["negative", "suspect", "positive"]
MessageId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[\x21-\x7e]+$")]


def _no_nul(value: str) -> str:
    # PostgreSQL text cannot hold U+0000: refuse it here rather than fail the batch's write.
    if "\x00" in value:
        raise ValueError("text must not contain NUL (U+0000)")
    return value


NoNul = AfterValidator(_no_nul)
ShortText = Annotated[str, Field(min_length=1, max_length=50), NoNul]


def _rfc3339_text(value: object) -> object:
    if not isinstance(value, str):
        raise ValueError("must be an RFC 3339 string with offset")  # noqa: TRY004 - pydantic wants ValueError
    return value


# Parsed leniently from text only: strict mode would want a datetime object, not JSON text.
Timestamp = Annotated[AwareDatetime, Field(strict=False), BeforeValidator(_rfc3339_text)]


class _Payload(BaseModel):
    # strict: numbers must be JSON numbers and times RFC 3339 strings, as the contract says.
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)


class Sample(_Payload):
    """The sample a rapid test was run on."""

    name: Annotated[str, Field(min_length=1, max_length=100), NoNul]
    category: ShortText | None = None
    stall: ShortText | None = None
    certificate: Annotated[str, Field(min_length=1, max_length=64), NoNul] | None = None


ExtraValue = Annotated[str, Field(max_length=200), NoNul] | float | bool | None


class ResultPayload(_Payload):
    """A rapid-test result (channel `result`)."""

    id: MessageId
    ts: Timestamp
    item: Annotated[str, Field(min_length=1, max_length=64), NoNul]
    value: Annotated[float, Field(allow_inf_nan=False)] | None = None
    unit: Annotated[str, Field(max_length=16), NoNul] | None = None
    sample: Sample
    tester: ShortText | None = None
    reagent_lot: ShortText | None = None
    verdict: Verdict | None = None
    # Who tested: the market's self-test or a regulator's 快检 (whose seller may ask for 复检
    # within 4 hours). Optional: devices that predate the field send market self-tests.
    source: Literal["market", "regulator"] = "market"
    # A retest names the id of the result it retests (a result of the same site).
    retest_of: MessageId | None = None
    # Further fields a sender carries (provincial field set); kept with the record.
    extra: (
        Annotated[
            dict[Annotated[str, Field(max_length=40), NoNul], ExtraValue], Field(max_length=30)
        ]
        | None
    ) = None


class SiteResultPayload(ResultPayload):
    """A result posted over HTTP: the MQTT `result` plus the site and device the topic names."""

    site: Id
    device: Id


class StatusPayload(_Payload):
    """A heartbeat with the device's health figures (channel `status`)."""

    model_config = ConfigDict(strict=True, extra="allow", frozen=True)

    ts: Timestamp
    interval_s: Annotated[int, Field(ge=1, le=86400)] | None = None
    fps: float | None = None
    bitrate_kbps: float | None = None
    storage_free_gb: float | None = None
    temp_c: float | None = None

    def numeric_fields(self) -> dict[str, float]:
        """Return the numeric figures, extra ones included, as floats (stable field types)."""
        data = self.model_dump(exclude={"ts"})
        return {
            key: float(value)
            for key, value in data.items()
            if isinstance(value, int | float)
            and not isinstance(value, bool)
            and len(key) <= 40
            and key.replace("_", "").isalnum()
        }


class AlarmPayload(_Payload):
    """An alarm raised by a device (channel `alarm`)."""

    id: MessageId
    ts: Timestamp
    type: Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[a-z0-9_]+$")]
    confidence: Annotated[float, Field(ge=0, le=1)] | None = None
    snapshot_url: Annotated[str, Field(max_length=1000), NoNul] | None = None


StatePayload = Literal["online", "offline"]
Payload = ResultPayload | StatusPayload | AlarmPayload | str

_MODELS: dict[str, type[_Payload]] = {
    "result": ResultPayload,
    "status": StatusPayload,
    "alarm": AlarmPayload,
}
_STATE = TypeAdapter(StatePayload)


M = TypeVar("M", bound=BaseModel)


class PayloadError(ValueError):
    """A payload (or one element of an array) that cannot be accepted; str() is the reason."""


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on what one message may carry."""

    max_bytes: int = 256 * 1024
    max_items: int = 1000
    max_skew: dt.timedelta = dt.timedelta(minutes=10)


def describe(exc: ValidationError) -> str:
    """Turn pydantic's errors into one readable line: field path and message."""
    parts = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err["loc"]) or "payload"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)


def _check_time(ts: dt.datetime, received_at: dt.datetime, limits: Limits) -> None:
    if ts - received_at > limits.max_skew:
        raise PayloadError(
            f"ts: {ts.isoformat()} is in the future (received {received_at.isoformat()})"
        )


def parse_state(payload: bytes) -> str:
    """Parse a `state` payload: the bare word online/offline, or that word as a JSON string."""
    text = payload.decode("utf-8", errors="strict").strip()
    if text.startswith('"'):
        text = json.loads(text)
    try:
        return _STATE.validate_python(text)
    except ValidationError as exc:
        raise PayloadError(f"state must be 'online' or 'offline', got {text[:40]!r}") from exc


def parse_elements(
    channel: Channel, payload: bytes, received_at: dt.datetime, limits: Limits
) -> list[Payload | PayloadError]:
    """Parse a payload: one object or an array of them; each element validated on its own.

    A message-level problem (size, encoding, JSON syntax) raises PayloadError; element-level
    problems come back in the list so the good elements of a backlog are still stored.
    """
    if len(payload) > limits.max_bytes:
        raise PayloadError(f"payload of {len(payload)} bytes exceeds the {limits.max_bytes} limit")
    if channel == "state":
        try:
            return [parse_state(payload)]
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise PayloadError(f"state payload is not text: {exc}") from exc
    model = _MODELS[channel]
    if payload[:1] == b"{":
        # Fast path for the common case, one valid object: pydantic parses the bytes itself.
        # Anything it refuses takes the path below, which words the reasons as it always has.
        try:
            parsed = model.model_validate_json(payload)
            _check_time(parsed.ts, received_at, limits)  # type: ignore[attr-defined]
        except (ValidationError, PayloadError):
            pass
        else:
            return [parsed]  # type: ignore[list-item]
    try:
        # Decode ourselves: json.loads(bytes) would also take UTF-16/32; the contract says UTF-8.
        data: Any = json.loads(payload.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise PayloadError(f"payload is not UTF-8: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise PayloadError(f"invalid JSON: {exc}") from exc
    return validate_elements(model, data, received_at, limits)  # type: ignore[return-value]


def validate_elements(
    model: type[M], data: Any, received_at: dt.datetime, limits: Limits
) -> list[M | PayloadError]:
    """Validate one decoded object or an array of them, each element on its own."""
    items = data if isinstance(data, list) else [data]
    if not items:
        raise PayloadError("empty array")
    if len(items) > limits.max_items:
        raise PayloadError(f"array of {len(items)} elements exceeds the {limits.max_items} limit")
    out: list[M | PayloadError] = []
    for index, item in enumerate(items):
        where = f"[{index}] " if isinstance(data, list) else ""
        if isinstance(item, PayloadError):  # refused while converting from another field set
            out.append(PayloadError(where + str(item)))
            continue
        if not isinstance(item, dict):
            out.append(PayloadError(f"{where}expected a JSON object, got {type(item).__name__}"))
            continue
        try:
            parsed = model.model_validate(item)
            _check_time(parsed.ts, received_at, limits)  # type: ignore[attr-defined]
        except ValidationError as exc:
            out.append(PayloadError(where + describe(exc)))
            continue
        except PayloadError as exc:
            out.append(PayloadError(where + str(exc)))
            continue
        out.append(parsed)
    return out
