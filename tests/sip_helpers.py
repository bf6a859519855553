"""Helpers of the GB/T 28181 tests: a running gateway, SIPp runs, raw SIP over sockets."""

from __future__ import annotations

import hashlib
import re
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from fangxin.config import Settings
from fangxin.db import utcnow
from fangxin.devices import registry
from fangxin.devices.schemas import DeviceIn, SiteIn
from fangxin.gb28181.server import Running, start

SIPP = Path(__file__).parent / "data" / "sipp"
PLATFORM = "41040000002000000001"
REALM = "4104000000"
NVR = "41040200001180000001"
CAMERA = "41040200001320000002"
CH1, CH2 = "41040200001310000011", "41040200001310000012"


@dataclass
class Door:
    """A running gateway, the passwords of its registered devices."""

    running: Running
    passwords: dict[str, str]

    @property
    def port(self) -> int:
        return self.running.port


def sip_settings(settings: Settings) -> Settings:
    return replace(settings, sip_id=PLATFORM)


def register_devices(
    sessions: sessionmaker[Session], interval_s: int = 60, missed: dict[str, int] | None = None
) -> dict[str, str]:
    """Register a kitchen with an NVR and a camera by 国标编码; return their SIP passwords."""
    with sessions() as session:
        registry.add_site(
            session, SiteIn(id="k-1", kind="kitchen", district="新华区", name="一中食堂")
        )
        out = {}
        for device_id, kind, gb_id in (("nvr-1", "nvr", NVR), ("cam-1", "camera", CAMERA)):
            beats = (missed or {}).get(device_id, 3)
            data = DeviceIn(
                id=device_id,
                site="k-1",
                kind=kind,
                interval_s=interval_s,
                missed_beats=beats,
                gb_id=gb_id,
            )
            created = registry.add_device(session, data, utcnow(), REALM)
            assert created.sip_password
            out[gb_id] = created.sip_password
        session.commit()
    return out


def start_door(settings: Settings, sessions: sessionmaker[Session], **kwargs: object) -> Running:
    return start(sip_settings(settings), "127.0.0.1", 0, sessions=sessions, **kwargs)  # type: ignore[arg-type]


