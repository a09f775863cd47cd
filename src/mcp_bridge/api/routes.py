"""HTTP routes: jobs, tools, health, readiness and metrics."""

from __future__ import annotations

import json
import math
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, PlainTextResponse

from mcp_bridge.api import schemas
from mcp_bridge.api.auth import principal, submitter
from mcp_bridge.api.openapi import BEARER, METRICS_SECURITY, ok, problem_responses
from mcp_bridge.api.problems import Problem, field_error
from mcp_bridge.api.views import attempt_view, job_view, page_token, parse_page_token
from mcp_bridge.jobs.models import Job, Status
from mcp_bridge.jobs.service import MAX_KEY_LENGTH, IdempotencyConflict, JobService, NotCancellable
from mcp_bridge.security.tokens import Principal
from mcp_bridge.tools.catalog import ArgumentError, UnknownTool

router = APIRouter()
JOB_LINKS = {
    "GetJob": {"operationId": "getJob", "parameters": {"job_id": "$response.body#/id"}},
    "CancelJob": {"operationId": "cancelJob", "parameters": {"job_id": "$response.body#/id"}},
    "ListJobAttempts": {
        "operationId": "listJobAttempts",
        "parameters": {"job_id": "$response.body#/id"},
    },
}
LOCATION = {"Location": {"description": "the job's URL", "schema": {"type": "string"}}}
SUBMISSION_BODY = {
    "required": True,
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/JobSubmission"}}},
}
Caller = Annotated[Principal, Depends(principal)]
Submitter = Annotated[Principal, Depends(submitter)]


def _service(request: Request) -> JobService:
    return request.app.state.service


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:20]} is out of range")
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


async def _json_body(request: Request) -> Any:
    """The request's JSON body, refusing oversized (413) and malformed (400) ones."""
    limit = request.app.state.settings.max_body_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise Problem(413, "body-too-large", f"request body exceeds {limit} bytes")
    content_type = request.headers.get("content-type", "")
    if content_type.split(";")[0].strip().lower() not in ("application/json", ""):
        raise Problem(415, "unsupported-media-type", "send the body as application/json")
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > limit:
            raise Problem(413, "body-too-large", f"request body exceeds {limit} bytes")
    try:
        parsed = json.loads(body, parse_float=_finite, parse_constant=_no_constant)
        # Lone surrogates parse but cannot be stored or echoed as UTF-8: refuse them here.
        json.dumps(parsed, ensure_ascii=False).encode()
    except (ValueError, RecursionError) as error:  # bad JSON, huge integers, surrogates
        message = "nested too deeply" if isinstance(error, RecursionError) else str(error)
        raise Problem(
            400,
            "malformed-json",
            f"body is not valid JSON: {message}",
            errors=[field_error("body", message)],
        ) from None
    return parsed


def _submission(body: Any) -> tuple[str, dict[str, Any]]:
    if not isinstance(body, dict):
        raise Problem(
            422,
            "invalid-job",
            "body must be a JSON object",
            errors=[field_error("body", "expected an object")],
        )
    unknown = sorted(set(body) - {"tool", "arguments"})
    if unknown:
        raise Problem(
            422,
            "invalid-job",
            f"unknown field(s): {', '.join(unknown)}",
            errors=[field_error(name, "unknown field") for name in unknown],
        )
    tool, arguments = body.get("tool"), body.get("arguments", {})
    if not isinstance(tool, str) or not tool:
        raise Problem(
            422,
            "invalid-job",
            "tool must be a non-empty string",
            errors=[field_error("tool", "required string")],
        )
    if not isinstance(arguments, dict):
        raise Problem(
            422,
            "invalid-job",
            "arguments must be a JSON object",
            errors=[field_error("arguments", "expected an object")],
        )
    return tool, arguments


def _owned(request: Request, who: Principal, job_id: str) -> Job:
    job = _service(request).get(job_id)
    if job is None or not who.may_read(job.owner):
        raise Problem(404, "job-not-found", f"no job {job_id}")
    return job


