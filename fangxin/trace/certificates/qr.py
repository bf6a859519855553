"""QR symbols for labels: EC level M, SVG paths and PNGs at whole printer dots per module."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from functools import cache

import qrcode
import qrcode.util
from PIL import Image

QUIET_ZONE = 4  # modules of light margin on every side (ISO/IEC 18004)
# Printer dots per module: >= 4 dots (DENSO WAVE) and within GS1's X-dimension range.
DOTS_PER_MODULE = {203: 4, 300: 5}


class QRError(ValueError):
    """Data that does not fit the symbol we promise, or a print setting we cannot honour."""


@dataclass(frozen=True, slots=True)
class Symbol:
    """A QR symbol's dark modules, without the quiet zone."""

    version: int
    modules: tuple[tuple[bool, ...], ...]

    @property
    def size(self) -> int:
        """Return the number of modules per side."""
        return len(self.modules)


_RUNS = re.compile(rb"\x00{5,}|\x01{5,}")
_FINDER = re.compile(
    rb"(?=\x01\x00\x01\x01\x01\x00\x01\x00{4}|\x00{4}\x01\x00\x01\x01\x01\x00\x01)"
)
_BITS = bytes.maketrans(b"\x00\x01", b"01")


def penalty(modules: list[list[bool]]) -> int:
    """Score a masked symbol by ISO/IEC 18004's four penalty rules (as qrcode's lost_point)."""
    rows = [bytes(row) for row in modules]
    score = 0
    for line in rows + [bytes(col) for col in zip(*modules, strict=True)]:
        runs = _RUNS.findall(line)
        score += sum(map(len, runs)) - 2 * len(runs)
        score += 40 * len(_FINDER.findall(line))
    size = len(rows)
    ints = [int(row.translate(_BITS), 2) for row in rows]
    inner = (1 << (size - 1)) - 1
    for a, b in zip(ints, ints[1:], strict=False):
        same = ~(a ^ b)  # 2x2 blocks: equal down, equal across, in both rows
        score += 3 * (same & (same >> 1) & ~(a ^ (a >> 1)) & inner).bit_count()
    dark = sum(row.count(1) for row in rows)
    return score + 10 * int(abs(dark * 100 / (size * size) - 50) / 5)


@cache
def _mask_flips(version: int) -> tuple[tuple[tuple[int, int], ...], ...]:
    """For each mask, the data modules whose colour differs from mask 0's."""
    size = version * 4 + 17
    blank = qrcode.QRCode(version=version)
    blank.modules_count = size
    blank.modules = [[None] * size for _ in range(size)]
    for row, col in ((0, 0), (size - 7, 0), (0, size - 7)):
        blank.setup_position_probe_pattern(row, col)
    blank.setup_position_adjust_pattern()
    blank.setup_timing_pattern()
    blank.setup_type_info(True, 0)
    if version >= 7:
        blank.setup_type_number(True)
    cells = [(i, j) for i in range(size) for j in range(size) if blank.modules[i][j] is None]
    base = qrcode.util.mask_func(0)
    return tuple(
        tuple((i, j) for i, j in cells if base(i, j) != qrcode.util.mask_func(k)(i, j))
        for k in range(8)
    )


class _Encoder(qrcode.QRCode):  # type: ignore[misc]
    """qrcode's encoder with a faster mask choice that picks the same mask.

    The data is placed once; the other seven masks are derived by flipping modules.
    """

    modules: list[list[bool]]
    version: int

    def best_mask_pattern(self) -> int:
        """Return the mask with the lowest penalty."""
        self.makeImpl(True, 0)
        base = self.modules
        best, choice = -1, 0
        for k, flips in enumerate(_mask_flips(self.version)):
            modules = [row[:] for row in base]
            for i, j in flips:
                modules[i][j] = not modules[i][j]
            self.modules = modules
            self.setup_type_info(True, k)
            score = penalty(modules)
            if best < 0 or score < best:
                best, choice = score, k
        return choice


def make(data: str, max_version: int = 40) -> Symbol:
    """Encode data at EC level M in the smallest version (mode segments optimised)."""
    code = _Encoder(error_correction=qrcode.constants.ERROR_CORRECT_M, border=0)
    code.add_data(data)
    code.make(fit=True)
    if code.version > max_version:
        raise QRError(f"{len(data)} characters need QR version {code.version} > {max_version}")
    return Symbol(code.version, tuple(tuple(bool(m) for m in row) for row in code.get_matrix()))


def path_data(symbol: Symbol, x0: int = 0, y0: int = 0) -> str:
    """Return SVG path data in module units: each row's runs of dark modules as rectangles."""
    parts = []
    for y, row in enumerate(symbol.modules, start=y0):
        line = bytes(row)
        x = line.find(1)
        while x >= 0:
            end = line.find(0, x)
            end = len(line) if end < 0 else end
            parts.append(f"M{x + x0} {y}h{end - x}v1h-{end - x}z")
            x = line.find(1, end)
    return "".join(parts)


def _num(value: float) -> str:
    return f"{value:.4f}".rstrip("0").rstrip(".") or "0"


def svg(symbol: Symbol, module_mm: float = 0.5) -> str:
    """Return a standalone SVG of the symbol with its quiet zone, sized in millimetres."""
    side = symbol.size + 2 * QUIET_ZONE
    mm = _num(side * module_mm)
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" version="1.1" '
        f'width="{mm}mm" height="{mm}mm" viewBox="0 0 {side} {side}" shape-rendering="crispEdges">'
        f'<rect width="{side}" height="{side}" fill="#fff"/>'
        f'<path fill="#000" d="{path_data(symbol, QUIET_ZONE, QUIET_ZONE)}"/></svg>'
    )


def dots_for(dpi: int, dots: int | None = None) -> int:
    """Return the dots per module for a printer resolution (or check an explicit choice)."""
    if dots is None:
        if dpi not in DOTS_PER_MODULE:
            raise QRError(f"no default for {dpi} dpi; use one of {sorted(DOTS_PER_MODULE)}")
        return DOTS_PER_MODULE[dpi]
    if not 1 <= dots <= 20:
        raise QRError("dots per module must be 1..20")
    return dots


def image(symbol: Symbol, dots: int) -> Image.Image:
    """Return a 1-bit image of the symbol with quiet zone, each module exactly dots wide."""
    side = symbol.size + 2 * QUIET_ZONE
    pixels = bytearray(b"\xff" * side * side)
    for y, row in enumerate(symbol.modules):
        base = (y + QUIET_ZONE) * side + QUIET_ZONE
        for x, dark in enumerate(row):
            if dark:
                pixels[base + x] = 0
    small = Image.frombytes("L", (side, side), bytes(pixels))
    # Nearest-neighbour at an integer factor: every module lands on whole printer dots.
    return small.resize((side * dots, side * dots), Image.Resampling.NEAREST).convert("1")


def png(symbol: Symbol, dpi: int = 203, dots: int | None = None) -> bytes:
    """Return a PNG of the symbol for a printer of this resolution, with the dpi recorded."""
    out = io.BytesIO()
    image(symbol, dots_for(dpi, dots)).save(out, format="PNG", dpi=(dpi, dpi))
    return out.getvalue()