def free_sip_port() -> int:
    """A port on 127.0.0.1 free for both UDP and TCP (SIPp binds the one its transport uses)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = int(udp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue  # an outgoing TCP connection holds this number
                return port


def sipp(
    scenario: str,
    port: int,
    gb_id: str,
    password: str,
    *,
    transport: str = "u1",
    local_port: int | None = None,
    ooc: str | None = None,
    expires: int = 3600,
    ka_ms: int = 200,
    timeout_s: int = 20,
) -> subprocess.CompletedProcess[str]:
    """Run SIPp as the device against the gateway on 127.0.0.1; returns when the scenario ends."""
    for _ in range(5):
        own_port = local_port or free_sip_port()
        done = _run_sipp(
            scenario, port, gb_id, password, transport, own_port, ooc, expires, ka_ms, timeout_s
        )
        # Another process may take the free port before SIPp binds it; SIPp then sends nothing.
        unbound = "Unable to bind main socket" in done.stdout + done.stderr
        if local_port is not None or not unbound:
            return done
    return done


def _run_sipp(
    scenario: str,
    port: int,
    gb_id: str,
    password: str,
    transport: str,
    local_port: int,
    ooc: str | None,
    expires: int,
    ka_ms: int,
    timeout_s: int,
) -> subprocess.CompletedProcess[str]:
    command = [
        "sipp", f"127.0.0.1:{port}", "-sf", str(SIPP / scenario), "-m", "1", "-t", transport,
        "-i", "127.0.0.1", "-p", str(local_port),
        "-au", gb_id, "-ap", password,
        "-key", "gbid", gb_id, "-key", "platform", PLATFORM, "-key", "realm", REALM,
        "-key", "expires", str(expires), "-key", "ka_ms", str(ka_ms),
        "-key", "ch1", CH1, "-key", "ch2", CH2,
        "-timeout", f"{timeout_s}s", "-timeout_error", "-nostdin", "-max_recv_loops", "100",
    ]  # fmt: skip
    if ooc:
        command += ["-oocsf", str(SIPP / ooc)]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=timeout_s + 10, stdin=subprocess.DEVNULL
    )


def wait_for(check: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def request(
    method: str,
    gb_id: str,
    *,
    cseq: int = 1,
    body: bytes = b"",
    extra: str = "",
    expires: int = 3600,
    call_id: str = "c1",
    ctype: str = "Application/MANSCDP+xml",
) -> bytes:
    """Build a REGISTER or MESSAGE as a device would send it."""
    to = gb_id if method == "REGISTER" else PLATFORM
    head = (
        f"{method} sip:{PLATFORM}@{REALM} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:5060;rport;branch=z9hG4bK{cseq}{call_id}\r\n"
        f"From: <sip:{gb_id}@{REALM}>;tag=t{cseq}\r\nTo: <sip:{to}@{REALM}>\r\n"
        f"Call-ID: {call_id}\r\nCSeq: {cseq} {method}\r\n"
        f"Contact: <sip:{gb_id}@127.0.0.1:5060>\r\n"
    )
    if method == "REGISTER":
        head += f"Expires: {expires}\r\n"
    else:
        head += f"Content-Type: {ctype}\r\n"
    return f"{head}{extra}Content-Length: {len(body)}\r\n\r\n".encode() + body


def authorization(gb_id: str, password: str, nonce: str, *, qop: bool, realm: str = REALM) -> str:
    uri = f"sip:{PLATFORM}@{REALM}"
    ha1, ha2 = md5(f"{gb_id}:{realm}:{password}"), md5(f"REGISTER:{uri}")
    if qop:
        response = md5(f"{ha1}:{nonce}:00000001:abc:auth:{ha2}")
        tail = ', qop=auth, nc=00000001, cnonce="abc"'
    else:
        response, tail = md5(f"{ha1}:{nonce}:{ha2}"), ""
    return (
        f'Authorization: Digest username="{gb_id}", realm="{realm}", nonce="{nonce}", '
        f'uri="{uri}", response="{response}", algorithm=MD5{tail}\r\n'
    )


class Device:
    """A raw SIP device over UDP (for what SIPp cannot send: bad bytes, spoofing, replays)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(3)

    def send(self, data: bytes) -> None:
        self.sock.sendto(data, ("127.0.0.1", self.port))

    def ask(self, data: bytes) -> str:
        """Send and return the first response (requests from the gateway are skipped)."""
        self.send(data)
        while True:
            reply = self.sock.recv(65536).decode()
            if reply.startswith("SIP/2.0"):
                return reply

    def silent(self, data: bytes, wait_s: float = 0.5) -> bool:
        """Send and tell whether no response came (a dropped or throttled request)."""
        self.send(data)
        self.sock.settimeout(wait_s)
        try:
            while True:
                if self.sock.recv(65536).startswith(b"SIP/2.0"):
                    return False
        except TimeoutError:
            return True
        finally:
            self.sock.settimeout(3)

    def register(self, gb_id: str, password: str, *, qop: bool = True, expires: int = 3600) -> str:
        challenge = self.ask(request("REGISTER", gb_id, expires=expires))
        nonce = nonce_of(challenge)
        auth = authorization(gb_id, password, nonce, qop=qop)
        return self.ask(request("REGISTER", gb_id, cseq=2, extra=auth, expires=expires))

    def close(self) -> None:
        self.sock.close()


def nonce_of(response: str) -> str:
    found = re.search(r'nonce="([^"]+)"', response)
    assert found, response
    return found.group(1)


def keepalive(gb_id: str, sn: int = 1, encoding: str = "UTF-8") -> bytes:
    body = (
        f'<?xml version="1.0" encoding="{encoding}"?>\r\n'
        "<Notify>\r\n<CmdType>Keepalive</CmdType>\r\n"
        f"<SN>{sn}</SN>\r\n<DeviceID>{gb_id}</DeviceID>\r\n<Status>OK</Status>\r\n</Notify>\r\n"
    )
    return request("MESSAGE", gb_id, cseq=10 + sn, body=body.encode(encoding))
