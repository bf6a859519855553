"""Render a label layout as PNG (printer dots), SVG (millimetres) or PDF (CJK CID font)."""

from __future__ import annotations

import io
from functools import cache
from html import escape
from typing import Any

import pylopdf_fonts_zh_cn  # Noto Sans SC (OFL), shipped on PyPI
from fontTools.pens.basePen import BasePen  # type: ignore[import-untyped]
from fontTools.ttLib import TTFont  # type: ignore[import-untyped]
from PIL import Image, ImageDraw, ImageFont
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen.canvas import Canvas

from fangxin.trace.certificates.labels import Layout
from fangxin.trace.certificates.qr import QUIET_ZONE, image, path_data

SVG_FONTS = (
    "'Noto Sans SC','Noto Sans CJK SC','Source Han Sans SC','PingFang SC',"
    "'Microsoft YaHei','SimHei','WenQuanYi Micro Hei',sans-serif"
)
# Adobe's standard Simplified Chinese CID font, for the invisible text layer only.
PDF_FONT = "STSong-Light"


@cache
def _font(px: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(pylopdf_fonts_zh_cn.sans_path()), px)


def render_png(out: Layout) -> bytes:
    """Rasterise at the printer's resolution; the QR lands on whole dots, 1 bit per pixel."""
    ppm = out.dpi / 25.4
    canvas = Image.new("1", (round(out.width * ppm), round(out.height * ppm)), 1)
    draw = ImageDraw.Draw(canvas)
    draw.fontmode = "1"  # no grey edges: thermal printers print dots, not shades
    for t in out.texts:
        px = max(8, round(t.size * ppm))
        draw.text(
            (t.x * ppm, t.y * ppm),
            t.text,
            font=_font(px),
            fill=0,
            anchor="ms" if t.anchor == "middle" else "ls",
            stroke_width=1 if t.bold else 0,
            stroke_fill=0,
        )
    for b in out.boxes:
        x, y, s = b.x * ppm, b.y * ppm, b.size * ppm
        draw.rectangle((x, y, x + s, y + s), outline=0, width=max(1, round(s / 10)))
        if b.checked:
            w = max(1, round(s / 7))
            draw.line((x + s * 0.2, y + s * 0.5, x + s * 0.42, y + s * 0.75), fill=0, width=w)
            draw.line((x + s * 0.42, y + s * 0.75, x + s * 0.82, y + s * 0.22), fill=0, width=w)
    canvas.paste(image(out.qr.symbol, out.qr.dots), (round(out.qr.x * ppm), round(out.qr.y * ppm)))
    buf = io.BytesIO()
    canvas.save(buf, format="PNG", dpi=(out.dpi, out.dpi))
    return buf.getvalue()


def render_svg(out: Layout) -> str:
    """Draw the label in SVG user units of one millimetre."""
    w, h = _n(out.width), _n(out.height)
    parts = [
        '<svg xmlns="http://www.w3.org/2000/svg" version="1.1" '
        f'width="{w}mm" height="{h}mm" viewBox="0 0 {w} {h}">',
        f'<rect width="{w}" height="{h}" fill="#fff"/>',
        f'<g font-family="{SVG_FONTS}" fill="#000">',
    ]
    for t in out.texts:
        weight = ' font-weight="bold"' if t.bold else ""
        anchor = ' text-anchor="middle"' if t.anchor == "middle" else ""
        parts.append(
            f'<text x="{_n(t.x)}" y="{_n(t.y)}" font-size="{_n(t.size)}"{weight}{anchor}>'
            f"{escape(t.text)}</text>"
        )
    parts.append("</g>")
    for b in out.boxes:
        stroke = _n(b.size / 10)
        parts.append(
            f'<rect x="{_n(b.x)}" y="{_n(b.y)}" width="{_n(b.size)}" height="{_n(b.size)}" '
            f'fill="none" stroke="#000" stroke-width="{stroke}"/>'
        )
        if b.checked:
            s = b.size
            parts.append(
                f'<path d="M{_n(b.x + s * 0.2)} {_n(b.y + s * 0.5)}L{_n(b.x + s * 0.42)} '
                f'{_n(b.y + s * 0.75)}L{_n(b.x + s * 0.82)} {_n(b.y + s * 0.22)}" fill="none" '
                f'stroke="#000" stroke-width="{_n(s / 7)}"/>'
            )
    q = out.qr
    inner = QUIET_ZONE * q.module
    parts.append(
        f'<path fill="#000" shape-rendering="crispEdges" '
        f'transform="translate({_n(q.x + inner)} {_n(q.y + inner)}) scale({q.module:.6f})" '
        f'd="{path_data(q.symbol)}"/>'
    )
    parts.append("</svg>")
    return "".join(parts)


