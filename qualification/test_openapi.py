"""§4 bad input, generated: schemathesis holds the running API to its own OpenAPI document.

Per operation (examples, coverage and fuzzing phases: valid and invalid data) and stateful (the
document's links chain submit → get → cancel / attempts), once per kind of caller: an operator's
token, a viewer's (403s), a token signed with another secret (401s) and no token at all. Passes
when no response is a server error and every response conforms to the document (status code,
content type, headers, body schema). The hand-written regressions stay in test_bad_input.py.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
import pytest

from .drivers import ANONYMOUS, Target

#: Its own bridge with a short long-poll cap, the document it serves, and tokens for a viewer
#: and signed with another secret.
pytestmark = [pytest.mark.input, pytest.mark.needs("configure", "openapi", "mint-tokens")]

CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
)
SERVER_ERROR = "ST101"  # schemathesis' failure code for a 5xx
#: Long polls (a job read with a wait) are capped here so one request cannot eat the budget.
MAX_WAIT_SECONDS = 2.0
REQUEST_TIMEOUT = MAX_WAIT_SECONDS + 10  # the server's longest legitimate wait, plus margin
#: schemathesis' import and schema load (a cold interpreter on a busy machine).
STARTUP_SECONDS = 60
#: What a run may send at most before the suite calls it hung: every case of every phase, each
#: taking the longest legitimate request; a generous bound reached only when something is wrong.
MOST_REQUESTS = 5000
SCHEMATHESIS = "import sys; from schemathesis.cli import schemathesis; sys.exit(schemathesis())"


@dataclass(frozen=True)
class Caller:
    id: str
    roles: tuple[str, ...] | None  # None: no Authorization header
    forged: bool = False  # signed with a secret the service does not know
    #: Generated cases per operation (fuzzing) and per stateful scenario, by mode: a fixed amount
    #: of work, so a slow machine takes longer but tests exactly as much (no time budget). The
    #: other callers run the finite examples and coverage phases (every operation, positive and
    #: negative boundary cases) to their end.
    examples: dict[str, int] = field(default_factory=lambda: {"quick": 20, "release": 200})

    @property
    def stateful(self) -> bool:
        """Only a caller allowed to create jobs gets ids for the links to follow."""
        return self.roles == ("operator",) and not self.forged


CALLERS = [
    Caller("operator-token", ("operator",)),
    Caller("viewer-token", ("viewer",)),
    Caller("invalid-token", ("operator",), forged=True),
    Caller("missing-token", None),
]


def openapi_url(t: Target) -> str:
    return t.endpoint("openapi")


@pytest.fixture(scope="module")
def api(module_target) -> Target:
    return module_target(workers=1, settings={"MAX_WAIT_SECONDS": str(MAX_WAIT_SECONDS)})


def _operations(t: Target) -> list[str]:
    reply = t.client.request("openapi", token=ANONYMOUS)
    assert reply.status == 200 and isinstance(reply.body, dict), reply.describe()
    return sorted(f"{m.upper()} {p}" for p, ops in reply.body["paths"].items() for m in ops)


def _token(t: Target, caller: Caller) -> str | None:
    """The caller's bearer token (None: no Authorization header)."""
    if caller.roles is None:
        return None
    token = t.client.token("schemathesis", caller.roles)
    return _signed_elsewhere(t, token) if caller.forged else token


def _signed_elsewhere(t: Target, token: str) -> str:
    """The claims of one of the target's tokens, signed with a secret it never saw."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.DecodeError:
        pytest.skip(f"target {t.name} cannot be sent a forged token: its token is not a JWT")
    return jwt.encode(claims, secrets.token_urlsafe(32), algorithm="HS256")


def _argv(url: str, caller: Caller, token: str | None, examples: int, report: Path) -> list[str]:
    argv = [
        sys.executable,
        "-c",
        SCHEMATHESIS,
        "run",
        url,
        "--checks",
        ",".join(CHECKS),
        "--max-examples",
        str(examples),
        "--request-timeout",
        str(REQUEST_TIMEOUT),
        "--workers",
        "1",
        "--generation-database",
        "none",
        "--no-color",
        "--report",
        "json",
        "--report-json-path",
        str(report),
    ]
    if not caller.stateful:
        argv += ["--phases", "examples,coverage"]
    if token is None:
        argv += ["--generation-with-security-parameters", "false"]
    else:
        argv += ["--header", f"Authorization: Bearer {token}"]
    return argv


def _start(
    url: str, caller: Caller, token: str | None, mode: str, workdir: Path
) -> Callable[[], Run]:
    """Start one caller's schemathesis run; the returned function waits for it."""
    folder = workdir / caller.id
    folder.mkdir()
    examples = caller.examples[mode]
    output = (folder / "output.txt").open("w")
    argv = _argv(url, caller, token, examples, folder / "report.json")
    started = time.monotonic()
    process = subprocess.Popen(argv, cwd=folder, stdout=output, stderr=subprocess.STDOUT)

    def finish() -> Run:
        deadline = STARTUP_SECONDS + MOST_REQUESTS * REQUEST_TIMEOUT  # only when hung
        try:
            process.wait(timeout=max(deadline - (time.monotonic() - started), 1))
        finally:
            process.kill()
            process.wait()
            output.close()
        report_path = folder / "report.json"
        report = json.loads(report_path.read_text()) if report_path.exists() else {}
        return Run(report, (folder / "output.txt").read_text(), examples)

    return finish


