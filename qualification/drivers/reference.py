"""The reference driver: boots this repository's bridge (Redis, the API, N Celery workers) for
each check and speaks its `/v1` wire through `mcp_bridge_client`. The only module of the suite
that knows the bridge's paths, field names and registry tables."""

from __future__ import annotations

import contextlib
import secrets
import sqlite3
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import httpx
import jwt
import psycopg
import pytest
from psycopg.rows import dict_row

import mcp_bridge_client as wire

from ..stack.bridge import BridgeStack
from ..stack.deadlines import Deadlines
from ..stack.latch import Latch
from ..stack.postgres import PostgresServer, PostgresUnavailable
from ..stack.postgres import provision as provision_postgres
from ..stack.redis import RedisServer, provision
from .base import DEFAULT, OMIT, Client, Driver, Job, Problem, Reply, Target, Unsupported

POSTGRES = pytest.StashKey[PostgresServer]()
RESTARTABLE_POSTGRES = pytest.StashKey[PostgresServer]()
REDIS_INFO = pytest.StashKey[dict[str, str]]()

DEFAULT_SUBJECT = "qualification"  # the client's default caller
#: Everything the reference target lets a check do.
REFERENCE_CAPABILITIES = frozenset(
    {
        "boot", "configure", "mint-tokens", "admin-token", "list-jobs", "attempts-endpoint",
        "kill-worker", "restart-api", "restart-broker", "restart-registry", "executions",
        "registry", "own-jobs", "broker", "latch", "commands", "openapi", "mcp",
    }
)  # fmt: skip


#: Our request fields that the checklist names otherwise (a problem's `fields` use its names).
CHECKLIST_FIELDS = {"Idempotency-Key": "idempotencyKey"}


def problem_of(response: httpx.Response) -> Problem | None:
    """Our errors are RFC 9457 problem+json: `type` is the kind, `errors[].field` the fields."""
    if response.status_code < 400:
        return None
    try:
        body = response.json()
    except ValueError:
        body = None
    well_formed = response.headers.get("content-type", "").startswith(wire.PROBLEM_JSON) and (
        isinstance(body, dict)
        and {"type", "title", "status", "detail"} <= body.keys()
        and body["status"] == response.status_code
    )
    body = body if isinstance(body, dict) else {}
    fields = tuple(
        CHECKLIST_FIELDS.get(str(e.get("field")), str(e.get("field")))
        for e in body.get("errors") or []
        if isinstance(e, dict)
    )
    return Problem(
        status=response.status_code,
        kind=str(body.get("type", "")),
        title=str(body.get("title", "")),
        detail=str(body.get("detail", "")),
        well_formed=bool(well_formed),
        fields=fields,
    )


def reply_of(operation: str, response: httpx.Response) -> Reply:
    try:
        body = response.json()
    except ValueError:
        body = None
    job = jobs = None
    if response.status_code < 400 and isinstance(body, dict):
        if isinstance(body.get("items"), list) and operation == "list":
            jobs = [Job(**item) for item in body["items"]]  # our fields are the checklist's
        elif "id" in body and "status" in body:
            job = Job(**body)
    checks = body.get("checks") if operation == "ready" and isinstance(body, dict) else None
    return Reply(
        status=response.status_code,
        body=body,
        text=response.text,
        headers=response.headers,
        job=job,
        jobs=jobs,
        problem=problem_of(response),
        operation=operation,
        components={
            name: bool(part.get("ok"))
            for name, part in (checks or {}).items()
            if isinstance(part, dict)
        },
    )


