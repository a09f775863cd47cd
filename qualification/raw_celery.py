"""Plain Celery, no bridge: the reference the bridge's scaling is read against.

Workers: `celery -A qualification.raw_celery worker --pool solo -Q QUEUE -n NODE` with
RAW_CELERY_BROKER_URL set (`start_workers`). Same guarantees as the bridge's workers (late acks,
prefetch 1, JSON). It runs on the bridge's broker, beside the bridge: a reference-target matter
(checks using it need `commands`).
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from pathlib import Path

import redis
from celery import Celery

from .stack.bridge import WorkerPinger
from .stack.managed import ManagedProcess
from .stack.process import wait_until

app = Celery("raw", broker=os.environ.get("RAW_CELERY_BROKER_URL", "memory://"))
app.conf.update(
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_serializer="json",
    accept_content=["json"],
    task_ignore_result=True,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)


@app.task(name="raw.sleep")
def sleep(ms: int, counter: str) -> None:
    """Sleep, then count the completion in Redis (what the driver waits on)."""
    time.sleep(ms / 1000)
    with redis.Redis.from_url(app.conf.broker_url) as client:
        client.incr(counter)


def start_workers(
    broker_url: str, queue: str, count: int, log_dir: Path, host: str = "qualification"
) -> list[ManagedProcess]:
    """`count` plain Celery workers on `queue` (the bridge's worker flags: solo pool, no mingle or
    gossip), spawned together; returned once each answers a ping over the broker."""
    pinger = WorkerPinger(broker_url)
    workers = []
    for index in range(count):
        node = f"raw-{queue}-{index}@{host}"
        argv = [
            sys.executable, "-m", "celery", "-A", __name__, "worker", "--pool", "solo",
            "-Q", queue, "-n", node, "--without-mingle", "--without-gossip",
            "--loglevel", "WARNING",
        ]  # fmt: skip
        env = {**os.environ, "RAW_CELERY_BROKER_URL": broker_url}
        workers.append(
            ManagedProcess(
                f"raw-{queue}-{index}",
                argv,
                env,
                log_dir,
                lambda node=node: pinger.answers(node),
                cwd=Path.cwd(),
            )
        )
    try:
        for worker in workers:
            worker.spawn()
        for worker in workers:
            worker.wait_ready()
    except BaseException:
        for worker in workers:
            with contextlib.suppress(Exception):
                worker.close()
        raise
    return workers


def run_round(broker_url: str, queue: str, jobs: int, sleep_ms: int, timeout: float) -> float:
    """Send `jobs` sleep tasks to `queue` and return the seconds until the last completed."""
    counter = f"raw-done-{time.time_ns()}"
    sender = Celery("raw-driver", broker=broker_url)
    sender.conf.task_ignore_result = True
    try:
        with redis.Redis.from_url(broker_url) as client:
            started = time.perf_counter()
            with sender.producer_or_acquire() as producer:
                for _ in range(jobs):
                    sender.send_task(
                        "raw.sleep", args=[sleep_ms, counter], queue=queue, producer=producer
                    )
            wait_until(
                lambda: int(client.get(counter) or 0) >= jobs,
                timeout,
                interval=0.005,
                what=f"{jobs} raw Celery tasks",
            )
            elapsed = time.perf_counter() - started
            client.delete(counter)
    finally:
        sender.close()
    return elapsed
