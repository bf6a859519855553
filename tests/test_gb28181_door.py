"""The GB/T 28181 door as a hostile device sees it: every refusal and bad input, over sockets."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from fangxin.config import Settings
from fangxin.devices.models import Alarm, Device, IngesterRun, SecurityEvent
from tests.sip_helpers import (
    CAMERA,
    NVR,
    PLATFORM,
    REALM,
    Door,
    authorization,
    keepalive,
    nonce_of,
    register_devices,
    request,
    start_door,
    wait_for,
)
from tests.sip_helpers import (
    Device as SipPeer,
)

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def door(settings: Settings, sessions: sessionmaker[Session]) -> Iterator[Door]:
    passwords = register_devices(sessions, interval_s=60)
    running = start_door(settings, sessions, min_expires=1)
    yield Door(running, passwords)
    running.stop()


@pytest.fixture
def peer(door: Door) -> Iterator[SipPeer]:
    device = SipPeer(door.port)
    yield device
    device.close()


def _kinds(sessions: sessionmaker[Session]) -> list[str]:
    with sessions() as session:
        return list(session.scalars(select(SecurityEvent.kind).order_by(SecurityEvent.id)))


def _state(sessions: sessionmaker[Session], device_id: str) -> str | None:
    with sessions() as session:
        device = session.get(Device, device_id)
        return device.conn_state if device else None


@pytest.mark.parametrize("qop", [True, False])
def test_digest_with_and_without_qop(door: Door, peer: SipPeer, qop: bool) -> None:
    reply = peer.register(CAMERA, door.passwords[CAMERA], qop=qop)
    assert reply.startswith("SIP/2.0 200"), reply
    assert "Expires: 3600" in reply
    date = next(line for line in reply.split("\r\n") if line.startswith("Date: "))
    assert len(date) == len("Date: 2026-11-30T16:20:00.000")
    assert date[16] == "T"


def test_challenge_names_the_realm_and_md5(peer: SipPeer) -> None:
    reply = peer.ask(request("REGISTER", CAMERA))
    assert reply.startswith("SIP/2.0 401")
    assert f'realm="{REALM}"' in reply
    assert "algorithm=MD5" in reply


def test_replayed_nonce_is_challenged_again(door: Door, peer: SipPeer) -> None:
    nonce = nonce_of(peer.ask(request("REGISTER", CAMERA)))
    auth = authorization(CAMERA, door.passwords[CAMERA], nonce, qop=False)
    first = peer.ask(request("REGISTER", CAMERA, cseq=2, extra=auth))
    again = peer.ask(request("REGISTER", CAMERA, cseq=3, extra=auth))
    assert first.startswith("SIP/2.0 200")
    assert again.startswith("SIP/2.0 401")
    assert "stale=true" in again
    assert nonce_of(again) != nonce


def test_wrong_realm_and_another_devices_id_are_refused(
    door: Door, peer: SipPeer, sessions: sessionmaker[Session]
) -> None:
    nonce = nonce_of(peer.ask(request("REGISTER", CAMERA)))
    auth = authorization(CAMERA, door.passwords[CAMERA], nonce, qop=True, realm="9999999999")
    assert peer.ask(request("REGISTER", CAMERA, cseq=2, extra=auth)).startswith("SIP/2.0 403")
    # The camera's own password, presented for the NVR's registration.
    nonce = nonce_of(peer.ask(request("REGISTER", NVR, call_id="c2")))
    auth = authorization(CAMERA, door.passwords[CAMERA], nonce, qop=True)
    assert peer.ask(request("REGISTER", NVR, cseq=2, extra=auth, call_id="c2")).startswith(
        "SIP/2.0 403"
    )
    wait_for(lambda: _kinds(sessions) == ["sip_bad_realm", "sip_spoofed"])


def test_keepalives_need_a_registration_from_the_same_address(
    door: Door, peer: SipPeer, sessions: sessionmaker[Session]
) -> None:
    assert peer.ask(keepalive(CAMERA)).startswith("SIP/2.0 403")  # not registered
    wait_for(lambda: door.running.gateway.counters["not_registered"] == 1)
    assert peer.register(CAMERA, door.passwords[CAMERA]).startswith("SIP/2.0 200")
    assert peer.ask(keepalive(CAMERA, 2)).startswith("SIP/2.0 200")
    # A spoofed From from another address, and a body speaking for another device.
    other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    other.bind(("127.0.0.2", 0))
    other.settimeout(3)
    other.sendto(keepalive(CAMERA, 3), ("127.0.0.1", door.port))
    assert other.recv(65536).startswith(b"SIP/2.0 403")
    other.close()
    body = keepalive(NVR, 4).split(b"\r\n\r\n", 1)[1]
    assert peer.ask(request("MESSAGE", CAMERA, cseq=30, body=body)).startswith("SIP/2.0 403")
    wait_for(lambda: _kinds(sessions) == ["sip_spoofed", "sip_spoofed"])
    wait_for(lambda: _state(sessions, "cam-1") == "online")


def test_gb2312_keepalive_and_alarm(
    door: Door, peer: SipPeer, sessions: sessionmaker[Session]
) -> None:
    assert peer.register(NVR, door.passwords[NVR]).startswith("SIP/2.0 200")
    assert peer.ask(keepalive(NVR, 5, encoding="GB2312")).startswith("SIP/2.0 200")
    body = (
        '<?xml version="1.0" encoding="GB2312"?>\r\n<Notify>\r\n<CmdType>Alarm</CmdType>\r\n'
        f"<SN>7</SN>\r\n<DeviceID>{NVR}</DeviceID>\r\n<AlarmPriority>1</AlarmPriority>\r\n"
        "<AlarmMethod>5</AlarmMethod>\r\n<AlarmTime>2026-11-30T16:20:00</AlarmTime>\r\n"
        "<AlarmDescription>后厨有陌生人</AlarmDescription>\r\n<Info><AlarmType>6</AlarmType></Info>"
        "\r\n</Notify>\r\n"
    ).encode("gb2312")
    assert peer.ask(request("MESSAGE", NVR, cseq=40, body=body)).startswith("SIP/2.0 200")
    assert peer.ask(request("MESSAGE", NVR, cseq=41, body=body)).startswith("SIP/2.0 200")

    def stored() -> list[Alarm]:
        with sessions() as session:
            return list(session.scalars(select(Alarm)))

    wait_for(lambda: len(stored()) == 1)
    alarm = stored()[0]
    assert (alarm.device_id, alarm.site_id, alarm.type) == ("nvr-1", "k-1", "stranger")
    assert alarm.extra
    assert alarm.extra["AlarmDescription"] == "后厨有陌生人"


def test_unknown_ids_are_throttled_per_address(
    door: Door, peer: SipPeer, sessions: sessionmaker[Session]
) -> None:
    for n in range(5):
        assert peer.ask(request("REGISTER", f"4104020000132999999{n}", call_id=f"u{n}")).startswith(
            "SIP/2.0 403"
        )
    assert peer.silent(request("REGISTER", CAMERA, call_id="late"))
    wait_for(lambda: door.running.gateway.counters["throttled"] == 1)
    wait_for(lambda: len(_kinds(sessions)) == 5)


BAD = {
    "truncated": request("REGISTER", CAMERA)[:60],
    "no end of headers": b"REGISTER sip:x SIP/2.0\r\nVia: x\r\n",
    "long Content-Length": request("REGISTER", CAMERA).replace(
        b"Content-Length: 0", b"Content-Length: 99"
    ),
    "short Content-Length": keepalive(CAMERA).replace(b"Content-Length: ", b"Content-Length: 1"),
    "binary": bytes(range(256)) * 4,
    "huge": b"MESSAGE sip:x SIP/2.0\r\n" + b"X: " + b"a" * 65000 + b"\r\n\r\n",
    "bad header": b"REGISTER sip:x SIP/2.0\r\nno colon here\r\n\r\n",
    "bad status": b"SIP/2.0 abc OK\r\nVia: x\r\n\r\n",
}


def test_malformed_sip_never_crashes_the_gateway_and_is_counted(door: Door, peer: SipPeer) -> None:
    for data in BAD.values():
        peer.send(data)
    assert peer.register(CAMERA, door.passwords[CAMERA]).startswith("SIP/2.0 200")
    wait_for(lambda: door.running.gateway.counters["malformed"] == len(BAD))


XML = {
    "bad encoding": b'<?xml version="1.0" encoding="GB2312"?>'
    b"<Notify><CmdType>Keepalive</CmdType></Notify>" + b"\xff\xfe\x80",
    "unknown encoding": b'<?xml version="1.0" encoding="x-nonsense"?><Notify/>',
    "truncated": b'<?xml version="1.0"?><Notify><CmdType>Keep',
    "entity bomb": (
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
        b"<Notify><CmdType>&b;</CmdType></Notify>"
    ),
    "external entity": (
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
        b"<Notify><CmdType>&e;</CmdType></Notify>"
    ),
    "no CmdType": b"<Notify><SN>1</SN></Notify>",
    "huge": b"<Notify>" + b"a" * 62000 + b"</Notify>",
}


def test_bad_xml_is_answered_400_and_counted(door: Door, peer: SipPeer) -> None:
    assert peer.register(CAMERA, door.passwords[CAMERA]).startswith("SIP/2.0 200")
    for n, body in enumerate(XML.values()):
        reply = peer.ask(request("MESSAGE", CAMERA, cseq=50 + n, body=body))
        assert reply.startswith("SIP/2.0 400"), reply
    wait_for(lambda: door.running.gateway.counters["bad_xml"] == len(XML))
    assert peer.ask(keepalive(CAMERA, 9)).startswith("SIP/2.0 200")


def test_bad_tcp_streams_are_closed_and_counted(door: Door) -> None:
    for data in (
        b"REGISTER sip:x SIP/2.0\r\nContent-Length: 99999999\r\n\r\n",
        b"REGISTER sip:x SIP/2.0\r\nContent-Length: 10\r\n\r\nshort",
        b"X" * 70000,
    ):
        with socket.create_connection(("127.0.0.1", door.port), timeout=3) as conn:
            conn.sendall(data)
            conn.shutdown(socket.SHUT_WR)
            assert conn.recv(100) == b""
    wait_for(lambda: door.running.gateway.counters["malformed_stream"] == 3)
    tcp = socket.create_connection(("127.0.0.1", door.port), timeout=3)
    tcp.sendall(request("REGISTER", CAMERA))
    assert tcp.recv(65536).startswith(b"SIP/2.0 401")
    tcp.close()


def test_registrations_survive_a_restart_and_the_downtime_is_unobserved(
    settings: Settings, sessions: sessionmaker[Session], door: Door, peer: SipPeer
) -> None:
    assert peer.register(CAMERA, door.passwords[CAMERA]).startswith("SIP/2.0 200")
    wait_for(lambda: _state(sessions, "cam-1") == "online")
    door.running.stop()
    again = start_door(settings, sessions, min_expires=1)
    try:
        moved = SipPeer(again.port)
        moved.sock.close()
        moved.sock = peer.sock  # the same device socket: its registration is in the database
        moved.port = again.port
        assert moved.ask(keepalive(CAMERA, 20)).startswith("SIP/2.0 200")
        wait_for(lambda: again.gateway.counters["keepalive"] == 1)
    finally:
        again.stop()
    door.running = again
    with sessions() as session:
        runs = session.scalars(select(IngesterRun).order_by(IngesterRun.id)).all()
    assert len(runs) == 2
    assert all(r.ended_at is not None for r in runs)
    assert runs[0].client_id == runs[1].client_id


def test_registration_that_lapses_ends_online(
    door: Door, peer: SipPeer, sessions: sessionmaker[Session]
) -> None:
    assert peer.register(CAMERA, door.passwords[CAMERA], expires=1).startswith("SIP/2.0 200")
    wait_for(lambda: _state(sessions, "cam-1") == "online")
    wait_for(lambda: _state(sessions, "cam-1") == "offline", 5)
    assert door.running.gateway.counters["expired"] == 1
    assert peer.ask(keepalive(CAMERA, 3)).startswith("SIP/2.0 403")
    assert PLATFORM  # the platform id is what devices address
