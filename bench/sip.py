"""SIP gateway throughput: keepalives/s of `fangxin sip` vs a bare UDP echo of the same packets.

10,000 devices are registered (rows written directly: the bench is about keepalives), the
gateway is started in this process on SQLite, and a sender process plays every device, keeping
a window of requests in flight. The same sender then drives a bare asyncio UDP echo: the
baseline of what one Python process can turn around at all. Also printed: the gateway's RSS.

    ./run bench sip [--devices 10000] [--keepalives 60000] [--window 256]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import multiprocessing
import os
import socket
import tempfile
import threading
import time
from pathlib import Path

import psutil
from sqlalchemy import insert

from fangxin.config import Settings
from fangxin.db import make_engine, make_session_factory, upgrade, utcnow
from fangxin.devices.gbcode import ha1
from fangxin.devices.models import Device, Site
from fangxin.gb28181.server import start

PLATFORM, REALM = "41040000002000000001", "4104000000"


def gb_id(n: int) -> str:
    """Return the n-th bench camera's 国标编码."""
    return f"4104020000132{n:07d}"


def keepalive(code: str, sn: int) -> bytes:
    """Return a keepalive MESSAGE of a device, as cameras send it."""
    body = (
        '<?xml version="1.0" encoding="GB2312"?>\r\n<Notify>\r\n<CmdType>Keepalive</CmdType>\r\n'
        f"<SN>{sn}</SN>\r\n<DeviceID>{code}</DeviceID>\r\n<Status>OK</Status>\r\n</Notify>\r\n"
    ).encode()
    head = (
        f"MESSAGE sip:{PLATFORM}@{REALM} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:5060;rport;branch=z9hG4bK{sn}\r\n"
        f"From: <sip:{code}@{REALM}>;tag={sn}\r\nTo: <sip:{PLATFORM}@{REALM}>\r\n"
        f"Call-ID: {sn}@127.0.0.1\r\nCSeq: {sn} MESSAGE\r\n"
        f"Content-Type: Application/MANSCDP+xml\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def sender(
    port: int, devices: int, count: int, window: int, out: multiprocessing.Queue[float]
) -> None:
    """Send `count` keepalives with `window` in flight; put the seconds it took."""
    packets = [keepalive(gb_id(n % devices), n) for n in range(count)]
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
    sock.settimeout(2)
    target = ("127.0.0.1", port)
    began = time.perf_counter()
    sent = answered = 0
    while answered < count:
        while sent < count and sent - answered < window:
            sock.sendto(packets[sent], target)
            sent += 1
        try:
            sock.recv(65536)
            answered += 1
        except TimeoutError:
            answered = sent  # lost in a full buffer: count it and go on
    out.put(time.perf_counter() - began)


def drive(port: int, devices: int, count: int, window: int) -> float:
    """Run the sender in its own process; return keepalives per second."""
    queue: multiprocessing.Queue[float] = multiprocessing.Queue()
    proc = multiprocessing.Process(target=sender, args=(port, devices, count, window, queue))
    proc.start()
    seconds = queue.get(timeout=600)
    proc.join()
    return count / seconds


class _Echo(asyncio.DatagramProtocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        self.transport.sendto(data[:200], addr)  # type: ignore[attr-defined]


def echo_server() -> int:
    """Start a bare asyncio UDP echo in a thread; return its port."""
    loop = asyncio.new_event_loop()
    ready: list[int] = []

    async def serve() -> None:
        transport, _ = await loop.create_datagram_endpoint(_Echo, local_addr=("127.0.0.1", 0))
        ready.append(transport.get_extra_info("sockname")[1])
        await asyncio.Event().wait()

    threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True).start()
    while not ready:
        time.sleep(0.01)
    return ready[0]


def seed(url: str, devices: int) -> None:
    """Register a site and `devices` cameras with live registrations from 127.0.0.1."""
    engine = make_engine(url)
    upgrade(engine)
    now = utcnow()
    with make_session_factory(engine).begin() as session:
        session.add(Site(id="k-bench", kind="kitchen", district="新华区", name="bench"))
        session.flush()
        session.execute(
            insert(Device),
            [
                {
                    "id": f"cam-{n:05d}",
                    "site_id": "k-bench",
                    "kind": "camera",
                    "interval_s": 60,
                    "active": True,
                    "created_at": now,
                    "gb_id": gb_id(n),
                    "sip_ha1": ha1(gb_id(n), REALM, "bench"),
                    "sip_contact": "udp:127.0.0.1:5060",
                    "sip_expires_at": now + dt.timedelta(hours=1),
                }
                for n in range(devices)
            ],
        )
    engine.dispose()


def main() -> None:
    """Seed, measure the echo baseline and the gateway, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--keepalives", type=int, default=60_000)
    parser.add_argument("--window", type=int, default=256)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        seed(url, args.devices)
        baseline = drive(echo_server(), args.devices, args.keepalives, args.window)
        settings = Settings(data_dir=Path(tmp), database_url=url, sip_id=PLATFORM)
        process = psutil.Process(os.getpid())
        running = start(settings, "127.0.0.1", 0)
        rss_loaded = process.memory_info().rss / 2**20
        rate = drive(running.port, args.devices, args.keepalives, args.window)
        rss_after = process.memory_info().rss / 2**20
        handled = running.gateway.counters["keepalive"]
        began = time.perf_counter()
        running.stop()
        print(f"devices registered        {args.devices}")
        print(f"bare UDP echo (baseline)  {baseline:10.0f} packets/s")
        print(f"fangxin sip keepalives    {rate:10.0f} /s  ({rate / baseline:.0%} of the echo)")
        print(f"keepalives handled        {handled} of {args.keepalives}")
        print(f"final flush and stop      {time.perf_counter() - began:.2f} s")
        print(f"RSS with devices loaded   {rss_loaded:.0f} MB, after the run {rss_after:.0f} MB")


if __name__ == "__main__":
    main()
