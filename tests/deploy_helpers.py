"""Reading the deployment files as docker compose would: variables, .env.example, volumes."""

from __future__ import annotations

import getpass
import re
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from fangxin.devices import mosquitto_export
from fangxin.sim.broker import free_port, wait_for_port

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
MOSQUITTO_CONF = ROOT / "deploy" / "mosquitto" / "mosquitto.conf"
# Compose interpolation: $$ is a literal $, else ${NAME}, ${NAME:-default}, ${NAME:?message}, ...
_VARIABLE = re.compile(
    r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
    r"|\$(?P<bare>[A-Za-z_][A-Za-z0-9_]*)"
)
# Variables whose values are secrets: compose must refuse to start without them.
SECRET = re.compile(r"PASSWORD|TOKEN|SECRET|SIGNING_KEY")


class MissingVariable(KeyError):
    """A `${NAME:?message}` variable is unset or empty: compose would refuse to start."""


@dataclass(frozen=True, slots=True)
class Reference:
    """One `${...}` in the compose file."""

    name: str
    op: str  # "", ":-", "-", ":?", "?", ":+", "+"
    arg: str


def references(text: str) -> Iterator[Reference]:
    """Yield every variable reference of a compose file's text."""
    for match in _VARIABLE.finditer(text):
        if match.group(0) == "$$":
            continue
        name = match.group("name") or match.group("bare")
        yield Reference(name, match.group("op") or "", match.group("arg") or "")


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Substitute variables as compose does; raise MissingVariable for an unmet `:?`."""

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group("name") or match.group("bare")
        op, arg = match.group("op") or "", match.group("arg") or ""
        value = env.get(name)
        present = value is not None and (value != "" or ":" not in op)
        if op.endswith("-"):
            return value if present and value is not None else arg
        if op.endswith("?"):
            if not present or value is None:
                raise MissingVariable(f"{name}: {arg}")
            return value
        if op.endswith("+"):
            return arg if present else ""
        return value or ""

    return _VARIABLE.sub(substitute, text)


def env_example() -> dict[str, str]:
    """Return the KEY=value lines of .env.example."""
    values = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def filled_env() -> dict[str, str]:
    """Return .env.example with every empty value filled as an operator would (URL-safe)."""
    filled = {}
    for key, value in env_example().items():
        if not value and key.endswith("_URL"):
            value = "https://fangxin.example.cn"
        elif not value:
            value = key.lower().replace("_", "") + "0c0ffee" * 5  # secrets are >= 32 chars
        filled[key] = value
    return filled


def raw_compose() -> dict[str, Any]:
    """Return docker-compose.yml as YAML, before interpolation."""
    data: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    return data


def strings(node: Any) -> Iterator[str]:
    """Yield every string value of a YAML tree (compose interpolates values, not comments)."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from strings(value)


def compose_references() -> list[Reference]:
    """Return every variable reference in docker-compose.yml's values."""
    return [ref for text in strings(raw_compose()) for ref in references(text)]


def _interpolated(node: Any, env: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, dict):
        return {key: _interpolated(value, env) for key, value in node.items()}
    if isinstance(node, list):
        return [_interpolated(value, env) for value in node]
    return node


def load_compose(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Return docker-compose.yml after interpolation (with filled_env() by default)."""
    data: dict[str, Any] = _interpolated(raw_compose(), filled_env() if env is None else env)
    return data


@dataclass(frozen=True, slots=True)
class Mount:
    """A volume entry of a service, short or long syntax."""

    source: str | None  # None: an anonymous volume
    target: str
    read_only: bool

    @property
    def kind(self) -> str:
        """Return "bind", "volume" (named) or "anonymous"."""
        if self.source is None:
            return "anonymous"
        return "bind" if self.source.startswith((".", "/", "~")) else "volume"


def mounts(service: Mapping[str, Any]) -> list[Mount]:
    """Return a service's volume mounts."""
    out = []
    for entry in service.get("volumes", []):
        if isinstance(entry, str):
            parts = entry.split(":")
            if len(parts) == 1:
                out.append(Mount(None, parts[0], False))
            else:
                out.append(Mount(parts[0], parts[1], len(parts) > 2 and "ro" in parts[2]))
        else:
            out.append(Mount(entry.get("source"), entry["target"], bool(entry.get("read_only"))))
    return out


def conf_options(text: str) -> dict[str, list[str]]:
    """Return a mosquitto.conf's options: name -> values in file order."""
    options: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, value = line.strip().partition(" ")
            options.setdefault(name, []).append(value.strip())
    return options


def deploy_conf(tmp_path: Path, port: int, ingest_port: int | None = None) -> str:
    """Return deploy/mosquitto/mosquitto.conf with its listeners and container paths moved here.

    The devices' listener moves to port; the ingesters' to ingest_port (default: port + 1).
    """
    ingest_port = ingest_port or port + 1
    text = MOSQUITTO_CONF.read_text(encoding="utf-8")
    text = text.replace("/mosquitto/config/auth/", f"{tmp_path}/auth/")
    text = text.replace("/mosquitto/data/", f"{tmp_path}/data/")
    text = re.sub(r"^listener 1883$", f"listener {port} 127.0.0.1", text, flags=re.M)
    text = re.sub(r"^listener 1884$", f"listener {ingest_port} 127.0.0.1", text, flags=re.M)
    values = [value for values in conf_options(text).values() for value in values]
    assert not [v for v in values if "/mosquitto/" in v]
    assert f"{port} 127.0.0.1" in values
    assert f"{ingest_port} 127.0.0.1" in values
    # started as root, mosquitto would drop to user mosquitto, who cannot read our 0600 files
    return text + f"user {getpass.getuser()}\n"


@dataclass(frozen=True)
class ShippedBroker:
    """A real Mosquitto running the shipped configuration: device and ingester listeners."""

    port: int
    ingest_port: int
    log: Path


@contextmanager
def shipped_mosquitto(
    binary: str, files: mosquitto_export.MosquittoFiles, tmp_path: Path
) -> Iterator[ShippedBroker]:
    """Run Mosquitto with deploy/mosquitto/mosquitto.conf and the exported files, then stop it."""
    mosquitto_export.write(files, tmp_path / "auth")
    (tmp_path / "data").mkdir()
    port, ingest_port = free_port(), free_port()
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(deploy_conf(tmp_path, port, ingest_port), encoding="utf-8")
    log = tmp_path / "mosquitto.out"
    with log.open("wb") as out:
        process = subprocess.Popen([binary, "-c", str(conf)], stdout=out, stderr=subprocess.STDOUT)
    try:
        assert wait_for_port("127.0.0.1", port), log.read_text()
        assert wait_for_port("127.0.0.1", ingest_port), log.read_text()
        yield ShippedBroker(port, ingest_port, log)
    finally:
        process.terminate()
        process.wait(10)
