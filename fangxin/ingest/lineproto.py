"""InfluxDB line protocol: rendering points, reading a line's measurement, Retry-After."""

from __future__ import annotations

import datetime as dt
import email.utils
import math

from fangxin.db import utcnow
from fangxin.ingest.sinks import Point

_CONTROL = {"\n": r"\n", "\r": r"\r", "\t": r"\t"}
_ESCAPE_MEASUREMENT = str.maketrans({",": r"\,", " ": r"\ ", **_CONTROL})
_ESCAPE_KEY = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ ", **_CONTROL})
_ESCAPE_STRING = str.maketrans({"\\": "\\\\", '"': '\\"'})
MAX_RETRY_AFTER_S = 600.0  # Telegraf's cap on a server's Retry-After


def _key(text: str) -> str:
    escaped = text.translate(_ESCAPE_KEY)
    # A trailing backslash would escape the separator after it (influxdb-client does the same).
    return escaped + " " if escaped.endswith("\\") else escaped


def to_line(point: Point) -> str:
    """Render a point as line protocol with a ns timestamp; ValueError if unstorable."""
    if point.ts.tzinfo is None:
        raise ValueError("naive timestamp")
    tags = "".join(
        f",{_key(k)}={_key(v)}" for k, v in sorted(point.tags.items()) if k != "" and v != ""
    )
    fields = []
    for name, value in sorted(point.fields.items()):
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, int):
            text = f"{value}i"
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise ValueError(f"field {name!r} is {value}: InfluxDB cannot store NaN or inf")
            text = repr(value)  # always has "." or "e": stays a float, never becomes an integer
        else:
            text = '"' + str(value).translate(_ESCAPE_STRING) + '"'
        fields.append(f"{_key(name)}={text}")
    # ns, so Point.key's sub-millisecond nudge keeps same-instant readings apart.
    ts = point.timestamp_ns
    return f"{point.measurement.translate(_ESCAPE_MEASUREMENT)}{tags} {','.join(fields)} {ts}"


def measurement_of(line: str) -> str | None:
    """Return the (unescaped) measurement of a line-protocol line."""
    i = 0
    while i < len(line) and line[i] not in ", ":
        i += 2 if line[i] == "\\" else 1
    name = line[:i].replace("\\,", ",").replace("\\ ", " ")
    return name[:300] or None


def parse_retry_after(raw: str | None) -> float | None:
    """Return a Retry-After header (seconds or HTTP date) as seconds, capped; None if absent."""
    if not raw:
        return None
    try:
        return min(max(float(raw), 0.0), MAX_RETRY_AFTER_S)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return 10.0  # Telegraf's choice for an unparsable value
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return min(max((when - utcnow()).total_seconds(), 0.0), MAX_RETRY_AFTER_S)
