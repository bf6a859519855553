"""A real HTTP test double of InfluxDB OSS 2.x's /api/v2/write (see reference iot.md §4.3)."""

from __future__ import annotations

import gzip
import json
import logging
import re
import sys
import threading
import time
import zlib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

_LOGGER = logging.getLogger(__name__)
VERSION = "v2.7.12"
MODES = ("ok", "unreachable", "503", "429", "500", "401", "403", "404", "hang")
_PRECISION_NS = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000}
_FLOAT = re.compile(r"-?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?")
_INT = re.compile(r"-?\d+")
_BOOLS = {"t": True, "T": True, "true": True, "True": True, "TRUE": True}
_BOOLS |= {"f": False, "F": False, "false": False, "False": False, "FALSE": False}
_TYPE_NAMES = {float: "float", int: "integer", str: "string", bool: "boolean"}

Value = float | int | str | bool


class LineError(ValueError):
    """A line-protocol parse error, worded like InfluxDB's."""


@dataclass(frozen=True, slots=True)
class Line:
    """One parsed line (timestamp in ns, or None for server time)."""

    measurement: str
    tags: dict[str, str]
    fields: dict[str, Value]
    ts: int | None


@dataclass(slots=True)
class StoredPoint:
    """A point as stored: identity is measurement + tags + ts; a re-write merges fields."""

    measurement: str
    tags: dict[str, str]
    fields: dict[str, Value]
    ts_ns: int


@dataclass(frozen=True, slots=True)
class WriteRequest:
    """One POST /api/v2/write as received, with the status it got."""

    status: int
    at: float  # time.monotonic() on arrival
    params: dict[str, str]
    gzip: bool
    lines: list[str] = field(default_factory=list)


def _scan(text: str, start: int, stops: str, quotes: bool = False) -> int:
    """Return the index of the first unescaped stop character (outside quotes if asked)."""
    i, quoted = start, False
    while i < len(text):
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if quotes and c == '"':
            quoted = not quoted
        elif not quoted and c in stops:
            return i
        i += 1
    if quoted:
        raise LineError("unbalanced quotes")
    return len(text)


def _unescape(text: str, chars: str) -> str:
    return re.sub(r"\\([" + re.escape(chars) + "])", r"\1", text)


