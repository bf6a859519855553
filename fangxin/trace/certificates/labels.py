"""Label layouts (60×40, 70×50, 100×70 mm) in millimetres, shared by the PNG, SVG and PDF renderers.

The six required fields (产品名称, 数量（重量）, 产地, 开具日期, 承诺主体, 联系方式) are never cut:
a label too small for one of them is refused with the field named (issue 13 item 12).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from fangxin.trace.certificates.models import Certificate
from fangxin.trace.certificates.qr import QUIET_ZONE, QRError, Symbol, dots_for, make
from fangxin.trace.certificates.records import BASIS, BASIS_LABELS, format_quantity

TITLE = "承诺达标合格证"
MAX_QR_VERSION = 4
# Chinese line breaking: closing punctuation never starts a line (it hangs at the end instead).
NO_LINE_START = frozenset("，。；：、！？）」』》”’")


@dataclass(frozen=True, slots=True)
class LabelSpec:
    """Geometry of one label size (millimetres) and its QR dots per module by printer dpi."""

    width: float
    height: float
    margin: float
    title: float
    text: float
    small: float
    dots: dict[int, int]


SIZES = {
    "60x40": LabelSpec(60, 40, 1.5, 4.5, 2.5, 1.7, {203: 4, 300: 5}),
    "70x50": LabelSpec(70, 50, 2.0, 5.4, 3.0, 2.0, {203: 5, 300: 6}),
    # Domain.md §1.4 puts thermal labels at 70×50 to 100×70 mm: the largest size we print.
    "100x70": LabelSpec(100, 70, 2.5, 7.0, 3.6, 2.6, {203: 5, 300: 7}),
}
# Smallest first: the size chosen when the caller names none.
SIZE_ORDER = ("60x40", "70x50", "100x70")
# The six fields the 2026 rules require, as printed and as the API names them.
REQUIRED_FIELDS = {
    "产品名称": "product",
    "数量（重量）": "quantity",
    "产地": "origin",
    "开具日期": "issued_at",
    "承诺主体": "subject_name",
    "联系方式": "contact",
}
BASIS_CAPTION = "承诺依据："
# How far a field's text may shrink below the label's text size (本地设置: a legibility choice).
FIELD_SHRINK = 0.75


class LabelTooSmall(ValueError):
    """The label cannot print a required field whole (or everything) at any allowed text size."""

    def __init__(self, size: str, fields: list[str], larger: str | None) -> None:
        """Name the fields that do not fit and the larger size that would hold them, if any."""
        names = "、".join(fields)
        hint = f"; print it on {larger}" if larger else "; no label size holds it"
        super().__init__(f"{names} does not fit a {size} mm label without cutting it{hint}")
        self.size, self.fields, self.larger = size, fields, larger


@dataclass(frozen=True, slots=True)
class LabelData:
    """What a label states."""

    number: str
    url: str
    fields: tuple[tuple[str, str], ...]
    commitment: str
    basis: tuple[tuple[str, bool], ...]


@dataclass(frozen=True, slots=True)
class Text:
    """A line of text; y is the baseline; anchor is "start" or "middle"."""

    x: float
    y: float
    size: float
    text: str
    bold: bool = False
    anchor: str = "start"


@dataclass(frozen=True, slots=True)
class Box:
    """A tick box; y is its top edge."""

    x: float
    y: float
    size: float
    checked: bool


@dataclass(frozen=True, slots=True)
class QrBlock:
    """The QR symbol; (x, y) is the top-left of its quiet zone."""

    x: float
    y: float
    module: float
    dots: int
    symbol: Symbol

    @property
    def side(self) -> float:
        """Return the side including the quiet zone."""
        return (self.symbol.size + 2 * QUIET_ZONE) * self.module


@dataclass(slots=True)
class Layout:
    """A laid-out label."""

    size: str
    width: float
    height: float
    dpi: int
    qr: QrBlock
    texts: list[Text] = field(default_factory=list)
    boxes: list[Box] = field(default_factory=list)


def label_data(cert: Certificate, url: str, tz: str) -> LabelData:
    """Return what a certificate's label states."""
    issued = cert.issued_at.astimezone(ZoneInfo(tz))
    return LabelData(
        number=cert.number,
        url=url,
        fields=(
            ("产品名称", cert.product),
            ("数量（重量）", f"{format_quantity(cert.quantity_milli)} {cert.unit}"),
            ("产地", cert.origin),
            ("开具日期", issued.date().isoformat()),
            ("承诺主体", cert.subject_name),
            ("联系方式", cert.contact),
        ),
        commitment=cert.commitment,
        basis=_basis(cert),
    )


def _basis(cert: Certificate) -> tuple[tuple[str, bool], ...]:
    """Return the tick boxes: the 2026 options, or an import's labels as printed (all ticked)."""
    if cert.template_version != "2026" and cert.basis_printed is not None:
        return tuple((label, True) for label in cert.basis_printed)
    return tuple((BASIS_LABELS[b], b in cert.basis) for b in BASIS)