@router.post(
    "/v1/jobs",
    status_code=202,
    operation_id="submitJob",
    tags=["jobs"],
    summary="Submit a tool call as a job (operator, admin)",
    response_model=None,
    responses={
        202: ok(schemas.Job, "Job created", headers=LOCATION, links=JOB_LINKS),
        200: ok(
            schemas.Job,
            "Idempotent replay: the key's existing job",
            headers=LOCATION,
            links=JOB_LINKS,
        ),
        **problem_responses(400, 401, 403, 413, 415, 422, 503),
    },
    openapi_extra={
        "security": BEARER,
        "parameters": [schemas.IDEMPOTENCY_KEY_PARAMETER],
        "requestBody": SUBMISSION_BODY,
    },
)
async def submit_job(request: Request, who: Submitter) -> JSONResponse:
    key = request.headers.get("idempotency-key")
    if key is not None and not (0 < len(key) <= MAX_KEY_LENGTH and key.isprintable()):
        raise Problem(
            400,
            "invalid-idempotency-key",
            f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable characters",
            errors=[field_error("Idempotency-Key", "1 to 255 printable characters")],
        )
    tool, arguments = _submission(await _json_body(request))
    try:
        outcome = await run_in_threadpool(
            _service(request).submit, who.subject, tool, arguments, key
        )
    except UnknownTool:
        raise Problem(
            422,
            "unknown-tool",
            f"no tool named {tool!r}",
            errors=[field_error("tool", "unknown tool")],
        ) from None
    except ArgumentError as error:
        raise Problem(
            422, "invalid-arguments", str(error), errors=[field_error(error.field, error.message)]
        ) from None
    except IdempotencyConflict as conflict:
        raise Problem(
            422,
            "idempotency-key-reused",
            "this Idempotency-Key was used with a different request body",
            errors=[field_error("Idempotency-Key", "reused with another body")],
            existingJobId=conflict.existing.id,
        ) from None
    job = outcome.job
    return JSONResponse(
        job_view(job),
        status_code=202 if outcome.created else 200,
        headers={"Location": f"/v1/jobs/{job.id}"},
    )


@router.get(
    "/v1/jobs/{job_id}",
    operation_id="getJob",
    tags=["jobs"],
    summary="Read a job, optionally long-polling until it ends",
    response_model=None,
    responses={
        200: ok(schemas.Job, "The job", links={"CancelJob": JOB_LINKS["CancelJob"]}),
        **problem_responses(400, 401, 403, 404, 503),
    },
    openapi_extra={"security": BEARER},
)
async def get_job(
    request: Request,
    job_id: str,
    who: Caller,
    wait: Annotated[
        float,
        Query(ge=0, description="long-poll seconds until terminal (capped at MAX_WAIT_SECONDS)"),
    ] = 0,
) -> dict[str, Any]:
    seconds = min(wait, request.app.state.settings.max_wait_seconds)
    job = await request.app.state.watcher.until_terminal(
        job_id, lambda: _owned(request, who, job_id), seconds
    )
    return job_view(job)


@router.get(
    "/v1/jobs/{job_id}/attempts",
    operation_id="listJobAttempts",
    tags=["jobs"],
    summary="A job's execution attempts",
    response_model=None,
    responses={
        200: ok(schemas.AttemptList, "The attempts"),
        **problem_responses(401, 403, 404, 503),
    },
    openapi_extra={"security": BEARER},
)
async def get_attempts(request: Request, job_id: str, who: Caller) -> dict[str, Any]:
    job = await run_in_threadpool(_owned, request, who, job_id)
    attempts = await run_in_threadpool(_service(request).registry.attempts, job.id)
    return {"items": [attempt_view(a) for a in attempts]}


