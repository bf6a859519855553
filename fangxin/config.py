"""Typed settings, read once from FANGXIN_* environment variables."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

N = TypeVar("N", int, float)
# Values shipped in code, examples or docs; never acceptable as production secrets.
DEVELOPMENT_SECRETS = frozenset({"dev-only-not-secret", "change-me", "changeme", "secret"})


class ConfigError(RuntimeError):
    """The environment does not describe a runnable configuration."""


def _number(env: Mapping[str, str], name: str, default: N, kind: Callable[[str], N]) -> N:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return kind(raw)
    except ValueError as exc:
        what = "an integer" if kind is int else "a number"
        raise ConfigError(f"{name} must be {what}, got {raw!r}") from exc


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    return _number(env, name, default, int)


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    return _number(env, name, default, float)


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = (env.get(name) or "").strip().lower()
    if not raw:
        return default
    if raw not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
        raise ConfigError(f"{name} must be true or false, got {raw!r}")
    return raw in ("1", "true", "yes", "on")


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the web app, the ingester and the CLI need to know about their environment."""

    data_dir: Path = Path("var")
    database_url: str = ""
    mqtt_url: str | None = None
    influx_url: str | None = None
    influx_token: str | None = None
    influx_org: str | None = None
    influx_bucket: str | None = None
    secret_key: str | None = None
    signing_key: str | None = None
    public_url: str | None = None
    production: bool = False
    ingest_client_id: str = "fangxin-ingest"
    # Unacked QoS 1 messages the broker may push (MQTT 5 Receive Maximum): the backpressure bound.
    ingest_max_inflight: int = 4000
    ingest_batch_size: int = 2000
    ingest_flush_ms: int = 50
    session_expiry_s: int = 86400
    max_payload_bytes: int = 256 * 1024
    max_array_items: int = 1000
    # Device clocks may run ahead of ours; beyond this a timestamp is rejected as "in the future".
    max_clock_skew_s: int = 600
    timezone: str = "Asia/Shanghai"
    # "auto" tries MQTT 5 and falls back to 3.1.1; "5" or "3.1.1" skip the probe.
    mqtt_protocol: str = "auto"
    # Flask-Limiter: public pages and /login per client address, the results door per API key.
    ratelimit_enabled: bool = True
    ratelimit_public: str = "120/minute"
    ratelimit_results: str = "600/minute"
    # Failed sign-ins per account, whatever the address (§7): a password guesser is slowed down.
    ratelimit_login_account: str = "10/15 minutes"
    ratelimit_storage_url: str = "memory://"
    # Proxy addresses whose X-Forwarded-For is believed (audit log, rate limits); none by default.
    trusted_proxies: tuple[str, ...] = ()
    # Alarms the ingester raises: a camera offline this long, a recorder with less free storage.
    offline_alarm_after_s: float = 1800.0
    storage_low_gb: float = 20.0
    # Web processes: how often the scan pages' change feed is read (a change shows within it;
    # 0: every scan renders), and how long scans are buffered before a write.
    scan_cache_s: float = 1.0
    scan_flush_s: float = 1.0
    # Dashboard figures are reused this long (the same figures for every viewer of a district).
    dashboard_cache_s: float = 60.0
    # Webhooks: first retry delay; whether web processes send at once after a commit (else only
    # the `fangxin webhooks` worker sends).
    webhook_backoff_s: float = 30.0
    webhooks_in_web: bool = True
    # Webhook targets on private, loopback or link-local addresses are refused unless allowed.
    webhooks_allow_private: bool = False
    # "text" or "json" log lines.
    log_format: str = "text"
    # GB/T 28181 door: the platform's 20-digit 国标编码, its SIP domain (the Digest realm) and
    # where the gateway listens.
    sip_id: str | None = None
    sip_domain: str | None = None
    sip_listen: str = "0.0.0.0:5060"
    # Longest heartbeat interval a camera or NVR may announce and have applied (local setting).
    camera_max_interval_s: int = 300
    # 互联网+明厨亮灶: a site counts when its cameras were online this share of business hours
    # in the period (local setting; the plan gives no figure).
    internet_mclz_min_share: float = 0.8

    def __post_init__(self) -> None:
        """Fill the database URL from the data dir when none was given."""
        if not self.database_url:
            url = f"sqlite:///{(self.data_dir / 'fangxin.db').resolve()}"
            object.__setattr__(self, "database_url", url)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from the environment (os.environ by default)."""
        env = os.environ if env is None else env
        data_dir = Path(env.get("FANGXIN_DATA_DIR") or "var")
        settings = cls(
            data_dir=data_dir,
            database_url=env.get("FANGXIN_DATABASE_URL", ""),
            mqtt_url=env.get("FANGXIN_MQTT_URL") or None,
            influx_url=env.get("FANGXIN_INFLUX_URL") or None,
            influx_token=env.get("FANGXIN_INFLUX_TOKEN") or None,
            influx_org=env.get("FANGXIN_INFLUX_ORG") or None,
            influx_bucket=env.get("FANGXIN_INFLUX_BUCKET") or None,
            secret_key=env.get("FANGXIN_SECRET_KEY") or None,
            signing_key=env.get("FANGXIN_SIGNING_KEY") or None,
            public_url=env.get("FANGXIN_PUBLIC_URL") or None,
            production=env.get("FANGXIN_ENV", "development").lower() == "production",
            ingest_client_id=env.get("FANGXIN_INGEST_CLIENT_ID")
            or f"fangxin-ingest-{socket.gethostname()}",
            ingest_max_inflight=_int(env, "FANGXIN_INGEST_MAX_INFLIGHT", 4000),
            ingest_batch_size=_int(env, "FANGXIN_INGEST_BATCH_SIZE", 2000),
            ingest_flush_ms=_int(env, "FANGXIN_INGEST_FLUSH_MS", 50),
            session_expiry_s=_int(env, "FANGXIN_MQTT_SESSION_EXPIRY_S", 86400),
            max_payload_bytes=_int(env, "FANGXIN_MAX_PAYLOAD_BYTES", 256 * 1024),
            mqtt_protocol=env.get("FANGXIN_MQTT_PROTOCOL", "auto"),
            ratelimit_enabled=env.get("FANGXIN_RATELIMIT_ENABLED", "true").lower() != "false",
            ratelimit_public=env.get("FANGXIN_RATELIMIT_PUBLIC") or "120/minute",
            ratelimit_results=env.get("FANGXIN_RATELIMIT_RESULTS") or "600/minute",
            ratelimit_login_account=env.get("FANGXIN_RATELIMIT_LOGIN_ACCOUNT") or "10/15 minutes",
            ratelimit_storage_url=env.get("FANGXIN_RATELIMIT_STORAGE_URL") or "memory://",
            trusted_proxies=tuple(env.get("FANGXIN_TRUSTED_PROXIES", "").replace(",", " ").split()),
            offline_alarm_after_s=_float(env, "FANGXIN_OFFLINE_ALARM_AFTER_S", 1800.0),
            storage_low_gb=_float(env, "FANGXIN_STORAGE_LOW_GB", 20.0),
            scan_cache_s=_float(env, "FANGXIN_SCAN_CACHE_S", 1.0),
            scan_flush_s=_float(env, "FANGXIN_SCAN_FLUSH_S", 1.0),
            dashboard_cache_s=_float(env, "FANGXIN_DASHBOARD_CACHE_S", 60.0),
            webhook_backoff_s=_float(env, "FANGXIN_WEBHOOK_BACKOFF_S", 30.0),
            webhooks_in_web=_flag(env, "FANGXIN_WEBHOOKS_IN_WEB", True),
            webhooks_allow_private=_flag(env, "FANGXIN_WEBHOOKS_ALLOW_PRIVATE", False),
            log_format=(env.get("FANGXIN_LOG_FORMAT") or "text").lower(),
            sip_id=env.get("FANGXIN_SIP_ID") or None,
            sip_domain=env.get("FANGXIN_SIP_DOMAIN") or None,
            sip_listen=env.get("FANGXIN_SIP_LISTEN") or "0.0.0.0:5060",
            camera_max_interval_s=_int(env, "FANGXIN_CAMERA_MAX_INTERVAL_S", 300),
            internet_mclz_min_share=_float(env, "FANGXIN_INTERNET_MCLZ_MIN_SHARE", 0.8),
        )
        if settings.log_format not in ("text", "json"):
            raise ConfigError("FANGXIN_LOG_FORMAT must be text or json")
        if not 1 <= settings.camera_max_interval_s <= 86400:
            raise ConfigError("FANGXIN_CAMERA_MAX_INTERVAL_S must be within 1..86400")
        if not 0 < settings.internet_mclz_min_share <= 1:
            raise ConfigError("FANGXIN_INTERNET_MCLZ_MIN_SHARE must be within (0, 1]")
        if settings.mqtt_protocol not in ("auto", "5", "3.1.1"):
            raise ConfigError("FANGXIN_MQTT_PROTOCOL must be auto, 5 or 3.1.1")
        if settings.sip_id is not None and not (
            len(settings.sip_id) == 20 and settings.sip_id.isascii() and settings.sip_id.isdigit()
        ):
            raise ConfigError("FANGXIN_SIP_ID must be a 20-digit 国标编码")
        return replace(settings, **overrides) if overrides else settings

    def served_on(self, port: int) -> Settings:
        """Return these settings with the public URL defaulting to the port actually served."""
        if self.public_url:
            return self
        return replace(self, public_url=f"http://localhost:{port}")

    @property
    def sip_realm(self) -> str | None:
        """Return the SIP domain (Digest realm): the setting, else the id's first 10 digits."""
        return self.sip_domain or (self.sip_id[:10] if self.sip_id else None)

    @property
    def interval_caps(self) -> dict[str, int]:
        """Return the longest applied announced heartbeat interval per device kind."""
        return {"camera": self.camera_max_interval_s, "nvr": self.camera_max_interval_s}

    @property
    def influx_enabled(self) -> bool:
        """Whether time series go to InfluxDB rather than to SQL."""
        return self.influx_url is not None

    def check_production(self) -> None:
        """Refuse a production start that lacks real secrets."""
        if not self.production:
            return
        missing = [
            name
            for name, value in (
                ("FANGXIN_SECRET_KEY", self.secret_key),
                ("FANGXIN_SIGNING_KEY", self.signing_key),
                (
                    "FANGXIN_DATABASE_URL",
                    self.database_url if "sqlite" not in self.database_url else None,
                ),
            )
            if not value
        ]
        if missing:
            raise ConfigError("production mode needs " + ", ".join(missing))
        weak = [
            name
            for name, value in (
                ("FANGXIN_SECRET_KEY", self.secret_key),
                ("FANGXIN_SIGNING_KEY", self.signing_key),
            )
            if value and (value in DEVELOPMENT_SECRETS or len(value) < 32)
        ]
        if weak:
            raise ConfigError("production mode refuses development or short " + ", ".join(weak))
