"""Where a run's requests go: the bridge in-process over ASGI, or a running API over HTTP.

Either way the run talks to the API only through `mcp_bridge_client` (the one wire client);
`preflight` checks readiness and the token before anything is measured.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from mcp_bridge.benchmarking.artefact import redact_url
from mcp_bridge.benchmarking.bridge_settings import (
    config_block,
    env_has,
    in_process_settings,
    load_settings_or_fail,
    local_settings,
    quiet_logs,
)
from mcp_bridge.benchmarking.errors import BenchmarkError
from mcp_bridge.benchmarking.options import BenchmarkOptions
from mcp_bridge_client import ROUTES, AsyncBridgeClient, Request, request

ASGI_BASE_URL = "http://mcp-bridge.asgi"
BENCH_SUBJECT = "bench"


@dataclass
class Target:
    """Where requests go (a client and the token to send), and what the run is measuring."""

    client: AsyncBridgeClient
    token: str
    config: dict[str, Any]
    base_url: str
    parameters: dict[str, Any]


@asynccontextmanager
async def _asgi_target(options: BenchmarkOptions) -> AsyncIterator[Target]:
    from mcp_bridge.app import create_app
    from mcp_bridge.benchmarking.asgi import Lifespan
    from mcp_bridge.benchmarking.inline_worker import InlineWorker
    from mcp_bridge.config import ConfigError
    from mcp_bridge.security.tokens import mint

    with (
        tempfile.TemporaryDirectory(prefix="mcp-bridge-bench-") as tmp,
        quiet_logs(options.verbose),
    ):
        settings = in_process_settings(options, None)
        # A throw-away registry, unless the user named one or external workers must share it.
        own_registry = not env_has("JOB_REGISTRY_PATH") and (
            options.celery_inline_worker or settings.job_backend == "inline"
        )
        if own_registry:
            settings = in_process_settings(options, Path(tmp))
        try:
            app = create_app(settings)
        except ConfigError as error:
            raise BenchmarkError(str(error)) from None
        token = options.token or mint(BENCH_SUBJECT, ["operator"], settings.signing_secret)
        location = settings.job_registry_url or str(settings.job_registry_path)
        parameters: dict[str, Any] = {
            "registry": "temporary" if own_registry else redact_url(location),
            "registryKind": registry_kind(location),
        }
        if settings.job_backend == "inline":
            parameters["inlineBackendConcurrency"] = settings.inline_concurrency
        async with Lifespan(app):
            worker = None
            if options.celery_inline_worker:
                parameters["celeryPollingInterval"] = options.celery_polling_interval
                worker = InlineWorker(
                    app.state.backend.app,
                    options.celery_inline_worker_concurrency,
                    polling_interval=options.celery_polling_interval,
                    loglevel="INFO" if options.verbose else "WARNING",
                )
                await asyncio.to_thread(worker.start)
            try:
                async with AsyncBridgeClient(
                    ASGI_BASE_URL,
                    options.request_timeout,
                    transport=httpx.ASGITransport(app=app),
                ) as client:
                    yield Target(
                        client,
                        token,
                        config_block(
                            settings.job_backend,
                            settings,
                            options.celery_inline_worker,
                            options.celery_inline_worker_concurrency,
                        ),
                        ASGI_BASE_URL,
                        parameters,
                    )
            finally:
                if worker is not None:
                    await asyncio.to_thread(worker.stop)


@asynccontextmanager
async def _http_target(options: BenchmarkOptions) -> AsyncIterator[Target]:
    assert options.base_url is not None
    base_url = options.base_url.rstrip("/")
    limits = httpx.Limits(
        max_connections=max(options.concurrency, 1) + 2,
        max_keepalive_connections=max(options.concurrency, 1) + 2,
    )
    with quiet_logs(options.verbose):
        async with AsyncBridgeClient(
            base_url, httpx.Timeout(options.request_timeout, connect=5.0), limits=limits
        ) as client:
            readiness = await _readiness(client, base_url, None)  # reachable? (no token yet)
            server_backend = readiness.get("jobBackend")
            if server_backend not in ("inline", "celery"):
                raise BenchmarkError(
                    f"the API at {base_url} did not name its job backend on {ROUTES['ready'][1]}"
                )
            if options.job_backend is not None and options.job_backend != server_backend:
                raise BenchmarkError(
                    f"--job-backend {options.job_backend}, but the API at {base_url} runs the "
                    f"{server_backend} backend"
                )
            token = options.token
            if token is None:
                if not (env_has("AUTH_SECRET") or env_has("AUTH_DEV_SECRET")):
                    raise BenchmarkError(
                        "--transport http needs --token (or AUTH_SECRET/AUTH_DEV_SECRET to "
                        "mint one)"
                    )
                from mcp_bridge.security.tokens import mint

                token = mint(BENCH_SUBJECT, ["operator"], load_settings_or_fail().signing_secret)
            yield Target(
                client,
                token,
                config_block(
                    server_backend,
                    local_settings(),
                    False,
                    options.celery_inline_worker_concurrency,
                ),
                base_url,
                {"celerySettingsFrom": "local environment", **served_registry(readiness)},
            )


def open_target(options: BenchmarkOptions) -> AbstractAsyncContextManager[Target]:
    return _asgi_target(options) if options.transport == "asgi" else _http_target(options)


# -- answers and failures, in one line ---------------------------------------------------------


def describe(req: Request) -> str:
    """`METHOD /path` of a request, for messages."""
    return f"{req.method} {req.path}"


def problem(response: httpx.Response) -> str:
    """An error answer in one line: status and the problem's detail (or the body's first line)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        text = body.get("detail") or body.get("title")
        if text:
            return f"{response.status_code} {text}"
    snippet = response.text.strip().splitlines()[0][:200] if response.text.strip() else ""
    return f"{response.status_code} {response.reason_phrase}" + (f": {snippet}" if snippet else "")