@cache
def _outline_font() -> tuple[Any, dict[int, str], float]:
    font = TTFont(str(pylopdf_fonts_zh_cn.sans_path()), lazy=True)
    return font.getGlyphSet(), font.getBestCmap(), float(font["head"].unitsPerEm)


class _PathPen(BasePen):  # type: ignore[misc]
    """Turn glyph outlines into a reportlab path, scaled and placed on the page."""

    def __init__(self, glyphs: Any, path: Any, x: float, y: float, scale: float) -> None:
        super().__init__(glyphs)
        self.path, self.x, self.y, self.scale = path, x, y, scale

    def _p(self, pt: tuple[float, float]) -> tuple[float, float]:
        return self.x + pt[0] * self.scale, self.y + pt[1] * self.scale

    def _moveTo(self, pt: tuple[float, float]) -> None:
        self.path.moveTo(*self._p(pt))

    def _lineTo(self, pt: tuple[float, float]) -> None:
        self.path.lineTo(*self._p(pt))

    def _curveToOne(self, p1: Any, p2: Any, p3: Any) -> None:
        self.path.curveTo(*self._p(p1), *self._p(p2), *self._p(p3))

    def _closePath(self) -> None:
        self.path.close()


def _outline_width(text: str, size: float) -> float:
    glyphs, cmap, em = _outline_font()
    return float(sum(glyphs[cmap.get(ord(c), ".notdef")].width for c in text) * size / em)


def _draw_outlines(pdf: Any, text: str, x: float, y: float, size: float, bold: bool) -> None:
    glyphs, cmap, em = _outline_font()
    path = pdf.beginPath()
    for char in text:
        glyph = glyphs[cmap.get(ord(char), ".notdef")]
        glyph.draw(_PathPen(glyphs, path, x, y, size / em))
        x += glyph.width * size / em
    if bold:
        pdf.setLineWidth(size / 30)
    pdf.drawPath(path, stroke=1 if bold else 0, fill=1, fillMode=1)


def render_pdf(out: Layout, title: str) -> bytes:
    """Draw the label as a one-page PDF of the label's size, vector text and QR.

    Glyphs are drawn as outlines from the bundled Noto Sans SC, so Chinese renders in every
    reader with nothing embedded or downloaded; an invisible text layer in Adobe's standard
    STSong-Light CID font keeps the text searchable and copyable.
    """
    if PDF_FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(PDF_FONT))
    buf = io.BytesIO()
    pdf = Canvas(buf, pagesize=(out.width * mm, out.height * mm), invariant=1)
    pdf.setTitle(title)

    def y_of(y: float) -> float:
        return (out.height - y) * mm

    for t in out.texts:
        size = t.size * mm
        x = t.x * mm
        if t.anchor == "middle":
            x -= _outline_width(t.text, size) / 2
        _draw_outlines(pdf, t.text, x, y_of(t.y), size, t.bold)
        layer = pdf.beginText()
        layer.setTextRenderMode(3)  # invisible: for search and copy only
        layer.setFont(PDF_FONT, size)
        layer.setTextOrigin(x, y_of(t.y))
        layer.textLine(t.text)
        pdf.drawText(layer)
    for b in out.boxes:
        pdf.setLineWidth(b.size * mm / 10)
        pdf.rect(b.x * mm, y_of(b.y + b.size), b.size * mm, b.size * mm, stroke=1, fill=0)
        if b.checked:
            s = b.size
            pdf.setLineWidth(s * mm / 7)
            path = pdf.beginPath()
            path.moveTo((b.x + s * 0.2) * mm, y_of(b.y + s * 0.5))
            path.lineTo((b.x + s * 0.42) * mm, y_of(b.y + s * 0.75))
            path.lineTo((b.x + s * 0.82) * mm, y_of(b.y + s * 0.22))
            pdf.drawPath(path, stroke=1, fill=0)
    q = out.qr
    inner = QUIET_ZONE * q.module
    for row, modules in enumerate(q.symbol.modules):
        col = 0
        while col < len(modules):
            start = col
            while col < len(modules) and modules[col]:
                col += 1
            if col > start:
                x = q.x + inner + start * q.module
                y = q.y + inner + (row + 1) * q.module
                pdf.rect(x * mm, y_of(y), (col - start) * q.module * mm, q.module * mm, 0, 1)
            col += 1
    pdf.showPage()
    pdf.save()
    return buf.getvalue()


def _n(value: float) -> str:
    return f"{value:.3f}".rstrip("0").rstrip(".") or "0"
