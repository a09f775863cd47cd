"""§1 runtime configuration: the checklist's variables and commands, run as written, bring up an API
and workers that run jobs; bad configuration stops a process at once with one line naming the
variable.

These are our bridge's own commands, environment variables and readiness report as the checklist
writes them: reference-target checks (`commands`). Jobs go through the target's client; what the
checklist says of readiness is read from the bridge's own API processes over its own wire.
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from .drivers import ANONYMOUS, Client, Reply, Target
from .stack import launch
from .stack.deadlines import STARTUP_SECONDS, Deadlines
from .stack.process import free_port, wait_until

pytestmark = [
    pytest.mark.config,
    pytest.mark.needs("commands"),
    # the checklist's AUTH_DEV_SECRET is 10 bytes: PyJWT warns when the suite signs with it
    pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning"),
]

ROOT = Path(__file__).resolve().parents[1]
CHECKLIST = ROOT / "docs" / "celery-ga-checklist.md"
#: The checklist's `export`s (§1). The broker URLs point at the suite's Redis (same databases).
CHECKLIST_VARS = (
    "JOB_BACKEND",
    "CELERY_BROKER_URL",
    "CELERY_RESULT_BACKEND",
    "JOB_REGISTRY_PATH",
    "AUTH_DEV_SECRET",
)
CHECKLIST_LITERALS = {"JOB_REGISTRY_PATH": "var/jobs/registry.db", "AUTH_DEV_SECRET": "dev-secret"}


def _refused(
    cases: dict[str, tuple[str, dict[str, str], launch.Starter]],
    evidence,
    *,
    base: dict[str, str],
    workdir: Path,
) -> None:
    """Start each case (`variable, env, api|worker`) on `base`; record and assert that each
    refuses with one line naming its variable."""
    procs = {
        name: start(name, launch.shell_env(base, env), workdir / name)
        for name, (_, env, start) in cases.items()
    }
    try:
        launch.settle(procs.values())
    finally:
        for proc in procs.values():
            proc.kill()
    results = {name: proc.refusal() for name, proc in procs.items()}
    for proc in procs.values():
        evidence.attach(proc.log_path)
    evidence.measure(refusals=results)
    for name, (variable, _, _) in cases.items():
        launch.assert_refused(name, results[name], variable)


def _readyz_timeout(t: Target) -> float:
    """Readiness may wait PUBLISH_TIMEOUT_SECONDS for the broker before it answers."""
    return t.deadlines.client(t.deadlines.setting("PUBLISH_TIMEOUT_SECONDS"))


def _bridge_api(t: Target, url: str | None = None) -> Client:
    """Our bridge's own wire to one of its API processes: the target's (`url` None) or one this
    check launched from the checklist's commands. (Not `t.client`: a target may put another
    contract in front of the bridge, and §1 reads readiness as the checklist writes it.)"""
    return t.bridge_client(url)


def _probe(t: Target, operation: str, url: str | None = None) -> Reply:
    """One anonymous `ready` or `health` request to a bridge API process."""
    client = _bridge_api(t, url)
    try:
        return client.request(operation, token=ANONYMOUS, timeout=_readyz_timeout(t))
    finally:
        client.close()


def _body(reply: Reply) -> dict:
    return reply.body if isinstance(reply.body, dict) else {}


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode(errors="replace").partition("=")[::2] for item in raw if item)


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _parent(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


# -- the checklist's environment ---------------------------------------------------------------


@pytest.fixture(scope="module")
def checklist_target(module_target) -> Target:
    """API + one worker run with the checklist's exports: its literal JOB_REGISTRY_PATH (relative,
    resolved in the processes' working directory) and AUTH_DEV_SECRET, the suite's Redis as broker
    (db 0) and result backend (db 1)."""
    return module_target(workers=1, settings=CHECKLIST_LITERALS)


@pytest.mark.needs("configure", "registry", "executions")
@pytest.mark.check(
    "config.env-vars",
    section="1",
    title="With the checklist's variables, API and worker run a job recorded in the registry file",
)
def test_checklist_env_vars(checklist_target, evidence):
    t = checklist_target
    environs = {part.name: _environ(part.pid) for part in t.nodes.processes() if part.pid}
    seen = {name: {var: env.get(var) for var in CHECKLIST_VARS} for name, env in environs.items()}
    job_id = t.client.submit_ok("echo", {"message": "env"})
    job = t.client.wait_terminal([job_id])[job_id]
    registry_file = t.nodes.workdir / CHECKLIST_LITERALS["JOB_REGISTRY_PATH"]
    rows = [row for row in t.observer.jobs() if row["id"] == job_id]
    attempts = t.observer.executions(job_id)
    ready = _body(_probe(t, "ready"))
    evidence.attach_json(
        "process-env.json",
        {
            name: {k: ("<set>" if k == "AUTH_DEV_SECRET" and v else v) for k, v in env.items()}
            for name, env in seen.items()
        },
    )
    evidence.attach_json("registry.json", {"jobs": rows, "attempts": attempts})
    evidence.measure(
        processes=sorted(seen),
        jobBackend={name: env["JOB_BACKEND"] for name, env in seen.items()},
        registryPath=str(registry_file),
        registryFileExists=registry_file.is_file(),
        status=job["status"],
        registryRows=len(rows),
        attempts=[(a["worker"], a["outcome"]) for a in attempts],
        readyzJobBackend=ready.get("jobBackend"),
    )
    assert set(seen) == {"api", "worker-1"}
    for name, env in seen.items():
        missing = [var for var in CHECKLIST_VARS if not env[var]]
        assert not missing, f"{name} runs without {missing}"
        assert env == {var: t.settings[var] for var in CHECKLIST_VARS}, name
        assert env["JOB_BACKEND"] == "celery"
        assert re.fullmatch(r"redis://[^/]+/0", env["CELERY_BROKER_URL"]), env
        assert re.fullmatch(r"redis://[^/]+/1", env["CELERY_RESULT_BACKEND"]), env
        assert env["JOB_REGISTRY_PATH"] == "var/jobs/registry.db"
        assert env["AUTH_DEV_SECRET"] == "dev-secret"
    assert job["status"] == "succeeded", job
    assert registry_file.is_file() and len(rows) == 1 and rows[0]["status"] == "succeeded"
    assert [(a["worker"], a["outcome"]) for a in attempts] == [
        (t.nodes.workers[0].node, "succeeded")
    ]
    assert ready.get("jobBackend") == "celery"


@pytest.mark.needs("configure")
@pytest.mark.check(
    "config.readyz-celery",
    section="1",
    title="/readyz reports jobBackend celery and the broker ok (and not ok when unreachable)",
)
def test_readyz_reports_celery(checklist_target, tmp_path, evidence):
    t = checklist_target
    reachable = _probe(t, "ready")
    dead_broker = f"redis://127.0.0.1:{free_port()}/0"
    api = launch.api(
        "api-dead-broker",
        launch.shell_env(
            t.settings,
            {
                "CELERY_BROKER_URL": dead_broker,
                "CELERY_RESULT_BACKEND": dead_broker[:-1] + "1",
                "JOB_REGISTRY_PATH": str(tmp_path / "registry.db"),
            },
        ),
        tmp_path,
    )
    try:
        wait_until(api.settled, STARTUP_SECONDS, what="the API with a dead broker to serve")
        assert api.started, f"the API did not start with an unreachable broker:\n{api.output()}"
        unreachable = _probe(t, "ready", api.url)
    finally:
        api.stop()
    body, dead = _body(reachable), _body(unreachable)
    evidence.attach_json("readyz.json", {"reachable": body, "unreachable": dead})
    evidence.measure(
        reachable={"status": reachable.status, "jobBackend": body.get("jobBackend")}
        | {name: check.get("ok") for name, check in body.get("checks", {}).items()},
        unreachable={"status": unreachable.status, "jobBackend": dead.get("jobBackend")}
        | {name: check.get("ok") for name, check in dead.get("checks", {}).items()},
    )
    assert reachable.status == 200, reachable.describe()
    assert body["status"] == "ready" and body["jobBackend"] == "celery"
    assert body["checks"]["broker"]["ok"] is True and body["checks"]["registry"]["ok"] is True
    assert unreachable.status == 503, unreachable.describe()
    assert dead["jobBackend"] == "celery" and dead["checks"]["broker"]["ok"] is False


# -- bad configuration: refused at start-up ------------------------------------------------------


@pytest.mark.check(
    "config.bad-broker-url",
    section="1",
    title="A malformed CELERY_BROKER_URL stops the API and the worker with one line naming it",
)
def test_bad_broker_url(tmp_path, evidence):
    base = {
        "JOB_BACKEND": "celery",
        "AUTH_DEV_SECRET": "dev-secret",
        "JOB_REGISTRY_PATH": str(tmp_path / "registry.db"),
    }
    cases = {
        "api-http-url": ("CELERY_BROKER_URL", {"CELERY_BROKER_URL": "http://nope"}, launch.api),
        "worker-not-a-url": ("CELERY_BROKER_URL", {"CELERY_BROKER_URL": "notaurl"}, launch.worker),
    }
    _refused(cases, evidence, base=base, workdir=tmp_path)


@pytest.mark.needs("configure")
@pytest.mark.check(
    "config.bad-config",
    section="1",
    title="JOB_BACKEND=bogus or an unwritable JOB_REGISTRY_PATH stops the process with one line",
)
def test_bad_config(checklist_target, tmp_path, evidence):
    # The worker gets a reachable broker (and a queue of its own): a worker that does not
    # refuse then shows itself ready instead of retrying a connection forever.
    base = {**checklist_target.settings, "CELERY_QUEUE": f"bad-config-{secrets.token_hex(4)}"}
    unwritable = {"JOB_REGISTRY_PATH": "/proc/x/registry.db"}
    cases = {
        "api-job-backend-bogus": ("JOB_BACKEND", {"JOB_BACKEND": "bogus"}, launch.api),
        "api-registry-unwritable": ("JOB_REGISTRY_PATH", unwritable, launch.api),
        "worker-registry-unwritable": ("JOB_REGISTRY_PATH", unwritable, launch.worker),
    }
    _refused(cases, evidence, base=base, workdir=tmp_path)


# -- the checklist's commands, as written ---------------------------------------------------------


@pytest.mark.needs("configure")
@pytest.mark.check(
    "config.api-start",
    section="1",
    title="`uvicorn mcp_bridge.app:create_app --factory --host 0.0.0.0 --port P` serves /healthz",
)
def test_api_start_command(checklist_target, tmp_path, evidence):
    t = checklist_target
    port = free_port()
    argv = ["uvicorn", "mcp_bridge.app:create_app", "--factory", "--host", "0.0.0.0"]
    argv += ["--port", str(port)]
    url = f"http://127.0.0.1:{port}"
    # the checklist's environment, with the registry path made absolute for this working dir
    env = {**t.settings, "JOB_REGISTRY_PATH": str(t.nodes.registry_path)}
    api = launch.Launch("api", argv, launch.shell_env(env), tmp_path, launch.healthz(url))
    try:
        wait_until(api.settled, STARTUP_SECONDS, what="the API to serve /healthz")
        assert api.started, f"`{' '.join(argv)}` did not start:\n{api.output()}"
        health = _probe(t, "health", url)
        ready = _probe(t, "ready", url)
    finally:
        exit_code = api.stop()
    log = api.output()
    evidence.attach(api.log_path)
    evidence.measure(
        command=" ".join(argv),
        healthz={"status": health.status, "body": health.body},
        readyz={"status": ready.status, "jobBackend": _body(ready).get("jobBackend")},
        listening=re.findall(r"Uvicorn running on (\S+)", log),
        exitCodeOnSigterm=exit_code,
        gracefulShutdown="Application shutdown complete" in log,
    )
    assert health.status == 200 and health.body == {"status": "ok"}, health.describe()
    assert ready.status == 200 and _body(ready).get("jobBackend") == "celery", ready.describe()
    assert re.search(rf"Uvicorn running on http://0\.0\.0\.0:{port}\b", log), log
    assert "Application shutdown complete" in log, "no graceful shutdown on SIGTERM"
    # uvicorn re-raises the SIGTERM it handled once shut down: -15 is a clean exit too.
    assert exit_code in (0, -signal.SIGTERM), exit_code


def _token_snippet() -> str:
    """The checklist's `TOKEN=$(python - <<'PY' … PY\n)` block, verbatim."""
    text = CHECKLIST.read_text()
    match = re.search(r"^[ \t]*TOKEN=\$\(python - <<'PY'\n.*?\nPY\n\)", text, re.M | re.S)
    assert match, f"{CHECKLIST} has no `TOKEN=$(python - <<'PY' … PY)` snippet any more"
    return match.group(0).strip()


