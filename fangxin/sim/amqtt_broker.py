"""Run the embedded amqtt broker (MQTT 3.1.1): `python -m fangxin.sim.amqtt_broker`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from dataclasses import dataclass
from pathlib import Path

from amqtt.broker import Broker
from amqtt.plugins.base import BaseAuthPlugin
from amqtt.session import Session

from fangxin.devices.credentials import verify_password

_LOGGER = logging.getLogger(__name__)


class HashFileAuthPlugin(BaseAuthPlugin):  # type: ignore[misc]  # amqtt ships no types
    """Admit only users of a Mosquitto password file ($7$ hashes, as export-mosquitto writes)."""

    @dataclass
    class Config:
        """Where the password file is."""

        password_file: str = ""

    async def authenticate(self, *, session: Session) -> bool:
        """Check the CONNECT's username and password; anonymous clients are refused."""
        path = Path(self.config.password_file)
        users = dict(
            line.split(":", 1)
            for line in path.read_text(encoding="utf-8").splitlines()
            if ":" in line
        )
        stored = users.get(session.username or "")
        password = session.password
        if isinstance(password, bytes):
            password = password.decode("utf-8", "replace")
        ok = stored is not None and password is not None and verify_password(password, stored)
        if not ok:
            _LOGGER.warning("amqtt: refused the connection of %r", session.username)
        return ok


async def serve(host: str, port: int, password_file: str | None = None) -> None:
    """Serve until SIGTERM or SIGINT."""
    plugins: dict[str, dict[str, object]] = {
        "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}
    }
    if password_file:
        plugins = {f"{__name__}.HashFileAuthPlugin": {"password_file": password_file}}
    broker = Broker(
        {"listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}"}}, "plugins": plugins}
    )
    await broker.start()
    _LOGGER.info("amqtt broker listening on %s:%d", host, port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await broker.shutdown()


def main() -> None:
    """Parse arguments and serve."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1884)
    parser.add_argument("--password-file", help="admit only these users (else anonymous)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(serve(args.host, args.port, args.password_file))


if __name__ == "__main__":
    main()
