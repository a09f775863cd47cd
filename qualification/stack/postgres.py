"""PostgreSQL for the qualification stack (and the bridge's unit tests): a throwaway cluster.

``provision(spec)`` turns ``postgres`` (a cluster from the machine's binaries: ``initdb`` +
``pg_ctl`` in a temporary directory, on a free 127.0.0.1 port) or ``postgresql://…`` (a server
someone else runs; restarts are then refused) into a :class:`PostgresServer`; use it as a context
manager (start on enter, full teardown on exit)::

    with provision("postgres") as server:
        url = server.create_database("suite")   # postgresql://postgres@127.0.0.1:PORT/suite
        server.restart(kill=True)               # a crash (pg_ctl -m immediate), then recovery

The machine's own cluster on 5432 is never touched unless a URL names it. Run as root, the
binaries run as the ``postgres`` user (``initdb`` refuses root), which owns the directory.
"""

from __future__ import annotations

import atexit
import os
import pwd
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

from .process import StartStop, free_port, wait_until

NO_POSTGRES_HINT = (
    "no PostgreSQL binaries (initdb, pg_ctl): apt-get install postgresql, "
    "or pass --registry postgresql://USER@HOST:PORT/DATABASE"
)
NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL can be supplied on this machine."""


class RestartUnsupported(RuntimeError):
    """The server is not ours to stop, kill or restart (a ``--registry`` URL)."""


def find_postgres_bin() -> Path | None:
    """The newest ``…/bin`` holding ``initdb`` and ``pg_ctl`` (Debian's layout, then PATH)."""
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_major, reverse=True)
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).parent)
    return next(
        (c for c in candidates if (c / "initdb").exists() and (c / "pg_ctl").exists()), None
    )


def _major(path: Path) -> int:
    return int(path.parent.name) if path.parent.name.isdigit() else 0