@pytest.mark.needs("configure", "mint-tokens")
@pytest.mark.check(
    "config.token-command",
    section="1",
    title="The checklist's token command mints a token the API accepts with AUTH_DEV_SECRET",
)
def test_token_command(checklist_target, tmp_path, evidence):
    t = checklist_target
    assert t.settings["AUTH_DEV_SECRET"] == "dev-secret"
    snippet = _token_snippet()
    script = f'{snippet}\nprintf "%s" "$TOKEN"\n'
    minted = subprocess.run(
        ["bash", "-c", script],
        env=launch.shell_env(),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=STARTUP_SECONDS,
    )
    evidence.attach_text(
        "token-command.log",
        f"$ bash -c <<'SH'\n{script}SH\n--- exit {minted.returncode}\n"
        f"--- stdout\n{minted.stdout}\n--- stderr\n{minted.stderr}",
    )
    token = minted.stdout.strip()
    assert minted.returncode == 0 and token.count(".") == 2, minted.stderr
    submitted = t.client.submit("echo", {"message": "token-command"}, token=token)
    read = t.client.get(str(submitted.job_id), token=token)
    forged = t.client.submit(
        "echo", {"message": "x"}, token=t.client.token(secret="not-dev-secret")
    )
    owner = (submitted.job or {}).get("owner")
    evidence.measure(
        exitCode=minted.returncode,
        submitStatus=submitted.status,
        owner=owner,
        readStatus=read.status,
        otherSecretStatus=forged.status,
    )
    assert submitted.status == 202, submitted.describe()
    assert owner == "bench"
    assert read.status == 200, read.describe()
    assert forged.status == 401, "the API does not verify tokens against AUTH_DEV_SECRET"


