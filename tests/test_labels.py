"""QR codes and labels: EC level M, version <= 4, whole printer dots, and a real decoder."""

from __future__ import annotations

import io
import re
import secrets
from typing import Any
from urllib.parse import urlsplit

import pypdf
import pypdfium2  # type: ignore[import-untyped]
import pytest
import qrcode
import qrcode.util
import zxingcpp
from flask.testing import FlaskClient
from PIL import Image, ImageDraw

from fangxin.trace.certificates import qr
from fangxin.trace.certificates.labels import SIZES, LabelData, layout, text_width
from fangxin.trace.certificates.records import COMMITMENTS
from tests.refusals import refused
from tests.trace_helpers import auth, setup

LONG_URL = "https://hgz.scjgj.pingdingshan.gov.cn/c/ABCDEFGHIJKLMNOP"


def decode(image: Image.Image) -> list[Any]:
    """Decode every QR symbol in an image with zxing-cpp."""
    return [b for b in zxingcpp.read_barcodes(image) if b.format == zxingcpp.BarcodeFormat.QRCode]


def open_scan_page(client: FlaskClient, url: str) -> str:
    """Follow a decoded URL to the app's scan page."""
    page = client.get(urlsplit(url).path)
    assert page.status_code == 200
    return page.get_data(as_text=True)


@pytest.mark.parametrize("url", ["http://localhost:8000/c/ABCDEFGHIJKLMNOP", LONG_URL])
def test_scan_urls_fit_version_4_at_level_m(url: str) -> None:
    symbol = qr.make(url, max_version=4)
    assert symbol.version <= 4
    barcodes = decode(Image.open(io.BytesIO(qr.png(symbol))))
    assert [b.text for b in barcodes] == [url]
    assert barcodes[0].ec_level == "M"
    with pytest.raises(qr.QRError, match="version"):
        qr.make(url + "?" + "x" * 80, max_version=4)


@pytest.mark.parametrize("length", [16, 40, 120, 400])
def test_fast_mask_choice_matches_qrcode(length: int) -> None:
    for n in range(12):
        data = f"http://localhost:8000/c/{secrets.token_hex(length)[:length]}{n}"
        reference = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=0)
        reference.add_data(data)
        reference.make(fit=True)
        ours = qr.make(data)
        assert ours.modules == tuple(tuple(row) for row in reference.get_matrix())
        for mask in range(8):
            reference.makeImpl(True, mask)
            assert qr.penalty(reference.modules) == qrcode.util.lost_point(reference.modules)


@pytest.mark.parametrize(("dpi", "dots"), [(203, 4), (300, 5)])
def test_png_has_whole_dots_per_module(dpi: int, dots: int) -> None:
    symbol = qr.make("http://localhost:8000/c/ABCDEFGHIJKLMNOP")
    image = Image.open(io.BytesIO(qr.png(symbol, dpi)))
    side = (symbol.size + 2 * qr.QUIET_ZONE) * dots
    assert image.size == (side, side)
    assert round(image.info["dpi"][0]) == dpi
    pixels = image.convert("L").load()
    assert pixels is not None
    for y, row in enumerate(symbol.modules):
        for x, dark in enumerate(row):
            for dy in range(dots):  # every printer dot of the module has the module's colour
                for dx in range(dots):
                    px = pixels[(x + qr.QUIET_ZONE) * dots + dx, (y + qr.QUIET_ZONE) * dots + dy]
                    assert (px == 0) == dark
    with pytest.raises(qr.QRError):
        qr.png(symbol, 600)


def test_svg_paths_draw_the_same_symbol() -> None:
    symbol = qr.make("http://localhost:8000/c/ABCDEFGHIJKLMNOP")
    svg = qr.svg(symbol, module_mm=0.5)
    side = symbol.size + 2 * qr.QUIET_ZONE
    assert f'width="{side * 0.5:g}mm"' in svg
    image = Image.new("L", (side * 8, side * 8), 255)
    draw = ImageDraw.Draw(image)
    for x, y, w in re.findall(r"M([\d.]+) ([\d.]+)h([\d.]+)v1h-[\d.]+z", svg):
        x0, y0 = float(x) * 8, float(y) * 8
        draw.rectangle((x0, y0, x0 + float(w) * 8 - 1, y0 + 7), fill=0)
    assert [b.text for b in decode(image)] == ["http://localhost:8000/c/ABCDEFGHIJKLMNOP"]


