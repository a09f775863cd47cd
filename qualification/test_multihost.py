"""§4 several hosts for real: API replicas and workers in network namespaces of their own,
sharing nothing but Redis and the PostgreSQL registry (reached over a veth link).

The "hosts" are network namespaces the suite makes (qualification/stack/netns.py); each process
runs in its host's namespace with its own working directory, and traffic goes only to the
addresses of those namespaces. Skipped, saying why, where namespaces or PostgreSQL binaries are
not available.

The check boots our bridge from its own commands (`commands`) into hosts of its own, so it is
the reference target's alone; it reaches each API through the reference driver's client and
reads the attempts as an administrator would (the API observer).
"""

from __future__ import annotations

import secrets
import sys
from contextlib import ExitStack
from pathlib import Path

import pytest
import redis as redis_py

from .drivers import ANONYMOUS, TERMINAL, Job
from .drivers.deployed import ApiObserver
from .drivers.reference import RestClient
from .stack.bridge import FAST_RECOVERY_ENV, WorkerPinger
from .stack.deadlines import Deadlines
from .stack.launch import shell_env
from .stack.managed import ManagedProcess
from .stack.netns import Host, Network
from .stack.postgres import NO_POSTGRES_HINT, BinaryPostgres, find_postgres_bin
from .stack.process import wait_until
from .stack.redis import NO_REDIS_HINT, find_redis_binary

pytestmark = pytest.mark.faults

JOBS = 40
API_PORT = 8000


def _redis(data: Host, directory: Path, binary: Path) -> ManagedProcess:
    argv = data.argv(
        [str(binary), "--bind", data.address, "--port", "6379", "--protected-mode", "no"]
        + ["--save", "", "--appendonly", "no", "--dir", str(directory)]
    )

    def answers() -> bool:
        try:
            with redis_py.Redis(host=data.address, port=6379, socket_timeout=2) as client:
                return bool(client.ping())
        except redis_py.RedisError:
            return False

    return ManagedProcess("redis", argv, shell_env(), directory, answers)


def _api(
    host: Host, env: dict[str, str], log_dir: Path, cwd: Path, client: RestClient
) -> ManagedProcess:
    argv = host.argv(
        [sys.executable, "-m", "uvicorn", "mcp_bridge.app:create_app", "--factory"]
        + ["--host", host.address, "--port", str(API_PORT), "--no-access-log"]
    )

    def ready() -> bool:
        return client.request("ready", token=ANONYMOUS, timeout=10).status == 200

    return ManagedProcess(f"api-{host.netns}", argv, env, log_dir, ready, cwd=cwd)


def _worker(host: Host, env: dict[str, str], log_dir: Path, cwd: Path, pinger: WorkerPinger):
    node = f"w-{host.netns}@multihost"
    argv = host.argv([sys.executable, "-m", "mcp_bridge.worker", "--pool", "solo", "-n", node])
    return ManagedProcess(
        f"worker-{host.netns}", argv, env, log_dir, lambda: pinger.answers(node), cwd=cwd
    )


@pytest.mark.needs("boot", "configure", "commands")
@pytest.mark.check(
    "registry.multi-host",
    section="4",
    title="APIs and workers on separate hosts share only Redis and PostgreSQL: every job runs "
    "once, each API sees every job",
)
def test_hosts_share_only_the_broker_and_the_registry(tmp_path, evidence):
    why = Network.unavailable()
    if why is not None:
        pytest.skip(why)
    if find_postgres_bin() is None:
        pytest.skip(NO_POSTGRES_HINT)
    redis_binary = find_redis_binary()
    if redis_binary is None:
        pytest.skip(NO_REDIS_HINT)
    secret = secrets.token_urlsafe(32)
    with Network() as net, ExitStack() as parts:
        data, hosts = net.host("data"), [net.host("a"), net.host("b")]
        broker = _redis(data, tmp_path, redis_binary).start()
        parts.callback(broker.close)
        registry = BinaryPostgres(listen=data.address, netns=data.netns)
        parts.callback(registry.close)
        registry.start()
        url = registry.create_database("multihost")
        pinger = WorkerPinger(f"redis://{data.address}:6379/0")
        parts.callback(pinger.close)
        apis, workers, dirs, clients = [], [], [], []
        for host in hosts:
            home = tmp_path / host.netns
            (home / "tmp").mkdir(parents=True)
            dirs.append(home)
            env = shell_env(
                FAST_RECOVERY_ENV,
                {
                    "JOB_BACKEND": "celery",
                    "CELERY_BROKER_URL": f"redis://{data.address}:6379/0",
                    "CELERY_RESULT_BACKEND": f"redis://{data.address}:6379/1",
                    "CELERY_QUEUE": "multihost",
                    "JOB_REGISTRY_URL": url,
                    "JOB_REGISTRY_PATH": str(home / "registry.db"),  # must stay unused
                    "AUTH_DEV_SECRET": secret,
                    "TMPDIR": str(home / "tmp"),
                    "PYTHONUNBUFFERED": "1",
                },
            )
            deadlines = Deadlines(env)
            client = RestClient(
                f"http://{host.address}:{API_PORT}", deadlines, secret=secret, name=host.netns
            )
            parts.callback(client.close)
            clients.append(client)
            apis.append(_api(host, env, home, home, client))
            workers.append(_worker(host, env, home, home, pinger))
        for part in apis + workers:
            parts.callback(part.close)
            part.spawn()
        for part in apis + workers:
            part.wait_ready()

        submitted = []  # (job id, index of the API that took it)
        for i in range(JOBS):
            reply = clients[i % 2].submit("sleep", {"ms": 50})
            assert reply.status == 202 and reply.job_id, reply.describe()
            submitted.append((reply.job_id, i % 2))

        def other_api_sees_all_terminal() -> list[Job] | None:
            jobs = [clients[1 - api].get(job_id).job or Job() for job_id, api in submitted]
            return jobs if all(job.get("status") in TERMINAL for job in jobs) else None

        jobs = wait_until(other_api_sees_all_terminal, deadlines.jobs(JOBS), what="every job")
        observers = [ApiObserver(client) for client in clients]
        ran_on, outcomes = set(), {}
        for job_id, api in submitted:
            runs = observers[api].executions(job_id)
            outcomes[job_id] = [run["outcome"] for run in runs]
            ran_on.update(run["worker"].split("@")[0].removeprefix("w-") for run in runs)
        scrape = clients[0].metrics().text
        finished = sum(
            float(line.rsplit(" ", 1)[1])
            for line in scrape.splitlines()
            if line.startswith("mcp_bridge_jobs_finished_total{")
        )
        evidence.measure(
            hosts={host.netns: host.address for host in [data, *hosts]},
            registry="postgres",
            jobs=JOBS,
        )
        evidence.expect("statuses", sorted({job["status"] for job in jobs}), "==", ["succeeded"])
        evidence.expect("attemptsPerJob", sorted({job["attempts"] for job in jobs}), "==", [1])
        evidence.expect("hostsThatRanJobs", sorted(ran_on), "==", sorted(h.netns for h in hosts))
        evidence.expect("finishedOnHostAMetrics", finished, "==", JOBS)
        registry_files = [str(p) for home in dirs for p in home.rglob("*.db")]
        evidence.expect("registryFilesOnHosts", registry_files, "==", [])
        # The client's word against the attempts: each job read succeeded ran once, successfully.
        assert all(seen == ["succeeded"] for seen in outcomes.values()), outcomes
