"""SIP messages (the RFC 3261 subset GB/T 28181 uses): parsing, framing and building."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

MAX_MESSAGE = 64 * 1024  # a catalog page of a big NVR fits; anything larger is refused
MAX_HEADERS = 64
# RFC 3261 compact header forms devices use.
_COMPACT = {
    "v": "via",
    "f": "from",
    "t": "to",
    "i": "call-id",
    "m": "contact",
    "l": "content-length",
    "c": "content-type",
}
_USER = re.compile(r"sips?:([^@;>\s]+)@")
_TAG = re.compile(r";\s*tag=([^;>\s]+)")


class SipError(ValueError):
    """A message that is not valid SIP (or too big to be one we accept)."""


@dataclass(slots=True)
class Message:
    """A SIP request or response: start line, headers (lower-case names, in order), body."""

    start: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    @property
    def is_request(self) -> bool:
        """Tell a request from a response."""
        return not self.start.startswith("SIP/2.0 ")

    @property
    def method(self) -> str:
        """Return the request's method (a response's CSeq method)."""
        if self.is_request:
            return self.start.split(" ", 1)[0]
        return self.header("cseq").rsplit(" ", 1)[-1]

    @property
    def status(self) -> int:
        """Return a response's status code (0 for a request)."""
        return 0 if self.is_request else int(self.start.split(" ")[1])

    def header(self, name: str, default: str = "") -> str:
        """Return the first header of this name."""
        for key, value in self.headers:
            if key == name:
                return value
        return default

    def all(self, name: str) -> list[str]:
        """Return every header of this name, in order."""
        return [value for key, value in self.headers if key == name]


def user_of(value: str) -> str:
    """Return the user part of a From, To or Contact value (a device's 国标编码)."""
    found = _USER.search(value)
    return found.group(1) if found else ""


def tag_of(value: str) -> str:
    """Return a From/To tag."""
    found = _TAG.search(value)
    return found.group(1) if found else ""


def split_head(data: bytes) -> tuple[bytes, bytes] | None:
    """Return (head, rest) of a buffer holding a whole header block, else None."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return None
    return data[:end], data[end + 4 :]


def parse(data: bytes) -> Message:
    """Parse one SIP message (a datagram, or a framed stream message); raise SipError."""
    if len(data) > MAX_MESSAGE:
        raise SipError("message too large")
    parts = split_head(data)
    if parts is None:
        raise SipError("no end of headers")
    head, body = parts
    try:
        lines = head.decode("utf-8").split("\r\n")
    except UnicodeDecodeError as exc:
        raise SipError("headers are not UTF-8") from exc
    start = lines[0]
    words = start.split(" ")
    if len(words) < 3 or not (words[2] == "SIP/2.0" or words[0] == "SIP/2.0"):
        raise SipError("bad start line")
    if words[0] == "SIP/2.0" and not (words[1].isdigit() and len(words[1]) == 3):
        raise SipError("bad status code")
    if len(lines) - 1 > MAX_HEADERS:
        raise SipError("too many headers")
    message = Message(start)
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep or not name.strip():
            raise SipError("bad header line")
        key = name.strip().lower()
        message.headers.append((_COMPACT.get(key, key), value.strip()))
    length = message.header("content-length", "0")
    if not length.isdigit() or int(length) != len(body):
        raise SipError("Content-Length does not match the body")
    for needed in ("via", "from", "to", "call-id", "cseq"):
        if not message.header(needed):
            raise SipError(f"no {needed} header")
    message.body = body
    return message


def content_length(head: bytes) -> int:
    """Return a stream message's Content-Length from its header block; raise SipError."""
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() in (b"content-length", b"l"):
            text = value.strip()
            if not text.isdigit() or int(text) > MAX_MESSAGE:
                raise SipError("bad Content-Length")
            return int(text)
    return 0


def response(
    request: Message,
    code: int,
    reason: str,
    extra: list[tuple[str, str]] | None = None,
    to_tag: str = "",
) -> bytes:
    """Build a response to a request: Via, From, To (with our tag), Call-ID and CSeq copied."""
    lines = [f"SIP/2.0 {code} {reason}"]
    lines += [f"Via: {via}" for via in request.all("via")]
    lines.append(f"From: {request.header('from')}")
    to = request.header("to")
    if to_tag and not tag_of(to):
        to = f"{to};tag={to_tag}"
    lines += [
        f"To: {to}",
        f"Call-ID: {request.header('call-id')}",
        f"CSeq: {request.header('cseq')}",
    ]
    lines += [f"{name}: {value}" for name, value in extra or []]
    lines += ["User-Agent: fangxin", "Content-Length: 0", "", ""]
    return "\r\n".join(lines).encode()


def request(method: str, uri: str, headers: list[tuple[str, str]], body: bytes = b"") -> bytes:
    """Build a request with a body (Content-Length computed)."""
    lines = [f"{method} {uri} SIP/2.0"]
    lines += [f"{name}: {value}" for name, value in headers]
    lines += [f"Content-Length: {len(body)}", "", ""]
    return "\r\n".join(lines).encode() + body
