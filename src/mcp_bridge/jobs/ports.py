"""What the job core needs from the layers around it: a backend to publish to, tools to run.

The core (`jobs/`) defines these interfaces; backends and the tool catalog implement them, so
every import points down into `jobs/`, never up out of it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Protocol


class ToolError(Exception):
    """A tool failed; the message becomes the job's error."""


@dataclass
class ToolContext:
    """What a running tool may ask of its executor."""

    job_id: str
    cancelled: threading.Event = field(default_factory=threading.Event)


class RunnableTool(Protocol):
    def run(self, arguments: dict[str, Any], ctx: ToolContext) -> Any: ...


class Tools(Protocol):
    """The catalog as the core sees it: look a tool up, check arguments against its schema."""

    def get(self, name: str) -> RunnableTool: ...

    def validate(self, name: str, arguments: dict[str, Any]) -> None: ...


class Backend(Protocol):
    """Where a committed job is sent to run."""

    name: str

    def publish(self, job_id: str) -> None:
        """Hand the job to the executors; raise if it could not be handed over."""

    def check(self) -> tuple[bool, str]:
        """Is the backend able to take work now (readiness)?"""

    def start(self) -> None: ...

    def stop(self) -> None: ...
