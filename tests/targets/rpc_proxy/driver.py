"""A driver for the RPC proxy target (`proxy.py`): another contract, the same checklist.
`pytest qualification/ --target tests.targets.rpc_proxy.driver:factory`. Nodes and observer
are the reference bridge's behind the proxy; the wire is this driver's own."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from qualification.drivers.base import DEFAULT, OMIT, Client, Job, Problem, Reply
from qualification.drivers.reference import ReferenceDriver, ReferenceTarget
from qualification.stack.managed import ManagedProcess
from qualification.stack.process import free_port

ROUTES = {  # operation → (method, path)
    "submit": ("POST", "/submit_job"),
    "get": ("POST", "/job_status"),
    "cancel": ("POST", "/cancel_job"),
    "tools": ("POST", "/list_tools"),
    "ready": ("GET", "/health/ready"),
    "metrics": ("GET", "/admin/metrics"),
}
FIELDS = {"job_ref": "id", "tool_name": "tool", "params": "arguments", "state": "status",
          "tries": "attempts", "output": "result", "failure": "error", "cancel_pending":
          "cancelRequested", "principal": "owner", "dedupe_key": "idempotencyKey",
          "created": "createdAt", "started": "startedAt", "finished": "finishedAt"}  # fmt: skip
ERROR_FIELDS = {"tool_name": "tool", "params": "arguments", "dedupe_key": "idempotencyKey",
                "wait_seconds": "wait", "job_ref": "id"}  # fmt: skip


class RpcClient(Client):
    operations = frozenset(ROUTES)

    def __init__(self, target: ReferenceTarget, url: str) -> None:
        super().__init__(target.deadlines)
        self.target_name, self.base_url = "target rpc-proxy", url
        self._tokens = target.client  # tokens are the bridge's JWTs, signed with its secret
        self._http = httpx.Client(base_url=url, timeout=target.deadlines.client())
        self._session: str | None = None

    def token(self, subject=None, roles=None, **claims: Any) -> str:  # noqa: ANN001
        return self._tokens.token(subject, roles, **claims)

    def _headers(self, token: str | None, extra: dict[str, str] | None) -> dict[str, str]:
        token = self.token() if token is DEFAULT else token
        return {**({"Authorization": f"Bearer {token}"} if token else {}), **(extra or {})}

    def request(self, operation, *, job_id=None, token=DEFAULT, headers=None, content=None,
                json=None, params=None, timeout=None) -> Reply:  # noqa: ANN001  # fmt: skip
        method, path = ROUTES[operation]
        headers = self._headers(token, headers)
        if operation == "submit":
            headers.setdefault("X-Session", self._open_session())
        if job_id is not None or params:
            wait = {"wait_seconds": params["wait"]} if params and "wait" in params else {}
            json = {**({"job_ref": job_id} if job_id is not None else {}), **wait, **(json or {})}
        if content is not None:
            headers = {"Content-Type": "application/json", **headers}
        kw: dict[str, Any] = {"content": content} if content is not None else {"json": json}
        if method == "POST" and content is None and json is None:
            kw["json"] = {}
        if timeout is not None:
            kw["timeout"] = timeout
        try:
            response = self._http.request(method, path, headers=headers, **kw)
        except httpx.HTTPError as why:
            return Reply(None, transport_error=f"{type(why).__name__}: {why}", operation=operation)
        return self.created(self._reply(operation, response))

    def _open_session(self) -> str:
        if self._session is None:
            response = self._http.post("/open_session", headers=self._headers(DEFAULT, None))
            response.raise_for_status()
            self._session = response.json()["session"]
        return self._session

    def _reply(self, operation: str, response: httpx.Response) -> Reply:
        try:
            body = response.json()
        except ValueError:
            body = None
        job = problem = None
        if isinstance(body, dict) and isinstance(body.get("job"), dict):
            job = Job(**{FIELDS.get(k, k): v for k, v in body["job"].items()})
            job["status"] = str(job.get("status", "")).lower()
        if response.status_code >= 400:
            ours = isinstance(body, dict) and body.get("ok") is False
            error = body.get("error") if ours and isinstance(body.get("error"), dict) else {}
            fields = tuple(ERROR_FIELDS.get(f, f) for f in error.get("fields") or [])
            problem = Problem(response.status_code, str(error.get("code", "")),
                              str(error.get("summary", "")), str(error.get("message", "")),
                              ours and {"code", "message"} <= error.keys(), fields)  # fmt: skip
        ready = operation == "ready" and isinstance(body, dict)
        checks = (body.get("detail") or {}).get("checks") if ready else None
        parts = {name: bool(part.get("ok")) for name, part in (checks or {}).items()}
        return Reply(response.status_code, body, response.text, response.headers, job=job,
                     problem=problem, operation=operation, components=parts)  # fmt: skip

    def submission(self, tool, arguments=OMIT, idempotency_key=None, **extra: Any) -> dict:  # noqa: ANN001
        key = {"dedupe_key": idempotency_key} if idempotency_key is not None else {}
        body = {"tool_name": tool, "params": arguments, **key, **extra}
        return {"json": {k: v for k, v in body.items() if v is not OMIT}}

    def metrics(self, token: str | None = DEFAULT) -> Reply:
        token = self.token(roles=("admin",)) if token is DEFAULT else token
        return self.request("metrics", token=token)

    def close(self) -> None:
        self._http.close()


class ProxyTarget(ReferenceTarget):
    lacks = {"list-jobs", "attempts-endpoint", "openapi", "mcp"}  # not in its contract
    capabilities = ReferenceTarget.capabilities - lacks

    def __init__(self, stack: Any) -> None:
        super().__init__(stack, name="rpc-proxy")
        port = free_port()
        argv = [sys.executable, str(Path(__file__).with_name("proxy.py")), "--upstream",
                stack.api.url, "--port", str(port), f"--secret={stack.secret}"]  # fmt: skip
        if stack.env.get("METRICS_TOKEN"):  # `=`: a token may begin with "-"
            argv.append(f"--metrics-token={stack.env['METRICS_TOKEN']}")
        url = f"http://127.0.0.1:{port}"
        ready = lambda: httpx.get(f"{url}/health/ready", timeout=10).status_code > 0  # noqa: E731
        self.proxy = ManagedProcess("rpc-proxy", argv, stack.env, stack.log_dir, ready)
        self.reference_client, self.client = self.client, RpcClient(self, url)

    def close(self) -> None:
        self.reference_client.close()
        self.proxy.close()
        super().close()


class ProxyDriver(ReferenceDriver):
    name = "rpc-proxy"
    capabilities = ProxyTarget.capabilities
    target_class = ProxyTarget

    def launch(self, workdir, **options: Any) -> ProxyTarget:  # noqa: ANN001
        target = super().launch(workdir, **options)
        target.proxy.start()
        return target


def factory(config: pytest.Config) -> ProxyDriver:
    return ProxyDriver(config)
