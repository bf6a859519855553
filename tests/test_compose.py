"""docker-compose.yml: valid Compose, the services fangxin needs, real CLI, no default secrets."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import click
import pytest
from jsonschema import Draft7Validator

from fangxin.cli import main
from fangxin.config import Settings
from fangxin.contract.topics import shared_subscription
from fangxin.devices.mosquitto_export import MosquittoFiles, write
from fangxin.ingest.mqtt_url import BrokerAddress
from fangxin.sim.broker import MOSQUITTO_CONF as TEST_BROKER_CONF
from tests.deploy_helpers import (
    MOSQUITTO_CONF,
    ROOT,
    SECRET,
    MissingVariable,
    compose_references,
    conf_options,
    env_example,
    filled_env,
    load_compose,
    mounts,
)

SCHEMA = ROOT / "tests" / "data" / "compose" / "compose-spec.json"
NEEDED = {"mosquitto", "influxdb", "postgres", "redis", "migrate", "web", "ingest", "grafana"}
ONE_SHOT = {"db-roles", "migrate", "db-grants", "mosquitto-auth"}
# Where each engine keeps its data inside its official image: these must be named volumes.
DATA_DIRS = {
    "postgres": "/var/lib/postgresql/data",
    "influxdb": "/var/lib/influxdb2",
    "mosquitto": "/mosquitto/data",
    "grafana": "/var/lib/grafana",
}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_compose()


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose["services"]
    return found


def app_services(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Return the services that run the image built from our Dockerfile."""
    return {name: svc for name, svc in services.items() if "build" in svc}


def consumed(group: click.Group, args: list[str], at: int) -> bool:
    """Tell whether args[at] (the last token) was the group's own option or option value."""
    if at < 0 or args[at].startswith("-"):
        return True
    takes_value = [p for p in group.params if isinstance(p, click.Option) and not p.is_flag]
    return at > 0 and any(args[at - 1] in p.opts for p in takes_value)


def resolve(argv: list[str]) -> click.Context:
    """Parse `fangxin <argv>` strictly down to its leaf command, invoking nothing."""
    assert argv[0] == "fangxin", argv
    command: click.Command = main
    name, args = "fangxin", argv[1:]
    parent: click.Context | None = None
    while True:
        ctx = command.make_context(name, list(args), parent=parent)
        if not isinstance(command, click.Group):
            return ctx
        # A group stops parsing at its subcommand: ctx.args are the tokens after that name.
        at = len(args) - len(ctx.args) - 1
        sub = command.get_command(ctx, args[at]) if at >= 0 else None
        if sub is None:
            if ctx.args or not command.invoke_without_command or not consumed(command, args, at):
                raise click.UsageError(f"no such command in {argv}", ctx)
            return ctx
        command, name, args, parent = sub, args[at], ctx.args, ctx


def test_valid_against_the_compose_specification(compose: dict[str, Any]) -> None:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    assert schema["$schema"].startswith("https://json-schema.org/draft-07/")
    Draft7Validator.check_schema(schema)
    validator = Draft7Validator(schema, format_checker=Draft7Validator.FORMAT_CHECKER)
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(compose)]
    assert errors == []
    # the validator bites: a misspelt key is an error
    broken = copy.deepcopy(compose)
    broken["services"]["web"]["healthchek"] = broken["services"]["web"].pop("healthcheck")
    assert not validator.is_valid(broken)


def test_every_service_the_app_needs(services: dict[str, dict[str, Any]]) -> None:
    assert set(services) >= NEEDED
    assert services["mosquitto"]["image"] == "eclipse-mosquitto:2"
    assert services["influxdb"]["image"] == "influxdb:2.7"
    assert services["postgres"]["image"] == "postgres:16"
    assert services["grafana"]["image"].startswith("grafana/grafana:")
    built = app_services(services)
    assert {"migrate", "web", "ingest"} <= set(built)
    for svc in built.values():
        assert (ROOT / svc["build"]["context"] / "Dockerfile").is_file()


