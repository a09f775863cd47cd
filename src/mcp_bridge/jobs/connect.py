"""Open the registry the configuration names: PostgreSQL for a URL, else the SQLite file."""

from __future__ import annotations

from pathlib import Path

from mcp_bridge.config import ConfigError, Settings
from mcp_bridge.jobs.registry import Registry, RegistryUnavailable


def open_registry(url: str | None, path: Path | str, pool_size: int = 10) -> Registry:
    """The PostgreSQL registry when `url` is given, else the SQLite file at `path`."""
    if url:
        from mcp_bridge.jobs.postgres import PostgresRegistry

        return PostgresRegistry(url, pool_size=pool_size)
    from mcp_bridge.jobs.sqlite import SqliteRegistry

    return SqliteRegistry(path)


def registry_of(settings: Settings) -> Registry:
    """The registry the settings name (`JOB_REGISTRY_URL` wins over `JOB_REGISTRY_PATH`)."""
    return open_registry(
        settings.job_registry_url, settings.job_registry_path, settings.job_registry_pool_size
    )


def open_checked(settings: Settings) -> Registry:
    """The registry, proven writable, or one `configuration error: …` line (start-up)."""
    try:
        registry = registry_of(settings)
        registry.check_writable()
    except RegistryUnavailable as error:
        raise ConfigError(f"configuration error: {settings.registry_variable}: {error}") from None
    return registry
