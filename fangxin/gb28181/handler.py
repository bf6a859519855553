"""What the gateway does with each SIP message: REGISTER with Digest, MESSAGE (MANSCDP)."""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from fangxin.db import utcnow
from fangxin.devices.connectivity import OFFLINE, ONLINE
from fangxin.devices.sipdevices import SipDevice
from fangxin.gb28181 import digest, sip
from fangxin.gb28181.events import alarm_row, catalog_changes, security_row
from fangxin.gb28181.manscdp import BodyError, Command, catalog_query, parse
from fangxin.gb28181.state import Counters, Devices, Throttle
from fangxin.gb28181.writer import Writer

_LOGGER = logging.getLogger(__name__)
DEFAULT_EXPIRES, MAX_EXPIRES = 3600, 86400


@dataclass(slots=True)
class Peer:
    """Where a message came from and how to answer: transport, address, a send function."""

    transport: str
    host: str
    port: int
    send: Callable[[bytes], None]

    @property
    def contact(self) -> str:
        """Return the address a registration binds (transport:host:port)."""
        return f"{self.transport}:{self.host}:{self.port}"


class Gateway:
    """The GB/T 28181 door's logic, independent of sockets (the server feeds it messages)."""

    def __init__(
        self,
        sip_id: str,
        realm: str,
        devices: Devices,
        writer: Writer,
        *,
        tz: str = "Asia/Shanghai",
        min_expires: int = 60,
        throttle: Throttle | None = None,
    ) -> None:
        """Serve as platform `sip_id` in `realm`."""
        self.sip_id, self.realm, self.devices, self.writer = sip_id, realm, devices, writer
        self.tz = ZoneInfo(tz)
        self.min_expires = min_expires
        self.throttle = throttle or Throttle()
        self.nonces = digest.Nonces()
        self.counters = Counters()
        self._sn = secrets.randbelow(1_000_000)
        self._tag = secrets.token_hex(4)
        self.via = realm  # host:port of our socket, set by the server once bound

    def handle(self, data: bytes, peer: Peer) -> None:
        """Handle one datagram or framed stream message; never raises for bad input."""
        self.counters["received"] += 1
        if self.throttle.blocked(peer.host):
            self.counters["throttled"] += 1
            return
        try:
            message = sip.parse(data)
        except (sip.SipError, ValueError) as exc:
            self.counters["malformed"] += 1
            _LOGGER.debug("Malformed SIP from %s: %s", peer.contact, exc)
            return
        if not message.is_request:
            self.counters[f"response_{message.method.lower()}"] += 1
            return
        method = message.method
        if method == "REGISTER":
            self._register(message, peer)
        elif method == "MESSAGE":
            self._message(message, peer)
        elif method in ("ACK", "BYE", "CANCEL"):
            self.counters["ignored"] += 1
        elif method == "OPTIONS":
            peer.send(sip.response(message, 200, "OK", to_tag=self._tag))
        else:
            peer.send(sip.response(message, 501, "Not Implemented", to_tag=self._tag))

    def _refuse(
        self, message: sip.Message, peer: Peer, kind: str, detail: str, device: SipDevice | None
    ) -> None:
        self.counters[kind] += 1
        self.writer.security(security_row(kind, detail, message, peer.contact, device))
        if self.throttle.failed(peer.host):
            self.counters["blocked_hosts"] += 1
            _LOGGER.warning("SIP: %s shut out after repeated refusals", peer.host)
        peer.send(sip.response(message, 403, "Forbidden", to_tag=self._tag))

    def _register(self, message: sip.Message, peer: Peer) -> None:
        user = sip.user_of(message.header("from"))
        if user != sip.user_of(message.header("to")):
            self._refuse(message, peer, "sip_spoofed", "From and To name different devices", None)
            return
        device = self.devices.get(user)
        if device is None or device.ha1 is None or not device.active:
            self._refuse(message, peer, "sip_unknown_device", f"REGISTER of {user!r}", None)
            return
        params = digest.parse_auth(message.header("authorization"))
        if not params.get("nonce"):
            self._challenge(message, peer, stale=False)
            return
        if params.get("username") != user:
            detail = f"Digest user {params.get('username')!r} for {user}"
            self._refuse(message, peer, "sip_spoofed", detail, device)
            return
        if params.get("realm") != self.realm:
            self._refuse(message, peer, "sip_bad_realm", f"realm {params.get('realm')!r}", device)
            return
        if not self.nonces.take(params["nonce"]):
            self.counters["stale_nonce"] += 1  # replayed, expired or from before our restart
            self._challenge(message, peer, stale=True)
            return
        if not digest.verify(params, device.ha1, "REGISTER"):
            self._refuse(message, peer, "sip_auth_failed", "wrong Digest response", device)
            return
        self.throttle.succeeded(peer.host)
        self._registered(message, peer, device)

    def _challenge(self, message: sip.Message, peer: Peer, stale: bool) -> None:
        self.counters["challenged"] += 1
        value = digest.challenge(self.realm, self.nonces.issue(), stale)
        peer.send(
            sip.response(message, 401, "Unauthorized", [("WWW-Authenticate", value)], self._tag)
        )

    def _expires(self, message: sip.Message) -> int:
        raw = message.header("expires")
        if not raw:
            contact = message.header("contact")
            raw = (
                contact.partition("expires=")[2].split(";")[0].strip()
                if "expires=" in contact
                else ""
            )
        seconds = int(raw) if raw.isdigit() else DEFAULT_EXPIRES
        return 0 if seconds == 0 else min(max(seconds, self.min_expires), MAX_EXPIRES)

    def _registered(self, message: sip.Message, peer: Peer, device: SipDevice) -> None:
        now = utcnow()
        expires = self._expires(message)
        date = now.astimezone(self.tz).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
        extra = [("Contact", message.header("contact") or f"<sip:{device.gb_id}@{peer.host}>")]
        extra += [("Expires", str(expires)), ("Date", date)]
        peer.send(sip.response(message, 200, "OK", extra, self._tag))
        if expires == 0:
            self.counters["unregistered"] += 1
            device.contact, device.expires_at = None, None
            self.writer.registration(device.id, None, None)
            for target in [device.id, *self.devices.live_channels(device.id)]:
                self.writer.declared(target, OFFLINE, now)
            return
        self.counters["registered"] += 1
        device.contact, device.expires_at = peer.contact, now + dt.timedelta(seconds=expires)
        self.writer.registration(device.id, device.contact, device.expires_at)
        self.writer.seen(device.id, now)
        self.query_catalog(device, peer)

    def query_catalog(self, device: SipDevice, peer: Peer) -> None:
        """Ask a registered device for its channels (it answers with Catalog MESSAGEs)."""
        self._sn += 1
        uri = f"sip:{device.gb_id}@{peer.host}:{peer.port}"
        branch = f"z9hG4bK{secrets.token_hex(8)}"
        headers = [
            ("Via", f"SIP/2.0/{peer.transport.upper()} {self.via};branch={branch}"),
            ("From", f"<sip:{self.sip_id}@{self.realm}>;tag={secrets.token_hex(4)}"),
            ("To", f"<sip:{device.gb_id}@{self.realm}>"),
            ("Call-ID", f"{secrets.token_hex(12)}@{self.realm}"),
            ("CSeq", f"{self._sn} MESSAGE"),
            ("Max-Forwards", "70"),
            ("Content-Type", "Application/MANSCDP+xml"),
        ]
        peer.send(sip.request("MESSAGE", uri, headers, catalog_query(self._sn, device.gb_id)))

    def _message(self, message: sip.Message, peer: Peer) -> None:
        user = sip.user_of(message.header("from"))
        device = self.devices.get(user)
        if device is None or device.ha1 is None or not device.active:
            self._refuse(message, peer, "sip_unknown_device", f"MESSAGE from {user!r}", None)
            return
        now = utcnow()
        if device.expires_at is None or device.expires_at <= now or device.contact is None:
            self.counters["not_registered"] += 1  # the answer makes devices register again
            peer.send(sip.response(message, 403, "Forbidden", to_tag=self._tag))
            return
        if device.contact.split(":")[1] != peer.host:
            self._refuse(
                message, peer, "sip_spoofed", f"{user} registered at {device.contact}", device
            )
            return
        if "manscdp+xml" not in message.header("content-type").lower():
            self.counters["bad_content_type"] += 1
            peer.send(sip.response(message, 415, "Unsupported Media Type", to_tag=self._tag))
            return
        try:
            command = parse(message.body)
        except BodyError as exc:
            self.counters["bad_xml"] += 1
            _LOGGER.debug("Bad MANSCDP from %s: %s", user, exc)
            peer.send(sip.response(message, 400, "Bad Request", to_tag=self._tag))
            return
        if command.device_id != device.gb_id and self._channel(device, command.device_id) is None:
            detail = f"{user} sent a body of {command.device_id!r}"
            self._refuse(message, peer, "sip_spoofed", detail, device)
            return
        peer.send(sip.response(message, 200, "OK", to_tag=self._tag))
        self._command(device, command, now)

    def _channel(self, device: SipDevice, gb_id: str) -> SipDevice | None:
        channel = self.devices.by_gb.get(gb_id)
        return channel if channel is not None and channel.parent == device.id else None

    def _command(self, device: SipDevice, command: Command, now: dt.datetime) -> None:
        if command.cmd == "Keepalive":
            self.counters["keepalive"] += 1
            for target in [device.id, *self.devices.live_channels(device.id)]:
                self.writer.seen(target, now)
        elif command.cmd == "Catalog" and command.root in ("Response", "Notify"):
            self.counters["catalog"] += 1
            new, states = catalog_changes(device, command, self.devices)
            if new:
                self.writer.channels(device, new)
            for channel_id, on in states:
                self.devices.channel_on[channel_id] = on
                self.writer.declared(channel_id, ONLINE if on else OFFLINE, now)
        elif command.cmd == "Alarm":
            self.counters["alarm"] += 1
            source = self._channel(device, command.device_id) or device
            self.writer.alarm(alarm_row(source, command, now, self.tz))
        else:
            self.counters["ignored"] += 1

    def expire(self, now: dt.datetime) -> int:
        """End registrations that lapsed without renewal: their devices go offline at expiry."""
        lapsed = 0
        for device in list(self.devices.by_gb.values()):
            if device.expires_at is not None and device.expires_at <= now:
                lapsed += 1
                at, device.expires_at, device.contact = device.expires_at, None, None
                self.writer.registration(device.id, None, None)
                for target in [device.id, *self.devices.live_channels(device.id)]:
                    self.writer.declared(target, OFFLINE, at)
        self.counters["expired"] += lapsed
        return lapsed