def _where(base_url: str) -> str:
    return "the in-process API" if base_url == ASGI_BASE_URL else f"the API at {base_url}"


def _reason(error: BaseException) -> str:
    """The most specific line in the exception chain (e.g. "Connection refused")."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, OSError) and (seen.errno or seen.strerror):
            if isinstance(seen.errno, int) and seen.errno > 0:  # not getaddrinfo's negatives
                return os.strerror(seen.errno)
            return str(seen.strerror)
        seen = seen.__cause__ or seen.__context__
    return str(error) or type(error).__name__


def _unreachable(base_url: str, error: httpx.HTTPError) -> BenchmarkError:
    return BenchmarkError(f"cannot reach {_where(base_url)}: {_reason(error)}")


# -- readiness and preflight -------------------------------------------------------------------


async def _readiness(client: AsyncBridgeClient, base_url: str, token: str | None) -> dict[str, Any]:
    ready = request("ready", token=token)
    try:
        response = await client.send(ready)
    except httpx.HTTPError as error:
        raise _unreachable(base_url, error) from None
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise BenchmarkError(
            f"{ready.method} {base_url}{ready.path} answered {problem(response)}: not the bridge?"
        )
    if response.status_code != 200:
        failing = [
            f"{name}: {check.get('detail')}"
            for name, check in (body.get("checks") or {}).items()
            if isinstance(check, dict) and not check.get("ok")
        ]
        raise BenchmarkError(
            f"{_where(base_url)} is not ready ({'; '.join(failing) or response.status_code})"
        )
    return body


def registry_kind(location: str) -> str:
    """`postgresql` for a database URL, else `sqlite` (a file path)."""
    return "postgresql" if location.startswith(("postgresql://", "postgres://")) else "sqlite"


def served_registry(readiness: dict[str, Any]) -> dict[str, Any]:
    """The registry an API reports as ready (`writable: <location>`), URL redacted."""
    detail = ((readiness.get("checks") or {}).get("registry") or {}).get("detail")
    if not isinstance(detail, str) or not detail.startswith("writable: "):
        return {"registryKind": "unknown"}
    location = detail.removeprefix("writable: ")
    return {"registry": redact_url(location), "registryKind": registry_kind(location)}


async def preflight(target: Target) -> set[str]:
    """Readiness and token, before anything is measured; returns the names of the API's tools."""
    await _readiness(target.client, target.base_url, target.token)
    tools = request("tools", token=target.token)
    try:
        response = await target.client.send(tools)
    except httpx.HTTPError as error:
        raise _unreachable(target.base_url, error) from None
    if response.status_code in (401, 403):
        raise BenchmarkError(f"the API refused the token: {problem(response)}")
    if response.status_code != 200:
        raise BenchmarkError(f"{describe(tools)} answered {problem(response)}")
    return {tool.get("name") for tool in response.json().get("items", [])}
