"""Bearer-token authentication as FastAPI dependencies."""

from __future__ import annotations

from fastapi import Request

from mcp_bridge.api.problems import Problem
from mcp_bridge.security.tokens import AuthError, Principal, verify

CHALLENGE = 'Bearer realm="mcp-bridge"'


def _unauthorized(detail: str, error: str = "invalid_token") -> Problem:
    # RFC 6750: error_description is printable ASCII without quotes or backslashes.
    safe = "".join(c for c in detail.replace('"', "'") if " " <= c <= "~" and c != "\\")
    return Problem(
        401,
        "unauthorized",
        detail,
        headers={"WWW-Authenticate": f'{CHALLENGE}, error="{error}", error_description="{safe}"'},
    )


def principal(request: Request) -> Principal:
    """The authenticated caller; 401 with a WWW-Authenticate challenge otherwise."""
    header = request.headers.get("authorization")
    if not header:
        raise Problem(
            401, "unauthorized", "bearer token required", headers={"WWW-Authenticate": CHALLENGE}
        )
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized("malformed Authorization header", "invalid_request")
    try:
        who = verify(token.strip(), request.app.state.settings.signing_secret)
    except AuthError as error:
        raise _unauthorized(str(error)) from None
    if not who.roles:
        raise Problem(403, "forbidden", "the token carries no role of this service")
    return who


def submitter(request: Request) -> Principal:
    """A caller allowed to submit and cancel jobs (operator or admin)."""
    who = principal(request)
    if not who.may_submit:
        raise Problem(403, "forbidden", "role operator or admin required")
    return who
