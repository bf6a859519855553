"""Ids of sites, devices and subjects, as topics and bodies carry them: one pattern everywhere."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import Field

# A letter or digit, then letters, digits, `_`, `.` or `-`; 64 characters at most (a topic level).
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$"
ID_RE = re.compile(ID_PATTERN)

Id = Annotated[str, Field(min_length=1, max_length=64, pattern=ID_PATTERN)]