def test_issue_print_decode_scan_shows_genuine(client: FlaskClient, admin_key: str) -> None:
    secret, cert = setup(client, admin_key)
    base = f"/api/v1/certificates/{cert['number']}"
    for size in SIZES:
        for dpi in (203, 300):
            png = client.get(f"{base}/label.png?size={size}&dpi={dpi}", headers=auth(secret))
            assert png.status_code == 200
            assert png.mimetype == "image/png"
            image = Image.open(io.BytesIO(png.data))
            width, height = SIZES[size].width, SIZES[size].height
            assert image.size == (round(width * dpi / 25.4), round(height * dpi / 25.4))
            [barcode] = decode(image)
            assert barcode.text == cert["url"]
            page = open_scan_page(client, barcode.text)
            assert 'data-status="genuine"' in page
            assert "电子签名校验通过" in page
            assert cert["number"] in page
    pdf = client.get(f"{base}/label.pdf?size=70x50", headers=auth(secret))
    assert pdf.mimetype == "application/pdf"
    rendered = pypdfium2.PdfDocument(pdf.data)[0].render(scale=300 / 72).to_pil()
    [barcode] = decode(rendered)
    assert 'data-status="genuine"' in open_scan_page(client, barcode.text)
    pdf_page = pypdf.PdfReader(io.BytesIO(pdf.data)).pages[0]
    assert round(float(pdf_page.mediabox.width) / 72 * 25.4) == 70
    text = pdf_page.extract_text()
    for expected in (
        "承诺达标合格证",
        cert["number"],
        "菠菜",
        "郏县绿源蔬菜合作社",
        "委托检测合格",
    ):
        assert expected in text
    svg = client.get(f"{base}/label.svg", headers=auth(secret))
    assert svg.mimetype == "image/svg+xml"
    assert 'width="60mm" height="40mm"' in svg.get_data(as_text=True)
    assert "承诺达标合格证" in svg.get_data(as_text=True)


def test_pdf_text_renders_without_system_fonts(client: FlaskClient, admin_key: str) -> None:
    secret, cert = setup(client, admin_key)
    pdf = client.get(f"/api/v1/certificates/{cert['number']}/label.pdf", headers=auth(secret))
    rendered = pypdfium2.PdfDocument(pdf.data)[0].render(scale=300 / 72).to_pil().convert("L")
    # The title's glyphs are outlines: its band (left of the QR) must be inked.
    title_band = rendered.crop((0, 0, rendered.width // 2, rendered.height // 6))
    dark = sum(title_band.histogram()[:128])
    assert dark > title_band.width * title_band.height * 0.05


def test_print_page_and_qr_endpoints(client: FlaskClient, admin_key: str) -> None:
    secret, cert = setup(client, admin_key)
    base = f"/api/v1/certificates/{cert['number']}"
    html = client.get(f"{base}/label.html?size=70x50", headers=auth(secret)).get_data(as_text=True)
    assert "@page { size: 70mm 50mm; margin: 0; }" in html
    assert "<svg" in html
    assert "承诺达标合格证" in html
    qr_png = client.get(f"{base}/qr.png?dpi=300", headers=auth(secret))
    assert [b.text for b in decode(Image.open(io.BytesIO(qr_png.data)))] == [cert["url"]]
    assert client.get(f"{base}/qr.svg", headers=auth(secret)).mimetype == "image/svg+xml"
    dpi = client.get(f"{base}/label.png?dpi=600", headers=auth(secret))
    refused(dpi, 422, "no default for 600 dpi; use one of [203, 300]")
    size = client.get(f"{base}/label.png?size=10x10", headers=auth(secret))
    refused(size, 422, "label size must be one of ['60x40', '70x50', '100x70']")
    gif = client.get(f"{base}/label.gif", headers=auth(secret))
    refused(gif, 404, "labels come as png, svg, pdf or html")
    refused(client.get(f"{base}/label.png"), 401, "send an API key")
    client.post(f"{base}/revoke", json={"reason": "重新开具"}, headers=auth(secret))
    voided = client.get(f"{base}/label.png", headers=auth(secret))
    refused(voided, 409, f"{cert['number']} is voided or recalled: not printed")


@pytest.mark.parametrize("size", sorted(SIZES))
@pytest.mark.parametrize("template", ["producer", "purchaser"])
def test_layout_fits_the_label(size: str, template: str) -> None:
    data = LabelData(
        number="HGZ20261129-000123",
        url=LONG_URL,
        fields=(
            ("产品名称", "有机菠菜（精品）"),
            ("数量（重量）", "1250.5 kg"),
            ("产地", "河南省平顶山市郏县长桥镇"),
            ("开具日期", "2026-11-29"),
            ("承诺主体", "郏县绿源蔬菜合作社"),
            ("联系方式", "0375-1234567"),
        ),
        commitment=COMMITMENTS[template],
        basis=(("质量安全控制符合要求", True), ("自行检测合格", True), ("委托检测合格", False)),
    )
    spec = SIZES[size]
    out = layout(data, size)
    assert out.texts[0].text == "承诺达标合格证"
    assert out.texts[0].bold
    assert out.texts[0].size == max(t.size for t in out.texts)  # the title is the most prominent
    assert max(t.y for t in out.texts) < spec.height - spec.margin / 2
    for t in out.texts:
        left = t.x - (text_width(t.text, t.size) / 2 if t.anchor == "middle" else 0)
        assert left >= 0
        assert left + text_width(t.text, t.size) <= spec.width + 0.01
        in_qr_x = out.qr.x < left + text_width(t.text, t.size) and left < out.qr.x + out.qr.side
        in_qr_y = out.qr.y < t.y and t.y - t.size < out.qr.y + out.qr.side
        assert not (in_qr_x and in_qr_y), t  # nothing prints in the QR or its quiet zone
    assert [b.checked for b in out.boxes] == [True, True, False]
