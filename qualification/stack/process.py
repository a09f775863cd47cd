"""Small helpers shared by the stack provisioners: free ports and deadline-bounded polling."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Self, TypeVar

T = TypeVar("T")


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now (never 6379).

    The kernel picks it from the ephemeral range; the caller should bind it promptly and, where it
    can, retry with a new port if the bind loses a race.
    """
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port != 6379:
            return port


def wait_until(
    predicate: Callable[[], T], timeout: float, interval: float = 0.05, what: str = "condition"
) -> T:
    """Call ``predicate`` every ``interval`` s until it returns a truthy value, and return that.

    Raises ``TimeoutError`` naming ``what`` when ``timeout`` seconds pass first. The predicate is
    always tried at least once; exceptions it raises propagate.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(min(interval, remaining))


class StartStop:
    """`with server:` starts it and closes it after, also when the start fails halfway."""

    def start(self) -> object:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
