"""GS1 Digital Link URIs: a strict parser and a generator for the keys a 合格证 lot can use."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from urllib.parse import quote, unquote, unquote_plus, urlsplit

# GS1 AI encodable character set 82 (GS1 General Specifications, Figure 7.11-1): ASCII only.
CSET82 = frozenset(
    "!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"
)


@dataclass(frozen=True, slots=True)
class _AI:
    kind: str  # "N" digits, "X" CSET 82, "D" YYMMDD date, "G" GDTI (N13 + X..17)
    min_len: int
    max_len: int
    check_digit: bool = False
    day_zero: bool = False


AIS: dict[str, _AI] = {
    "00": _AI("N", 18, 18, check_digit=True),
    "01": _AI("N", 14, 14, check_digit=True),
    "10": _AI("X", 1, 20),
    "21": _AI("X", 1, 20),
    "22": _AI("X", 1, 20),
    "235": _AI("X", 1, 28),
    "253": _AI("G", 13, 30),
    "254": _AI("X", 1, 20),
    "414": _AI("N", 13, 13, check_digit=True),
    "11": _AI("D", 6, 6, day_zero=True),
    "13": _AI("D", 6, 6, day_zero=True),
    "15": _AI("D", 6, 6, day_zero=True),
    "16": _AI("D", 6, 6, day_zero=True),
    "17": _AI("D", 6, 6, day_zero=True),
    "7007": _AI("D", 6, 12),
    "422": _AI("N", 3, 3),
    "30": _AI("N", 1, 8),
    **{f"310{n}": _AI("N", 6, 6) for n in range(6)},
}
# Primary keys and the qualifier sequences allowed after them, in order (any ordered subset).
QUALIFIERS: dict[str, tuple[tuple[str, ...], ...]] = {
    "01": (("22", "10", "21"), ("235",)),
    "00": ((),),
    "253": ((),),
    "414": (("254",),),
}
# Data attributes allowed in the query string; all of them belong to a trade item (01).
ATTRIBUTES = frozenset(
    {"11", "13", "15", "16", "17", "7007", "422", "30"} | {f"310{n}" for n in range(6)}
)
_SCHEME = re.compile(r"^(http|https|HTTP|HTTPS)://")
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


class DigitalLinkError(ValueError):
    """A URI that is not a valid GS1 Digital Link (or a value that cannot go into one)."""


@dataclass(frozen=True, slots=True)
class DigitalLink:
    """A parsed Digital Link: the base (scheme, host, stem), key, qualifiers and attributes."""

    base: str
    key: str
    value: str
    qualifiers: tuple[tuple[str, str], ...] = ()
    attributes: tuple[tuple[str, str], ...] = ()

    def get(self, ai: str) -> str | None:
        """Return the value of an AI anywhere in the link."""
        if ai == self.key:
            return self.value
        return dict(self.qualifiers + self.attributes).get(ai)

    @property
    def gtin(self) -> str | None:
        """Return the GTIN when the key is 01."""
        return self.value if self.key == "01" else None

    @property
    def lot(self) -> str | None:
        """Return the batch/lot (AI 10)."""
        return self.get("10")


def gs1_check_digit(body: str) -> int:
    """Return the GS1 mod-10 check digit of the digits before it."""
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return (10 - total % 10) % 10


def _valid_date(text: str, day_zero: bool) -> bool:
    year, month, day = 2000 + int(text[:2]), int(text[2:4]), int(text[4:6])
    if not 1 <= month <= 12:
        return False
    if day == 0:
        return day_zero
    try:
        dt.date(year, month, day)
    except ValueError:
        return False
    return True


def check_value(ai: str, value: str) -> None:
    """Raise DigitalLinkError unless value is valid for the AI (length, charset, check digit)."""
    spec = AIS.get(ai)
    if spec is None:
        raise DigitalLinkError(f"AI ({ai}) is not supported")
    if not spec.min_len <= len(value) <= spec.max_len:
        raise DigitalLinkError(f"AI ({ai}) must be {spec.min_len}..{spec.max_len} characters long")
    if spec.kind == "G":
        head, tail = value[:13], value[13:]
        if not head.isascii() or not head.isdigit() or any(c not in CSET82 for c in tail):
            raise DigitalLinkError(f"AI ({ai}) must be 13 digits then up to 17 CSET 82 characters")
        if gs1_check_digit(head[:-1]) != int(head[-1]):
            raise DigitalLinkError(f"AI ({ai}) has a wrong check digit")
        return
    if spec.kind in ("N", "D"):
        if not value.isascii() or not value.isdigit():
            raise DigitalLinkError(f"AI ({ai}) must be digits only")
        if spec.check_digit and gs1_check_digit(value[:-1]) != int(value[-1]):
            raise DigitalLinkError(f"AI ({ai}) has a wrong check digit")
        if spec.kind == "D":
            if len(value) not in (6, 12):
                raise DigitalLinkError(f"AI ({ai}) must be YYMMDD (or two of them)")
            for part in (value[:6], value[6:]):
                if part and not _valid_date(part, spec.day_zero):
                    raise DigitalLinkError(f"AI ({ai}) holds an invalid date {part}")
        return
    bad = sorted({c for c in value if c not in CSET82})
    if bad:
        raise DigitalLinkError(f"AI ({ai}) holds characters outside CSET 82: {''.join(bad)!r}")


def _decode(segment: str, plus_is_space: bool = False) -> str:
    if _BAD_ESCAPE.search(segment):
        raise DigitalLinkError(f"bad percent-encoding in {segment!r}")
    try:
        return (unquote_plus if plus_is_space else unquote)(segment, errors="strict")
    except UnicodeDecodeError as exc:
        raise DigitalLinkError(f"bad percent-encoding in {segment!r}") from exc


def _qualifiers_ok(key: str, ais: list[str]) -> bool:
    for sequence in QUALIFIERS[key]:
        position = 0
        for ai in ais:
            if ai not in sequence[position:]:
                break
            position = sequence.index(ai) + 1
        else:
            return True
    return False


def _split_path(segments: list[str]) -> int:
    """Return the index of the rightmost primary key whose qualifier path is well formed."""
    for index in range(len(segments) - 2, -1, -1):
        key = segments[index]
        if key not in QUALIFIERS or (len(segments) - index) % 2:
            continue
        if _qualifiers_ok(key, segments[index + 2 :: 2]):
            return index
        raise DigitalLinkError(f"qualifiers {segments[index + 2 :: 2]} not allowed after ({key})")
    raise DigitalLinkError("no GS1 primary key found in the path")


def parse(uri: str) -> DigitalLink:
    """Parse and fully validate a GS1 Digital Link URI (uncompressed form)."""
    if not _SCHEME.match(uri):
        raise DigitalLinkError("the scheme must be http or https, in one case")
    try:
        parts = urlsplit(uri)
    except ValueError as exc:  # e.g. an unbalanced IPv6 bracket in the host
        raise DigitalLinkError(f"the URI cannot be split: {exc}") from exc
    if not parts.hostname:
        raise DigitalLinkError("the URI has no host")
    path = parts.path
    if path.endswith("/") or "//" in path:
        raise DigitalLinkError("the path has an empty segment or a trailing slash")
    segments = path.split("/")[1:]
    start = _split_path(segments)
    key, value = segments[start], _decode(segments[start + 1])
    check_value(key, value)
    pairs = segments[start + 2 :]
    qualifiers = tuple((pairs[i], _decode(pairs[i + 1])) for i in range(0, len(pairs), 2))
    seen = {key}
    for ai, qvalue in qualifiers:
        check_value(ai, qvalue)
        seen.add(ai)
    attributes = []
    for item in parts.query.split("&"):
        name, eq, raw = item.partition("=")
        if not eq or not name.isdigit():
            continue  # empty parts, singletons and non-GS1 keys (linkType, ...) are ignored
        if name in seen:
            raise DigitalLinkError(f"AI ({name}) appears more than once")
        if name not in ATTRIBUTES:
            raise DigitalLinkError(f"AI ({name}) may not be a query data attribute")
        if key != "01":
            raise DigitalLinkError(f"AI ({name}) needs a GTIN (01) key")
        decoded = _decode(raw, plus_is_space=True)
        check_value(name, decoded)
        seen.add(name)
        attributes.append((name, decoded))
    stem = "/".join(segments[:start])
    base = f"{parts.scheme}://{parts.netloc}" + (f"/{stem}" if stem else "")
    return DigitalLink(base, key, value, qualifiers, tuple(attributes))


def build(
    base: str,
    gtin: str,
    lot: str | None = None,
    serial: str | None = None,
    attributes: dict[str, str] | None = None,
) -> str:
    """Return the Digital Link of a trade item, validated by parsing it back."""
    base = base.rstrip("/")
    segments = ["01", gtin]
    for ai, value in (("10", lot), ("21", serial)):
        if value is not None:
            check_value(ai, value)
            segments += [ai, quote(value, safe="")]
    check_value("01", gtin)
    uri = f"{base}/{'/'.join(segments)}"
    if attributes:
        uri += "?" + "&".join(f"{k}={quote(v, safe='')}" for k, v in sorted(attributes.items()))
    parse(uri)
    return uri


def normalise_gtin(text: str) -> str:
    """Pad a GTIN-8/12/13 to 14 digits and check it (the form Digital Link requires)."""
    if not text.isascii() or not text.isdigit() or len(text) not in (8, 12, 13, 14):
        raise DigitalLinkError("a GTIN has 8, 12, 13 or 14 digits")
    gtin = text.zfill(14)
    check_value("01", gtin)
    return gtin