def test_commands_are_the_cli(services: dict[str, dict[str, Any]]) -> None:
    contexts = {name: resolve(svc["command"]) for name, svc in app_services(services).items()}
    assert contexts["migrate"].command_path == "fangxin db upgrade"
    web = contexts["web"]
    assert web.command_path == "fangxin serve"
    assert web.params["host"] == "0.0.0.0"
    assert f":{web.params['port']}" in services["web"]["ports"][0]
    assert f":{web.params['port']}/healthz" in " ".join(services["web"]["healthcheck"]["test"])
    ingest = contexts["ingest"]
    assert ingest.command_path == "fangxin ingest"
    assert ingest.params["client_id"] is None
    assert shared_subscription(ingest.params["shared"]) == "$share/fangxin/fangxin/v1/+/+/+"
    auth = contexts["mosquitto-auth"]
    assert auth.command_path == "fangxin devices export-mosquitto"
    assert auth.params["bind_site"] is True
    # the resolver is strict: an unknown option or command is an error, not a pass
    with pytest.raises(click.UsageError):
        resolve(["fangxin", "serve", "--no-such-option"])
    with pytest.raises(click.UsageError):
        resolve(["fangxin", "db", "downgrade"])
    with pytest.raises(click.UsageError):
        resolve(["fangxin", "webhooks", "bogus"])
    assert resolve(["fangxin", "webhooks", "--poll", "5"]).params["poll"] == 5.0


def test_ingest_scales_out(services: dict[str, dict[str, Any]]) -> None:
    assert not [name for name, svc in services.items() if "container_name" in svc]
    ingest = services["ingest"]
    assert "ports" not in ingest
    assert "FANGXIN_INGEST_CLIENT_ID" not in ingest["environment"]
    assert "--client-id" not in ingest["command"]
    # its data dir (spool, client id) is per replica: an anonymous volume at the image's data dir
    data_dir = [m for m in mounts(ingest) if m.kind == "anonymous"]
    assert [m.target for m in data_dir] == ["/var/lib/fangxin"]
    assert "FANGXIN_DATA_DIR=/var/lib/fangxin" in (ROOT / "Dockerfile").read_text()


def test_healthchecks_and_restarts(services: dict[str, dict[str, Any]]) -> None:
    for name, svc in services.items():
        if name in ONE_SHOT:
            assert svc["restart"] == "no", name
            continue
        check = svc.get("healthcheck", {})
        assert check.get("test"), name
        assert check["test"][0] in ("CMD", "CMD-SHELL"), name
        assert not check.get("disable"), name
        assert svc["restart"] == "unless-stopped", name


def test_depends_on_conditions(services: dict[str, dict[str, Any]]) -> None:
    for name, svc in services.items():
        for target, spec in svc.get("depends_on", {}).items():
            condition = spec["condition"]
            if condition == "service_healthy":
                assert "healthcheck" in services[target], (name, target)
            else:
                assert condition == "service_completed_successfully", (name, target)
                assert target in ONE_SHOT, (name, target)
    done = "service_completed_successfully"
    expected = {
        "db-roles": {"postgres": "service_healthy"},
        "migrate": {"db-roles": done},
        "db-grants": {"migrate": done},
        "mosquitto-auth": {"db-grants": done},
        "mosquitto": {"mosquitto-auth": "service_completed_successfully"},
        "web": {
            "postgres": "service_healthy",
            "redis": "service_healthy",
            "db-grants": done,
        },
        "ingest": {
            "postgres": "service_healthy",
            "db-grants": done,
            "mosquitto": "service_healthy",
            "influxdb": "service_healthy",
        },
        "grafana": {"influxdb": "service_healthy"},
    }
    for name, wanted in expected.items():
        got = {t: spec["condition"] for t, spec in services[name]["depends_on"].items()}
        assert got == wanted, name


def test_named_volumes(compose: dict[str, Any], services: dict[str, dict[str, Any]]) -> None:
    declared = set(compose["volumes"])
    used = set()
    for name, svc in services.items():
        for mount in mounts(svc):
            if mount.kind == "volume":
                assert mount.source in declared, (name, mount)
                used.add(mount.source)
            elif mount.kind == "bind":
                assert mount.read_only, (name, mount)
                assert (ROOT / str(mount.source)).exists(), (name, mount)
    assert used == declared
    for name, target in DATA_DIRS.items():
        kinds = {m.target: m.kind for m in mounts(services[name])}
        assert kinds.get(target) == "volume", name


def test_secrets_have_no_defaults() -> None:
    secrets = {ref for ref in compose_references() if SECRET.search(ref.name)}
    assert {r.name for r in secrets} >= {"POSTGRES_PASSWORD", "FANGXIN_SECRET_KEY"}
    for ref in secrets:
        assert ref.op == ":?", ref
        assert ref.arg, ref
    example = env_example()
    assert {r.name: example.get(r.name) for r in secrets} == {r.name: "" for r in secrets}
    for name in {r.name for r in secrets}:
        env = filled_env()
        env[name] = ""
        with pytest.raises(MissingVariable, match=name):
            load_compose(env)


