"""Settings, read from `SODATE_*` environment variables.

Every field here is documented in the README's configuration table; a test keeps the two in step.
"""

from __future__ import annotations

import secrets
from enum import StrEnum
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

MIN_SECRET_KEY_LENGTH = 32
WEAK_SECRET_KEYS = frozenset({"changeme", "change-me", "secret", "sodate", "development", "test"})


class Environment(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"


class ClockMode(StrEnum):
    SYSTEM = "system"
    MANUAL = "manual"


class LogFormat(StrEnum):
    CONSOLE = "console"
    JSON = "json"


class SettingsError(Exception):
    """The configuration cannot be used; the message says which setting and why."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SODATE_", extra="ignore", frozen=True)

    env: Environment = Environment.DEVELOPMENT
    data_dir: Path = Path("var")
    database_url: str = ""
    secret_key: SecretStr | None = None
    base_url: str = "http://127.0.0.1:8000"
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    worker_port: int = Field(default=8001, ge=0, le=65535)
    timezone: str = "Asia/Tokyo"
    smtp_url: str | None = None
    clock: ClockMode = ClockMode.SYSTEM
    clock_start: str | None = None
    log_level: str = "INFO"
    log_format: LogFormat = LogFormat.CONSOLE
    max_request_bytes: int = Field(default=1_048_576, ge=1024)
    metrics_token: SecretStr | None = None
    session_ttl_hours: int = Field(default=12, ge=1)
    job_batch_size: int = Field(default=100, ge=1, le=10_000)
    job_lease_seconds: float = Field(default=300, gt=0)
    job_max_attempts: int = Field(default=10, ge=1)
    job_backoff_base_seconds: float = Field(default=10, gt=0)
    job_backoff_max_seconds: float = Field(default=3600, gt=0)
    job_retention_days: int = Field(default=14, ge=1)
    job_runner_enabled: bool = True
    job_runner_interval_seconds: float = Field(default=1.0, gt=0)
    event_processor_enabled: bool = True
    event_processor_interval_seconds: float = Field(default=0.2, gt=0)
    event_batch_size: int = Field(default=30_000, ge=1, le=30_000)
    tracking_rate_limit: float = Field(default=10_000, ge=0)
    tracking_burst_seconds: float = Field(default=5, gt=0)
    maintenance_enabled: bool = True
    maintenance_interval_seconds: float = Field(default=3600, gt=0)
    sqlite_checkpoint_interval_seconds: float = Field(default=0.5, gt=0)
    segment_sweep_enabled: bool = True
    segment_sweep_interval_seconds: float = Field(default=60, gt=0)
    score_sweep_enabled: bool = True
    score_sweep_interval_seconds: float = Field(default=60, gt=0)
    lifecycle_sweep_enabled: bool = True
    lifecycle_sweep_interval_seconds: float = Field(default=60, gt=0)
    handoff_enabled: bool = True
    handoff_interval_seconds: float = Field(default=2, gt=0)
    plugins: Annotated[tuple[str, ...], NoDecode] = ()

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("plugins", mode="before")
    @classmethod
    def _split_plugins(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("base_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'sodate.db').as_posix()}"

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")

    @property
    def secure_cookies(self) -> bool:
        return self.base_url.startswith("https://")

    def resolved_secret_key(self) -> str:
        """The secret key to sign with.

        In development a missing key is generated once and kept in the data directory, so
        `make run` needs no configuration; in production a missing or weak key is refused.
        """
        if self.secret_key is not None:
            key = self.secret_key.get_secret_value()
            if self.env is Environment.PRODUCTION and _is_weak(key):
                raise SettingsError(
                    f"SODATE_SECRET_KEY is too weak: use at least {MIN_SECRET_KEY_LENGTH} random "
                    "characters, e.g. from `openssl rand -base64 48`"
                )
            return key
        if self.env is Environment.PRODUCTION:
            raise SettingsError("SODATE_SECRET_KEY is required when SODATE_ENV=production")
        return _load_or_create_key(self.data_dir / "secret_key")


def _is_weak(key: str) -> bool:
    return len(key) < MIN_SECRET_KEY_LENGTH or key.lower() in WEAK_SECRET_KEYS or len(set(key)) < 8


def _load_or_create_key(path: Path) -> str:
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    path.touch(mode=0o600)
    path.write_text(key + "\n", encoding="utf-8")
    return key


def load_settings() -> Settings:
    try:
        return Settings()
    except ValueError as exc:
        raise SettingsError(_describe_validation_error(exc)) from exc


def _describe_validation_error(exc: ValueError) -> str:
    errors = getattr(exc, "errors", None)
    if not callable(errors):
        return str(exc)
    parts = []
    for error in errors():
        field = ".".join(str(p) for p in error.get("loc", ()))
        parts.append(f"SODATE_{field.upper()}: {error.get('msg')}")
    return "invalid settings: " + "; ".join(parts)
