"""The webhook POST itself: no redirects, and no private or loopback targets unless allowed."""

from __future__ import annotations

import ipaddress
import socket
import urllib.error
import urllib.request
from urllib.parse import urlsplit


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Refuse every redirect: a 3xx answer is a failed delivery, never a GET elsewhere."""

    def redirect_request(self, *_args: object, **_kwargs: object) -> None:
        """Follow nothing (urllib then raises the 3xx as an HTTPError)."""
        return


_OPENER = urllib.request.build_opener(_NoRedirect)


def target_refusal(url: str) -> str | None:
    """Return why a URL may not be posted to (a private, loopback or link-local host), or None."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"not an http(s) URL: {url[:200]}"
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 443, proto=socket.IPPROTO_TCP)
    except OSError as exc:
        return f"cannot resolve {parts.hostname}: {exc}"
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if not address.is_global:
            return f"{parts.hostname} resolves to {address}, a private or loopback address"
    return None


def post(
    url: str, body: bytes, headers: dict[str, str], timeout_s: float, *, allow_private: bool
) -> tuple[int | None, str | None]:
    """POST once; return (HTTP status or None, error or None). Only 2xx is a success."""
    if not allow_private and (refusal := target_refusal(url)) is not None:
        return None, f"refused: {refusal}"
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with _OPENER.open(request, timeout=timeout_s) as response:
            return response.status, None
    except urllib.error.HTTPError as exc:
        if 300 <= exc.code < 400:
            return exc.code, f"HTTP {exc.code}: redirects are not followed"
        return exc.code, f"HTTP {exc.code} {exc.reason}"
    except (urllib.error.URLError, OSError) as exc:
        return None, f"{exc.__class__.__name__}: {exc}"[:1000]