def text_width(text: str, size: float) -> float:
    """Estimate a line's width: CJK and full-width characters are 1 em, others 0.6 em."""
    return sum(size if ord(c) >= 0x2E80 else size * 0.6 for c in text)


def wrap(text: str, size: float, width: float) -> list[str]:
    """Break text into lines no wider than width (any character may break in Chinese)."""
    lines, line = [], ""
    for char in text:
        if line and text_width(line + char, size) > width and char not in NO_LINE_START:
            lines.append(line)
            line = ""
        line += char
    return [*lines, line] if line else lines


def fit(
    text: str, size: float, width: float, smallest: float | None = None
) -> tuple[str, float] | None:
    """Shrink a line (by at most 25 %, or to `smallest`) to fit width; None when it cannot."""
    smallest = size * FIELD_SHRINK if smallest is None else min(smallest, size)
    while text_width(text, size) > width and size > smallest:
        size = max(smallest, size * 0.95)
    return (text, size) if text_width(text, size) <= width else None


def _attempt(
    data: LabelData, name: str, spec: LabelSpec, dpi: int, scale: float
) -> tuple[Layout, list[str]]:
    """Lay out at a scale; return the layout and the fields that did not fit."""
    margin, title, text = spec.margin, spec.title * scale, spec.text * scale
    small = spec.small * max(scale, 0.85)
    symbol = make(data.url, MAX_QR_VERSION)
    dots = spec.dots[dpi]
    module = dots * 25.4 / dpi
    side = (symbol.size + 2 * QUIET_ZONE) * module
    # Top right; the quiet zone may share the label's own blank edge, text never enters it.
    qr = QrBlock(spec.width - margin / 2 - side, margin / 2, module, dots, symbol)
    out = Layout(name, spec.width, spec.height, dpi, qr)
    out.texts.append(Text(margin, margin + title * 0.88, title, TITLE, bold=True))
    column = qr.x - margin - 0.2
    y = margin + title * 1.2 + text * 0.9
    missing = []
    for label, value in data.fields:
        line = f"{label}：{value}"
        # Required fields stay legible: never below 75 % of the label's own text size.
        fitted = fit(line, text, column, spec.text * FIELD_SHRINK)
        if fitted is None:
            missing.append(label)
            fitted = (line, text)
        out.texts.append(Text(margin, y, fitted[1], fitted[0]))
        y += text * 1.3
    number_size = (fit(data.number, small, side + margin) or (data.number, small))[1]
    number_y = qr.y + side + number_size
    half = text_width(data.number, number_size) / 2
    centre = min(qr.x + side / 2, spec.width - margin / 2 - half)
    out.texts.append(Text(centre, number_y, number_size, data.number, anchor="middle"))
    y = max(y - text * 1.3, number_y) + small * 1.5
    for line in wrap(data.commitment, small, spec.width - 2 * margin):
        out.texts.append(Text(margin, y, small, line))
        y += small * 1.25
    x, y = margin, y + small * 0.2
    out.texts.append(Text(x, y, small, BASIS_CAPTION))
    x += text_width(BASIS_CAPTION, small)
    for label, checked in data.basis:
        width = small * 1.4 + text_width(label, small) + small
        if x + width > spec.width - margin:
            x, y = margin, y + small * 1.5
        out.boxes.append(Box(x, y - small * 0.85, small, checked))
        out.texts.append(Text(x + small * 1.4, y, small, label))
        x += width
    return out, missing


def _fitted(data: LabelData, size: str, dpi: int) -> tuple[Layout | None, list[str]]:
    """Shrink until everything fits the label; (None, what did not fit) when nothing does."""
    spec = SIZES[size]
    scale = 1.0
    while True:
        out, missing = _attempt(data, size, spec, dpi, scale)
        bottom = max(t.y for t in out.texts) + spec.small * 0.3
        if not missing and bottom <= spec.height - spec.margin / 2:
            return out, []
        if scale < 0.7:
            return None, missing or ["承诺内容"]
        scale *= 0.93


def layout(data: LabelData, size: str | None = None, dpi: int = 203) -> Layout:
    """Lay a label out on the size asked for, or on the smallest that holds every field whole."""
    if size is not None and size not in SIZES:
        raise QRError(f"label size must be one of {list(SIZE_ORDER)}")
    dots_for(dpi)  # refuse resolutions we have no dots-per-module rule for
    missing: list[str] = []
    for name in SIZE_ORDER if size is None else (size,):
        out, missing = _fitted(data, name, dpi)
        if out is not None:
            return out
    if size is None:  # not even the largest size holds it
        raise LabelTooSmall(SIZE_ORDER[-1], missing, None)
    bigger = SIZE_ORDER[SIZE_ORDER.index(size) + 1 :]
    larger = next((n for n in bigger if _fitted(data, n, dpi)[0] is not None), None)
    raise LabelTooSmall(size, missing, larger)
