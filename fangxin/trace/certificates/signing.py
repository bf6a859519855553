"""Ed25519 signatures over certificates' canonical content; key ids, loading and rotation."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import select
from sqlalchemy.orm import Session

from fangxin.config import ConfigError, Settings
from fangxin.db import utcnow
from fangxin.db.bulk import insert_ignore
from fangxin.trace.certificates.models import SigningKey

_LOGGER = logging.getLogger(__name__)
ALGORITHM = "Ed25519"
DEV_KEY_FILE = "signing_key.pem"
_PUBLIC_CACHE: dict[tuple[str, str], Ed25519PublicKey] = {}
# Outcomes of signature checks (a re-rendered scan page skips the Ed25519 check), bounded.
MAX_CHECKED = 10_000
_CHECKED: dict[tuple[str, str, str, bytes], tuple[str | None]] = {}


def b64url(data: bytes) -> str:
    """Encode bytes as unpadded base64url."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64url(text: str) -> bytes:
    """Decode unpadded base64url."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def canonical_bytes(content: dict[str, Any]) -> bytes:
    """Serialise content canonically: sorted keys, no whitespace, UTF-8 (strings and ints only)."""
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def raw_public(key: Ed25519PublicKey) -> bytes:
    """Return the 32 raw bytes of a public key."""
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id_of(key: Ed25519PublicKey) -> str:
    """Derive a key id from the public key itself, so ids never collide across rotations."""
    return "fx-" + hashlib.sha256(raw_public(key)).hexdigest()[:16]


@dataclass(frozen=True)
class Signer:
    """The private key that signs new certificates, with its key id."""

    private: Ed25519PrivateKey

    # Worked out once: every issued certificate and its answer read them (a hash each time).
    @cached_property
    def public(self) -> Ed25519PublicKey:
        """Return the public half."""
        return self.private.public_key()

    @cached_property
    def key_id(self) -> str:
        """Return the key id."""
        return key_id_of(self.public)

    def sign(self, content: dict[str, Any]) -> str:
        """Sign the canonical form of content; return the signature as base64url."""
        return b64url(self.private.sign(canonical_bytes(content)))

    def export(self) -> str:
        """Return the private key as the FANGXIN_SIGNING_KEY value (base64url of the seed)."""
        seed = self.private.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        return b64url(seed)


def generate() -> Signer:
    """Make a new random signing key."""
    return Signer(Ed25519PrivateKey.generate())


def parse_private_key(text: str) -> Signer:
    """Read a key given as PKCS#8 PEM or as base64url of the 32-byte seed."""
    text = text.strip()
    if text.startswith("-----BEGIN"):
        key = serialization.load_pem_private_key(text.encode(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ConfigError("FANGXIN_SIGNING_KEY: the PEM key is not an Ed25519 key")
        return Signer(key)
    try:
        seed = unb64url(text)
    except ValueError as exc:
        raise ConfigError("FANGXIN_SIGNING_KEY is neither PEM nor base64url") from exc
    if len(seed) != 32:
        raise ConfigError("FANGXIN_SIGNING_KEY must hold a 32-byte Ed25519 seed")
    return Signer(Ed25519PrivateKey.from_private_bytes(seed))


def pem(signer: Signer) -> bytes:
    """Return the private key as unencrypted PKCS#8 PEM."""
    return signer.private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def write_key_file(path: Path, signer: Signer) -> None:
    """Write a key file readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem(signer))
    tmp.replace(path)


def signer_from_settings(settings: Settings) -> Signer:
    """Return the configured key; in development, the data dir's key (generated once)."""
    if settings.signing_key:
        return parse_private_key(settings.signing_key)
    if settings.production:
        raise ConfigError("production mode needs FANGXIN_SIGNING_KEY")
    path = settings.data_dir / DEV_KEY_FILE
    if not path.exists():
        write_key_file(path, generate())
        _LOGGER.warning("Generated a development signing key at %s", path)
    return parse_private_key(path.read_text())


def ensure_registered(session: Session, signer: Signer) -> str:
    """Make sure the signer's public key is published (in the caller's transaction); its id."""
    # Read on every batch, not cached: a key retired meanwhile must stop signing at once.
    retired_at = select(SigningKey.retired_at).where(SigningKey.key_id == signer.key_id)
    found = session.execute(retired_at).first()
    if found is None:
        # Concurrent first issuers may both get here: the later insert does nothing.
        new = {
            "key_id": signer.key_id,
            "algorithm": ALGORITHM,
            "public_key": b64url(raw_public(signer.public)),
            "created_at": utcnow(),
            "retired_at": None,
        }
        insert_ignore(session, SigningKey.__table__, [new], ("key_id",))
        found = session.execute(retired_at).one()
    if found.retired_at is not None:
        raise ConfigError(f"signing key {signer.key_id} is retired: configure a new key")
    return signer.key_id


def retire(session: Session, key_id: str) -> bool:
    """Mark a key retired: it signs nothing new but still verifies; return whether found."""
    row = session.get(SigningKey, key_id)
    if row is None:
        return False
    if row.retired_at is None:
        row.retired_at = utcnow()
    return True


def public_keys(session: Session) -> list[SigningKey]:
    """List every published key, oldest first."""
    return list(session.scalars(select(SigningKey).order_by(SigningKey.created_at)))


def keys_document(session: Session) -> dict[str, Any]:
    """Return the published keys as a JWK set (RFC 8037 OKP keys) with status."""
    keys = [
        {
            "kty": "OKP",
            "crv": "Ed25519",
            "alg": "EdDSA",
            "use": "sig",
            "kid": row.key_id,
            "x": row.public_key,
            "created": row.created_at.isoformat(),
            "retired": row.retired_at.isoformat() if row.retired_at else None,
        }
        for row in public_keys(session)
    ]
    return {
        "keys": keys,
        "canonicalization": "JSON, keys sorted, separators ',' ':', UTF-8, no escapes",
    }


def verify(session: Session, key_id: str, content: dict[str, Any], signature: str) -> str | None:
    """Check a signature; return None when it holds, else why it does not."""
    row = session.get(SigningKey, key_id)
    return verify_published(key_id, row.public_key if row else None, content, signature)


def verify_published(
    key_id: str, public_key: str | None, content: dict[str, Any], signature: str
) -> str | None:
    """Check a signature against a published key's stored value (None: no such key published)."""
    if public_key is None:
        return f"unknown signing key {key_id}"
    cache_key = (key_id, public_key)
    public = _PUBLIC_CACHE.get(cache_key)
    if public is None:
        public = Ed25519PublicKey.from_public_bytes(unb64url(public_key))
        if key_id_of(public) != key_id:
            return f"published key {key_id} does not match its id"
        _PUBLIC_CACHE[cache_key] = public
    # The outcome depends on these four values alone: a record or key altered in the database
    # changes the content or the key, hence the entry, and is checked again.
    message = canonical_bytes(content)
    checked = (key_id, public_key, signature, message)
    hit = _CHECKED.get(checked)
    if hit is None:
        hit = (_check(public, message, signature),)
        if len(_CHECKED) >= MAX_CHECKED:
            _CHECKED.clear()
        _CHECKED[checked] = hit
    return hit[0]


def verify_with(public: Ed25519PublicKey, content: dict[str, Any], signature: str) -> str | None:
    """Check a signature with a public key at hand; return None when it holds."""
    return _check(public, canonical_bytes(content), signature)


def _check(public: Ed25519PublicKey, message: bytes, signature: str) -> str | None:
    try:
        public.verify(unb64url(signature), message)
    except (InvalidSignature, ValueError):
        return "signature does not match the record"
    return None
