"""The webhook POST itself: no redirects, and no private or loopback targets unless allowed.

The target's name is resolved once; the addresses are checked and the connection goes to the
checked address, so a DNS answer that changes between check and connect (DNS rebinding) cannot
send the POST to a private host. The Host header and TLS SNI still carry the name.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
from collections.abc import Callable
from urllib.parse import urlsplit

# Name and port to the addresses to try, in order (getaddrinfo by default; tests inject one).
Resolver = Callable[[str, int], list[str]]


def system_resolve(host: str, port: int) -> list[str]:
    """Resolve a host name with the system resolver, addresses in its order."""
    infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    return [str(info[4][0]).split("%")[0] for info in infos]


def _refusal(host: str, addresses: list[str]) -> str | None:
    for text in addresses:
        address = ipaddress.ip_address(text)
        if not address.is_global:
            return f"{host} resolves to {address}, a private or loopback address"
    return None


def _connector(address: str, timeout: float) -> Callable[..., socket.socket]:
    """Open the TCP connection to the checked address, never to a fresh resolution."""

    def connect(target: tuple[str, int], *_args: object, **_kwargs: object) -> socket.socket:
        return socket.create_connection((address, target[1]), timeout)

    return connect


class _Pinned(http.client.HTTPConnection):
    """An HTTP connection to a checked address, with the name in the Host header."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        """Connect to `address` whatever `host` resolves to now."""
        super().__init__(host, port, timeout=timeout)
        self._create_connection = _connector(address, timeout)


class _PinnedTLS(http.client.HTTPSConnection):
    """An HTTPS connection to a checked address; the certificate and SNI are the name's."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        """Connect to `address`; verify the certificate of `host` (system CAs)."""
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._create_connection = _connector(address, timeout)


def post(
    url: str,
    body: bytes,
    headers: dict[str, str],
    timeout_s: float,
    *,
    allow_private: bool,
    resolve: Resolver = system_resolve,
) -> tuple[int | None, str | None]:
    """POST once; return (HTTP status or None, error or None). Only 2xx is a success."""
    parts = urlsplit(url)
    host = parts.hostname
    if parts.scheme not in ("http", "https") or not host:
        return None, f"refused: not an http(s) URL: {url[:200]}"
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        addresses = resolve(host, port)
    except (OSError, ValueError) as exc:
        return None, f"refused: cannot resolve {host}: {exc}"[:1000]
    if not addresses:
        return None, f"refused: {host} has no address"
    if not allow_private and (refusal := _refusal(host, addresses)) is not None:
        return None, f"refused: {refusal}"
    kind = _PinnedTLS if parts.scheme == "https" else _Pinned
    connection = kind(host, port, addresses[0], timeout_s)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        connection.request("POST", target, body=body, headers=headers)
        response = connection.getresponse()
        response.read()
    except (OSError, http.client.HTTPException) as exc:
        return None, f"{exc.__class__.__name__} ({addresses[0]}): {exc}"[:1000]
    finally:
        connection.close()
    status = response.status
    if 200 <= status < 300:
        return status, None
    if 300 <= status < 400:
        return status, f"HTTP {status}: redirects are not followed"
    return status, f"HTTP {status} {response.reason}"
