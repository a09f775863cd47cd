"""Application factory: `uvicorn mcp_bridge.app:create_app --factory` (wiring only)."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi_offline import FastAPIOffline

from mcp_bridge import __version__
from mcp_bridge.api import mcp_endpoint, openapi, problems
from mcp_bridge.api.routes import router
from mcp_bridge.api.watch import FinishWatcher
from mcp_bridge.backends import build_backend
from mcp_bridge.config import Settings, get_settings
from mcp_bridge.jobs.connect import open_checked
from mcp_bridge.jobs.dispatcher import Dispatcher
from mcp_bridge.jobs.service import JobService
from mcp_bridge.metrics import Metrics
from mcp_bridge.tools.default import default_catalog

API_DESCRIPTION = (
    "MCP tool calls as durable asynchronous jobs. Every error is RFC 9457 "
    "`application/problem+json`; its `type` resolves to a page under `/problems/`."
)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    registry = open_checked(settings)
    catalog = default_catalog()
    backend = build_backend(settings, registry, catalog)
    metrics = Metrics(registry)
    service = JobService(registry, backend, catalog, metrics.job_submitted)
    dispatcher = Dispatcher(
        registry,
        service,
        interval=settings.dispatch_interval_seconds,
        redispatch_after=settings.job_redispatch_seconds,
        grace=2 * settings.publish_timeout_seconds,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        backend.start()
        dispatcher.start()
        app.state.watcher = FinishWatcher(registry)
        try:
            async with app.state.mcp.running():
                yield
        finally:
            await app.state.watcher.close()
            dispatcher.stop()
            backend.stop()
            registry.close()

    # Swagger UI (/docs) and ReDoc (/redoc) from assets in the fastapi-offline wheel: no CDN.
    app = FastAPIOffline(
        title="MCP bridge",
        version=__version__,
        description=API_DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.registry = registry
    app.state.catalog = catalog
    app.state.backend = backend
    app.state.metrics = metrics
    app.state.service = service
    app.state.dispatcher = dispatcher
    problems.install(app)
    app.include_router(router)
    openapi.install(app)
    app.state.mcp = mcp_endpoint.mount(app)

    @app.middleware("http")
    async def observe(request: Request, call_next):
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        metrics.http.labels(
            request.method, getattr(route, "path", "unmatched"), str(response.status_code)
        ).observe(time.perf_counter() - started)
        return response

    return app