def _make_argv() -> tuple[list[str], str]:
    """`make celery-worker`; without `make install`'s .venv, the tested interpreter stands in."""
    if (ROOT / ".venv" / ".installed").exists():
        return ["make", "--no-print-directory", "celery-worker"], "make celery-worker"
    argv = ["make", "--no-print-directory", "-o", ".venv/.installed", "celery-worker"]
    return [*argv, f"PY={sys.executable}"], "make celery-worker (PY=tested interpreter, no .venv)"


@pytest.mark.needs("boot", "executions")
@pytest.mark.check(
    "config.worker-start",
    section="1",
    title="`make celery-worker` starts a worker that runs jobs and exits cleanly on SIGTERM",
)
def test_worker_start_command(target, tmp_path, evidence):
    has_target = subprocess.run(
        ["make", "-n", "-o", ".venv/.installed", "celery-worker"],
        cwd=ROOT,
        capture_output=True,
        timeout=STARTUP_SECONDS,
    )
    if has_target.returncode != 0:
        pytest.fail(f"no `make celery-worker` target: {has_target.stderr.decode().strip()}")
    t = target(workers=0, start_api=False)
    argv, how = _make_argv()
    env = launch.shell_env(t.settings)
    worker = launch.Launch("make-celery-worker", argv, env, tmp_path, lambda _: True, cwd=ROOT)
    try:
        t.nodes.api.start()  # boots while the worker does
        job_id = t.client.submit_ok("echo", {"message": "make celery-worker"})
        job = t.client.wait_terminal([job_id], timeout=t.deadlines.jobs(spawn=True))[job_id]
        runs = t.observer.executions(job_id)
        workers = [
            pid for pid in _descendants(worker.proc.pid) if "mcp_bridge.worker" in _cmdline(pid)
        ]
        main = next((pid for pid in workers if _parent(pid) not in workers), None)
        # SIGTERM the worker as a supervisor would; make then exits with the worker's status.
        if main is not None:
            os.kill(main, signal.SIGTERM)
        exit_code = worker.wait_exit(Deadlines.shutdown())
        left = [pid for pid in workers if Path(f"/proc/{pid}").exists()]
    finally:
        worker.kill()
    log = worker.output()
    nodes = re.findall(r"(\S+@\S+) ready\.", log)
    evidence.attach(worker.log_path)
    evidence.attach_json("executions.json", runs)
    evidence.measure(
        command=how,
        status=job["status"],
        workerNodes=nodes,
        executedBy=[run["worker"] for run in runs],
        makeExitCode=exit_code,
        warmShutdown="Warm shutdown" in log,
        processesLeft=len(left),
    )
    assert job["status"] == "succeeded" and len(runs) == 1
    assert runs[0]["outcome"] == "succeeded", runs  # the client's word against the observer's
    assert [run["worker"] for run in runs] == nodes[:1], (runs, nodes)
    assert main is not None, f"no mcp_bridge.worker process under make: {log[-2000:]}"
    assert exit_code == 0, f"make celery-worker exited {exit_code} after SIGTERM"
    assert "Warm shutdown" in log
    assert not left, f"worker processes outlived make: {left}"
