"""A bridge with another contract: the reference bridge behind a translating HTTP proxy.

It plays "another implementation of the same GA checklist" for the suite's driver layer
(`driver.py` beside it). Its API is deliberately unlike ours:

- RPC-style `POST` endpoints: /open_session, /submit_job, /job_status, /cancel_job, /list_tools;
  `GET /health/ready`; `GET /admin/metrics` (admin role only). No job listing, no attempts.
- Other field names (`job_ref`, `tool_name`, `params`, `state` in upper case, `tries`, …), the
  idempotency key as the body field `dedupe_key`.
- Its own error envelope: `{"ok": false, "error": {"code", "message", "summary", "fields"}}`.
- A session to open (`POST /open_session`) before the first submit: `X-Session` on each submit.

    python tests/targets/rpc_proxy/proxy.py --upstream URL --port PORT --secret SECRET \
        [--metrics-token TOKEN]
"""

from __future__ import annotations

import argparse
import json
import secrets
from typing import Any

import httpx
import jwt
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

FIELDS = {  # ours → theirs
    "id": "job_ref",
    "tool": "tool_name",
    "arguments": "params",
    "status": "state",
    "attempts": "tries",
    "result": "output",
    "error": "failure",
    "cancelRequested": "cancel_pending",
    "owner": "principal",
    "idempotencyKey": "dedupe_key",
    "createdAt": "created",
    "startedAt": "started",
    "finishedAt": "finished",
}
ERROR_FIELDS = {"tool": "tool_name", "arguments": "params", "Idempotency-Key": "dedupe_key",
                "wait": "wait_seconds", "id": "job_ref"}  # fmt: skip
PASSED_HEADERS = ("www-authenticate", "retry-after")


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def job_out(job: dict[str, Any]) -> dict[str, Any]:
    out = {FIELDS.get(name, name): value for name, value in job.items()}
    out["state"] = str(out.get("state", "")).upper()
    return out


def error(status: int, code: str, message: str, fields: list[str] | None = None) -> JSONResponse:
    body = {"ok": False, "error": {"code": code, "message": message, "summary": code.title(),
                                   "fields": fields or []}}  # fmt: skip
    return JSONResponse(body, status_code=status)


def translated(upstream: httpx.Response, ok: Any) -> Response:
    """Our answer in their shape: `ok(body)` for a success, the envelope for an error."""
    headers = {h: upstream.headers[h] for h in PASSED_HEADERS if h in upstream.headers}
    try:
        body = upstream.json()
    except ValueError:
        body = None
    if upstream.status_code >= 400:
        body = body if isinstance(body, dict) else {}
        kind = str(body.get("type", "error")).rstrip("/").rsplit("/", 1)[-1]
        fields = [ERROR_FIELDS.get(str(e.get("field")), str(e.get("field")))
                  for e in body.get("errors") or [] if isinstance(e, dict)]  # fmt: skip
        response = error(upstream.status_code, kind.upper().replace("-", "_"),
                         str(body.get("detail") or upstream.text[:300]), fields)  # fmt: skip
    else:
        response = JSONResponse({"ok": True, **ok(body)}, status_code=upstream.status_code)
    response.headers.update(headers)
    return response


async def unavailable(request: Request, exc: Exception) -> Response:
    """The bridge behind is unreachable: 503, the outcome of a write unknown."""
    return error(503, "UPSTREAM_UNAVAILABLE", f"the bridge did not answer: {exc!r}"[:300])


