"""Runtime configuration, read from the environment with pydantic-settings."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from psycopg import ProgrammingError
from psycopg.conninfo import conninfo_to_dict
from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SECRET_MIN_BYTES = 32
BROKER_SCHEMES = {"redis", "rediss", "memory", "amqp", "amqps", "pyamqp"}
RESULT_SCHEMES = BROKER_SCHEMES | {"cache+memory", "rpc", "db+sqlite"}
REGISTRY_SCHEMES = {"postgresql", "postgres"}


class ConfigError(SystemExit):
    """Bad configuration: exits start-up with one line naming the variable."""


class Settings(BaseSettings):
    """Every knob of the bridge; each field is read from the upper-case env var of its name."""

    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    job_backend: Literal["inline", "celery"] = "inline"
    job_registry_path: Path = Path("var/jobs/registry.db")
    job_registry_url: str | None = Field(
        None, description="postgresql://… : the PostgreSQL registry (wins over the path)"
    )
    job_registry_pool_size: int = Field(
        10, ge=1, le=1000, description="PostgreSQL connections per process, at most"
    )

    celery_broker_url: str = "redis://localhost:6379/0"
    celery_result_backend: str = "redis://localhost:6379/1"
    celery_task_always_eager: bool = False
    celery_task_eager_propagates: bool = True
    celery_visibility_timeout: int = Field(
        3600, ge=1, description="seconds before Redis redelivers"
    )
    celery_queue: str = "mcp-bridge-jobs"

    auth_secret: str | None = None
    auth_dev_secret: str | None = None
    metrics_token: str | None = None

    inline_concurrency: int = Field(4, ge=1, le=256)
    job_lease_seconds: float = Field(
        30.0, gt=0, description="a running job's lease; renewed at 1/3"
    )
    job_redispatch_seconds: float = Field(
        600.0, gt=0, description="re-publish a queued job whose message was not taken by then"
    )
    dispatch_interval_seconds: float = Field(1.0, gt=0)
    publish_timeout_seconds: float = Field(2.0, gt=0)
    max_body_bytes: int = Field(1_048_576, ge=1024)
    max_wait_seconds: float = Field(60.0, ge=0)
    mcp_call_wait_seconds: float = Field(
        30.0, ge=0, description="/mcp tools/call: wait this long for the job, else return its id"
    )

    @field_validator("celery_broker_url")
    @classmethod
    def _broker_scheme(cls, value: str) -> str:
        scheme = urlsplit(value).scheme
        if scheme not in BROKER_SCHEMES:
            raise ValueError(f"unsupported scheme {scheme!r} (use one of {sorted(BROKER_SCHEMES)})")
        return value

    @field_validator("job_registry_url")
    @classmethod
    def _registry_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        parts = urlsplit(value)
        if parts.scheme not in REGISTRY_SCHEMES:
            raise ValueError(
                f"unsupported scheme {parts.scheme!r} (use postgresql://user@host:port/database)"
            )
        try:
            conninfo_to_dict(value)
            parts.port  # noqa: B018 - raises ValueError on a port that is not a number
        except (ProgrammingError, ValueError) as error:
            raise ValueError(
                f"not a valid PostgreSQL URL: {' '.join(str(error).split())}"
            ) from None
        return value

    @field_validator("celery_result_backend")
    @classmethod
    def _result_scheme(cls, value: str) -> str:
        scheme = urlsplit(value).scheme or value
        if scheme not in RESULT_SCHEMES:
            raise ValueError(f"unsupported scheme {scheme!r}")
        return value

    @model_validator(mode="after")
    def _secrets(self) -> Settings:
        if self.environment == "production":
            if self.auth_dev_secret:
                raise ValueError("AUTH_DEV_SECRET is refused when ENVIRONMENT=production")
            if not self.auth_secret:
                raise ValueError("AUTH_SECRET must be set when ENVIRONMENT=production")
            if len(self.auth_secret.encode()) < SECRET_MIN_BYTES:
                raise ValueError(f"AUTH_SECRET must be at least {SECRET_MIN_BYTES} bytes")
        if not (self.auth_secret or self.auth_dev_secret):
            raise ValueError("AUTH_SECRET (or AUTH_DEV_SECRET outside production) must be set")
        return self

    @property
    def signing_secret(self) -> str:
        """The HS256 secret tokens are verified with."""
        return self.auth_secret or self.auth_dev_secret or ""

    @property
    def registry_variable(self) -> str:
        """The variable that chose the registry, for error lines."""
        return "JOB_REGISTRY_URL" if self.job_registry_url else "JOB_REGISTRY_PATH"

    @property
    def lease_renew_seconds(self) -> float:
        return self.job_lease_seconds / 3


def _describe(error: ValidationError) -> str:
    first = error.errors()[0]
    loc = [str(part) for part in first.get("loc", ()) if part != "__root__"]
    message = first.get("msg", "invalid").removeprefix("Value error, ")
    if loc:
        return f"configuration error: {loc[0].upper()}: {message}"
    return f"configuration error: {message}"


def load_settings(**overrides: object) -> Settings:
    """Read settings; bad configuration raises ConfigError with one clear line."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as error:
        raise ConfigError(_describe(error)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Process-wide settings (workers and the API read the same environment)."""
    return load_settings()
