"""The qualification pytest plugin: options, markers, stack fixtures and evidence records.

Loaded by the root conftest.py and by the `pytest11` entry point. It boots nothing by itself:
a check gets a Redis, an API and workers only when it asks for a stack.
"""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from .contract import CATALOGUE, Outcome, PassRecord, Selection, base_id
from .drivers import Driver, Target, Unsupported, load_driver
from .drivers.reference import REDIS_INFO, require_restartable, restartable_registry  # noqa: F401
from .evidence import CheckRecorder, new_run_id, utc_now, write_run

RECORDER = pytest.StashKey[CheckRecorder]()
REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()
RUN_DIR = pytest.StashKey[Path]()
DRIVER = pytest.StashKey[Driver]()
WORKER_TARGETS = pytest.StashKey[list[dict[str, Any]]]()
EXPECTED = pytest.StashKey[list[str]]()
SESSION_START = pytest.StashKey[str]()
SETUP_START = pytest.StashKey[float]()

AREAS = {
    "config": "§1 runtime configuration",
    "bench": "§2 benchmark harness",
    "scaling": "§3 throughput validation (1 → 4 workers)",
    "idempotency": "§4 durable registry and idempotency",
    "faults": "§4 restarts and faults (runbooks)",
    "monitoring": "§4 monitoring (/metrics)",
    "security": "§4 security (tokens and roles)",
    "input": "§4 bad input",
    "mcp": "§4 MCP servers and the /mcp endpoint",
    "power": "§4 the suite's power: seeded faults it must catch",
}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("qualification", "MCP bridge release qualification")
    group.addoption(
        "--redis",
        default="auto",
        help="auto | container | binary | redis://HOST:PORT/DB (default: auto)",
    )
    group.addoption("--redis-image", default="redis:7", help="image for --redis container")
    group.addoption(
        "--registry",
        default="sqlite",
        help="sqlite (the file, default) | postgres (a cluster the suite starts from the "
        "machine's binaries) | postgresql://USER@HOST:PORT/DB (a server it may not restart)",
    )
    group.addoption(
        "--target",
        default="reference",
        help="reference (boot this repository's bridge, default) | deployed (a running bridge: "
        "--base-url, --token, --admin-token; only non-destructive checks) | "
        "package.module:factory (a third-party driver; docs/writing-a-driver.md)",
    )
    group.addoption("--base-url", default=None, help="--target deployed: the bridge's URL")
    group.addoption("--token", default=None, help="--target deployed: an operator's bearer token")
    group.addoption(
        "--admin-token",
        default=None,
        help="--target deployed: an admin's bearer token (lets checks observe executions)",
    )
    group.addoption("--workers", type=int, default=2, help="workers in multi-worker checks")
    group.addoption(
        "--evidence-dir",
        default=None,
        help="run directory for evidence (default var/qualification/<run-id>/)",
    )
    group.addoption(
        "--qualification-mode",
        choices=("quick", "release"),
        default="quick",
        help="quick (CI) or release (full scaling rounds)",
    )
    group.addoption(
        "--check-id",
        action="append",
        default=[],
        metavar="ID",
        help="run only these checks (catalogue ids, repeatable; e.g. --check-id faults.fencing)",
    )
    group.addoption(
        "--scaling-ratio",
        type=float,
        default=0.9,
        help="least 95%% CI lower bound of the bridge's 1 → 4 worker speedup divided by plain "
        "Celery's in the same rounds (default 0.9)",
    )
    group.addoption(
        "--scaling-threshold",
        type=float,
        default=3.5,
        help="the checklist's absolute 1 → 4 worker speedup figure (default 3.5)",
    )
    group.addoption(
        "--chaos-duration",
        type=float,
        default=None,
        help="seconds of chaos workload and faults (default: the quick run; a soak: 600)",
    )
    group.addoption(
        "--chaos-seed",
        type=int,
        default=None,
        help="seed of the chaos schedule and workload (default: a new one, recorded in evidence)",
    )
    group.addoption(
        "--chaos-interval",
        type=float,
        default=None,
        help="mean seconds between two chaos faults (default: the quick run's)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "check(id, section, title): a GA checklist check; writes an evidence record"
    )
    config.addinivalue_line("markers", "serial: must run alone (excluded from xdist passes)")
    config.addinivalue_line(
        "markers",
        "needs(*capabilities): what the check asks of the target (drivers/base.py "
        "CAPABILITIES); a target lacking one skips the check, which the report shows UNKNOWN",
    )
    for area, text in AREAS.items():
        config.addinivalue_line("markers", f"{area}: {text}")
    workerinput = getattr(config, "workerinput", None)
    if workerinput and "qualification_run_dir" in workerinput:
        run_dir = Path(workerinput["qualification_run_dir"])
    elif config.getoption("evidence_dir"):
        run_dir = Path(config.getoption("evidence_dir")).resolve()
    else:
        run_dir = config.rootpath / "var" / "qualification" / new_run_id()
    config.stash[RUN_DIR] = run_dir
    parallel = config.pluginmanager.hasplugin("xdist") and config.getoption("numprocesses", None)
    if parallel and not workerinput and driver_of(config).shared:
        raise pytest.UsageError(
            f"--target {config.getoption('target')} is one shared bridge: run its checks one at a "
            "time (no -n), or the checks that count its jobs would count each other's"
        )
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(_XdistHooks(run_dir), "qualification-xdist")


