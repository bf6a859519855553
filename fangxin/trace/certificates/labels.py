"""Label layouts (60×40 mm, 70×50 mm) in millimetres, shared by the PNG, SVG and PDF renderers."""

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
}


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
            ("品名", cert.product),
            ("数量（重量）", f"{format_quantity(cert.quantity_milli)} {cert.unit}"),
            ("产地", cert.origin),
            ("开具日期", issued.date().isoformat()),
            ("承诺主体", cert.subject_name),
            ("联系方式", cert.contact),
        ),
        commitment=cert.commitment,
        basis=tuple((BASIS_LABELS[b], b in cert.basis) for b in BASIS),
    )


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


def fit(text: str, size: float, width: float) -> tuple[str, float]:
    """Shrink a line to at most 25 % smaller, then cut it with an ellipsis, to fit width."""
    smallest = size * 0.75
    while text_width(text, size) > width and size > smallest:
        size = max(smallest, size * 0.95)
    while len(text) > 1 and text_width(text, size) > width:
        text = text[:-2] + "…"
    return text, size


def _attempt(data: LabelData, name: str, spec: LabelSpec, dpi: int, scale: float) -> Layout:
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
    for label, value in data.fields:
        line, size = fit(f"{label}：{value}", text, column)
        out.texts.append(Text(margin, y, size, line))
        y += text * 1.3
    number, number_size = fit(data.number, small, side + margin)
    number_y = qr.y + side + number_size
    half = text_width(number, number_size) / 2
    centre = min(qr.x + side / 2, spec.width - margin / 2 - half)
    out.texts.append(Text(centre, number_y, number_size, number, anchor="middle"))
    y = max(y - text * 1.3, number_y) + small * 1.5
    for line in wrap(data.commitment, small, spec.width - 2 * margin):
        out.texts.append(Text(margin, y, small, line))
        y += small * 1.25
    x, y = margin, y + small * 0.2
    for label, checked in data.basis:
        width = small * 1.4 + text_width(label, small) + small
        if x + width > spec.width - margin:
            x, y = margin, y + small * 1.5
        out.boxes.append(Box(x, y - small * 0.85, small, checked))
        out.texts.append(Text(x + small * 1.4, y, small, label))
        x += width
    return out


def layout(data: LabelData, size: str = "60x40", dpi: int = 203) -> Layout:
    """Lay a label out, shrinking the text until everything fits the label."""
    spec = SIZES.get(size)
    if spec is None:
        raise QRError(f"label size must be one of {sorted(SIZES)}")
    dots_for(dpi)  # refuse resolutions we have no dots-per-module rule for
    scale = 1.0
    while True:
        out = _attempt(data, size, spec, dpi, scale)
        bottom = max(t.y for t in out.texts) + spec.small * 0.3
        if bottom <= spec.height - spec.margin / 2 or scale < 0.7:
            return out
        scale *= 0.93