def _run_all(api: Target, mode: str, workdir: Path) -> tuple[dict[str, Run], float]:
    """The stateful caller's run, and meanwhile the others one after another (two lanes)."""
    url, tokens = openapi_url(api), {c.id: _token(api, c) for c in CALLERS}
    started = time.monotonic()
    stateful = [c for c in CALLERS if c.stateful]
    pending = {c.id: _start(url, c, tokens[c.id], mode, workdir) for c in stateful}
    runs = {c.id: _start(url, c, tokens[c.id], mode, workdir)() for c in CALLERS if not c.stateful}
    runs |= {name: finish() for name, finish in pending.items()}
    return {c.id: runs[c.id] for c in CALLERS}, time.monotonic() - started


@dataclass
class Run:
    report: dict[str, Any]
    output: str
    examples: int

    @property
    def failures(self) -> list[dict[str, Any]]:
        return self.report.get("failures", [])

    def summary(self) -> dict[str, Any]:
        return {
            "testCases": self.report.get("test_cases", {}).get("generated"),
            "operationsTested": self.report.get("operations", {}).get("tested"),
            "phases": {n: p.get("status") for n, p in self.report.get("phases", {}).items()},
            "schemathesisSeconds": round(self.report.get("running_time", 0), 1),
            "examplesPerOperation": self.examples,
            "seed": self.report.get("seed"),
            "errors": len(self.report.get("errors", [])),
            "failures": [
                f"{f['code']} {f['title']} x{f['count']}: {', '.join(f['operations'])}"
                for f in self.failures
            ],
        }


@pytest.mark.check(
    "input.openapi-conformance",
    section="4",
    title="Generated requests (schemathesis: per operation and stateful; operator, viewer, "
    "invalid and missing tokens) get no 5xx and only documented responses",
)
def test_api_conforms_to_its_openapi(api, qualification_mode, tmp_path, evidence):
    documented = _operations(api)
    runs, seconds = _run_all(api, qualification_mode, tmp_path)
    for name, run in runs.items():
        evidence.attach_text(f"{name}/schemathesis.txt", run.output)
        evidence.attach_json(f"{name}/schemathesis-report.json", run.report)
    summaries = {name: run.summary() for name, run in runs.items()}
    evidence.measure(
        callers=summaries,
        testCases=sum(s["testCases"] or 0 for s in summaries.values()),
        seconds=round(seconds, 1),
        documentedOperations=len(documented),
    )
    failures = [f for run in runs.values() for f in run.failures]
    evidence.expect("reports", sorted(n for n, r in runs.items() if r.report), "==", sorted(runs))
    evidence.expect("errors", sum(s["errors"] for s in summaries.values()), "==", 0)
    evidence.expect(
        "operationsTested",
        {n: s["operationsTested"] for n, s in summaries.items()},
        "==",
        {n: len(documented) for n in runs},
    )
    evidence.expect("leastTestCases", min(s["testCases"] or 0 for s in summaries.values()), ">", 0)
    evidence.expect(
        "serverErrors", sum(f["count"] for f in failures if f["code"] == SERVER_ERROR), "==", 0
    )
    evidence.expect(
        "nonConformingResponses",
        sum(f["count"] for f in failures if f["code"] != SERVER_ERROR),
        "==",
        0,
    )
    stateful = {c.id: summaries[c.id]["phases"].get("stateful") for c in CALLERS if c.stateful}
    evidence.expect("statefulPhase", stateful, "==", {name: "success" for name in stateful})
