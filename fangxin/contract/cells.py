"""Spreadsheet cells that cannot run: the one sanitiser every CSV and XLSX writer uses."""

from __future__ import annotations

import re
from typing import Any

# Control characters a worksheet cannot hold (openpyxl refuses them); harmless to drop in CSV.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
# A cell beginning with one of these is a formula (or DDE) to Excel, LibreOffice and WPS.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")


def safe_cell(value: Any) -> Any:
    """Return text that a spreadsheet shows as text (a leading ' before a formula); numbers as is.

    Labs and devices control sample names, stalls, testers, reagent lots and ids: such a value
    beginning with = + - @ tab or a line break would otherwise be evaluated when opened.
    """
    if not isinstance(value, str):
        return value
    text = _CONTROL.sub("", value)
    if text.startswith(FORMULA_START) or text.lstrip().startswith(FORMULA_START[:4]):
        return "'" + text
    return text
