"""Device MQTT credentials: generated once, stored as Mosquitto-compatible PBKDF2 hashes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

# Mosquitto 2's password_file format for sha512-pbkdf2: $7$<iterations>$<salt b64>$<hash b64>.
ITERATIONS = 101


def new_password() -> str:
    """Return a random device password (128 bits)."""
    return secrets.token_urlsafe(16)


def hash_password(password: str, salt: bytes | None = None) -> str:
    """Hash a password in Mosquitto's $7$ format, so the hash can be exported as is."""
    salt = salt or secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, ITERATIONS)
    return f"$7${ITERATIONS}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    """Check a password against a stored $7$ hash."""
    try:
        _, kind, iterations, salt_b64, digest_b64 = stored.split("$")
    except ValueError:
        return False
    if kind != "7":
        return False
    digest = hashlib.pbkdf2_hmac(
        "sha512", password.encode(), base64.b64decode(salt_b64), int(iterations)
    )
    return hmac.compare_digest(digest, base64.b64decode(digest_b64))