class _XdistHooks:
    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir

    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput["qualification_run_dir"] = str(self.run_dir)

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        """Every xdist worker collects the same checks; keep the first manifest that arrives."""
        described = getattr(node, "workeroutput", {}).get("qualification_target")
        if described is not None:
            node.config.stash.setdefault(WORKER_TARGETS, []).append(described)
        expected = getattr(node, "workeroutput", {}).get("qualification_expected")
        if expected is not None and not node.config.stash.get(EXPECTED, None):
            node.config.stash[EXPECTED] = list(expected)


def pytest_sessionstart(session: pytest.Session) -> None:
    session.config.stash[SESSION_START] = utc_now()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    _select_check_ids(config, items)
    for item in items:
        marker = item.get_closest_marker("check")
        if marker and marker.args:
            if base_id(marker.args[0]) not in CATALOGUE:
                raise pytest.UsageError(
                    f"{item.nodeid}: check id {marker.args[0]!r} is not in the catalogue "
                    "(qualification/contract.py CATALOGUE)"
                )
            area = marker.args[0].split(".")[0]
            if area in AREAS:
                item.add_marker(getattr(pytest.mark, area))


def _select_check_ids(config: pytest.Config, items: list[pytest.Item]) -> None:
    """`--check-id`: keep only the checks named (by catalogue id); an unknown id is an error."""
    wanted = set(config.getoption("check_id"))
    if not wanted:
        return
    unknown = sorted(wanted - set(CATALOGUE))
    if unknown:
        raise pytest.UsageError(f"--check-id: not in the catalogue: {', '.join(unknown)}")
    keep, drop = [], []
    for item in items:
        marker = item.get_closest_marker("check")
        chosen = marker is not None and marker.args and base_id(marker.args[0]) in wanted
        (keep if chosen else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def pytest_collection_finish(session: pytest.Session) -> None:
    """The manifest: every check id this session will execute (after -m/-k deselection)."""
    expected = []
    for item in session.items:
        marker = item.get_closest_marker("check")
        if marker and marker.args:
            expected.append(_check_id(item, marker))
    session.config.stash[EXPECTED] = expected
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["qualification_expected"] = expected


def _selection(config: pytest.Config) -> Selection:
    return Selection(
        args=[str(arg) for arg in config.invocation_params.args],
        markers=config.getoption("markexpr") or None,
        keyword=config.getoption("keyword") or None,
        checkIds=config.getoption("check_id"),
    )


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Start the check's clock before any fixture (module-scoped setup included) and label its
    JUnit test case with the check id, section and evidence record."""
    item.stash[SETUP_START] = time.time()
    for needs in item.iter_markers("needs"):
        missing = [c for c in needs.args if c not in driver_of(item.config).capabilities]
        if missing:
            pytest.skip(str(Unsupported(missing[0], f"target {driver_of(item.config).name}")))
    marker = item.get_closest_marker("check")
    if marker and marker.args:
        check_id = _check_id(item, marker)
        record = item.config.stash[RUN_DIR] / "checks" / f"{check_id}.json"
        item.user_properties.extend(
            [
                ("check_id", check_id),
                ("section", str(marker.kwargs.get("section", ""))),
                ("evidence", str(record)),
            ]
        )


def _check_id(item: pytest.Item, marker: pytest.Mark) -> str:
    callspec = getattr(item, "callspec", None)
    return f"{marker.args[0]}[{callspec.id}]" if callspec else marker.args[0]


def _recorder(item: pytest.Item) -> CheckRecorder | None:
    if RECORDER in item.stash:
        return item.stash[RECORDER]
    marker = item.get_closest_marker("check")
    if marker is None:
        return None
    config = item.config
    extra = [f"--redis={config.getoption('redis')}"] if config.getoption("redis") != "auto" else []
    if config.getoption("target") != "reference":
        extra.append(f"--target={config.getoption('target')}")
        if config.getoption("base_url"):
            extra += [f"--base-url={config.getoption('base_url')}", "--token=…"]
    if config.getoption("registry") != "sqlite":
        extra.append(f"--registry={config.getoption('registry')}")
    if config.getoption("qualification_mode") != "quick":
        extra.append(f"--qualification-mode={config.getoption('qualification_mode')}")
    recorder = CheckRecorder(
        config.stash[RUN_DIR],
        _check_id(item, marker),
        str(marker.kwargs.get("section", "")),
        marker.kwargs.get("title", item.name),
        item.nodeid,
        shlex.join(["pytest", item.nodeid, *extra]),
        started=item.stash.get(SETUP_START, None),
    )
    item.stash[RECORDER] = recorder
    return recorder


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    """A check that asks the target for something it cannot do is skipped, with the reason."""
    try:
        return (yield)
    except Unsupported as why:
        pytest.skip(str(why))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    report: pytest.TestReport = yield
    if report.failed and call.excinfo is not None and item.get_closest_marker("check"):
        report.sections.append(("qualification reason", one_line_reason(call.excinfo.value)))
    item.stash.setdefault(REPORTS, {})[report.when] = report
    if report.when == "teardown":
        recorder = _recorder(item)
        if recorder is not None:
            outcome, reason = _outcome(item.stash[REPORTS])
            recorder.write(outcome, reason)
    return report


def _outcome(reports: dict[str, pytest.TestReport]) -> tuple[Outcome, str | None]:
    """passed only when the check ran and passed; a skip is never a pass."""
    for when in ("setup", "call", "teardown"):
        report = reports.get(when)
        if report is None:
            continue
        if report.skipped:
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else "skipped"
            return Outcome.SKIPPED, str(reason).removeprefix("Skipped: ")
        if report.failed:
            kind = Outcome.FAILED if when == "call" else Outcome.ERROR
            reason = dict(report.sections).get("qualification reason")
            return kind, reason or _last_line(report.longreprtext)
    if "call" not in reports:
        return Outcome.SKIPPED, "did not run"
    return Outcome.PASSED, None


def one_line_reason(error: BaseException) -> str:
    """What was expected and what was seen, in one line: exception groups unwrapped to their
    first leaf, pytest's assertion explanation cut to its first line."""
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    text = str(error).strip().splitlines()
    message = text[0] if text else ""
    if isinstance(error, AssertionError):
        return message[:500] or "assertion failed"
    return f"{type(error).__name__}: {message}"[:500]


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:500] if lines else "failed"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    run_dir = config.stash[RUN_DIR]
    expected = config.stash.get(EXPECTED, [])
    if config.option.collectonly:
        return
    workeroutput = getattr(config, "workeroutput", None)
    if workeroutput is not None:
        if DRIVER in config.stash:
            workeroutput["qualification_target"] = config.stash[DRIVER].describe()
        return
    if not (expected or (run_dir / "checks").exists()):
        return
    info = config.stash.get(REDIS_INFO, {})
    this_pass = PassRecord(
        command=shlex.join(["pytest", *config.invocation_params.args]),
        selection=_selection(config),
        expected=expected,
        startedAt=config.stash.get(SESSION_START, utc_now()),
        finishedAt=utc_now(),
        exitStatus=int(exitstatus),
        target=_target_record(config),
    )
    write_run(
        run_dir,
        this_pass,
        mode=config.getoption("qualification_mode"),
        redisProvisioner=info.get("provisioner"),
        redisVersion=info.get("version"),
    )
    latest = run_dir.parent / "latest"
    if run_dir.parent.name == "qualification":
        try:
            latest.unlink(missing_ok=True)
            latest.symlink_to(run_dir.name)
        except OSError:
            pass