class Proxy:
    def __init__(self, upstream: str, secret: str, metrics_token: str | None) -> None:
        self.http = httpx.AsyncClient(base_url=upstream, timeout=None)
        self.secret = secret
        self.metrics_token = metrics_token
        self.sessions: set[str] = set()

    def _auth(self, request: Request) -> dict[str, str]:
        value = request.headers.get("authorization")
        return {"Authorization": value} if value is not None else {}

    async def _body(self, request: Request) -> dict[str, Any] | Response:
        raw = await request.body()
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            return error(415, "UNSUPPORTED_MEDIA_TYPE", "send application/json", ["body"])
        try:
            body = json.loads(raw.decode("utf-8") or "null", parse_constant=_no_constant)
        except (ValueError, RecursionError, UnicodeDecodeError) as why:
            return error(400, "MALFORMED_BODY", f"body: not JSON ({str(why)[:80]})", ["body"])
        if not isinstance(body, dict):
            return error(400, "MALFORMED_BODY", "body: expected a JSON object", ["body"])
        try:  # found by input.malformed[lone-surrogate]: "\ud800" parses, but is no UTF-8
            json.dumps(body, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            return error(400, "MALFORMED_BODY", "body: a string is not valid Unicode", ["body"])
        return body

    async def open_session(self, request: Request) -> Response:
        upstream = await self.http.get("/v1/tools", headers=self._auth(request))
        if upstream.status_code != 200:
            return translated(upstream, dict)
        session = secrets.token_hex(8)
        self.sessions.add(session)
        return JSONResponse({"ok": True, "session": session})

    async def submit_job(self, request: Request) -> Response:
        if request.headers.get("x-session") not in self.sessions:
            return error(428, "SESSION_REQUIRED", "open a session first (POST /open_session)")
        body = await self._body(request)
        if isinstance(body, Response):
            return body
        headers = self._auth(request)
        key = body.pop("dedupe_key", None)
        if key is not None:
            headers["Idempotency-Key"] = str(key)
        ours = {{"tool_name": "tool", "params": "arguments"}.get(k, k): v for k, v in body.items()}
        upstream = await self.http.post("/v1/jobs", json=ours, headers=headers)
        return translated(upstream, lambda job: {"job": job_out(job)})

    async def _job_call(self, request: Request, method: str, suffix: str, **params: Any):
        body = await self._body(request)
        if isinstance(body, Response):
            return body
        ref = body.get("job_ref")
        if not isinstance(ref, str) or not ref:
            return error(400, "INVALID_JOB_REF", "job_ref: a job reference", ["job_ref"])
        if "wait_seconds" in body:
            params["wait"] = body["wait_seconds"]
        upstream = await self.http.request(method, f"/v1/jobs/{ref}{suffix}", params=params,
                                           headers=self._auth(request))  # fmt: skip
        return translated(upstream, lambda job: {"job": job_out(job)})

    async def job_status(self, request: Request) -> Response:
        return await self._job_call(request, "GET", "")

    async def cancel_job(self, request: Request) -> Response:
        return await self._job_call(request, "POST", "/cancel")

    async def list_tools(self, request: Request) -> Response:
        upstream = await self.http.get("/v1/tools", headers=self._auth(request))
        return translated(upstream, lambda body: {"tools": body["items"]})

    async def ready(self, request: Request) -> Response:
        try:
            upstream = await self.http.get("/readyz")
        except httpx.HTTPError as why:
            return error(503, "UPSTREAM_DOWN", str(why)[:200])
        return JSONResponse({"ok": upstream.status_code == 200, "detail": upstream.json()},
                            status_code=upstream.status_code)  # fmt: skip

    async def metrics(self, request: Request) -> Response:
        token = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        try:
            claims = jwt.decode(token, self.secret, algorithms=["HS256"])
        except jwt.PyJWTError:
            return error(401, "UNAUTHENTICATED", "an admin's bearer token is required")
        if "admin" not in (claims.get("roles") or []):
            return error(403, "FORBIDDEN", "metrics are for admins")
        headers = {"Authorization": f"Bearer {self.metrics_token}"} if self.metrics_token else {}
        upstream = await self.http.get("/metrics", headers=headers)
        return Response(upstream.content, upstream.status_code,
                        media_type=upstream.headers.get("content-type"))  # fmt: skip

    def app(self) -> Starlette:
        routes = [
            Route("/open_session", self.open_session, methods=["POST"]),
            Route("/submit_job", self.submit_job, methods=["POST"]),
            Route("/job_status", self.job_status, methods=["POST"]),
            Route("/cancel_job", self.cancel_job, methods=["POST"]),
            Route("/list_tools", self.list_tools, methods=["POST"]),
            Route("/health/ready", self.ready, methods=["GET"]),
            Route("/admin/metrics", self.metrics, methods=["GET"]),
        ]
        # found by faults.chaos: while the bridge restarts, the proxy answered 500
        return Starlette(routes=routes, exception_handlers={httpx.TransportError: unavailable})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--secret", required=True, help="the bridge's token signing secret")
    parser.add_argument("--metrics-token", default=None, help="the bridge's METRICS_TOKEN")
    args = parser.parse_args()
    app = Proxy(args.upstream, args.secret, args.metrics_token).app()
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