@router.get(
    "/v1/jobs",
    operation_id="listJobs",
    tags=["jobs"],
    summary="List the caller's jobs (an admin's: all), newest first",
    response_model=None,
    responses={200: ok(schemas.JobList, "A page of jobs"), **problem_responses(400, 401, 403, 503)},
    openapi_extra={"security": BEARER},
)
async def list_jobs(
    request: Request,
    who: Caller,
    status: Status | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    page_token_in: Annotated[
        str | None, Query(alias="pageToken", description="nextPageToken of the previous page")
    ] = None,
) -> dict[str, Any]:
    try:
        after = parse_page_token(page_token_in) if page_token_in else None
    except ValueError as error:
        raise Problem(
            400, "invalid-page-token", str(error), errors=[field_error("pageToken", str(error))]
        ) from None
    owner = None if who.is_admin else who.subject
    jobs = await run_in_threadpool(_service(request).registry.list, owner, status, limit + 1, after)
    more = len(jobs) > limit
    jobs = jobs[:limit]
    return {
        "items": [job_view(job) for job in jobs],
        "nextPageToken": page_token(jobs[-1]) if more else None,
    }


@router.post(
    "/v1/jobs/{job_id}/cancel",
    operation_id="cancelJob",
    tags=["jobs"],
    summary="Cancel a queued or running job (operator, admin)",
    response_model=None,
    responses={
        200: ok(schemas.Job, "The job, cancelled or with cancelRequested set"),
        **problem_responses(401, 403, 404, 409, 503),
    },
    openapi_extra={"security": BEARER},
)
async def cancel_job(request: Request, job_id: str, who: Submitter) -> dict[str, Any]:
    job = await run_in_threadpool(_owned, request, who, job_id)
    try:
        after = await run_in_threadpool(_service(request).cancel, job.id)
    except NotCancellable as done:
        raise Problem(
            409,
            "job-finished",
            f"job {job_id} is already {done.job.status.value}",
            job=job_view(done.job),
        ) from None
    return job_view(after or job)


@router.get(
    "/v1/tools",
    operation_id="listTools",
    tags=["tools"],
    summary="The tool catalog with each tool's input schema",
    response_model=None,
    responses={200: ok(schemas.ToolList, "The tools"), **problem_responses(401, 403)},
    openapi_extra={"security": BEARER},
)
async def list_tools(request: Request, who: Caller) -> dict[str, Any]:
    return {"items": [tool.describe() for tool in request.app.state.catalog]}


@router.get(
    "/healthz",
    operation_id="getHealth",
    tags=["operations"],
    summary="Liveness",
    response_model=None,
    responses={200: ok(schemas.Health, "The process serves HTTP")},
)
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    operation_id="getReadiness",
    tags=["operations"],
    summary="Readiness: registry writable and broker reachable",
    response_model=None,
    responses={200: ok(schemas.Readiness, "Ready"), 503: ok(schemas.Readiness, "Not ready")},
)
async def readyz(request: Request) -> JSONResponse:
    state = request.app.state

    def registry_check() -> tuple[bool, str]:
        try:
            state.registry.check_writable()
        except Exception as error:
            return False, f"registry not writable: {error}"
        return True, f"writable: {state.registry.location}"

    checks = {}
    for name, check in (("registry", registry_check), ("broker", state.backend.check)):
        ok, detail = await run_in_threadpool(check)
        checks[name] = {"ok": ok, "detail": detail}
    ready = all(c["ok"] for c in checks.values())
    return JSONResponse(
        {
            "status": "ready" if ready else "unready",
            "jobBackend": state.settings.job_backend,
            "checks": checks,
        },
        status_code=200 if ready else 503,
    )


@router.get(
    "/metrics",
    operation_id="getMetrics",
    tags=["operations"],
    summary="Prometheus metrics (text exposition format)",
    response_class=PlainTextResponse,
    responses={
        200: {
            "description": "Prometheus text format 0.0.4",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        },
        **problem_responses(401),
    },
    openapi_extra={"security": METRICS_SECURITY},
)
async def metrics(request: Request) -> Response:
    token = request.app.state.settings.metrics_token
    if token and request.headers.get("authorization") != f"Bearer {token}":
        raise Problem(
            401,
            "unauthorized",
            "metrics scrape token required",
            headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
        )
    body = await run_in_threadpool(request.app.state.metrics.render)
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")
