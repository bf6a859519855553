"""HTTP Digest (RFC 2617, MD5) for REGISTER: one-time nonces that expire, with or without qop."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass, field

NONCE_TTL_S = 30.0
MAX_NONCES = 100_000  # outstanding challenges; past it the oldest are forgotten (a flood)
_PARAM = re.compile(r'(\w+)\s*=\s*(?:"([^"]*)"|([^\s,]+))')


def md5(text: str) -> str:
    """Return the hex MD5 of a text (what GB/T 28181 Digest uses)."""
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def parse_auth(value: str) -> dict[str, str]:
    """Parse an Authorization header's Digest parameters (empty when not Digest)."""
    scheme, _, rest = value.strip().partition(" ")
    if scheme.lower() != "digest":
        return {}
    return {
        m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3)
        for m in _PARAM.finditer(rest)
    }


def expected(params: dict[str, str], ha1: str, method: str) -> str:
    """Return the response a device knowing HA1 computes for these parameters."""
    ha2 = md5(f"{method}:{params.get('uri', '')}")
    if params.get("qop"):
        nc, cnonce = params.get("nc", ""), params.get("cnonce", "")
        return md5(f"{ha1}:{params['nonce']}:{nc}:{cnonce}:{params['qop']}:{ha2}")
    return md5(f"{ha1}:{params['nonce']}:{ha2}")


@dataclass(slots=True)
class Nonces:
    """Issued nonces, each usable once before it expires."""

    ttl_s: float = NONCE_TTL_S
    _issued: dict[str, float] = field(default_factory=dict)

    def issue(self) -> str:
        """Return a new nonce."""
        now = time.monotonic()
        if len(self._issued) >= MAX_NONCES:
            self._prune(now)
            while len(self._issued) >= MAX_NONCES:
                del self._issued[next(iter(self._issued))]
        nonce = secrets.token_hex(16)
        self._issued[nonce] = now
        return nonce

    def take(self, nonce: str) -> bool:
        """Consume a nonce: True once for a live nonce, False when unknown, used or expired."""
        issued = self._issued.pop(nonce, None)
        return issued is not None and time.monotonic() - issued <= self.ttl_s

    def _prune(self, now: float) -> None:
        for nonce, issued in list(self._issued.items()):
            if now - issued > self.ttl_s:
                del self._issued[nonce]


def challenge(realm: str, nonce: str, stale: bool = False) -> str:
    """Return a WWW-Authenticate value offering MD5 with qop=auth (devices may omit qop)."""
    value = f'Digest realm="{realm}", nonce="{nonce}", algorithm=MD5, qop="auth"'
    return value + (", stale=true" if stale else "")


def verify(params: dict[str, str], ha1: str, method: str) -> bool:
    """Tell whether the response proves knowledge of HA1 (constant-time comparison)."""
    if params.get("qop") not in (None, "auth") or params.get("algorithm", "MD5").upper() != "MD5":
        return False
    return hmac.compare_digest(expected(params, ha1, method), params.get("response", ""))
