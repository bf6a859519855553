"""MANSCDP XML bodies: decoding by the XML declaration, safe parsing, the commands we read."""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass, field
from xml.etree.ElementTree import Element

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import ParseError, fromstring

MAX_BODY = 60 * 1024
MAX_ITEMS = 1000
_DECLARED = re.compile(rb"""^\s*<\?xml[^>]*encoding\s*=\s*["']([A-Za-z0-9_.\-]+)["']""")
# Devices declare GB2312 but send characters only GBK/GB18030 have; the superset decodes both.
_WIDEN = {"gb2312": "gb18030", "gbk": "gb18030", "gb18030": "gb18030", "utf-8": "utf-8"}


class BodyError(ValueError):
    """A MANSCDP body that cannot be decoded or parsed."""


@dataclass(slots=True)
class Channel:
    """A channel of a Catalog response or notification."""

    device_id: str
    name: str | None
    status: str | None
    event: str | None


@dataclass(slots=True)
class Command:
    """A MANSCDP message: its root (Notify, Response, Query), CmdType, SN and DeviceID."""

    root: str
    cmd: str
    sn: str
    device_id: str
    fields: dict[str, str] = field(default_factory=dict)
    channels: list[Channel] = field(default_factory=list)
    sum_num: int = 0


def decode(body: bytes) -> str:
    """Decode a body by its XML declaration (UTF-8 when none); raise BodyError."""
    if len(body) > MAX_BODY:
        raise BodyError("body too large")
    found = _DECLARED.match(body)
    declared = found.group(1).decode("ascii").lower() if found else "utf-8"
    try:
        name = codecs.lookup(declared).name
    except LookupError as exc:
        raise BodyError(f"unknown encoding {declared!r}") from exc
    try:
        text = body.decode(_WIDEN.get(name, name))
    except UnicodeDecodeError as exc:
        raise BodyError(f"body is not {declared}") from exc
    # The parser must not re-decode: drop the declaration now that the text is decoded.
    return re.sub(r"^\s*<\?xml[^>]*\?>", "", text, count=1)


def _text(element: Element, name: str) -> str:
    found = element.find(name)
    return (found.text or "").strip() if found is not None else ""


def parse(body: bytes) -> Command:
    """Parse a MANSCDP body; raise BodyError for bad encodings, bad XML or entity tricks."""
    text = decode(body)
    try:
        root = fromstring(text, forbid_dtd=True)
    except (ParseError, DefusedXmlException, ValueError) as exc:
        raise BodyError(f"bad XML: {exc}") from exc
    command = Command(root.tag, _text(root, "CmdType"), _text(root, "SN"), _text(root, "DeviceID"))
    if not command.cmd:
        raise BodyError("no CmdType")
    for child in root:
        if len(child) == 0 and child.text:
            command.fields[child.tag] = child.text.strip()
    info = root.find("Info")
    if info is not None:
        for child in info:
            if child.text:
                command.fields.setdefault(child.tag, child.text.strip())
    sum_num = command.fields.get("SumNum", "0")
    command.sum_num = int(sum_num) if sum_num.isdigit() else 0
    device_list = root.find("DeviceList")
    if device_list is not None:
        for item in device_list.findall("Item")[:MAX_ITEMS]:
            command.channels.append(
                Channel(
                    _text(item, "DeviceID"),
                    _text(item, "Name") or None,
                    _text(item, "Status").upper() or None,
                    _text(item, "Event").upper() or None,
                )
            )
    return command


def catalog_query(sn: int, device_id: str) -> bytes:
    """Return the body of a Catalog query to a device."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\r\n<Query>\r\n<CmdType>Catalog</CmdType>\r\n'
        f"<SN>{sn}</SN>\r\n<DeviceID>{device_id}</DeviceID>\r\n</Query>\r\n"
    ).encode()
