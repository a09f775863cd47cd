"""Keep several in-process bridges (one after another, e.g. a 1-worker then a 4-worker run)
from sharing Celery/kombu process-wide state. Needed until the bridge's Celery wiring does it.

Two process-wide leftovers break the second in-process bridge of a process:

1. `make_celery` registers the job task with `@app.task(...)`, whose default `shared=True`
   adds a constructor (closing over THAT app's registry) to a process-wide set that runs when
   any later app is finalised, before the later app's own task, which then loses the name:
   the second bridge would publish through the first (stopped) app and execute jobs against
   the first (deleted) registry.
2. kombu keys its global connection pools by broker URL + transport options, so every app of
   the process with the same broker shares one pool; `CeleryBackend.stop()` force-closes it,
   and the next app's publishes fail with "Acquire on closed pool".
"""

from __future__ import annotations

import uuid
from typing import Any

RUN_OPTION = "mcp_bridge_benchmark_run"  # an inert transport option: gives this run its own pool


def forget_stale_bridge_tasks() -> int:
    """Drop the job-task constructors earlier bridge apps left in Celery's finaliser set."""
    from celery import _state

    from mcp_bridge.backends.celery_app import TASK_NAME

    stale = []
    for callback in list(getattr(_state, "_on_app_finalizers", ())):
        for cell in getattr(callback, "__closure__", None) or ():
            try:
                value = cell.cell_contents
            except ValueError:
                continue
            if isinstance(value, dict) and value.get("name") == TASK_NAME:
                stale.append(callback)
                break
    for callback in stale:
        _state._on_app_finalizers.discard(callback)
    return len(stale)


def isolate_pool(app: Any) -> str:
    """Give the app a connection pool of its own (call before its first publish)."""
    run_id = uuid.uuid4().hex
    options = dict(app.conf.broker_transport_options or {})
    options[RUN_OPTION] = run_id
    app.conf.broker_transport_options = options
    return run_id


def release_pool(app: Any) -> None:
    """Forget the app's (closed) pool in kombu's global registry."""
    from kombu import pools

    try:
        connection = app.connection_for_write()
        try:
            del pools.connections[connection]
        except KeyError:
            pass
        finally:
            connection.release()
    except Exception:  # best effort: at worst one closed pool stays referenced
        pass