class PostgresServer(StartStop):
    """A server the suite only uses; subclasses that own one can stop and start it."""

    provisioner = "url"
    can_restart = False

    def __init__(self, url: str) -> None:
        self._url = url

    @property
    def url(self) -> str:
        return self._url

    def url_for(self, database: str) -> str:
        return urlunsplit(urlsplit(self.url)._replace(path=f"/{database}"))

    def answers(self) -> bool:
        """True when the server takes a connection now (one quick try)."""
        try:
            with psycopg.connect(self.url, connect_timeout=2):
                return True
        except psycopg.Error:
            return False

    def create_database(self, name: str) -> str:
        """A fresh, empty database (dropped first if it exists); returns its URL."""
        if not NAME.match(name):
            raise ValueError(f"not a plain database name: {name!r}")
        with psycopg.connect(self.url, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            conn.execute(f"CREATE DATABASE {name}")
        return self.url_for(name)

    def start(self) -> None:
        wait_until(self.answers, 10.0, what=f"PostgreSQL at {_redact(self.url)}")

    def stop(self) -> None:
        raise self._unsupported("stop")

    def kill(self) -> None:
        raise self._unsupported("kill")

    def restart(self, *, kill: bool = False) -> None:
        raise self._unsupported("restart")

    def close(self) -> None:
        pass

    def _unsupported(self, action: str) -> RestartUnsupported:
        return RestartUnsupported(f"cannot {action} a PostgreSQL the suite did not start")

    def __str__(self) -> str:
        return f"{self.provisioner} PostgreSQL at {_redact(self.url)}"


class BinaryPostgres(PostgresServer):
    """A cluster of our own: ``initdb`` once, then ``pg_ctl`` start / stop / crash on one port."""

    provisioner = "binary"
    can_restart = True

    def __init__(
        self,
        *,
        fsync: bool = True,
        start_timeout: float = 60.0,
        listen: str = "127.0.0.1",
        netns: str | None = None,
    ) -> None:
        """`fsync=False` is for speed in unit tests; restart checks keep it on (durability).
        `netns`: run the server in that network namespace, listening on `listen` there."""
        found = find_postgres_bin()
        if found is None:
            raise PostgresUnavailable(NO_POSTGRES_HINT)
        self.bin, self.fsync, self.start_timeout = found, fsync, start_timeout
        self.listen, self.netns = listen, netns
        self.dir = Path(tempfile.mkdtemp(prefix="qual-postgres-"))
        self.port = 0
        self._initialised = False
        super().__init__("")

    @property
    def url(self) -> str:
        return f"postgresql://postgres@{self.listen}:{self.port}/postgres"

    @property
    def data(self) -> Path:
        return self.dir / "data"

    @property
    def running(self) -> bool:
        return self._pg_ctl("status", check=False).returncode == 0

    def start(self) -> None:
        if not self._initialised:
            self._initdb()
        if self.running:
            return
        for _ in range(3):
            if not self.port:
                self.port = free_port() if self.netns is None else 5432
            done = self._pg_ctl(
                "-l", str(self.dir / "log"), "-w", "-t", str(int(self.start_timeout)), "start",
                "-o", self._options(), check=False,
            )  # fmt: skip
            if done.returncode == 0:
                atexit.unregister(self.close)
                atexit.register(self.close)
                return
            if "could not bind" not in self.logs() or self._fixed_port:
                raise RuntimeError(f"pg_ctl start failed: {self._tail()}")
            self.port = 0
        raise RuntimeError("PostgreSQL lost the race for a free port three times")

    def stop(self) -> None:
        """A clean shutdown (``-m fast``)."""
        if self.running:
            self._pg_ctl("-w", "stop", "-m", "fast")

    def kill(self) -> None:
        """A crash: ``-m immediate`` (no checkpoint; recovery replays the WAL on start)."""
        if self.running:
            self._pg_ctl("-w", "stop", "-m", "immediate")

    def restart(self, *, kill: bool = False) -> None:
        """Same port, same data: committed transactions must survive (with fsync on)."""
        self.kill() if kill else self.stop()
        self.start()

    def logs(self) -> str:
        path = self.dir / "log"
        return path.read_text(errors="replace") if path.exists() else ""

    def close(self) -> None:
        atexit.unregister(self.close)
        if self._initialised:
            self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)

    # -- helpers -----------------------------------------------------------------------------

    @property
    def _fixed_port(self) -> bool:
        return self._initialised and (self.data / "postmaster.opts").exists()

    def _options(self) -> str:
        return (
            f"-p {self.port} -k {self.dir} -c listen_addresses={self.listen} "
            f"-c fsync={'on' if self.fsync else 'off'} -c max_connections=300"
        )

    def _initdb(self) -> None:
        user = _run_as()
        if user is not None:
            os.chown(self.dir, user.pw_uid, user.pw_gid)
        self._run(
            str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres",
            "--no-sync",
        )  # fmt: skip
        if self.listen != "127.0.0.1":  # peers on the listening address's own subnet only
            with (self.data / "pg_hba.conf").open("a") as hba:
                hba.write("host all all samenet trust\n")
        self._initialised = True

    def _pg_ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), *args, check=check)

    def _run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        user = _run_as()
        prefix = ["runuser", "-u", user.pw_name, "--"] if user is not None else []
        if self.netns is not None:
            prefix = ["ip", "netns", "exec", self.netns, *prefix]
        done = subprocess.run(
            [*prefix, *argv], capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120
        )
        if check and done.returncode != 0:
            raise RuntimeError(f"{Path(argv[0]).name} failed: {done.stderr.strip()}")
        return done

    def _tail(self) -> str:
        return " | ".join(self.logs().strip().splitlines()[-5:])


def _run_as() -> pwd.struct_passwd | None:
    """The ``postgres`` user when we are root (initdb refuses root), else None (ourselves)."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("postgres")
    except KeyError:
        raise PostgresUnavailable(
            "running as root needs a 'postgres' user for initdb: apt-get install postgresql"
        ) from None


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user, host = parts.netloc.rsplit("@", 1)
    return urlunsplit(parts._replace(netloc=f"{user.split(':', 1)[0]}:***@{host}"))


def provision(spec: str, *, fsync: bool = True) -> PostgresServer:
    """``postgres`` → a cluster of our own; ``postgresql://…`` → that server (no restarts)."""
    if spec in ("postgres", "postgresql", "binary"):
        return BinaryPostgres(fsync=fsync)
    if urlsplit(spec).scheme in ("postgresql", "postgres"):
        return PostgresServer(spec)
    raise ValueError(f"unknown PostgreSQL spec {spec!r} (postgres | postgresql://…)")
