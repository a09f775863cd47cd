"""`/openapi.json` as the contract, offline API docs, and the problem-type pages.

Routes declare their documented responses with `problem_responses(...)` and `ok(...)`; `install`
builds the document once (bearer scheme, problem+json errors instead of FastAPI's 422
HTTPValidationError, the submission body) and adds `GET /problems[/{slug}]`.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import FastAPI, Path
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse
from pydantic import BaseModel

from mcp_bridge.api import schemas
from mcp_bridge.api.problem_types import TYPES, index_page, type_page
from mcp_bridge.api.problems import PROBLEM_JSON, Problem

BEARER = [{"bearerAuth": []}]
#: `/metrics` needs METRICS_TOKEN as a bearer token only when one is configured.
METRICS_SECURITY: list[dict[str, list[str]]] = [{}, {"metricsToken": []}]
SECURITY_SCHEMES = {
    "bearerAuth": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "HS256 JWT with `sub` and `roles` (viewer, operator, admin).",
    },
    "metricsToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "METRICS_TOKEN, when the service sets one.",
    },
}
_WHY = {
    400: "Invalid request (parameter, header or JSON)",
    401: "Missing or invalid bearer token",
    403: "The token's roles do not allow this",
    404: "Not found",
    409: "Conflict with the job's state",
    413: "Body too large",
    415: "Body is not application/json",
    422: "Well-formed but not an acceptable job",
    503: "Registry unavailable; retry",
}
_HEADERS = {
    401: {"WWW-Authenticate": {"description": "RFC 6750 bearer challenge", "required": True}},
    503: {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}},
}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """Documented error responses: each an application/problem+json Problem."""
    out: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        response: dict[str, Any] = {"model": schemas.Problem, "description": _WHY[status]}
        if status in _HEADERS:
            response["headers"] = {
                name: {"schema": {"type": "string"}, **spec}
                for name, spec in _HEADERS[status].items()
            }
        out[status] = response
    return out


def ok(model: type[BaseModel], description: str, **extra: Any) -> dict[str, Any]:
    return {"model": model, "description": description, **extra}


_PROBLEM_REF = "#/components/schemas/Problem"


def _fix_operation(operation: dict[str, Any]) -> None:
    responses = operation.get("responses", {})
    default_422 = responses.get("422", {}).get("content", {}).get("application/json", {})
    if "HTTPValidationError" in str(default_422.get("schema", {})):
        del responses["422"]  # FastAPI's default; validation errors are 400 problems here
    for response in responses.values():
        content = response.get("content", {})
        problem = [media for media in content.values() if _PROBLEM_REF in str(media)]
        if problem:  # the route's own media type does not apply to its problem documents
            response["content"] = {PROBLEM_JSON: problem[0]}


def build(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI document of `app` as the wire really is."""
    doc = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
    )
    components = doc.setdefault("components", {})
    shapes = components.setdefault("schemas", {})
    ref = "#/components/schemas/{model}"
    shapes["JobSubmission"] = schemas.JobSubmission.model_json_schema(ref_template=ref)
    for name in ("HTTPValidationError", "ValidationError"):
        shapes.pop(name, None)
    components["securitySchemes"] = SECURITY_SCHEMES
    for path in doc.get("paths", {}).values():
        for operation in path.values():
            _fix_operation(operation)
    return doc


def install(app: FastAPI) -> None:
    """Serve the contract at /openapi.json and the problem-type pages."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    @app.get(
        "/problems",
        operation_id="listProblemTypes",
        response_class=HTMLResponse,
        tags=["documentation"],
        summary="Index of the problem types",
        responses={200: {"content": {"text/html": {"schema": {"type": "string"}}}}},
    )
    async def problem_index() -> HTMLResponse:
        return HTMLResponse(index_page())

    @app.get(
        "/problems/{slug}",
        operation_id="getProblemType",
        response_class=HTMLResponse,
        tags=["documentation"],
        summary="What a problem `type` means (the page its URI resolves to)",
        responses={
            200: {"content": {"text/html": {"schema": {"type": "string"}}}},
            **problem_responses(404),
        },
    )
    async def problem_type(
        slug: Annotated[str, Path(description="the problem's slug", examples=list(TYPES))],
    ) -> HTMLResponse:
        problem = TYPES.get(slug)
        if problem is None:
            raise Problem(404, "not-found", f"no problem type {slug}")
        return HTMLResponse(type_page(problem))