def test_env_example_lists_every_variable() -> None:
    used = {ref.name for ref in compose_references()}
    assert used - set(env_example()) == set()


def test_production_settings_are_complete(services: dict[str, dict[str, Any]]) -> None:
    influx = services["influxdb"]["environment"]
    for name, svc in app_services(services).items():
        settings = Settings.from_env(svc["environment"])
        assert settings.production, name
        settings.check_production()
        # migrations as the schema's owner, everything else as the app role (roles.sql)
        user = "fangxin_migrate" if name == "migrate" else "fangxin_app"
        assert settings.database_url.startswith(f"postgresql+psycopg://{user}:"), name
        assert "@postgres:5432/" in settings.database_url
        assert settings.mqtt_url
        broker = BrokerAddress.parse(settings.mqtt_url)
        # the ingesters' internal listener (deploy/mosquitto/mosquitto.conf), not the devices' 1883
        assert (broker.host, broker.port, broker.username) == ("mosquitto", 1884, "fangxin-ingest")
        assert settings.influx_url == "http://influxdb:8086"
        assert settings.influx_org == influx["DOCKER_INFLUXDB_INIT_ORG"]
        assert settings.influx_bucket == influx["DOCKER_INFLUXDB_INIT_BUCKET"]
        assert settings.public_url == "https://fangxin.example.cn"
        # one limiter store shared by every worker (§7), the compose network's Redis
        assert settings.ratelimit_storage_url == "redis://redis:6379/0"


def duration_days(text: str) -> float:
    """Return an InfluxDB duration ("105w", "731d", "17544h") in days."""
    match = re.fullmatch(r"(\d+)([wdh])", text)
    assert match, text
    return int(match.group(1)) * {"w": 7.0, "d": 1.0, "h": 1 / 24}[match.group(2)]


def test_influxdb_initialised_from_the_environment(services: dict[str, dict[str, Any]]) -> None:
    env = services["influxdb"]["environment"]
    assert env["DOCKER_INFLUXDB_INIT_MODE"] == "setup"
    for key in ("USERNAME", "PASSWORD", "ORG", "BUCKET", "ADMIN_TOKEN"):
        assert env[f"DOCKER_INFLUXDB_INIT_{key}"], key
    assert duration_days(env["DOCKER_INFLUXDB_INIT_RETENTION"]) >= 731
    (default,) = {r.arg for r in compose_references() if r.name == "INFLUXDB_RETENTION"}
    assert duration_days(default) >= 731


def test_mosquitto_conf(services: dict[str, dict[str, Any]], tmp_path: Path) -> None:
    options = conf_options(MOSQUITTO_CONF.read_text(encoding="utf-8"))
    assert options["allow_anonymous"] == ["false", "false"]  # both listeners
    assert options["persistence"] == ["true"]
    tests_use = int(conf_options(TEST_BROKER_CONF)["max_queued_messages"][0])
    assert int(options["max_queued_messages"][0]) >= max(tests_use, 100 * 1000)
    assert int(options["max_inflight_messages"][0]) >= Settings().ingest_max_inflight
    # the files export-mosquitto writes, where the mosquitto-auth service writes them, are the
    # files the broker reads
    written = write(MosquittoFiles("", "", 0, "", ""), tmp_path)
    auth = services["mosquitto-auth"]
    out = auth["command"][auth["command"].index("--out") + 1]
    assert [m.target for m in mounts(auth) if m.source == "mosquitto-auth"] == [out]
    broker = {m.source: m for m in mounts(services["mosquitto"])}
    assert broker["./deploy/mosquitto/mosquitto.conf"].target == "/mosquitto/config/mosquitto.conf"
    auth_dir = broker["mosquitto-auth"].target
    # devices' listener, then the ingesters' listener
    assert options["password_file"] == [f"{auth_dir}/{written[i].name}" for i in (0, 2)]
    assert options["acl_file"] == [f"{auth_dir}/{written[i].name}" for i in (1, 3)]
    assert options["listener"] == ["1883", "1884"]
    assert options["use_username_as_clientid"] == ["true"]
    assert options["per_listener_settings"] == ["true"]
    assert options["persistence_location"] == [f"{DATA_DIRS['mosquitto']}/"]
    # the job writes 0600 files as the broker's user, into a directory that user owns
    assert auth["user"] == "1883:1883"
    assert f"-o 1883 -g 1883 -m 0700 {out}" in (ROOT / "Dockerfile").read_text()
