"""Fuzzing the GS1 Digital Link parser: refusals are DigitalLinkError, valid links round-trip."""

from __future__ import annotations

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from fangxin.trace.certificates import digital_link as dl

ALPHABET = "".join(sorted(dl.CSET82))
URL_CHARS = ALPHABET + "#?&=[]@%:/~ éé合格证\x00\n"
AI_NAMES = sorted(dl.AIS) + ["99", "8200", "linkType", ""]


def parse_or_refuse(uri: str) -> dl.DigitalLink | None:
    """Parse; a refusal must be the parser's own error and say why."""
    try:
        return dl.parse(uri)
    except dl.DigitalLinkError as exc:
        reason = str(exc)
    assert reason
    return None


@st.composite
def gtins(draw: st.DrawFn) -> str:
    """A GTIN-14 with a correct check digit."""
    body = draw(st.text("0123456789", min_size=13, max_size=13))
    return body + str(dl.gs1_check_digit(body))


@st.composite
def link_like(draw: st.DrawFn) -> str:
    """URIs close to Digital Links: known AIs, odd values, odd escapes, odd queries."""
    scheme = draw(st.sampled_from(["https://", "http://", "HTTP://", "Https://", "ftp://", ""]))
    host = draw(st.sampled_from(["id.example.cn", "", "[", "[::1]", "h:99999", "a@b"]))
    segments = draw(
        st.lists(
            st.sampled_from(AI_NAMES) | gtins() | st.text(URL_CHARS, max_size=24),
            max_size=8,
        )
    )
    query = draw(
        st.lists(st.tuples(st.sampled_from(AI_NAMES), st.text(URL_CHARS, max_size=14)), max_size=4)
    )
    uri = f"{scheme}{host}/" + "/".join(segments)
    if query:
        uri += "?" + "&".join(f"{k}={v}" for k, v in query)
    return uri


@settings(max_examples=1000, deadline=None)
@given(uri=st.text(max_size=200))
def test_arbitrary_text(uri: str) -> None:
    parse_or_refuse(uri)


@settings(max_examples=1500, deadline=None)
@given(uri=link_like())
def test_link_like_paths(uri: str) -> None:
    link = parse_or_refuse(uri)
    if link is not None:
        assert link.key in dl.QUALIFIERS
        dl.check_value(link.key, link.value)  # whatever parses holds valid values


@settings(max_examples=500, deadline=None)
@given(ai=st.sampled_from(AI_NAMES), value=st.text(max_size=40))
def test_check_value_refuses_with_its_error(ai: str, value: str) -> None:
    try:
        dl.check_value(ai, value)
    except dl.DigitalLinkError:
        return
    assert ai in dl.AIS


@settings(max_examples=500, deadline=None)
@given(
    gtin=gtins(),
    lot=st.none() | st.text(ALPHABET, min_size=1, max_size=20),
    serial=st.none() | st.text(ALPHABET, min_size=1, max_size=20),
    best_before=st.none() | st.dates(dt.date(2000, 1, 1), dt.date(2099, 12, 31)),
    base=st.sampled_from(["https://id.example.cn", "https://e.cn/trace/", "http://a.b/x/y"]),
)
def test_generated_links_round_trip(
    gtin: str, lot: str | None, serial: str | None, best_before: dt.date | None, base: str
) -> None:
    attributes = {"15": best_before.strftime("%y%m%d")} if best_before else None
    uri = dl.build(base, gtin, lot=lot, serial=serial, attributes=attributes)
    link = dl.parse(uri)
    assert (link.gtin, link.lot, link.get("21")) == (gtin, lot, serial)
    assert link.base == base.rstrip("/")
    assert link.get("15") == (attributes or {}).get("15")


@settings(max_examples=300, deadline=None)
@given(data=st.data(), length=st.sampled_from([8, 12, 13, 14]))
def test_short_gtins_pad_to_fourteen(data: st.DataObject, length: int) -> None:
    body = data.draw(st.text("0123456789", min_size=length - 1, max_size=length - 1))
    short = body + str(dl.gs1_check_digit(body))
    gtin = dl.normalise_gtin(short)
    assert gtin == short.zfill(14)
    assert dl.parse(dl.build("https://e.cn", gtin)).gtin == gtin