def _value(raw: str) -> Value:
    if raw.startswith('"'):
        if len(raw) < 2 or not raw.endswith('"'):
            raise LineError("unbalanced quotes")
        return raw[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    if raw in _BOOLS:
        return _BOOLS[raw]
    if raw.endswith(("i", "u")) and _INT.fullmatch(raw[:-1]):
        number = int(raw[:-1])
        limit = 2**64 if raw.endswith("u") else 2**63
        if not -limit <= number < limit or (raw.endswith("u") and number < 0):
            raise LineError(f"unable to parse integer {raw[:-1]}: value out of range")
        return number
    if _FLOAT.fullmatch(raw):
        return float(raw)
    if raw[:1] in "tTfF":
        raise LineError("invalid boolean")
    raise LineError("invalid number")


def parse_line(line: str, precision: str = "ns") -> Line:
    """Parse one line of line protocol strictly; raise LineError as InfluxDB would refuse it."""
    key_end = _scan(line, 0, " ")
    keys = line[:key_end]
    parts, i = [], 0
    while i <= len(keys):
        j = _scan(keys, i, ",")
        parts.append(keys[i:j])
        i = j + 1
    measurement = _unescape(parts[0], ", ")
    if not measurement:
        raise LineError("missing measurement")
    tags: dict[str, str] = {}
    for part in parts[1:]:
        eq = _scan(part, 0, "=")
        if eq == len(part):
            raise LineError("missing tag value")
        key, value = _unescape(part[:eq], ", ="), _unescape(part[eq + 1 :], ", =")
        if not key:
            raise LineError("missing tag key")
        if not value:
            raise LineError("missing tag value")
        tags[key] = value
    if key_end >= len(line) - 1:
        raise LineError("missing fields")
    field_end = _scan(line, key_end + 1, " ", quotes=True)
    fields: dict[str, Value] = {}
    i = key_end + 1
    while i < field_end:
        j = _scan(line, i, ",", quotes=True)
        j = min(j, field_end)
        part = line[i:j]
        eq = _scan(part, 0, "=")
        if eq == len(part):
            raise LineError("missing field value" if part else "missing field key")
        key = _unescape(part[:eq], ", =")
        if not key:
            raise LineError("missing field key")
        if eq == len(part) - 1:
            raise LineError("missing field value")
        fields[key] = _value(part[eq + 1 :])
        i = j + 1
    if line[field_end - 1] == ",":
        raise LineError("missing field key")
    rest = line[field_end + 1 :].strip()
    if rest and not _INT.fullmatch(rest):
        raise LineError("bad timestamp")
    return Line(measurement, tags, fields, int(rest) * _PRECISION_NS[precision] if rest else None)


class InfluxDouble:
    """InfluxDB 2.x write endpoint on 127.0.0.1 in a thread, with switchable failure modes."""

    def __init__(
        self,
        token: str = "test-token",
        org: str = "fangxin",
        bucket: str = "series",
        max_body_bytes: int | None = None,
    ) -> None:
        """Configure the double; start() (or `with`) begins listening on a free port."""
        self.token, self.org, self.bucket = token, org, bucket
        self.org_id = "0" * 15 + "1"
        self.max_body_bytes = max_body_bytes
        self.port = 0
        self.hang_s = 5.0
        self.requests: list[WriteRequest] = []
        self.accepted_lines: list[str] = []  # every stored line, re-writes included
        self._points: dict[tuple[str, tuple[tuple[str, str], ...], int], StoredPoint] = {}
        self._types: dict[tuple[str, str], str] = {}
        self._mode, self._retry_after, self._times = "ok", 1, -1
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Return the base URL clients use."""
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> InfluxDouble:
        """Start listening."""
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop listening."""
        self.stop()

    def start(self) -> None:
        """Listen on the port (a free one the first time) and serve in a thread."""
        double = self

        class Handler(_Handler):
            pass

        Handler.double = double
        server = _Server(("127.0.0.1", self.port), Handler)
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop listening: new connections are refused."""
        self._release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def set_mode(self, mode: str, *, retry_after: int = 1, times: int | None = None) -> None:
        """Switch behaviour; with times=N the mode answers N writes, then "ok" returns."""
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode}")
        with self._lock:
            self._mode, self._retry_after = mode, retry_after
            self._times = -1 if times is None else times
        if mode == "unreachable" and self._server is not None:
            self.stop()
        elif mode != "unreachable" and self._server is None:
            self._release.clear()
            self.start()
        if mode != "hang":
            self._release.set()
            self._release.clear()

    def points(self) -> list[StoredPoint]:
        """Return the stored points in first-arrival order."""
        with self._lock:
            return list(self._points.values())

    def write_requests(self) -> list[WriteRequest]:
        """Return the write requests received so far."""
        with self._lock:
            return list(self.requests)

    def _take_mode(self) -> tuple[str, int]:
        with self._lock:
            mode = self._mode
            if self._times > 0:
                self._times -= 1
                if self._times == 0:
                    self._mode, self._times = "ok", -1
            return mode, self._retry_after

    def handle_write(self, params: dict[str, str], headers: Any, body: bytes) -> tuple[int, Any]:
        """Answer one write: (status, error body or None); stores what InfluxDB would store."""
        mode, retry_after = self._take_mode()
        if mode == "hang":
            self._release.wait(self.hang_s)
        gzipped = headers.get("Content-Encoding", "") in ("gzip", "x-gzip")
        request = WriteRequest(0, time.monotonic(), params, gzipped)
        status, error = self._write(mode, retry_after, params, headers, body, request)
        with self._lock:
            self.requests.append(WriteRequest(status, request.at, params, gzipped, request.lines))
        return status, error

    def _write(
        self,
        mode: str,
        retry_after: int,
        params: dict[str, str],
        headers: Any,
        body: bytes,
        request: WriteRequest,
    ) -> tuple[int, Any]:
        if mode in ("503", "429", "500"):
            code = {"503": "unavailable", "429": "too many requests", "500": "internal error"}
            return int(mode), (code[mode], f"{code[mode]}", retry_after)
        if mode == "401" or headers.get("Authorization") != f"Token {self.token}":
            return 401, ("unauthorized", "unauthorized access")
        if mode == "403":
            return 403, ("forbidden", "insufficient permissions for write")
        org = params.get("org") or params.get("orgID")
        if org not in (self.org, self.org_id):
            return 404, ("not found", f'organization name "{org}" not found')
        bucket = params.get("bucket")
        if not bucket:
            return 404, ("not found", "bucket not found")
        if mode == "404" or bucket != self.bucket:
            return 404, ("not found", f'bucket "{bucket}" not found')
        precision = params.get("precision", "ns")
        if precision not in _PRECISION_NS:
            msg = "invalid precision; valid precision units are ns, us, ms, and s"
            return 400, ("invalid", msg)
        if request.gzip:
            try:
                body = gzip.decompress(body)
            except (OSError, EOFError, zlib.error) as exc:
                return 400, ("invalid", f"unable to read data: gzip: {exc}")
        if self.max_body_bytes is not None and len(body) > self.max_body_bytes:
            return 413, ("too large", "unable to read data: points batch is too large")
        text = body.decode("utf-8", errors="replace")
        lines = [ln for ln in text.split("\n") if ln.strip() and not ln.startswith("#")]
        request.lines.extend(lines)
        if not lines:
            return 400, ("invalid", "writing requires points")
        parsed = []
        for line in lines:  # a parse error rejects the whole batch, as in OSS 2.x
            try:
                parsed.append((line, parse_line(line, precision)))
            except LineError as exc:
                return 400, ("invalid", f"unable to parse '{line}': {exc}")
        return self._store(parsed)

    def _store(self, parsed: list[tuple[str, Line]]) -> tuple[int, Any]:
        dropped, first_reason = 0, ""
        now_ns = time.time_ns()
        with self._lock:
            for text, line in parsed:
                reason = self._reject_reason(line)
                if reason:
                    dropped += 1
                    first_reason = first_reason or reason
                    continue
                for name, value in line.fields.items():
                    self._types.setdefault((line.measurement, name), _TYPE_NAMES[type(value)])
                ts = line.ts if line.ts is not None else now_ns
                key = (line.measurement, tuple(sorted(line.tags.items())), ts)
                old = self._points.get(key)
                if old is None:
                    self._points[key] = StoredPoint(line.measurement, line.tags, line.fields, ts)
                else:
                    old.fields = {**old.fields, **line.fields}
                self.accepted_lines.append(text)
        if dropped:
            msg = f"failure writing points to database: partial write: {first_reason}"
            msg += f" dropped={dropped}"
            return 422, ("unprocessable entity", msg)
        return 204, None

    def _reject_reason(self, line: Line) -> str:
        for name, value in line.fields.items():
            where = f'input field "{name}" on measurement "{line.measurement}"'
            if name == "time":
                return f"invalid field name: {where} is invalid"
            known = self._types.get((line.measurement, name))
            if known is not None and known != _TYPE_NAMES[type(value)]:
                return (
                    f"field type conflict: {where} is type {_TYPE_NAMES[type(value)]}, "
                    f"already exists as type {known}"
                )
        return ""


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that timed out and hung up is normal in these tests, not worth a traceback.
        _LOGGER.debug("double: error answering %s: %r", client_address, sys.exc_info()[1])


class _Handler(BaseHTTPRequestHandler):
    double: InfluxDouble
    server_version = "InfluxDouble"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib signature)
        _LOGGER.debug("double: %s", format % args)

    def _reply(self, status: int, error: Any = None, body: dict[str, Any] | None = None) -> None:
        self.send_response(status)
        self.send_header("X-Influxdb-Build", "OSS")
        self.send_header("X-Influxdb-Version", VERSION)
        payload = b""
        if error is not None:
            code, message, *retry = error
            if retry:
                self.send_header("Retry-After", str(retry[0]))
            self.send_header("X-Platform-Error-Code", code)
            body = {"code": code, "message": message}
        if body is not None:
            payload = json.dumps(body).encode()
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_POST(self) -> None:  # noqa: N802 (stdlib name)
        url = urlsplit(self.path)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if url.path != "/api/v2/write":
            self._reply(404, ("not found", "path not found"))
            return
        params = {k: v[-1] for k, v in parse_qs(url.query).items()}
        status, error = self.double.handle_write(params, self.headers, body)
        self._reply(status, error)

    def do_GET(self) -> None:  # noqa: N802 (stdlib name)
        path = urlsplit(self.path).path
        if path == "/ping":
            self._reply(204)
        elif path == "/health":
            health = {"name": "influxdb", "message": "ready for queries and writes"}
            self._reply(200, body={**health, "status": "pass", "checks": [], "version": VERSION})
        else:
            self._reply(404, ("not found", "path not found"))
