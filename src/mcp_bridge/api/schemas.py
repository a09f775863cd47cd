"""Documented shapes of the API's requests and responses (OpenAPI components).

The routes build their JSON by hand (api/views.py) and read the submission body themselves
(limits, JSON strictness); these models *describe* that wire format for `/openapi.json`, and the
schemathesis check (qualification/test_openapi.py) holds the running API to them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from mcp_bridge.jobs.models import Status
from mcp_bridge.jobs.service import MAX_KEY_LENGTH

IDEMPOTENCY_KEY_PATTERN = (
    r"^[\x20-\x7e\xa1-\xac\xae-\xff]+$"  # printable (str.isprintable), latin-1
)


class JobSubmission(BaseModel):
    """Body of `POST /v1/jobs`."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"tool": "echo", "arguments": {"message": "hello"}}]},
    )
    tool: str = Field(min_length=1, description="a tool name from GET /v1/tools")
    arguments: dict[str, Any] = Field(
        default_factory=dict, description="the tool's arguments (its inputSchema)"
    )


class Job(BaseModel):
    """A job as the API shows it."""

    id: str
    tool: str
    arguments: dict[str, Any]
    status: Status
    attempts: int = Field(ge=0, description="execution attempts started so far")
    result: Any = Field(None, description="the tool's result once succeeded, else null")
    error: str | None = Field(description="why it failed or was cancelled, else null")
    cancelRequested: bool
    owner: str = Field(description="the submitting token's subject")
    idempotencyKey: str | None
    createdAt: datetime
    startedAt: datetime | None
    finishedAt: datetime | None


class JobList(BaseModel):
    """A page of jobs, newest first."""

    items: list[Job]
    nextPageToken: str | None = Field(description="pass as pageToken for the next page; null: none")


class Attempt(BaseModel):
    """One execution attempt of a job."""

    attempt: int = Field(ge=1)
    worker: str
    startedAt: datetime
    finishedAt: datetime | None
    outcome: str | None


class AttemptList(BaseModel):
    items: list[Attempt]


class Tool(BaseModel):
    """A tool of the catalog."""

    name: str
    description: str
    inputSchema: dict[str, Any] = Field(description="JSON Schema of the tool's arguments")


class ToolList(BaseModel):
    items: list[Tool]


class Health(BaseModel):
    status: Literal["ok"]


class ReadinessCheck(BaseModel):
    ok: bool
    detail: str


class Readiness(BaseModel):
    status: Literal["ready", "unready"]
    jobBackend: str
    checks: dict[str, ReadinessCheck]


class FieldError(BaseModel):
    field: str = Field(description="the request part at fault (body field, parameter, header)")
    message: str


class Problem(BaseModel):
    """RFC 9457 problem details; `type` resolves to a page describing the problem."""

    model_config = ConfigDict(extra="allow")
    type: str = Field(
        description="URI reference (relative to the API) of the problem type's documentation",
        json_schema_extra={"format": "uri-reference"},
    )
    title: str
    status: int = Field(ge=400, le=599)
    detail: str
    instance: str = Field(description="the request path")
    errors: list[FieldError] | None = Field(None, description="the fields at fault")
    existingJobId: str | None = Field(None, description="idempotency-key-reused: the key's job")
    job: Job | None = Field(None, description="job-finished: the job as it ended")


IDEMPOTENCY_KEY_PARAMETER: dict[str, Any] = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": (
        "Replays within the registry's lifetime return the first job (200) instead of creating "
        "another; the same key with a different body is refused (422)."
    ),
    "schema": {
        "type": "string",
        "minLength": 1,
        "maxLength": MAX_KEY_LENGTH,
        "pattern": IDEMPOTENCY_KEY_PATTERN,
    },
}
