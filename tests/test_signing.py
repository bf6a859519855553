"""Ed25519 signatures: third-party verification, tampering, key loading and rotation."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from flask.testing import FlaskClient
from sqlalchemy import Engine, update
from sqlalchemy.orm import Session, sessionmaker

from fangxin.cli import main
from fangxin.config import ConfigError, Settings
from fangxin.service.app import create_app
from fangxin.trace.certificates.models import Certificate, CertificateLink, SigningKey
from fangxin.trace.certificates.signing import (
    canonical_bytes,
    generate,
    parse_private_key,
    pem,
    signer_from_settings,
    unb64url,
)
from tests.trace_helpers import PURCHASER, auth, hand_over, issue, issuer, setup, subject


def test_anyone_can_verify_with_the_published_key(client: FlaskClient, admin_key: str) -> None:
    _, cert = setup(client, admin_key)
    keys = client.get("/.well-known/fangxin-keys.json").get_json()["keys"]
    jwk = next(k for k in keys if k["kid"] == cert["signature"]["key_id"])
    assert (jwk["kty"], jwk["crv"], jwk["alg"]) == ("OKP", "Ed25519", "EdDSA")
    public = Ed25519PublicKey.from_public_bytes(unb64url(jwk["x"]))
    public.verify(unb64url(cert["signature"]["value"]), canonical_bytes(cert["signed"]))
    signed = cert["signed"]
    assert signed["product"] == "菠菜"
    assert signed["quantity"] == "50"
    assert signed["subject"]["name"] == "郏县绿源蔬菜合作社"
    assert canonical_bytes({"b": 1, "a": "菠菜"}) == '{"a":"菠菜","b":1}'.encode()


@pytest.mark.parametrize(
    "tamper",
    [
        {"quantity_milli": 500_000},
        {"product": "韭菜"},
        {"origin": "山东省寿光市"},
        {"subject_name": "冒名合作社"},
        {"basis": ["quality_control", "self_test"]},
    ],
)
def test_a_tampered_record_fails_verification(
    client: FlaskClient,
    admin_key: str,
    sessions: sessionmaker[Session],
    tamper: dict[str, object],
) -> None:
    _, cert = setup(client, admin_key)
    with sessions.begin() as session:
        session.execute(
            update(Certificate).where(Certificate.number == cert["number"]).values(**tamper)
        )
    shown = client.get(f"/api/v1/certificates/{cert['number']}", headers=auth(admin_key)).get_json()
    assert shown["signature"]["verified"] is False
    assert shown["signature"]["problem"] == "signature does not match the record"
    page = client.get(f"/c/{cert['code']}").get_data(as_text=True)
    assert 'data-status="tampered"' in page
    assert "签名校验失败" in page
    assert "✔ 电子签名校验通过" not in page


def test_tampered_upstream_link_or_key_fails(
    client: FlaskClient, admin_key: str, sessions: sessionmaker[Session]
) -> None:
    producer, parent = setup(client, admin_key)
    subject(client, admin_key, **PURCHASER)
    hand_over(client, producer, parent["number"])
    child = issue(
        client,
        issuer(client, admin_key, "p-001"),
        subject="p-001",
        quantity=10,
        upstream=[parent["number"]],
    )
    with sessions.begin() as session:
        session.execute(update(CertificateLink).values(quantity_milli=1))
    url = f"/api/v1/certificates/{child['number']}"
    assert client.get(url, headers=auth(admin_key)).get_json()["signature"]["verified"] is False
    other = generate()
    with sessions.begin() as session:
        session.execute(update(SigningKey).values(public_key=other.export()))
    shown = client.get(f"/api/v1/certificates/{parent['number']}", headers=auth(admin_key))
    assert "does not match its id" in shown.get_json()["signature"]["problem"]


def test_development_key_is_generated_once_per_data_dir(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    first = signer_from_settings(settings)
    assert (tmp_path / "signing_key.pem").stat().st_mode & 0o077 == 0
    assert signer_from_settings(settings).key_id == first.key_id
    assert signer_from_settings(Settings(data_dir=tmp_path / "other")).key_id != first.key_id


def test_configured_keys_and_production(tmp_path: Path) -> None:
    key = generate()
    from_b64 = signer_from_settings(Settings(data_dir=tmp_path, signing_key=key.export()))
    from_pem = parse_private_key(pem(key).decode())
    assert from_b64.key_id == from_pem.key_id == key.key_id
    with pytest.raises(ConfigError, match="FANGXIN_SIGNING_KEY"):
        signer_from_settings(Settings(data_dir=tmp_path, production=True))
    for bad in ("not a key!", "c2hvcnQ"):
        with pytest.raises(ConfigError):
            parse_private_key(bad)
    assert not (tmp_path / "signing_key.pem").exists()


def test_rotation_keeps_old_signatures_verifiable(
    client: FlaskClient, admin_key: str, settings: Settings, engine: Engine
) -> None:
    secret, old = setup(client, admin_key)
    env = {
        "FANGXIN_DATA_DIR": str(settings.data_dir),
        "FANGXIN_DATABASE_URL": settings.database_url,
    }
    rotated = CliRunner().invoke(main, ["signing-key", "rotate"], env=env)
    assert rotated.exit_code == 0, rotated.output
    assert f"retired {old['signature']['key_id']}" in rotated.output
    fresh = create_app(settings, engine).test_client()
    new = issue(fresh, secret)
    assert new["signature"]["key_id"] != old["signature"]["key_id"]
    again = fresh.get(f"/api/v1/certificates/{old['number']}", headers=auth(admin_key)).get_json()
    assert again["signature"]["verified"] is True
    keys = {k["kid"]: k for k in fresh.get("/.well-known/fangxin-keys.json").get_json()["keys"]}
    assert keys[old["signature"]["key_id"]]["retired"] is not None
    assert keys[new["signature"]["key_id"]]["retired"] is None
    listed = CliRunner().invoke(main, ["signing-key", "list"], env=env)
    assert f"* {new['signature']['key_id']}" in listed.output
    # The stale app still holds the retired key: it refuses to sign rather than sign with it.
    refused = client.post(
        "/api/v1/certificates",
        json={
            "subject": "s-001",
            "product": "菠菜",
            "quantity": 1,
            "unit": "kg",
            "origin": "郏县",
            "basis": ["self_test"],
        },
        headers=auth(secret),
    )
    assert refused.status_code == 503


def test_generate_prints_a_usable_key() -> None:
    out = CliRunner().invoke(main, ["signing-key", "generate"])
    assert out.exit_code == 0
    value = out.output.split("FANGXIN_SIGNING_KEY=", 1)[1].split()[0]
    assert len(parse_private_key(value).key_id) == 19
