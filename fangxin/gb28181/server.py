"""The gateway's sockets: SIP over UDP and TCP on one port, on an asyncio loop in one thread."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import socket
import threading
from dataclasses import dataclass
from typing import cast

from sqlalchemy.orm import Session, sessionmaker

from fangxin.config import ConfigError, Settings
from fangxin.db import check_migrated, make_engine, make_session_factory, utcnow
from fangxin.devices.connectivity import OFFLINE
from fangxin.devices.models import Device
from fangxin.devices.sipdevices import SipDevice, load
from fangxin.gb28181 import sip
from fangxin.gb28181.handler import Gateway, Peer
from fangxin.gb28181.state import Devices
from fangxin.gb28181.writer import Writer

_LOGGER = logging.getLogger(__name__)
TCP_IDLE_S = 300.0  # a TCP connection with no message for this long is closed


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        host, port = str(addr[0]), int(str(addr[1]))
        transport = self.transport
        assert transport is not None
        self.gateway.handle(
            data, Peer("udp", host, port, lambda out: transport.sendto(out, (host, port)))
        )


async def _tcp_session(
    gateway: Gateway, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    host, port = writer.get_extra_info("peername")[:2]
    peer = Peer("tcp", str(host), int(port), writer.write)
    try:
        while True:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TCP_IDLE_S)
            body = await reader.readexactly(sip.content_length(head[:-4]))
            gateway.handle(head + body, peer)
            await writer.drain()
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, sip.SipError, ValueError):
        gateway.counters["malformed_stream"] += 1
    except (TimeoutError, ConnectionError):
        pass
    finally:
        writer.close()


def load_devices(sessions: sessionmaker[Session]) -> Devices:
    """Load every GB/T 28181 device, with its registration and channel states, into memory."""

    def lookup(gb_id: str) -> SipDevice | None:
        with sessions() as session:
            found = load(session, gb_id)
        return found[0] if found else None

    devices = Devices(lookup)
    with sessions() as session:
        off = set(
            session.scalars(
                Device.__table__.select()
                .with_only_columns(Device.id)
                .where(Device.state == OFFLINE, Device.sip_parent.is_not(None))
            )
        )
        for device in load(session):
            devices.add(device, on=device.id not in off)
    return devices


@dataclass(slots=True)
class Running:
    """A started gateway: its logic, the bound port, and how to stop it."""

    gateway: Gateway
    writer: Writer
    port: int
    loop: asyncio.AbstractEventLoop
    thread: threading.Thread
    stopped: asyncio.Event

    def stop(self) -> None:
        """Stop serving, flush and close the observed run (again: nothing)."""
        if not self.thread.is_alive():
            return
        self.loop.call_soon_threadsafe(self.stopped.set)
        self.thread.join(30)
        self.writer.stop()


def _bind_udp(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
    sock.bind((host, port))
    return sock


def _bind(host: str, port: int) -> tuple[socket.socket, socket.socket]:
    """Bind UDP and TCP on one port; with port 0, retry until a port is free for both."""
    for _ in range(50 if port == 0 else 1):
        udp = _bind_udp(host, port)
        try:
            tcp = socket.create_server((host, udp.getsockname()[1]), family=udp.family)
        except OSError:
            udp.close()
            if port:
                raise
            continue
        return udp, tcp
    raise OSError(f"no port free for both UDP and TCP on {host}")


async def _serve(
    gateway: Gateway, udp: socket.socket, tcp: socket.socket, stopped: asyncio.Event
) -> None:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(lambda: _Udp(gateway), sock=udp)
    server = await asyncio.start_server(
        lambda r, w: _tcp_session(gateway, r, w), sock=tcp, limit=sip.MAX_MESSAGE
    )
    while not stopped.is_set():
        try:
            await asyncio.wait_for(stopped.wait(), 1.0)
        except TimeoutError:
            gateway.expire(utcnow())
    server.close()
    transport.close()
    await server.wait_closed()


def start(
    settings: Settings,
    host: str,
    port: int,
    *,
    sessions: sessionmaker[Session] | None = None,
    min_expires: int = 60,
    client_id: str | None = None,
    tick_s: float = 1.0,
) -> Running:
    """Open the observed run, bind UDP and TCP on one port (0: any free), serve in a thread."""
    if not settings.sip_id or not settings.sip_realm:
        raise ConfigError(
            "FANGXIN_SIP_ID is not set: the SIP gateway needs the platform's 国标编码"
        )
    if sessions is None:
        engine = make_engine(settings.database_url)
        check_migrated(engine)
        sessions = make_session_factory(engine)
    devices = load_devices(sessions)
    writer = Writer(
        sessions,
        client_id or f"fangxin-sip-{socket.gethostname()}-{port}",
        lambda made: _LOGGER.info("SIP: %d new channels registered", len(made)),
        alarm_after=dt.timedelta(seconds=settings.offline_alarm_after_s),
        tick_s=tick_s,
    )
    gateway = Gateway(
        settings.sip_id,
        settings.sip_realm,
        devices,
        writer,
        tz=settings.timezone,
        min_expires=min_expires,
    )
    udp, tcp = _bind(host, port)
    bound = udp.getsockname()[1]
    gateway.via = f"{host if host not in ('0.0.0.0', '::') else socket.gethostname()}:{bound}"
    writer.open()
    writer.start()
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    holder: dict[str, asyncio.Event] = {}

    def _main() -> None:
        asyncio.set_event_loop(loop)
        holder["stopped"] = asyncio.Event()
        ready.set()
        loop.run_until_complete(_serve(gateway, udp, tcp, holder["stopped"]))
        loop.close()

    thread = threading.Thread(target=_main, name="fangxin-sip", daemon=True)
    thread.start()
    ready.wait(10)
    _LOGGER.info(
        "SIP gateway %s (realm %s) on %s:%d udp+tcp, %d devices",
        settings.sip_id,
        settings.sip_realm,
        host,
        bound,
        len(devices.by_gb),
    )
    return Running(gateway, writer, bound, loop, thread, holder["stopped"])
