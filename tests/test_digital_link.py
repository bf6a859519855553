"""GS1 Digital Link: strict parser and generator, and the resolver redirect to the scan page."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from fangxin.trace.certificates import digital_link as dl
from fangxin.trace.certificates.models import Certificate, CertificateSequence
from tests.refusals import refused
from tests.trace_helpers import auth, issue, issuer, subject

# GS1 reserves GTIN prefix 952 for examples; 09520123456788 has a valid check digit.
GTIN = "09520123456788"


def test_check_digit() -> None:
    assert dl.gs1_check_digit("0952012345678") == 8
    assert dl.gs1_check_digit("629104150021") == 3  # GTIN-13 6291041500213
    assert dl.normalise_gtin("6291041500213") == "06291041500213"
    with pytest.raises(dl.DigitalLinkError):
        dl.normalise_gtin("6291041500214")


@pytest.mark.parametrize(
    ("uri", "key", "value", "qualifiers", "attributes"),
    [
        (f"https://id.example.cn/01/{GTIN}", "01", GTIN, (), ()),
        (f"https://id.example.cn/01/{GTIN}/10/ABC123", "01", GTIN, (("10", "ABC123"),), ()),
        (f"HTTPS://ID.EXAMPLE.CN/01/{GTIN}/10/ABC", "01", GTIN, (("10", "ABC"),), ()),
        (
            f"https://e.cn/01/{GTIN}/22/V1/10/L%2F7/21/S%2B1",
            "01",
            GTIN,
            (("22", "V1"), ("10", "L/7"), ("21", "S+1")),
            (),
        ),
        (f"https://e.cn/01/{GTIN}/235/TPX1", "01", GTIN, (("235", "TPX1"),), ()),
        (
            f"https://e.cn/01/{GTIN}/10/A?17=261231&11=261100&linkType=gs1:pip&&flag#frag",
            "01",
            GTIN,
            (("10", "A"),),
            (("17", "261231"), ("11", "261100")),
        ),
        (
            f"https://e.cn/01/{GTIN}?3103=000500&422=156",
            "01",
            GTIN,
            (),
            (("3103", "000500"), ("422", "156")),
        ),
        ("https://e.cn/00/095201234567890122", "00", "095201234567890122", (), ()),
        ("https://e.cn/414/9520123456788/254/A1", "414", "9520123456788", (("254", "A1"),), ()),
        ("https://e.cn/253/9520123456788X1", "253", "9520123456788X1", (), ()),
        # A stem that looks like a key: the rightmost primary key wins.
        (f"https://e.cn/01/stem/01/{GTIN}/10/B", "01", GTIN, (("10", "B"),), ()),
        (f"https://e.cn/shop/01/{GTIN}/10/01", "01", GTIN, (("10", "01"),), ()),
    ],
)
def test_valid_links(
    uri: str,
    key: str,
    value: str,
    qualifiers: tuple[tuple[str, str], ...],
    attributes: tuple[tuple[str, str], ...],
) -> None:
    link = dl.parse(uri)
    assert (link.key, link.value, link.qualifiers, link.attributes) == (
        key,
        value,
        qualifiers,
        attributes,
    )


def test_stem_is_kept_in_the_base() -> None:
    assert dl.parse(f"https://e.cn/01/stem/01/{GTIN}/10/B").base == "https://e.cn/01/stem"
    assert dl.parse(f"http://localhost:8000/01/{GTIN}/10/B").base == "http://localhost:8000"


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("ftp://e.cn/01/09520123456788", "scheme"),
        ("HtTpS://e.cn/01/09520123456788", "scheme"),
        ("https:///01/09520123456788", "host"),
        ("https://e.cn/01/09520123456789", "check digit"),
        ("https://e.cn/01/9520123456788", "14 characters"),  # GTIN-13: zero-suppressed, deprecated
        ("https://e.cn/01/0952012345678A", "digits"),
        ("https://e.cn/01/09520123456788/", "trailing slash"),
        ("https://e.cn/01//09520123456788", "empty segment"),
        ("https://e.cn/01/09520123456788/21/S/10/L", "not allowed"),  # qualifiers out of order
        ("https://e.cn/01/09520123456788/10/L/10/M", "not allowed"),
        ("https://e.cn/01/09520123456788/17/261231", "not allowed"),  # a data attribute in the path
        ("https://e.cn/01/09520123456788?10=L", "query data attribute"),  # qualifier in the query
        ("https://e.cn/01/09520123456788?999=1", "query data attribute"),
        ("https://e.cn/01/09520123456788?17=261231&17=261230", "more than once"),
        ("https://e.cn/01/09520123456788?17=241331", "invalid date"),
        ("https://e.cn/01/09520123456788?15=260230", "invalid date"),
        ("https://e.cn/01/09520123456788/10/%E8%8F%A0%E8%8F%9C", "CSET 82"),  # 菠菜: not ASCII
        ("https://e.cn/01/09520123456788/10/A%20B", "CSET 82"),
        ("https://e.cn/01/09520123456788/10/" + "A" * 21, "1..20"),
        ("https://e.cn/01/09520123456788/10/A%2", "percent-encoding"),
        ("https://e.cn/01/09520123456788/10/%FF", "percent-encoding"),
        ("https://e.cn/00/095201234567890124", "check digit"),
        ("https://e.cn/00/095201234567890122?17=261231", "needs a GTIN"),
        ("https://e.cn/gtin/09520123456788", "no GS1 primary key"),
        ("https://e.cn/c/ABCDEFGHIJKLMNOP", "no GS1 primary key"),
    ],
)
def test_invalid_links(uri: str, message: str) -> None:
    with pytest.raises(dl.DigitalLinkError, match=message):
        dl.parse(uri)


def test_generator_encodes_and_round_trips() -> None:
    uri = dl.build("https://id.example.cn/", GTIN, "A/B+1", "S&2", {"17": "261231"})
    assert uri == f"https://id.example.cn/01/{GTIN}/10/A%2FB%2B1/21/S%262?17=261231"
    parsed = dl.parse(uri)
    assert (parsed.lot, parsed.get("21"), parsed.get("17")) == ("A/B+1", "S&2", "261231")
    for bad in (("09520123456789", "L"), (GTIN, "菠菜"), (GTIN, ""), (GTIN, "S#2")):
        with pytest.raises(dl.DigitalLinkError):
            dl.build("https://e.cn", *bad)


def test_resolver_redirects_to_the_scan_page(client: FlaskClient, admin_key: str) -> None:
    subject(client, admin_key, gtin_prefix="952012345")
    secret = issuer(client, admin_key, "s-001")
    cert = issue(client, secret, gtin="9520123456788", lot="L2611/A")
    assert cert["gtin"] == GTIN
    assert cert["digital_link"] == f"http://localhost:8000/01/{GTIN}/10/L2611%2FA"
    default_lot = issue(client, secret, gtin=GTIN)
    # issue 11: the default lot is not the sequential number, which resolved a guess to the code
    assert default_lot["lot"] != default_lot["number"]
    assert len(default_lot["lot"]) >= 17
    guessed = client.get(f"/01/{GTIN}/10/{default_lot['number']}")
    assert guessed.status_code == 404
    assert default_lot["code"] not in guessed.get_data(as_text=True)
    response = client.get(f"/01/{GTIN}/10/L2611%2FA?s=qr")
    assert response.status_code == 307
    assert response.headers["Location"] == f"/c/{cert['code']}?s=qr"
    page = client.get(response.headers["Location"])
    assert 'data-status="genuine"' in page.get_data(as_text=True)
    linkset = client.get(f"/01/{GTIN}/10/L2611%2FA?linkType=linkset").get_json()
    assert linkset["linkset"][0]["anchor"] == cert["digital_link"]
    pip = linkset["linkset"][0]["https://gs1.org/voc/pip"][0]["href"]
    assert pip == cert["url"]
    assert client.get(f"/01/{GTIN}/10/L2611%2FA?linkType=gs1:jws").status_code == 404
    assert client.get(f"/01/{GTIN}/10/NOSUCH").status_code == 404
    assert client.get(f"/01/{GTIN}").status_code == 404
    bad = client.get("/01/09520123456789/10/L1")
    assert bad.status_code == 400
    assert "check digit" in bad.get_json()["detail"]


def test_gtin_rules_on_issue(
    client: FlaskClient, admin_key: str, sessions: sessionmaker[Session]
) -> None:
    subject(client, admin_key, gtin_prefix="952012345")
    secret = issuer(client, admin_key, "s-001")
    first = issue(client, secret, gtin=GTIN, lot="L1")
    for change, status, why in (
        # one certificate per GTIN and lot
        ({"gtin": GTIN, "lot": "L1"}, 409, f"GTIN {GTIN} lot L1 already has a certificate"),
        ({"gtin": "09520123456789"}, 422, "AI (01) has a wrong check digit"),
        ({"gtin": "06901234567892"}, 422, "the GTIN is not under prefix 952012345"),
        ({"gtin": GTIN, "lot": "菠菜一批"}, 422, "AI (10) holds characters outside CSET 82"),
        ({"lot": "L9"}, 422, "a lot code goes with a GTIN"),
    ):
        response = client.post(
            "/api/v1/certificates",
            headers=auth(secret),
            json={
                "subject": "s-001",
                "product": "菠菜",
                "quantity": 1,
                "unit": "kg",
                "origin": "郏县",
                "basis": ["quality_control"],
                **change,
            },
        )
        refused(response, status, why)
    # nothing half-stored: no certificate, and no day number spent on a refusal
    with sessions() as session:
        numbers = session.scalars(select(Certificate.number)).all()
        spent = session.scalars(select(CertificateSequence.last)).all()
    assert numbers == [first["number"]]
    assert spent == [1]