class RestClient(Client):
    """Our bridge's `/v1` API over one HTTP connection; tokens signed with the stack's secret."""

    operations = frozenset(wire.ROUTES)

    def __init__(
        self,
        base_url: str,
        deadlines: Deadlines,
        secret: str | None = None,
        default_token: str | None = None,
        name: str = "reference",
        metrics_token: str | None = None,
    ) -> None:
        super().__init__(deadlines)
        self.metrics_token = metrics_token
        self.target_name = f"target {name}"
        self.base_url = base_url
        self._secret = secret
        self._default = default_token
        self._wire = wire.BridgeClient(base_url, deadlines.client(), verify=False)

    def token(
        self, subject: str | None = None, roles: Iterable[str] | None = None, **claims: Any
    ) -> str:
        """Signed with the stack's secret; the claim `secret=` signs with another key instead
        (the §1 token checks: a token the bridge must refuse)."""
        if subject is None and roles is None and not claims and self._default:
            return self._default
        if self._secret is None:
            raise Unsupported("mint-tokens", self.target_name)
        body = {
            "sub": subject or DEFAULT_SUBJECT,
            "roles": list(roles if roles is not None else ("operator",)),
            "exp": int(time.time()) + 3600,
            **claims,
        }
        secret = body.pop("secret", None) or self._secret
        return jwt.encode(body, secret, algorithm="HS256")

    def _token(self, token: str | None) -> str | None:
        return self.token() if token is DEFAULT else (token or None)

    def _send(self, operation: str, req: wire.Request) -> Reply:
        try:
            response = self._wire.send(req)
        except httpx.HTTPError as error:
            return Reply(None, transport_error=f"{type(error).__name__}: {error}"[:300],
                         operation=operation)  # fmt: skip
        return self.created(reply_of(operation, response))

    def request(
        self,
        operation: str,
        *,
        job_id: str | None = None,
        token: str | None = DEFAULT,
        headers: dict[str, str] | None = None,
        content: bytes | Iterable[bytes] | None = None,
        json: Any = None,
        params: dict[str, Any] | None = None,
        timeout: float | None = None,
    ) -> Reply:
        req = wire.request(
            operation,
            job_id=job_id,
            token=self._token(token),
            headers=headers,
            content=content,
            json=json,
            params=params,
            timeout=timeout,
        )
        return self._send(operation, req)

    def submission(
        self, tool: Any, arguments: Any = OMIT, idempotency_key: Any = None, **extra: Any
    ) -> dict[str, Any]:
        body = {"tool": tool, "arguments": arguments, **extra}
        headers = {} if idempotency_key is None else {"Idempotency-Key": idempotency_key}
        return {"json": {k: v for k, v in body.items() if v is not OMIT}, "headers": headers}

    def job_location(self, job_id: str) -> str:
        return wire.request("get", job_id=job_id).path

    def list(
        self, token: str | None = DEFAULT, status: str | None = None, limit: int | None = None
    ) -> Reply:
        return self._send("list", wire.list_request(token=self._token(token), status=status,
                                                    limit=limit))  # fmt: skip

    def list_all(self, token: str | None = DEFAULT) -> list[Job]:
        """Every job the token may see, all pages."""
        found: list[Job] = []
        page: str | None = None
        while True:
            req = wire.list_request(token=self._token(token), limit=500, page_token=page)
            reply = self._send("list", req)
            if reply.status != 200 or reply.jobs is None:
                raise AssertionError(f"list jobs: {reply.describe()}")
            found.extend(reply.jobs)
            page = reply.body.get("nextPageToken")
            if not page:
                return found

    def attempts(self, job_id: str, token: str | None = DEFAULT) -> Reply:
        return self.request("attempts", job_id=job_id, token=token)

    def metrics(self, token: str | None = DEFAULT) -> Reply:
        """An authorised scrape by default: the bridge's METRICS_TOKEN when it sets one."""
        return self.request("metrics", token=self.metrics_token if token is DEFAULT else token)

    def close(self) -> None:
        self._wire.close()


class RegistryObserver:
    """The reference bridge seen from outside its API: the registry (SQLite file or PostgreSQL
    database, read-only) and the Redis broker."""

    def __init__(self, stack: BridgeStack) -> None:
        self.stack = stack

    def present(self) -> bool:
        """The registry exists where the bridge was told to keep it (file, or schema in the DB)."""
        if self.stack.registry_url is None:
            return self.stack.registry_path.exists()
        return bool(self._query("SELECT to_regclass('jobs') IS NOT NULL AS present")[0]["present"])

    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        """Rows as dicts; `sql` uses `?` placeholders (translated for PostgreSQL)."""
        url = self.stack.registry_url
        if url is None:
            path = self.stack.registry_path
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
            conn.row_factory = sqlite3.Row
            with contextlib.closing(conn):
                return [dict(row) for row in conn.execute(sql, params)]
        with psycopg.connect(url, row_factory=dict_row, connect_timeout=10) as conn:
            conn.read_only = True
            return list(conn.execute(sql.replace("?", "%s"), params))

    def executions(self, job_id: str) -> list[dict[str, Any]]:
        rows = self._query("SELECT * FROM attempts WHERE job_id = ? ORDER BY attempt", (job_id,))
        return [
            {
                "attempt": row["attempt"],
                "worker": row["worker"],
                "outcome": row["outcome"],
                "startedAt": row["started_at"],
                "finishedAt": row["finished_at"],
            }
            for row in rows
        ]

    def jobs(self) -> list[dict[str, Any]]:
        return [
            {
                "id": row["id"],
                "owner": row["owner"],
                "tool": row["tool"],
                "status": row["status"],
                "attempts": row["attempts"],
                "idempotencyKey": row["idempotency_key"],
                "cancelRequested": bool(row["cancel_requested"]),
                "worker": row["worker"],
                "dispatchedAt": row["dispatched_at"],
            }
            for row in self._query("SELECT * FROM jobs")
        ]

    def job_count(self) -> int:
        return int(self._query("SELECT COUNT(*) AS n FROM jobs")[0]["n"])

    def own_job_count(self, owner: str = DEFAULT_SUBJECT) -> int:
        sql = "SELECT COUNT(*) AS n FROM jobs WHERE owner = ?"
        return int(self._query(sql, (owner,))[0]["n"])

    def queue_depth(self) -> int:
        if self.stack.redis is None:
            return 0
        with self.stack.redis.client(0) as client:
            return int(client.llen(self.stack.env["CELERY_QUEUE"]))

    def broker_drained(self) -> bool:
        """The job queue is empty and no message awaits an ack (kombu's `unacked` hash)."""
        if self.stack.redis is None:
            return True
        with self.stack.redis.client(0) as client:
            return client.llen(self.stack.env["CELERY_QUEUE"]) == 0 and client.hlen("unacked") == 0


