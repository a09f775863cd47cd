"""One lifecycle for every process of the stack: start, wait ready, stop, kill, restart, logs."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

from .deadlines import SLACK_SECONDS, STARTUP_SECONDS, Deadlines
from .process import wait_until


class ManagedProcess:
    """A subprocess with a log file and a readiness probe; `close()` always tears it down."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        env: dict[str, str],
        log_dir: Path,
        ready: Callable[[], bool],
        cwd: Path | None = None,
        ready_timeout: float = STARTUP_SECONDS,
    ) -> None:
        self.name, self.argv, self.env, self.cwd = name, list(argv), env, cwd
        self.log_path = log_dir / f"{name}.log"
        self._ready, self._ready_timeout = ready, ready_timeout
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def spawn(self) -> ManagedProcess:
        """Start the process without waiting for readiness (see `wait_ready`)."""
        if self.running:
            raise RuntimeError(f"{self.name} is already running")
        self.starts += 1
        log = self.log_path.open("ab")
        log.write(f"\n--- start #{self.starts}: {' '.join(self.argv)}\n".encode())
        log.flush()
        self.proc = subprocess.Popen(
            self.argv,
            env=self.env,
            cwd=self.cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        return self

    def wait_ready(self, timeout: float | None = None) -> ManagedProcess:
        """Poll the readiness probe until it answers, failing fast if the process died."""

        def probe() -> bool:
            if not self.running:
                raise RuntimeError(
                    f"{self.name} exited with {self.proc.returncode if self.proc else '?'} "
                    f"before it was ready; log tail:\n{self.tail()}"
                )
            try:
                return self._ready()
            except Exception:
                return False

        wait_until(probe, timeout or self._ready_timeout, what=f"{self.name} to be ready")
        return self

    def start(self, timeout: float | None = None) -> ManagedProcess:
        return self.spawn().wait_ready(timeout)

    def signal(self, sig: signal.Signals) -> None:
        if self.running and self.proc is not None:
            os.kill(self.proc.pid, sig)

    def stop(self, timeout: float | None = None) -> int | None:
        """SIGTERM and wait for a clean exit (SIGKILL if it overstays `timeout`, by default the
        shutdown of a process with no work in flight)."""
        timeout = Deadlines.shutdown() if timeout is None else timeout
        if self.proc is None:
            return None
        self.signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return self.kill()

    def wait_exit(self, timeout: float) -> int:
        """Wait for the process to exit on its own; its exit code."""
        assert self.proc is not None, f"{self.name} was never started"
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise TimeoutError(f"{self.name} still running after {timeout:g}s") from None

    def kill(self) -> int | None:
        """SIGKILL the whole process group (a prefork pool's children too)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        return self.proc.wait(SLACK_SECONDS)

    def pause(self) -> None:
        """SIGSTOP the whole process group: it holds its work and connections, doing nothing."""
        if self.running and self.proc is not None:
            os.killpg(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT the process group after `pause`."""
        if self.running and self.proc is not None:
            os.killpg(self.proc.pid, signal.SIGCONT)

    def restart(self, timeout: float | None = None) -> ManagedProcess:
        self.stop()
        return self.start(timeout)

    def close(self) -> None:
        if self.running:
            self.kill()

    def ready(self) -> bool:
        """Running and its readiness probe answers now (one try)."""
        try:
            return self.running and bool(self._ready())
        except Exception:
            return False

    def logs(self) -> str:
        """The process's log so far (every start)."""
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""
