"""GB/T 28181 identities of devices: the 20-digit 国标编码, SIP passwords and their Digest HA1."""

from __future__ import annotations

import hashlib
import secrets
import string

# 类型编码 (digits 11-13) fangxin accepts for devices: DVR, video server, encoder, NVR, HVR,
# cameras, IPCs and alarm devices, platforms' channels (13x), and 2xx platform codes only for us.
DEVICE_TYPES = frozenset({"111", "112", "113", "114", "115", "116", "118", "131", "132", "134"})
_ALPHABET = string.ascii_letters + string.digits


class GbIdError(ValueError):
    """A 国标编码 whose structure is wrong."""


def check_gb_id(code: str, types: frozenset[str] = DEVICE_TYPES) -> str:
    """Return the code when it is 20 digits: centre 8, industry 2, type 3, network 1, serial 6."""
    if len(code) != 20 or not code.isascii() or not code.isdigit():
        raise GbIdError(f"{code!r} is not a 20-digit 国标编码")
    province, centre, type_code, network = code[:2], code[:8], code[10:13], code[13]
    if not "11" <= province <= "82":
        raise GbIdError(f"{code}: centre code {centre} does not start with a province code")
    if type_code not in types:
        allowed = ", ".join(sorted(types))
        raise GbIdError(f"{code}: type code {type_code} is not a device type ({allowed})")
    if network not in "0123456789":
        raise GbIdError(f"{code}: network digit {network} is invalid")
    return code


def new_sip_password() -> str:
    """Return a random SIP password: 16 letters and digits, which every NVR's form accepts."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(16))


def ha1(user: str, realm: str, password: str) -> str:
    """Return RFC 2617's HA1 = MD5(user:realm:password), all that fangxin stores."""
    # MD5 is what GB/T 28181 devices speak; it is not used here as a password hash of our choice.
    return hashlib.md5(f"{user}:{realm}:{password}".encode(), usedforsecurity=False).hexdigest()
