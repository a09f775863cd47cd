"""The bridge as an MCP server: the catalog at `/mcp` (streamable HTTP, stateless, JSON responses).

Same bearer tokens and roles as the REST API. `tools/list` lists the catalog; `tools/call` submits
a job (an operator's or admin's) and answers with its result when it ends within
`MCP_CALL_WAIT_SECONDS` (a call may ask for less or more, up to `MAX_WAIT_SECONDS`, with
`_meta["mcp-bridge/waitSeconds"]`), otherwise with the job id to poll at `GET /v1/jobs/{id}`.
`_meta["mcp-bridge/idempotencyKey"]` works like the `Idempotency-Key` header.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from mcp.server import Server
from mcp.server.context import ServerRequestContext
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.shared.exceptions import MCPError
from mcp_types import (
    INVALID_PARAMS,
    INVALID_REQUEST,
    CallToolRequestParams,
    CallToolResult,
    ListToolsResult,
    PaginatedRequestParams,
    TextContent,
)
from mcp_types import Tool as McpTool
from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from mcp_bridge import __version__
from mcp_bridge.api.auth import principal
from mcp_bridge.jobs.models import Job, Status
from mcp_bridge.jobs.service import MAX_KEY_LENGTH, IdempotencyConflict
from mcp_bridge.security.tokens import Principal
from mcp_bridge.tools.catalog import ArgumentError, UnknownTool

PATH = "/mcp"
PRINCIPAL = "mcp_bridge.principal"
WAIT_META = "mcp-bridge/waitSeconds"
KEY_META = "mcp-bridge/idempotencyKey"
JOB_META = "mcp-bridge/jobId"


class McpEndpoint:
    """The ASGI app behind `/mcp`: authenticate, then hand over to the SDK's session manager."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.server: Server[Any] = Server(
            "mcp-bridge",
            version=__version__,
            on_list_tools=self._list_tools,
            on_call_tool=self._call_tool,
            get_tool_input_schema=self._input_schema,
        )
        self._manager: StreamableHTTPSessionManager | None = None

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Run a fresh session manager for the app's lifespan (a manager runs only once)."""
        manager = StreamableHTTPSessionManager(self.server, stateless=True, json_response=True)
        async with manager.run():
            self._manager = manager
            try:
                yield
            finally:
                self._manager = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Problem (401/403) propagates to the app's handlers like any route's.
        scope[PRINCIPAL] = principal(Request(scope, receive))
        if self._manager is None:
            raise RuntimeError("the /mcp session manager is not running")
        await self._manager.handle_request(scope, receive, send)

    # -- handlers ----------------------------------------------------------------------------

    def _input_schema(self, name: str) -> Mapping[str, Any] | None:
        """Runs on the event loop: a plain lookup, never the catalog's late listing."""
        tool = next((tool for tool in self.app.state.catalog if tool.name == name), None)
        return None if tool is None else tool.input_schema

    async def _list_tools(
        self, ctx: ServerRequestContext[Any, Any], params: PaginatedRequestParams | None
    ) -> ListToolsResult:
        _caller(ctx)
        tools = [
            McpTool(name=tool.name, description=tool.description, input_schema=tool.input_schema)
            for tool in self.app.state.catalog
        ]
        return ListToolsResult(tools=tools)

    async def _call_tool(
        self, ctx: ServerRequestContext[Any, Any], params: CallToolRequestParams
    ) -> CallToolResult:
        who = _caller(ctx)
        if not who.may_submit:
            return _error("forbidden: role operator or admin required to call tools")
        meta: Mapping[str, Any] = params.meta or {}
        key = meta.get(KEY_META)
        if key is not None and not (
            isinstance(key, str) and 0 < len(key) <= MAX_KEY_LENGTH and key.isprintable()
        ):
            raise MCPError(INVALID_PARAMS, f"{KEY_META} must be 1 to {MAX_KEY_LENGTH} characters")
        settings = self.app.state.settings
        wait = meta.get(WAIT_META, settings.mcp_call_wait_seconds)
        if not isinstance(wait, int | float) or wait < 0:
            raise MCPError(INVALID_PARAMS, f"{WAIT_META} must be a number of seconds")
        service = self.app.state.service
        try:
            outcome = await run_in_threadpool(
                service.submit, who.subject, params.name, dict(params.arguments or {}), key
            )
        except UnknownTool:
            raise MCPError(INVALID_PARAMS, f"no tool named {params.name!r}") from None
        except ArgumentError as error:
            return _error(f"invalid arguments: {error}")
        except IdempotencyConflict as conflict:
            return _error(
                f"{KEY_META} was used with another tool or arguments (job {conflict.existing.id})"
            )
        job = await self._wait(outcome.job.id, min(float(wait), settings.max_wait_seconds))
        return _job_result(job)

    async def _wait(self, job_id: str, seconds: float) -> Job:
        """Long-poll the registry like `GET /v1/jobs/{id}?wait=` does."""
        service = self.app.state.service
        job = await self.app.state.watcher.until_terminal(
            job_id, lambda: service.get(job_id), seconds
        )
        if job is None:
            raise MCPError(INVALID_REQUEST, f"job {job_id} vanished from the registry")
        return job


def _caller(ctx: ServerRequestContext[Any, Any]) -> Principal:
    request = ctx.request
    who = request.scope.get(PRINCIPAL) if isinstance(request, Request) else None
    if not isinstance(who, Principal):
        raise MCPError(INVALID_REQUEST, "unauthenticated request")
    return who


def _error(text: str, **meta: Any) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=text)], is_error=True, _meta=meta)


def _job_result(job: Job) -> CallToolResult:
    meta = {JOB_META: job.id}
    if job.status == Status.SUCCEEDED:
        structured = job.result if isinstance(job.result, dict) else {"result": job.result}
        text = json.dumps(job.result, ensure_ascii=False)
        return CallToolResult(
            content=[TextContent(type="text", text=text)],
            structured_content=structured,
            _meta=meta,
        )
    if job.status.terminal:
        return _error(f"job {job.id} {job.status.value}: {job.error or 'no detail'}", **meta)
    pending = {"jobId": job.id, "status": job.status.value, "poll": f"/v1/jobs/{job.id}"}
    text = (
        f"job {job.id} is still {job.status.value}; poll GET /v1/jobs/{job.id}?wait=SECONDS "
        f"for its result"
    )
    return CallToolResult(
        content=[TextContent(type="text", text=text)], structured_content=pending, _meta=meta
    )


def mount(app: FastAPI) -> McpEndpoint:
    """Add `/mcp` to the app; run `endpoint.running()` inside the app's lifespan."""
    endpoint = McpEndpoint(app)
    app.add_route(PATH, endpoint, include_in_schema=False)
    return endpoint