def _target_record(config: pytest.Config) -> dict[str, Any]:
    """The driver's description; jobs a deployed target was given are summed over xdist workers."""
    record = driver_of(config).describe()
    workers = config.stash.get(WORKER_TARGETS, [])
    if workers and "jobsCreated" in record:
        record["jobsCreated"] = sum(w.get("jobsCreated", 0) for w in workers)
    return record


def progress(config: pytest.Config, line: str) -> None:
    """A progress line that reaches the console at once, captured output or not (long checks)."""
    capture = config.pluginmanager.get_plugin("capturemanager")
    if capture is None:
        print(line, flush=True)
        return
    with capture.global_and_fixture_disabled():
        print(line, flush=True)


def pytest_report_header(config: pytest.Config) -> list[str]:
    return [
        f"qualification: evidence {config.stash[RUN_DIR]} · mode "
        f"{config.getoption('qualification_mode')} · target {config.getoption('target')}"
        f" · redis {config.getoption('redis')} · registry {config.getoption('registry')}"
    ]


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """Name the evidence directory and preview this pass's part of the GA gate."""
    if config.option.collectonly or hasattr(config, "workerinput"):
        return
    expected = config.stash.get(EXPECTED, [])
    if not expected:
        return
    run_dir = config.stash[RUN_DIR]
    counts: dict[str, list[str]] = {}
    for check_id in expected:
        path = run_dir / "checks" / f"{check_id}.json"
        outcome = json.loads(path.read_text())["outcome"] if path.exists() else "no record"
        counts.setdefault(outcome, []).append(check_id)
    write = terminalreporter.write_line
    terminalreporter.section("qualification evidence")
    write(f"evidence: {run_dir}  (mode {config.getoption('qualification_mode')})")
    described = _target_record(config)
    if "jobsCreated" in described:
        write(f"target {described['name']}: {described['jobsCreated']} job(s) created there")
    write("checks: " + ", ".join(f"{len(ids)} {name}" for name, ids in sorted(counts.items())))
    blocking = [cid for name, ids in counts.items() if name != "passed" for cid in ids]
    if blocking:
        shown = ", ".join(blocking[:8]) + (" …" if len(blocking) > 8 else "")
        write(f"gate preview: NOT PASS — {len(blocking)} check(s) not passed: {shown}")
    else:
        write("gate preview: every check of this pass passed (the report decides the gate)")


