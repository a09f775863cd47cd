"""The one client of the bridge's HTTP API (`/v1`), sync and async.

Shared by the benchmarking CLI (`mcp_bridge.benchmarking`, async) and the qualification suite's
reference driver (sync). It holds the wire only: paths, headers, field names and status words.
It never imports the bridge, so the suite can use it without importing what it qualifies.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

#: The bridge's job status words; the last three are final.
STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
TERMINAL = frozenset({"succeeded", "failed", "cancelled"})
PROBLEM_JSON = "application/problem+json"

#: Operation name → (method, path); `{id}` is the job id.
ROUTES: dict[str, tuple[str, str]] = {
    "submit": ("POST", "/v1/jobs"),
    "get": ("GET", "/v1/jobs/{id}"),
    "list": ("GET", "/v1/jobs"),
    "cancel": ("POST", "/v1/jobs/{id}/cancel"),
    "attempts": ("GET", "/v1/jobs/{id}/attempts"),
    "tools": ("GET", "/v1/tools"),
    "ready": ("GET", "/readyz"),
    "health": ("GET", "/healthz"),
    "metrics": ("GET", "/metrics"),
    "openapi": ("GET", "/openapi.json"),
    "mcp": ("POST", "/mcp"),
}


@dataclass(frozen=True)
class Request:
    """One request of the API, built once and sent by either client."""

    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    params: dict[str, Any] | None = None
    json: Any = None
    content: bytes | None = None
    timeout: float | None = None

    def kwargs(self) -> dict[str, Any]:
        extra: dict[str, Any] = {"headers": self.headers}
        if self.params is not None:
            extra["params"] = self.params
        if self.content is not None:
            extra["content"] = self.content
        elif self.json is not None:
            extra["json"] = self.json
        if self.timeout is not None:
            extra["timeout"] = self.timeout
        return extra


def bearer(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def request(
    operation: str,
    *,
    job_id: str | None = None,
    token: str | None = None,
    headers: dict[str, str] | None = None,
    **parts: Any,
) -> Request:
    """The request of `operation` (a key of `ROUTES`); `token` None sends no Authorization."""
    method, path = ROUTES[operation]
    return Request(method, path.format(id=job_id), {**bearer(token), **(headers or {})}, **parts)


def submit_request(
    tool: str,
    arguments: dict[str, Any] | None = None,
    *,
    token: str | None,
    idempotency_key: str | None = None,
    timeout: float | None = None,
) -> Request:
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key is not None else {}
    return request(
        "submit",
        token=token,
        headers=headers,
        json={"tool": tool, "arguments": arguments or {}},
        timeout=timeout,
    )


def get_request(
    job_id: str, *, token: str | None, wait: float = 0.0, timeout: float | None = None
) -> Request:
    params = {"wait": wait} if wait else None
    return request("get", job_id=job_id, token=token, params=params, timeout=timeout)


def list_request(
    *,
    token: str | None,
    status: str | None = None,
    limit: int | None = None,
    page_token: str | None = None,
) -> Request:
    params = {
        name: value
        for name, value in (("status", status), ("limit", limit), ("pageToken", page_token))
        if value is not None
    }
    return request("list", token=token, params=params)


class BridgeClient:
    """Synchronous: `send(request(...))` over one `httpx.Client`."""

    def __init__(self, base_url: str, timeout: float | httpx.Timeout, **options: Any) -> None:
        self.base_url = base_url.rstrip("/")
        self.http = httpx.Client(base_url=self.base_url, timeout=timeout, **options)

    def send(self, req: Request) -> httpx.Response:
        return self.http.request(req.method, req.path, **req.kwargs())

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> BridgeClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class AsyncBridgeClient:
    """Asynchronous: `await send(request(...))` over one `httpx.AsyncClient`."""

    def __init__(self, base_url: str, timeout: float | httpx.Timeout, **options: Any) -> None:
        self.base_url = base_url.rstrip("/")
        self.http = httpx.AsyncClient(base_url=self.base_url, timeout=timeout, **options)

    async def send(self, req: Request) -> httpx.Response:
        return await self.http.request(req.method, req.path, **req.kwargs())

    async def aclose(self) -> None:
        await self.http.aclose()

    async def __aenter__(self) -> AsyncBridgeClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
