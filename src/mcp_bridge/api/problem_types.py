"""The problem types the API answers with, and their documentation pages.

A problem's `type` is the relative URI `/problems/<slug>`: resolved against the API's address it
is `GET /problems/<slug>`, a small self-contained HTML page (no external assets) saying what the
problem means and what to do about it. `GET /problems` lists them all.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from http import HTTPStatus


@dataclass(frozen=True)
class ProblemType:
    slug: str
    status: int
    meaning: str
    remedy: str

    @property
    def title(self) -> str:
        return HTTPStatus(self.status).phrase


TYPES: dict[str, ProblemType] = {
    t.slug: t
    for t in (
        ProblemType(
            "unauthorized",
            401,
            "No bearer token, a malformed Authorization header, or a token that is expired, "
            "badly signed or lacks `sub` (the WWW-Authenticate header says which).",
            "Send `Authorization: Bearer <HS256 JWT>` signed with the service's secret.",
        ),
        ProblemType(
            "forbidden",
            403,
            "The token is valid but its roles do not allow this: it carries no role of this "
            "service, or it is a viewer's token on an operation that needs operator or admin.",
            "Use a token with the role the operation needs (submit and cancel: operator, admin).",
        ),
        ProblemType(
            "not-found",
            404,
            "No such route.",
            "Check the path against /openapi.json.",
        ),
        ProblemType(
            "method-not-allowed",
            405,
            "The route exists but not with this HTTP method.",
            "Use a method the route documents.",
        ),
        ProblemType(
            "http-error",
            400,
            "Another HTTP-level error (the status code is the problem's `status`).",
            "Read `detail`.",
        ),
        ProblemType(
            "invalid-request",
            400,
            "A query or path parameter is invalid (e.g. `status`, `limit`, `wait`); `errors` "
            "names each one.",
            "Correct the parameters named in `errors[].field`.",
        ),
        ProblemType(
            "malformed-json",
            400,
            "The body is not valid JSON (syntax, encoding, NaN/Infinity, lone surrogates, "
            "numbers out of range, or nesting too deep).",
            "Send a UTF-8 JSON object.",
        ),
        ProblemType(
            "invalid-idempotency-key",
            400,
            "The Idempotency-Key header is empty, longer than 255 characters, or not printable.",
            "Send 1 to 255 printable characters, or no header.",
        ),
        ProblemType(
            "invalid-page-token",
            400,
            "pageToken is not a token this API issued.",
            "Pass back `nextPageToken` from the previous page unchanged.",
        ),
        ProblemType(
            "body-too-large",
            413,
            "The request body exceeds MAX_BODY_BYTES (declared or streamed).",
            "Send a smaller body.",
        ),
        ProblemType(
            "unsupported-media-type",
            415,
            "The body's Content-Type is not application/json.",
            "Send `Content-Type: application/json`.",
        ),
        ProblemType(
            "invalid-job",
            422,
            "The body is JSON but not a job: not an object, unknown fields, `tool` missing or "
            "not a non-empty string, or `arguments` not an object.",
            'Send `{"tool": <name>, "arguments": {...}}`.',
        ),
        ProblemType(
            "unknown-tool",
            422,
            "No tool of that name in the catalog.",
            "Pick a name from GET /v1/tools.",
        ),
        ProblemType(
            "invalid-arguments",
            422,
            "The arguments do not satisfy the tool's inputSchema; `errors` names the field.",
            "Correct the arguments against the tool's inputSchema (GET /v1/tools).",
        ),
        ProblemType(
            "idempotency-key-reused",
            422,
            "This Idempotency-Key was first used with another tool or other arguments; "
            "`existingJobId` is that first job.",
            "Use a new key for a different request, or resend the original body.",
        ),
        ProblemType(
            "job-not-found",
            404,
            "No job with that id that this token may see (another owner's job is not shown).",
            "Check the id; only the owner and admins see a job.",
        ),
        ProblemType(
            "job-finished",
            409,
            "The job already ended and cannot be cancelled; `job` shows it as it ended.",
            "Nothing to cancel: read the job's result.",
        ),
        ProblemType(
            "registry-unavailable",
            503,
            "The job registry cannot be written right now.",
            "Retry after the Retry-After seconds.",
        ),
        ProblemType(
            "internal",
            500,
            "An unexpected error; the server logged it.",
            "Retry; report it with the time and request if it persists.",
        ),
    )
}


def _page(title: str, body: str) -> str:
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title></head><body>\n{body}\n</body></html>\n"
    )


def type_page(problem: ProblemType) -> str:
    """The documentation page of one problem type."""
    return _page(
        f"{problem.slug} — MCP bridge problem type",
        f"<h1>{html.escape(problem.slug)}</h1>\n"
        f"<p>HTTP {problem.status} {html.escape(problem.title)}; "
        "<code>Content-Type: application/problem+json</code> (RFC 9457).</p>\n"
        f"<h2>Meaning</h2><p>{html.escape(problem.meaning)}</p>\n"
        f"<h2>What to do</h2><p>{html.escape(problem.remedy)}</p>\n"
        '<p><a href="/problems">All problem types</a> · <a href="/docs">API docs</a></p>',
    )


def index_page() -> str:
    rows = "\n".join(
        f'<li><a href="/problems/{t.slug}">{t.slug}</a> ({t.status}): {html.escape(t.meaning)}</li>'
        for t in TYPES.values()
    )
    return _page("MCP bridge problem types", f"<h1>Problem types</h1>\n<ul>\n{rows}\n</ul>")