class ReferenceTarget(Target):
    """One booted reference stack: `nodes` is the `BridgeStack` (api, workers, broker)."""

    capabilities = REFERENCE_CAPABILITIES

    def __init__(self, stack: BridgeStack, name: str = "reference") -> None:
        self.name = name
        self.nodes = stack
        self.settings = stack.env
        self.deadlines = stack.deadlines
        self.client = RestClient(
            stack.api.url,
            stack.deadlines,
            secret=stack.secret,
            name=name,
            metrics_token=stack.env.get("METRICS_TOKEN") or None,
        )
        self.observer = RegistryObserver(stack)

    def latch(self) -> Latch:
        return self.nodes.latch()

    def endpoint(self, protocol: str) -> str:
        if protocol not in ("mcp", "openapi") or protocol not in self.capabilities:
            return super().endpoint(protocol)
        return self.nodes.api.url + wire.ROUTES[protocol][1]

    def bridge_client(self, url: str | None = None) -> RestClient:
        stack = self.nodes
        return RestClient(url or stack.api.url, self.deadlines, secret=stack.secret, name=self.name)

    def log_files(self) -> list[Path]:
        return self.nodes.log_files()

    def close(self) -> None:
        self.client.close()
        self.nodes.close()


class ReferenceDriver(Driver):
    """Boots this repository's bridge from the session's options (`--redis`, `--registry`)."""

    name = "reference"
    capabilities = REFERENCE_CAPABILITIES
    target_class: type[ReferenceTarget] = ReferenceTarget

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    def launch(
        self,
        workdir: Path,
        *,
        workers: int = 1,
        settings: Mapping[str, str | None] | None = None,
        backend: str = "celery",
        start_api: bool = True,
        broker: bool | None = None,
    ) -> ReferenceTarget:
        wants_broker = backend == "celery" if broker is None else broker
        server = provision_redis(self.config) if wants_broker else None
        queue_env = {"CELERY_QUEUE": f"mcp-bridge-{secrets.token_hex(4)}"}
        stack = BridgeStack(
            workdir,
            server,
            backend,
            env={**queue_env, **(settings or {})},
            registry_url=registry_database(self.config),
        )
        target = self.target_class(stack)
        try:
            stack.start(workers=workers, api=start_api)
        except BaseException:
            target.close()
            if server is not None:
                server.close()
            raise
        return target


# -- the session's servers: Redis per stack, one PostgreSQL for `--registry postgres` -----------


def provision_redis(config: pytest.Config) -> RedisServer:
    server = provision(config.getoption("redis"), image=config.getoption("redis_image"), aof=True)
    server.start()
    if REDIS_INFO not in config.stash:
        try:
            version = server.version()
        except Exception:
            version = "unknown"
        config.stash[REDIS_INFO] = {"provisioner": server.provisioner, "version": version}
    return server


def registry_server(config: pytest.Config) -> PostgresServer | None:
    """The PostgreSQL of `--registry` (started once per session; None for SQLite)."""
    spec = config.getoption("registry")
    if spec == "sqlite":
        return None
    if POSTGRES not in config.stash:
        try:
            server = provision_postgres(spec)
        except PostgresUnavailable as why:
            pytest.skip(str(why))
        server.start()
        config.add_cleanup(server.close)
        config.stash[POSTGRES] = server
    return config.stash[POSTGRES]


def registry_database(config: pytest.Config) -> str | None:
    """A fresh database per stack on the `--registry` PostgreSQL; None for the SQLite file."""
    server = registry_server(config)
    return None if server is None else server.create_database(f"stack_{secrets.token_hex(6)}")


def restartable_registry(config: pytest.Config) -> PostgresServer:
    """A PostgreSQL the suite may crash and restart: the `--registry postgres` one, or (under
    `--registry sqlite`) one of its own for registry-fault checks; skips for a given URL."""
    server = registry_server(config)
    if server is not None and not server.can_restart:
        pytest.skip("the registry was given as a URL: the suite may not stop or restart it")
    if server is None:
        if RESTARTABLE_POSTGRES not in config.stash:
            try:
                own = provision_postgres("postgres")
            except PostgresUnavailable as why:
                pytest.skip(str(why))
            own.start()
            config.add_cleanup(own.close)
            config.stash[RESTARTABLE_POSTGRES] = own
        server = config.stash[RESTARTABLE_POSTGRES]
    return server


def require_restartable(server: RedisServer | None) -> RedisServer:
    """Skip a check that must stop Redis when Redis was given as a URL."""
    if server is None or not server.can_restart:
        pytest.skip("Redis was given as a URL: the suite may not stop or restart it")
    return server