# -- fixtures ----------------------------------------------------------------------------------


@pytest.fixture
def evidence(request: pytest.FixtureRequest) -> CheckRecorder:
    """The current check's evidence recorder (the test must carry a `check` marker)."""
    recorder = _recorder(request.node)
    if recorder is None:
        raise pytest.UsageError(f"{request.node.nodeid} uses `evidence` without a check marker")
    return recorder


@pytest.fixture(scope="session")
def worker_count(request: pytest.FixtureRequest) -> int:
    """Workers of the multi-worker checks (`--workers`; at least 2: one fails, one takes over)."""
    return max(2, request.config.getoption("workers"))


@pytest.fixture(scope="session")
def qualification_mode(request: pytest.FixtureRequest) -> str:
    return request.config.getoption("qualification_mode")


def driver_of(config: pytest.Config) -> Driver:
    """The session's driver (`--target`), made once."""
    if DRIVER not in config.stash:
        driver = load_driver(config.getoption("target"), config)
        config.stash[DRIVER] = driver
        config.add_cleanup(driver.close)
    return config.stash[DRIVER]


TargetFactory = Callable[..., Target]


def _target_factory(request: pytest.FixtureRequest, tmp: Path) -> tuple[TargetFactory, list]:
    made: list[Target] = []

    def make(
        workers: int = 1,
        backend: str = "celery",
        settings: dict[str, str | None] | None = None,
        start_api: bool = True,
        broker: bool | None = None,
        env: dict[str, str | None] | None = None,
        redis: bool | None = None,
    ) -> Target:
        """A target for this check. `settings` (the checklist's environment variables; a None
        value unsets one, so the bridge's own default applies) need the `configure` capability.
        `broker` defaults to on for the Celery backend. (`env`/`redis`: older spellings.)"""
        workdir = tmp / f"stack-{len(made) + 1}"
        try:
            target = driver_of(request.config).launch(
                workdir,
                workers=workers,
                settings={**(env or {}), **(settings or {})} or None,
                backend=backend,
                start_api=start_api,
                broker=broker if broker is not None else redis,
            )
        except Unsupported as why:
            pytest.skip(str(why))
        made.append(target)
        return target

    return make, made


def _teardown(made: list[Target], recorder: CheckRecorder | None, failed: bool) -> None:
    for index, target in enumerate(made, start=1):
        broker = getattr(target.nodes, "redis", None)
        target.close()
        if recorder is not None and failed:
            for log in target.log_files():
                recorder.attach(log, f"stack-{index}-{log.name}")
            if broker is not None:
                recorder.attach_text(f"stack-{index}-redis.log", broker.logs())
        if broker is not None:
            broker.close()


@pytest.fixture
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TargetFactory]:
    """`target(workers=2)` starts a bridge for this check (the reference driver boots Redis,
    the API and workers) and tears it down after; a deployed target is handed over as is."""
    make, made = _target_factory(request, tmp_path)
    try:
        yield make
    finally:
        reports = request.node.stash.get(REPORTS, {})
        failed = any(r.failed for r in reports.values())
        _teardown(made, request.node.stash.get(RECORDER, None), failed)


@pytest.fixture(scope="module")
def module_target(request: pytest.FixtureRequest, tmp_path_factory) -> Iterator[TargetFactory]:
    """A target factory whose targets live for the whole module (measurements shared by checks)."""
    make, made = _target_factory(request, tmp_path_factory.mktemp("module"))
    try:
        yield make
    finally:
        _teardown(made, None, False)


@pytest.fixture(scope="module")
def shared_target(request: pytest.FixtureRequest, tmp_path_factory) -> Iterator[Target]:
    """One Celery target (1 worker) shared by the non-destructive checks of a module."""
    make, made = _target_factory(request, tmp_path_factory.mktemp("shared"))
    try:
        yield make(workers=1)
    finally:
        _teardown(made, None, False)
