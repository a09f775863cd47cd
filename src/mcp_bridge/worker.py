"""The Celery worker entry point: `python -m mcp_bridge.worker [celery worker options]`.

`celery -A mcp_bridge.worker worker` works too. Workers share nothing but the broker and the
registry (`JOB_REGISTRY_URL`, a PostgreSQL database, for workers on several hosts; a SQLite
`JOB_REGISTRY_PATH` for one host), so any number may run.
"""

from __future__ import annotations

import sys

from mcp_bridge.backends.celery_app import make_celery
from mcp_bridge.config import Settings, get_settings
from mcp_bridge.jobs.connect import open_checked
from mcp_bridge.tools.mcp_servers import configured_servers


def _checked_settings() -> Settings:
    """Refuse to start (one line) when the registry cannot be written: a worker that cannot
    record its claims would only take messages and drop them."""
    settings = get_settings()
    # Closed before Celery forks its pool: each worker process opens its own connections.
    open_checked(settings).close()
    return settings


app = make_celery(_checked_settings())
configured_servers()  # a bad MCP servers file stops start-up here, with one line


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if not any(arg.startswith(("--loglevel", "-l")) for arg in args):
        args.append("--loglevel=INFO")
    # Workers coordinate through the registry, not through each other: skip the start-up chatter.
    for flag in ("--without-mingle", "--without-gossip"):
        if flag not in args:
            args.append(flag)
    app.worker_main(["worker", *args])


if __name__ == "__main__":
    main()
