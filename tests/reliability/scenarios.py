"""The reliability scenarios: each drives a running system through the public API and returns an
``Outcome`` — what it tried, what came back, and the problems it saw.

The tests in this folder run them in a bounded form and assert ``outcome.passed``; the benchmark
(``bench/reliability.py``) runs them with the issue's numbers and prints the outcomes as one table.
Nothing here starts a server: callers hand in a gateway URL and tokens (see ``conftest.py`` and
the benchmark for the set-ups).
"""

from __future__ import annotations

import json
import statistics
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from executors import AuditEvent, AuditLog, AuditQuery

TERMINAL = frozenset({"succeeded", "failed", "timed_out", "denied", "approval_required", "crashed"})


@dataclass
class Outcome:
    """One row of the table: the scenario, its load and faults, bad inputs tried, results lost."""

    scenario: str
    load: str = "-"
    faults: str = "-"
    bad_inputs: int = 0
    lost: int = 0
    #: Figures worth printing (throughput, p99, counts).
    figures: str = ""
    problems: list[str] = field(default_factory=list)
    #: Security counters, summed over the table.
    bypasses: int = 0
    leaks: int = 0
    server_errors: int = 0

    @property
    def passed(self) -> bool:
        return not self.problems and not (self.lost or self.bypasses or self.leaks or self.server_errors)

    def problem(self, text: str) -> None:
        self.problems.append(text)

    def explain(self) -> str:
        """What went wrong, for an assertion message."""
        counters = f"lost={self.lost} bypasses={self.bypasses} leaks={self.leaks} 500s={self.server_errors}"
        return f"{self.scenario}: {counters}\n  " + "\n  ".join(self.problems[:40])


def table(outcomes: Sequence[Outcome]) -> str:
    """The outcomes as the issue's table, the security totals, each row's figures and what failed."""
    headers = ("scenario", "load", "faults", "bad inputs tried", "results lost", "result")
    rows = [
        (o.scenario, o.load, o.faults, str(o.bad_inputs or "-"), str(o.lost), "pass" if o.passed else "FAIL")
        for o in outcomes
    ]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    line = "  ".join("{:<" + str(w) + "}" for w in widths)
    lines = [line.format(*headers), line.format(*("-" * w for w in widths))]
    lines += [line.format(*r).rstrip() for r in rows]
    totals = {
        "results lost": sum(o.lost for o in outcomes),
        "bypasses": sum(o.bypasses for o in outcomes),
        "secrets leaked": sum(o.leaks for o in outcomes),
        "unhandled 500s": sum(o.server_errors for o in outcomes),
        "bad inputs tried": sum(o.bad_inputs for o in outcomes),
    }
    lines += ["", ", ".join(f"{value} {name}" for name, value in totals.items()), "", "Figures:"]
    lines += [f"  {o.scenario}: {o.figures or '-'}" for o in outcomes]
    lines += [f"\nFAILED {o.explain()}" for o in outcomes if not o.passed]
    return "\n".join(lines)


#: The outcomes the tests of this session checked, printed as the table when pytest ends.
CHECKED: list[Outcome] = []


def check(outcome: Outcome) -> None:
    """Assert ``outcome`` passed, and keep it for the session's table."""
    CHECKED.append(outcome)
    assert outcome.passed, outcome.explain()


def percentile(samples: Sequence[float], q: float) -> float:
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@contextmanager
def api(url: str, token: str | None, timeout: float = 120.0) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with httpx.Client(base_url=url, headers=headers, timeout=timeout) as client:
        yield client


def wait_terminal(http: httpx.Client, task_ids: Iterable[str], *, timeout: float) -> dict[str, dict[str, Any]]:
    """Each task's view once it is terminal (or its last view when ``timeout`` runs out)."""
    views: dict[str, dict[str, Any]] = {}
    waiting = list(task_ids)
    deadline = time.monotonic() + timeout
    while waiting:
        still = []
        for task_id in waiting:
            response = http.get(f"/api/v1/tasks/{task_id}")
            view = response.json() if response.status_code == 200 else {"status": f"http {response.status_code}"}
            views[task_id] = view
            if view.get("status") not in TERMINAL:
                still.append(task_id)
        waiting = still
        if waiting:
            if time.monotonic() > deadline:
                break
            time.sleep(0.2)
    return views


def history(http: httpx.Client, since: datetime) -> list[dict[str, Any]]:
    """Every task record created since ``since``, paged through the API."""
    items: list[dict[str, Any]] = []
    offset = 0
    while True:
        page = http.get("/api/v1/tasks", params={"since": since.isoformat(), "limit": 500, "offset": offset}).json()
        items.extend(page["items"])
        offset += len(page["items"])
        if not page["items"] or offset >= page["total"]:
            return items


def audit_events(audit: AuditLog, since: datetime, event: AuditEvent) -> Counter[str]:
    """How many ``event`` records each task id has since ``since``."""
    counts: Counter[str] = Counter()
    offset = 0
    while True:
        records = audit.query(AuditQuery(event=event.value, since=since, limit=5000, offset=offset))
        counts.update(record.task_id for record in records)
        offset += len(records)
        if len(records) < 5000:
            return counts


# -- load: tasks --------------------------------------------------------------------------------


def _load_task(number: int, agent: str, word: str) -> dict[str, Any]:
    """A read of one of three kinds (shell, PostgreSQL, Redis) that answers with ``word``."""
    kind = number % 3
    if kind == 0:
        return {"agent_id": agent, "type": "shell", "command": f"echo {word}", "timeout": 60}
    if kind == 1:
        return {"agent_id": agent, "type": "postgres", "command": f"SELECT '{word}' AS word", "timeout": 60}
    return {"agent_id": agent, "type": "redis", "command": f"ECHO {word}", "timeout": 60}


def _answers_with(view: dict[str, Any], word: str) -> bool:
    result = view.get("result") or {}
    return word in (result.get("output") or "") or word in str(result.get("data"))


def task_load(
    url: str, token: str, agents: Sequence[str], audit: AuditLog, *, tasks: int, clients: int, timeout: float = 300.0
) -> Outcome:
    """``tasks`` reads across ``agents`` from ``clients`` concurrent clients, half sync and half async.

    Every acknowledged task must end in a terminal state exactly once: one id, one record, one
    ``started`` and one ``finished`` audit record, its own answer (no cross-talk between tasks).
    """
    outcome = Outcome("load: tasks through the API", load=f"{tasks} tasks, {len(agents)} agents, {clients} clients")
    since = datetime.now(UTC) - timedelta(seconds=1)
    sent: list[tuple[str, str]] = []
    refused = Counter[int]()
    lock = threading.Lock()

    def client(number: int) -> None:
        mine = range(number, tasks, clients)
        with api(url, token) as http:
            for index in mine:
                word = f"w{index}-{uuid.uuid4().hex[:8]}"
                task = {**_load_task(index, agents[index % len(agents)], word), "sync": index % 2 == 0}
                deadline = time.monotonic() + 120
                while True:
                    response = http.post("/api/v1/tasks", json=task)
                    if response.status_code != 429 or time.monotonic() > deadline:
                        break
                    with lock:
                        refused[429] += 1
                    time.sleep(float(response.headers.get("retry-after", "1")))
                if response.status_code not in (200, 202):
                    with lock:
                        refused[response.status_code] += 1
                        outcome.problem(f"submit answered {response.status_code}: {response.text[:200]}")
                    continue
                with lock:
                    sent.append((response.json()["id"], word))

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, range(clients)))
    with api(url, token) as http:
        views = wait_terminal(http, [task_id for task_id, _ in sent], timeout=timeout)
        elapsed = time.perf_counter() - started
        records = history(http, since)

    ids = [task_id for task_id, _ in sent]
    recorded = Counter(item["id"] for item in records)
    if len(set(ids)) != len(ids):
        outcome.problem(f"{len(ids) - len(set(ids))} duplicate task ids were handed out")
    duplicates = [task_id for task_id, count in recorded.items() if count > 1]
    if duplicates:
        outcome.problem(f"{len(duplicates)} ids appear more than once in the history: {duplicates[:3]}")
    strangers = set(recorded) - set(ids)
    if strangers:
        outcome.problem(f"{len(strangers)} records nobody submitted: {sorted(strangers)[:3]}")
    started_events = audit_events(audit, since, AuditEvent.STARTED)
    finished_events = audit_events(audit, since, AuditEvent.FINISHED)
    terminal = 0
    for task_id, word in sent:
        view = views.get(task_id, {})
        status = view.get("status")
        if status in TERMINAL and task_id in recorded:
            terminal += 1
        if status != "succeeded":
            outcome.problem(f"{task_id} ended {status}: {view.get('error')}")
        elif not _answers_with(view, word):
            outcome.problem(f"{task_id} answered with another task's output: {view.get('result')}")
        if started_events[task_id] != 1 or finished_events[task_id] != 1:
            outcome.problem(
                f"{task_id} has {started_events[task_id]} started and {finished_events[task_id]} finished audit records"
            )
    outcome.lost = len(sent) - terminal
    latencies = [
        (datetime.fromisoformat(v["finished_at"]) - datetime.fromisoformat(v["created_at"])).total_seconds() * 1000
        for v in views.values()
        if v.get("finished_at") and v.get("created_at")
    ]
    outcome.figures = (
        f"{terminal}/{len(sent)} terminal once, {len(sent) / elapsed:.0f} tasks/s, "
        f"p50 {statistics.median(latencies) if latencies else float('nan'):.0f} ms, "
        f"p99 {percentile(latencies, 0.99):.0f} ms, 429s retried {refused[429]}"
    )
    if len(sent) + sum(count for status, count in refused.items() if status != 429) != tasks:
        outcome.problem(f"{tasks - len(sent)} tasks were never acknowledged")
    return outcome


# -- load: incident cycles ------------------------------------------------------------------------


def alert_variant(alert: dict[str, Any], label: str) -> dict[str, Any]:
    """``alert`` as another alert group (its own ``groupKey``), so that it gets its own cycle."""
    return {**alert, "groupKey": f"{alert['groupKey']}/{label}"}


def wait_for_cycles(group_tags: Sequence[str], *, timeout: float, poll: float = 1.0) -> dict[str, list[Any]]:
    """Each group's runs once they have all ended (or as they are when ``timeout`` runs out).

    One query per poll for all the groups still pending: a query per group, every half second,
    was itself a load on the Prefect server that the cycles measured here then waited for.
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags

    runs: dict[str, list[Any]] = {tag: [] for tag in group_tags}
    deadline = time.monotonic() + timeout
    pending = set(group_tags)
    with get_client(sync_client=True) as client:
        while pending:
            found: dict[str, list[Any]] = {tag: [] for tag in pending}
            offset = 0
            while True:
                page = client.read_flow_runs(
                    flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(any_=sorted(pending))),
                    limit=200,
                    offset=offset,
                )
                for run in page:
                    for tag in pending.intersection(run.tags):
                        found[tag].append(run)
                if len(page) < 200:
                    break
                offset += 200
            runs.update(found)
            pending = {
                tag
                for tag, group_runs in found.items()
                if not group_runs or not all(run.state is not None and run.state.is_final() for run in group_runs)
            }
            if not pending or time.monotonic() >= deadline:
                break
            time.sleep(poll)
    return runs


def cycle_report(flow_run_id: Any) -> str | None:
    """The Markdown RCA report artifact a cycle left, if any."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterType

    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]), type=ArtifactFilterType(any_=["markdown"])
            )
        )
    return str(artifacts[0].data) if artifacts else None


def audit_balance(audit: AuditLog, since: datetime, outcome: Outcome) -> int:
    """Check that every task started since ``since`` finished exactly once; the number started."""
    started = audit_events(audit, since, AuditEvent.STARTED)
    finished = audit_events(audit, since, AuditEvent.FINISHED)
    for task_id in set(started) | set(finished):
        if started[task_id] != 1 or finished[task_id] != 1:
            outcome.lost += started[task_id] > finished[task_id]
            outcome.problem(f"task {task_id}: {started[task_id]} started, {finished[task_id]} finished")
    return len(started)


def cycle_load(url: str, token: str, alert: dict[str, Any], audit: AuditLog, *, cycles: int, timeout: float) -> Outcome:
    """``cycles`` alert groups posted at once to the Alertmanager webhook; each must run one cycle to
    its end and leave its RCA report, and every task of every cycle must end exactly once."""
    from flows.alerts import parse_alert_group

    outcome = Outcome("load: concurrent incident cycles", load=f"{cycles} cycles at once (alert webhook)")
    since = datetime.now(UTC) - timedelta(seconds=1)
    run = uuid.uuid4().hex[:8]
    payloads = [alert_variant(alert, f"{run}-{n}") for n in range(cycles)]
    started = time.perf_counter()

    def post(payload: dict[str, Any]) -> httpx.Response:
        with api(url, token) as http:
            return http.post("/api/v1/alerts", json=payload)

    with ThreadPoolExecutor(min(cycles, 50)) as pool:
        answers = list(pool.map(post, payloads))
    for answer in answers:
        if answer.status_code != 202 or answer.json().get("status") != "accepted":
            outcome.problem(f"the webhook answered {answer.status_code}: {answer.text[:300]}")
    tags = [parse_alert_group(payload).group_tag for payload in payloads]
    runs = wait_for_cycles(tags, timeout=timeout)
    elapsed = time.perf_counter() - started
    outcomes: Counter[str] = Counter()
    durations = []
    reported = 0
    for tag in tags:
        group_runs = runs.get(tag, [])
        if len(group_runs) != 1:
            outcome.problem(f"alert group {tag} has {len(group_runs)} cycles, not one")
            continue
        flow_run = group_runs[0]
        state = flow_run.state
        if state is None or not state.is_completed():
            reason = f"{state.name}: {(state.message or '')[:300]}" if state else "without a state"
            outcome.problem(f"cycle {flow_run.name} ended {reason}")
            continue
        report = cycle_report(flow_run.id)
        if report is None:
            outcome.problem(f"cycle {flow_run.name} left no RCA report")
            continue
        reported += 1
        outcomes[report_outcome(report)] += 1
        if flow_run.start_time and flow_run.end_time:
            durations.append((flow_run.end_time - flow_run.start_time).total_seconds())
    outcome.lost = cycles - reported
    tasks = audit_balance(audit, since, outcome)
    outcome.figures = (
        f"{reported}/{cycles} reported in {elapsed:.0f} s, p99 cycle {percentile(durations, 0.99):.1f} s, "
        f"{tasks} tasks each ended once; outcomes {dict(outcomes)}"
    )
    return outcome


def report_outcome(markdown: str) -> str:
    """The outcome line of an RCA report."""
    for line in markdown.splitlines():
        if line.startswith("**Outcome:**"):
            return line.removeprefix("**Outcome:**").strip().split(" — ")[0][:40]
    return "?"


# -- faults ---------------------------------------------------------------------------------------


def _wait_running(http: httpx.Client, task_id: str, *, timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        view = http.get(f"/api/v1/tasks/{task_id}").json()
        if view["status"] != "pending" or time.monotonic() > deadline:
            return view
        time.sleep(0.05)


def worker_killed(
    url: str, token: str, agent: str, worker: Any, *, task_timeout: float = 4.0, remote_as: str = "task-run"
) -> Outcome:
    """SIGKILL of the ``cloud-agent worker`` running a task dispatched through its work pool.

    The task must end ``crashed`` (never ``succeeded``), its flow run must not be left completed,
    and the task's own processes must not outlive its timeout although their supervisor is gone.
    """
    from prefect.client.orchestration import get_client

    from tests.servers import kill_processes_with, processes_with

    how = "a flow run on the work pool" if remote_as == "flow-run" else "a task run on its task key"
    outcome = Outcome(f"fault: worker killed mid-task ({remote_as})", load=f"1 task as {how}",
                      faults="SIGKILL of the worker")  # fmt: skip
    marker = f"{17 + uuid.uuid4().int % 1000 / 1000:.3f}"  # a sleep length no other process has
    with api(url, token) as http:
        control = http.post("/api/v1/tasks", json={"agent_id": agent, "type": "shell", "command": "echo alive"})
        if control.json().get("status") != "succeeded":
            outcome.problem(f"the worker does not run tasks: {control.text[:300]}")
            return outcome
        task = {
            "agent_id": agent,
            "type": "shell",
            "command": f"sleep {marker}; echo finished",
            "sync": False,
            "timeout": task_timeout,
        }
        task_id = http.post("/api/v1/tasks", json=task).json()["id"]
        try:
            _wait_running(http, task_id)
            deadline = time.monotonic() + 30
            while not processes_with(marker) and time.monotonic() < deadline:
                time.sleep(0.05)
            began = time.monotonic()
            worker.kill()
            view = wait_terminal(http, [task_id], timeout=task_timeout + 90)[task_id]
            while processes_with(marker) and time.monotonic() - began < task_timeout + 5:
                time.sleep(0.1)
            survivors = processes_with(marker)
        finally:
            kill_processes_with(marker)
    status = view.get("status")
    outcome.figures = f"task ended {status} ({(view.get('error') or {}).get('code')})"
    if status not in ("crashed", "failed"):
        outcome.problem(f"the task of the killed worker ended {status}: {view.get('error')}")
        outcome.lost += status not in TERMINAL
    if status == "succeeded":
        outcome.problem("a task whose worker was killed was reported succeeded")
    run_id = view.get("flow_run_id") or ""
    if run_id:
        with get_client(sync_client=True) as client:
            if run_id.startswith("task-run:"):  # a background task run on the environment's task key
                state = client.read_task_run(run_id.removeprefix("task-run:")).state
            else:
                state = client.read_flow_run(run_id).state
        if state is not None and state.is_completed():
            outcome.problem(f"the killed worker's run is {state.name}")
    if survivors:
        outcome.problem(f"the task's processes {survivors} outlived its {task_timeout:g} s timeout and its worker")
    return outcome


BLOCKING_READS = {
    # (task type, a read that blocks on the server for a while)
    "postgres": "SELECT pg_sleep(20)",
    "mysql": "SELECT SLEEP(20)",
    "redis": "XREAD BLOCK 20000 STREAMS reliability-stream $",
}


def servers_stopped_mid_query(url: str, token: str, agent: str, servers: dict[str, Any]) -> Outcome:
    """Each private server (``{task type: server}``) stopped while a read waits on it, then started.

    The read must fail with a clear error well before its timeout (not hang, not ``internal_error``),
    and the next task on the restarted server must succeed (pools reconnect).
    """
    outcome = Outcome(
        "fault: database stopped mid-query",
        load="a blocking read per server",
        faults="PostgreSQL, MariaDB, Redis stopped, then restarted",
    )
    timeout = 30.0
    figures = []
    with api(url, token) as http:
        for kind, server in servers.items():
            connection = {"connection": "private"}
            warm = http.post(
                "/api/v1/tasks",
                json={"agent_id": agent, "type": kind, "command": _quick_read(kind), "params": connection},
            )
            if warm.json().get("status") != "succeeded":
                outcome.problem(f"{kind}: the private server does not answer: {warm.text[:300]}")
                continue
            task = {
                "agent_id": agent,
                "type": kind,
                "command": BLOCKING_READS[kind],
                "params": connection,
                "sync": False,
                "timeout": timeout,
            }
            task_id = http.post("/api/v1/tasks", json=task).json()["id"]
            _wait_running(http, task_id)
            if not _waits_on_server(http, agent, kind, connection, timeout=10.0):
                outcome.problem(f"{kind}: the blocking read never reached the server")
            stopped = time.monotonic()
            server.stop()
            view = wait_terminal(http, [task_id], timeout=timeout + 30)[task_id]
            took = time.monotonic() - stopped
            error = view.get("error") or {}
            figures.append(f"{kind} {view.get('status')}/{error.get('code')} in {took:.1f} s")
            if view.get("status") not in TERMINAL:
                outcome.lost += 1
            if view.get("status") != "failed" or error.get("code") in (None, "internal_error"):
                outcome.problem(f"{kind}: a read cut off by a stopped server ended {view.get('status')}: {error}")
            if "Traceback" in str(error):
                outcome.problem(f"{kind}: the error carries a traceback: {error}")
            if took > timeout / 2:
                outcome.problem(f"{kind}: the cut-off read took {took:.1f} s to end")
            server.start()
            again = http.post(
                "/api/v1/tasks",
                json={"agent_id": agent, "type": kind, "command": _quick_read(kind), "params": connection},
            )
            if again.json().get("status") != "succeeded":
                outcome.problem(f"{kind}: after the restart the next read ended {again.json().get('error')}")
    outcome.figures = "; ".join(figures)
    return outcome


#: A read that counts the blocking read of ``BLOCKING_READS`` while the server runs it.
_BLOCKED_ON_SERVER = {
    "postgres": "SELECT count(*) AS n FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(20)' AND state = 'active'",
    "mysql": "SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE INFO = 'SELECT SLEEP(20)'",
    "redis": "INFO clients",
}


def _waits_on_server(http: httpx.Client, agent: str, kind: str, connection: dict[str, str], *, timeout: float) -> bool:
    """Whether the server shows the blocking read in progress within ``timeout`` (asked through
    the task API, as any other read)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        task = {"agent_id": agent, "type": kind, "command": _BLOCKED_ON_SERVER[kind], "params": connection}
        data = (http.post("/api/v1/tasks", json=task).json().get("result") or {}).get("data") or {}
        rows = [row for result_set in data.get("result_sets", []) for row in result_set["rows"]]
        if data.get("blocked_clients") if kind == "redis" else rows and rows[0][0]:
            return True
        time.sleep(0.1)
    return False


def _quick_read(kind: str) -> str:
    return {"postgres": "SELECT 1 AS one", "mysql": "SELECT 1 AS one", "redis": "PING"}[kind]


@contextmanager
def stopped_when_collection_starts(servers: Sequence[Any]) -> Iterator[list[str]]:
    """Stop ``servers`` as a cycle's collection step begins (its detection has run); yields the
    names of the servers once stopped."""
    import flows.collect

    original = flows.collect.run_batches
    stopped: list[str] = []
    lock = threading.Lock()

    def run_batches(batches: Any, *, step: str, actor: str) -> Any:
        with lock:
            if not stopped and step.startswith("collect"):
                for server in servers:
                    server.stop()
                    stopped.append(server.name)
        return original(batches, step=step, actor=actor)

    flows.collect.run_batches = run_batches  # type: ignore[assignment]
    try:
        yield stopped
    finally:
        flows.collect.run_batches = original  # type: ignore[assignment]


def cycle_with_sources_stopped(
    url: str,
    token: str,
    alert: dict[str, Any],
    servers: dict[str, Any],
    components: dict[str, list[str]],
    *,
    timeout: float = 150.0,
) -> Outcome:
    """A cycle whose PostgreSQL, MariaDB and Redis components (``servers`` by task type; their
    ``components``) stop as collection begins: it must record each failed source and still report."""
    from flows.alerts import parse_alert_group

    outcome = Outcome(
        "fault: databases stopped mid-collection",
        load="1 cycle",
        faults="PostgreSQL, MariaDB, Redis stopped as collection began",
    )
    payload = alert_variant(alert, f"stopped-{uuid.uuid4().hex[:8]}")
    tag = parse_alert_group(payload).group_tag
    with stopped_when_collection_starts(list(servers.values())) as stopped, api(url, token) as http:
        answer = http.post("/api/v1/alerts", json=payload)
        if answer.status_code != 202:
            outcome.problem(f"the webhook answered {answer.status_code}: {answer.text[:300]}")
            return outcome
        runs = wait_for_cycles([tag], timeout=timeout).get(tag, [])
    for server in servers.values():
        server.start()
    if len(stopped) != len(servers):
        outcome.problem(f"the servers were not stopped during collection (stopped: {stopped})")
    if len(runs) != 1 or runs[0].state is None or not runs[0].state.is_completed():
        outcome.problem(f"the cycle did not complete: {[(r.name, r.state.name if r.state else None) for r in runs]}")
        outcome.lost = 1
        return outcome
    report = cycle_report(runs[0].id)
    if report is None:
        outcome.problem("the cycle left no RCA report")
        outcome.lost = 1
        return outcome
    failures = [line for line in report.splitlines() if line.startswith("- ") and ": " in line]
    for kind, names in components.items():
        named = [line for line in failures if any(name in line for name in names)]
        if not named:
            outcome.problem(f"the report does not record the failed {kind} source ({names}): {failures}")
    outcome.figures = f"cycle {report_outcome(report)!r}; {len(failures)} failed sources recorded"
    return outcome


def gateway_restarted(
    start_gateway: Any, token: str, agent: str, audit: AuditLog, *, clients: int = 8, phase_seconds: float = 2.0
) -> Outcome:
    """Tasks submitted by ``clients`` while the gateway is killed (SIGKILL), restarted, stopped
    (SIGTERM) and started again. ``start_gateway()`` starts a ``ServedGateway`` on the same port
    and state folder each time.

    Every task the API acknowledged must have a terminal record afterwards, and its status must
    agree with the audit log: ``succeeded`` ones finished, "did not run" ones never started.
    """
    outcome = Outcome(
        "fault: gateway restarted under load",
        load=f"{clients} clients submitting",
        faults="SIGKILL, restart, SIGTERM, restart",
    )
    since = datetime.now(UTC) - timedelta(seconds=1)
    acked: dict[str, str] = {}
    unacked = 0
    lock = threading.Lock()
    done = threading.Event()
    gateway = start_gateway()
    url = gateway.url

    def client(number: int) -> None:
        nonlocal unacked
        count = 0
        with api(url, token, timeout=30) as http:
            while not done.is_set():
                count += 1
                word = f"c{number}-{count}-{uuid.uuid4().hex[:6]}"
                command = f"echo {word}" if count % 2 else f"sleep 0.5; echo {word}"
                try:
                    response = http.post(
                        "/api/v1/tasks", json={"agent_id": agent, "type": "shell", "command": command, "sync": False}
                    )
                except httpx.TransportError:
                    with lock:
                        unacked += 1
                    time.sleep(0.1)
                    continue
                if response.status_code == 202:
                    with lock:
                        acked[response.json()["id"]] = word
                elif response.status_code != 429:
                    with lock:
                        outcome.problem(f"submit answered {response.status_code}: {response.text[:200]}")
                time.sleep(0.05)

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(clients)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(phase_seconds)
        gateway.kill()  # SIGKILL: no shutdown at all
        gateway = start_gateway()
        time.sleep(phase_seconds)
        gateway.close()  # SIGTERM: a graceful stop with running and queued tasks
        gateway = start_gateway()
        time.sleep(phase_seconds)
    finally:
        done.set()
        for thread in threads:
            thread.join(60)
    try:
        with api(url, token) as http:
            views = wait_terminal(http, list(acked), timeout=120)
    finally:
        gateway.close()
    started = audit_events(audit, since, AuditEvent.STARTED)
    finished = audit_events(audit, since, AuditEvent.FINISHED)
    statuses: Counter[str] = Counter()
    for task_id, word in acked.items():
        view = views.get(task_id, {})
        status = view.get("status")
        statuses[f"{status}/{(view.get('error') or {}).get('code', '-')}"] += 1
        if status not in TERMINAL:
            outcome.lost += 1
            outcome.problem(f"{task_id} has no terminal record: {status}")
        elif status == "succeeded":
            if word not in ((view.get("result") or {}).get("output") or ""):
                outcome.problem(f"{task_id} succeeded with another task's output")
            if finished[task_id] != 1:
                outcome.problem(f"{task_id} succeeded but has {finished[task_id]} finished audit records")
        elif "did not run" in ((view.get("error") or {}).get("message") or "") and started[task_id]:
            outcome.problem(f"{task_id} is reported as not run, but the audit log says it started")
        elif status == "crashed" and not started[task_id]:
            outcome.problem(f"{task_id} is reported crashed mid-run, but it never started: {view.get('error')}")
    outcome.figures = f"{len(acked)} acknowledged ({unacked} refused while down): {dict(statuses)}"
    if not statuses.get("succeeded/-"):
        outcome.problem("no task succeeded: the load did not reach the gateways")
    return outcome


def audit_unavailable(url: str, tokens: dict[str, str], agent: str, store: Any, marker: Any) -> Outcome:
    """The audit store (a private PostgreSQL) stops: tasks are refused, never run unaudited; when it
    is back, tasks run and the audit chain is intact. ``marker`` is a path a write task would create."""
    outcome = Outcome(
        "fault: audit store unavailable", load="reads and writes", faults="the audit PostgreSQL stopped, then started"
    )
    read = {"agent_id": agent, "type": "shell", "command": "echo ran-unaudited"}
    write = {"agent_id": agent, "type": "shell", "command": f"touch {marker}"}
    with api(url, tokens["operator"]) as operator, api(url, tokens["approver"]) as approver:
        before = operator.post("/api/v1/tasks", json=read).json()
        if before.get("status") != "succeeded":
            outcome.problem(f"a read did not run with the audit store up: {before.get('error')}")
        store.stop()
        try:
            refused = [operator.post("/api/v1/tasks", json=read), approver.post("/api/v1/tasks", json=write)]
        finally:
            store.start()
        for response in refused:
            body = response.json()
            if response.status_code >= 500:
                outcome.server_errors += 1
            result = body.get("result") or {}
            if body.get("status") != "failed" or (body.get("error") or {}).get("code") != "audit_unavailable":
                outcome.problem(f"with the audit store down a task ended {body.get('status')}: {body.get('error')}")
            if "ran-unaudited" in (result.get("output") or ""):
                outcome.problem("a read ran while the audit store was down")
        if marker.exists():
            outcome.problem("a write ran while the audit store was down")
        after = approver.post("/api/v1/tasks", json=write).json()
        if after.get("status") != "succeeded" or not marker.exists():
            outcome.problem(f"with the audit store back, a write did not run: {after.get('error')}")
    outcome.bad_inputs = 0
    outcome.figures = f"{len(refused)} tasks refused while down, then run once it was back"
    return outcome


# -- bad input ------------------------------------------------------------------------------------


def hostile_requests(url: str, token: str, cases: Sequence[Any], *, scenario: str) -> Outcome:
    """Send each ``corpus.Hostile`` request; each must get exactly what it names, never a 5xx,
    always a JSON error body without a traceback."""
    outcome = Outcome(scenario, load=f"{len(cases)} requests", bad_inputs=len(cases))
    with api(url, token) as http:
        for case in cases:
            headers = {"content-type": case.content_type, **case.headers}
            method = "POST" if case.body or case.path in ("/api/v1/tasks", "/api/v1/alerts") else "GET"
            response = http.request(method, case.path, content=case.body, headers=headers)
            if response.status_code >= 500:
                outcome.server_errors += 1
            try:
                body = response.json()
            except ValueError:
                outcome.problem(f"{case.name}: {response.status_code} without a JSON body: {response.text[:200]}")
                continue
            if "Traceback" in response.text:
                outcome.problem(f"{case.name}: the answer carries a traceback")
            if response.status_code != case.status:
                outcome.problem(f"{case.name}: {response.status_code} (expected {case.status}): {response.text[:300]}")
                continue
            error = body.get("error") if isinstance(body, dict) else None
            if case.task_status is not None:
                result = body.get("result") or {}
                code = (result.get("error") or {}).get("code")
                if body.get("status") != case.task_status or (case.code and code != case.code):
                    outcome.problem(
                        f"{case.name}: task {body.get('status')}/{code}, expected {case.task_status}/"
                        f"{case.code}: {result.get('error')}"
                    )
            elif response.status_code >= 400:
                if not (isinstance(error, dict) and error.get("message")):
                    outcome.problem(f"{case.name}: the error names no reason: {response.text[:200]}")
                elif case.code and error.get("code") != case.code:
                    outcome.problem(f"{case.name}: error code {error.get('code')}, expected {case.code}")
        if http.get("/api/v1/tasks", params={"limit": 1}).status_code != 200:
            outcome.problem("the task history does not answer after the hostile requests")
    outcome.figures = f"{len(cases) - len(outcome.problems)}/{len(cases)} answered as expected"
    return outcome


def hostile_websocket(url: str, token: str, messages: Sequence[tuple[str, bytes | str]]) -> Outcome:
    """Each hostile message on ``/ws`` must be answered on the same connection (then a ping is)."""
    import websocket

    outcome = Outcome("bad input: WebSocket messages", load=f"{len(messages)} messages", bad_inputs=len(messages))
    for name, payload in messages:
        connection = websocket.create_connection(
            url.replace("http://", "ws://") + "/ws", header=[f"Authorization: Bearer {token}"], timeout=10
        )
        try:
            opcode = websocket.ABNF.OPCODE_BINARY if isinstance(payload, bytes) else websocket.ABNF.OPCODE_TEXT
            connection.send(payload, opcode=opcode)
            connection.send('{"type": "ping"}')
            answers = [json.loads(connection.recv()) for _ in range(2)]
        except (websocket.WebSocketException, OSError, ValueError) as exc:
            outcome.server_errors += 1
            outcome.problem(f"{name}: the connection broke ({type(exc).__name__}: {exc})")
            continue
        finally:
            connection.close()
        if answers[-1].get("type") != "pong" or answers[0].get("type") not in ("error", "pong"):
            outcome.problem(f"{name}: answered {answers}")
    return outcome


def hostile_output(url: str, token: str, cases: Sequence[tuple[str, str, str | None]]) -> Outcome:
    """Shell tasks whose output is not text: each must succeed and come back as JSON, with a note."""
    outcome = Outcome("bad input: binary and non-UTF-8 output", load=f"{len(cases)} tasks", bad_inputs=len(cases))
    with api(url, token) as http:
        for name, command, note in cases:
            response = http.post("/api/v1/tasks", json={"type": "shell", "command": command, "timeout": 30})
            if response.status_code >= 500:
                outcome.server_errors += 1
            try:
                view = response.json()
                json.dumps(view, ensure_ascii=False).encode("utf-8")
            except (ValueError, UnicodeEncodeError) as exc:
                outcome.problem(f"{name}: the answer is not valid JSON text: {exc}")
                continue
            result = view.get("result") or {}
            if view.get("status") != "succeeded":
                outcome.problem(f"{name}: {view.get('status')}: {view.get('error')}")
            elif note and not any(note in line for line in result.get("notes", [])):
                outcome.problem(f"{name}: no note says the output was altered: {result.get('notes')}")
    return outcome


def huge_output(url: str, token: str, gateway: Any, *, size: int = 100_000_000) -> Outcome:
    """``size`` bytes of shell output, as lines and without any newline, through a gateway process:
    the result is cut to the limit and says how much there was; the gateway's memory and time stay
    bounded (its peak RSS is read from ``/proc``)."""
    outcome = Outcome("bad input: 100 MB of output", load=f"2 tasks x {size / 1e6:.0f} MB", bad_inputs=2)
    before = gateway.peak_rss_bytes()
    figures = []
    with api(url, token) as http:
        for name, command in (("lines", f"yes 0123456789 | head -c {size}"), ("one line", f"head -c {size} /dev/zero")):
            started = time.perf_counter()
            view = http.post("/api/v1/tasks", json={"type": "shell", "command": command, "timeout": 120}).json()
            took = time.perf_counter() - started
            result = view.get("result") or {}
            figures.append(f"{name} {took:.1f} s")
            if view.get("status") != "succeeded" or not result.get("truncated") or result.get("original_bytes") != size:
                outcome.problem(
                    f"{name}: {view.get('status')} truncated={result.get('truncated')} "
                    f"original_bytes={result.get('original_bytes')}: {view.get('error')}"
                )
            if took > 30:
                outcome.problem(f"{name}: {size} bytes of output took {took:.0f} s")
    grown = (gateway.peak_rss_bytes() - before) / 1e6
    figures.append(f"gateway peak RSS +{grown:.0f} MB")
    if grown > 80:
        outcome.problem(f"the gateway's peak memory grew by {grown:.0f} MB for {size / 1e6:.0f} MB of output")
    outcome.figures = ", ".join(figures)
    return outcome


# -- security -------------------------------------------------------------------------------------

REFUSED = ("denied", "approval_required")


def bypass_corpus(url: str, tokens: dict[str, str], attempts: Sequence[Any], audit: AuditLog, marker: Any) -> Outcome:
    """Every ``corpus.Attempt`` through the API: refused for an operator (denied or held for an
    approval), refused for an approver too when a default rule denies it, audited each time, and
    never run (``marker`` is the file a payload would create). A bypass is an attempt that ran."""
    outcome = Outcome("security: policy bypass attempts", load=f"{len(attempts)} attempts through the API",
                      bad_inputs=len(attempts))  # fmt: skip
    sent = 0
    with api(url, tokens["operator"]) as operator, api(url, tokens["approver"]) as approver:
        for attempt in attempts:
            clients = [("operator", operator)] + ([("approver", approver)] if attempt.denied else [])
            for role, http in clients:
                sent += 1
                if isinstance(attempt.body, dict):
                    task = {"type": attempt.type, "params": attempt.body, "timeout": 5}
                else:
                    task = {"type": attempt.type, "command": attempt.body.replace("{m}", str(marker)), "timeout": 5}
                response = http.post("/api/v1/tasks", json=task)
                if response.status_code >= 500:
                    outcome.server_errors += 1
                view = response.json()
                status = view.get("status")
                expected = ("denied",) if attempt.denied else REFUSED
                label = f"[{attempt.category}] {attempt.type}: {str(attempt.body)[:70]!r} as {role}"
                if status not in REFUSED:
                    outcome.bypasses += 1
                    outcome.problem(f"BYPASS {label}: {status} {view.get('error') or view.get('result')}")
                    continue
                if status not in expected:
                    outcome.problem(f"{label}: {status}, expected {expected}: {view.get('error')}")
                records = audit.query(AuditQuery(task_id=view["id"]))
                events = [r.event.value for r in records if r.event is not AuditEvent.API_REQUEST]
                if events != [status]:
                    outcome.problem(f"{label}: audit events {events}, expected [{status!r}]")
    if marker.exists():
        outcome.bypasses += 1
        outcome.problem(f"a payload ran: {marker} exists")
    denied = sum(attempt.denied for attempt in attempts)
    outcome.figures = (f"{sent} requests; {denied} denied whatever the approval, {len(attempts) - denied} held for "
                       f"an approval; {outcome.bypasses} ran")  # fmt: skip
    return outcome


def encodings_of(secret: str) -> list[str]:
    """A secret as a task could print it: plain, reversed, base64 and hex (with and without a newline)."""
    import base64

    forms = [secret, secret[::-1]]
    for raw in (secret.encode(), secret.encode() + b"\n"):
        forms += [base64.b64encode(raw).decode().rstrip("="), raw.hex()]
    return forms


def leaks_in(text: str, secrets: Iterable[str]) -> list[str]:
    """The secrets (in any of their printable forms) found in ``text``."""
    return [secret for secret in secrets if any(form in text for form in encodings_of(secret))]


LEAK_ATTEMPTS: list[dict[str, Any]] = [
    {"type": "shell", "command": "env"},
    {"type": "shell", "command": "printenv"},
    {"type": "shell", "command": "export -p; declare -p"},
    {"type": "shell", "command": "printenv RCA_REDIS_ACCESS | base64; printenv RCA_PG_PASSWORD | rev"},
    {"type": "shell", "command": "env | od -An -c | head -c 100000"},
    {"type": "shell", "command": "env | xxd -p"},
    {"type": "shell", "command": "cat /proc/$PPID/cmdline | tr '\\0' ' '"},
    {"type": "shell", "command": "tr '\\0' '\\n' < /proc/$PPID/environ"},
    {"type": "shell", "command": "ps auxe"},
    {"type": "redis", "command": "CONFIG GET requirepass", "params": {"connection": "private"}},
    {"type": "redis", "command": "CONFIG GET *", "params": {"connection": "private"}},
    {"type": "redis", "command": "CLIENT LIST", "params": {"connection": "private"}},
    {"type": "postgres", "command": "SELECT current_user, inet_server_port()"},
]


def planted_secrets(
    url: str, token: str, secrets: dict[str, str], reflector: str, files: Sequence[Any], logs: Sequence[Any]
) -> Outcome:
    """Secrets planted in the configuration (``${...}`` in connections: a PostgreSQL password, a
    Redis password in a URL, an API bearer token) and in a task (a bearer header): tasks try to
    print them; no result, no WebSocket line, no stored record or audit record (``files``), no log
    line (``logs``) may show them, plainly or encoded. ``reflector`` echoes request headers."""
    from tests.ws_logs import follow_logs

    planted = [*secrets.values(), token]
    task_token = f"task-token-{uuid.uuid4().hex}"
    planted.append(task_token)
    outcome = Outcome("security: planted secrets", load=f"{len(LEAK_ATTEMPTS) + 3} tasks trying to print "
                      f"{len(planted)} secrets")  # fmt: skip
    tasks = [
        *LEAK_ATTEMPTS,
        {"type": "api", "params": {"url": f"{reflector}/connection-headers"}},
        {
            "type": "api",
            "params": {"url": f"{reflector}/task-headers", "headers": {"Authorization": f"Bearer {task_token}"}},
        },
        {"type": "shell", "command": f"curl -s -H 'Authorization: Bearer {task_token}' {reflector}/curl"},
    ]
    answers = []
    with api(url, token) as http:
        for task in tasks:
            response = http.post("/api/v1/tasks", json={**task, "timeout": 20})
            answers.append(response.text)
            view = response.json()
            if view.get("status") not in (*TERMINAL,):
                outcome.problem(f"{task}: {response.status_code} {response.text[:200]}")
            found = leaks_in(response.text, planted)
            if found:
                outcome.leaks += len(found)
                outcome.problem(f"{task['type']}: {task.get('command') or task.get('params')}: the result shows "
                                f"{[s[:6] + '...' for s in found]}")  # fmt: skip
            if view.get("id") and view.get("status") == "succeeded":
                messages = follow_logs(url.replace("http://", "ws://") + "/ws", token, view["id"], timeout=10)
                lines = [json.dumps(message, ensure_ascii=False) for _, message in messages]
                if leaks_in("\n".join(lines), planted):
                    outcome.leaks += 1
                    outcome.problem(f"{task}: the WebSocket lines show a secret")
        refused = http.get("/api/v1/tasks", params={"limit": 500}).text
    if leaks_in(refused, planted):
        outcome.leaks += 1
        outcome.problem("the task history shows a secret")
    for path in [*files, *logs]:
        if path.exists():
            content = path.read_bytes().decode("utf-8", "replace")
            found = leaks_in(content, planted)
            if found:
                outcome.leaks += len(found)
                outcome.problem(f"{path.name} holds {[s[:6] + '...' for s in found]}")
    outcome.figures = f"{len(tasks)} tasks, {len(files)} stores and {len(logs)} logs searched"
    return outcome


#: Who may call each route: ``None`` for anyone (no token needed), else the lowest role.
ROUTE_ROLES: dict[tuple[str, str], str | None] = {
    ("GET", "/healthz"): None,
    ("GET", "/openapi.json"): None,
    ("GET", "/docs"): None,
    ("GET", "/docs/oauth2-redirect"): None,
    ("GET", "/redoc"): None,
    ("GET", "/api/v1/tasks"): "viewer",
    ("GET", "/api/v1/tasks/{task_id}"): "viewer",
    ("GET", "/api/v1/agents"): "viewer",
    ("POST", "/api/v1/tasks"): "operator",
    ("POST", "/api/v1/alerts"): "operator",
    ("POST", "/api/v1/tasks/{task_id}/approve"): "approver",
    ("POST", "/api/v1/tasks/{task_id}/reject"): "approver",
    ("POST", "/api/v1/incidents/{flow_run_id}/approve"): "approver",
    ("POST", "/api/v1/incidents/{flow_run_id}/reject"): "approver",
}
ROLES = ("viewer", "operator", "approver")


def roles_and_routes(
    url: str, tokens: dict[str, str], routes: Iterable[tuple[str, str]], alert: dict[str, Any]
) -> Outcome:
    """Every route and method the app serves, called with no token, a wrong one and each role's.
    Below the route's role: 401 (no or wrong token) or 403; at or above it: neither."""
    outcome = Outcome("security: tokens and roles", load="every route x 5 callers")
    served = set(routes)
    missing = set(ROUTE_ROLES) - served
    if missing:
        outcome.problem(f"routes expected but not served (is the route walk blind?): {sorted(missing)}")
    unknown = served - set(ROUTE_ROLES)
    if unknown:
        outcome.problem(f"routes without an expected role (add them to ROUTE_ROLES): {sorted(unknown)}")
    resolved = {**alert, "status": "resolved", "alerts": [{**a, "status": "resolved"} for a in alert["alerts"]]}
    bodies = {"/api/v1/tasks": {"type": "shell", "command": "echo roles"}, "/api/v1/alerts": resolved}
    callers = {"no token": None, "a wrong token": "not-a-token-1234", **{role: tokens[role] for role in ROLES}}
    calls = 0
    for method, path in sorted(served & set(ROUTE_ROLES)):
        needed = ROUTE_ROLES[(method, path)]
        concrete = path.replace("{task_id}", "task-0000000000000000").replace(
            "{flow_run_id}", "00000000-0000-4000-8000-000000000000"
        )
        for caller, token in callers.items():
            with api(url, token) as http:
                response = http.request(method, concrete, json=bodies.get(path) if method == "POST" else None)
            calls += 1
            if response.status_code >= 500:
                outcome.server_errors += 1
            if needed is None:
                allowed = True
            elif token is None or caller == "a wrong token":
                allowed = False
                if response.status_code != 401:
                    outcome.problem(f"{method} {path} with {caller}: {response.status_code}, expected 401")
                continue
            else:
                allowed = ROLES.index(caller) >= ROLES.index(needed)
            if allowed and response.status_code in (401, 403):
                outcome.problem(f"{method} {path} as {caller}: {response.status_code}, but the role suffices")
            if not allowed and response.status_code != 403:
                outcome.problem(f"{method} {path} as {caller}: {response.status_code}, expected 403")
                outcome.bypasses += 1
    outcome.figures = f"{len(served)} routes, {calls} calls"
    return outcome


def audit_unalterable(url: str, tokens: dict[str, str], routes: Iterable[tuple[str, str]], audit: AuditLog) -> Outcome:
    """Try to change or remove audit records through every route with every method (and routes
    that do not exist, like ``/api/v1/audit``), and through operator tasks aimed at the store: the
    records before are the records after, and the hash chain holds."""
    outcome = Outcome("security: the audit log through the API", load="every route x 7 methods")
    before = {record.seq: record.hash for record in audit.query(AuditQuery(limit=100_000))}
    paths = {path.replace("{task_id}", "task-0000000000000000") for _, path in routes}
    first = min(before) if before else 1
    paths |= {"/api/v1/audit", f"/api/v1/audit/{first}", "/api/v1/audit/verify", "/admin", "/api/v1/admin/audit",
              f"/api/v1/tasks/{first}", "/api/v1/tasks/audit_log", "/api/v1/tasks?seq=1"}  # fmt: skip
    hostile = {"seq": first, "event": "finished", "hash": "0" * 64, "delete": True, "sql": "DELETE FROM audit_log"}
    calls = 0
    for path in sorted(paths):
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"):
            for role in ROLES:
                with api(url, tokens[role]) as http:
                    response = http.request(method, path, json=hostile if method not in ("GET", "HEAD") else None)
                calls += 1
                if response.status_code >= 500:
                    outcome.server_errors += 1
                    outcome.problem(f"{method} {path} as {role}: {response.status_code}")
                if response.status_code == 405 and not response.headers.get("allow"):
                    outcome.problem(f"{method} {path}: 405 without the methods it allows (Allow)")
    store_tasks = [
        "sqlite3 ~/.local/state/cloud-agent/audit.sqlite3 'DELETE FROM audit_log'",
        "rm -f ~/.local/state/cloud-agent/audit.sqlite3",
        ": > ~/.local/state/cloud-agent/audit.sqlite3",
        "find / -name 'audit.sqlite3' -delete",
    ]
    with api(url, tokens["operator"]) as http:
        for command in store_tasks:
            view = http.post("/api/v1/tasks", json={"type": "shell", "command": command}).json()
            calls += 1
            if view.get("status") not in REFUSED:
                outcome.bypasses += 1
                outcome.problem(f"an operator's task on the audit store ran: {command!r}: {view.get('status')}")
        for sql in ("DELETE FROM cloud_agent_audit", "UPDATE cloud_agent_audit SET status = 'succeeded'",
                    "TRUNCATE cloud_agent_audit", "DROP TABLE cloud_agent_audit"):  # fmt: skip
            view = http.post("/api/v1/tasks", json={"type": "postgres", "command": sql}).json()
            calls += 1
            if view.get("status") not in REFUSED:
                outcome.bypasses += 1
                outcome.problem(f"an operator's SQL on the audit table ran: {sql!r}: {view.get('status')}")
    after = {record.seq: record.hash for record in audit.query(AuditQuery(limit=100_000))}
    changed = [seq for seq, digest in before.items() if after.get(seq) != digest]
    if changed:
        outcome.problem(f"{len(changed)} audit records changed or disappeared: {changed[:5]}")
    chain = audit.verify()
    if not chain.ok:
        outcome.problem(f"the audit chain is broken at {chain.first_bad_seq}: {chain.problem}")
    outcome.figures = f"{calls} calls; {len(before)} records unchanged, {len(after) - len(before)} added, chain ok"
    return outcome


# -- set-ups shared by the tests and the benchmark -----------------------------------------------


def served_routes(app: Any) -> list[tuple[str, str]]:
    """``(method, path)`` of every HTTP route the app serves (HEAD aside), included routers' too."""
    from starlette.routing import Route

    found: list[tuple[str, str]] = []
    stack = list(app.routes)
    while stack:
        route = stack.pop()
        if isinstance(route, Route):
            found += [(method, route.path) for method in sorted(route.methods or ()) if method != "HEAD"]
        included = getattr(route, "original_router", None)  # FastAPI keeps included routers nested
        if included is not None:
            stack += included.routes
    return sorted(found)


def bind_components_to(local: Any, servers: dict[str, Any]) -> dict[str, list[str]]:
    """Point an incident environment's (``local``: its folder) databases and caches at private
    servers: the first database at PostgreSQL, the others at MariaDB, caches at Redis. Returns the
    components of each server."""
    import yaml

    topology = yaml.safe_load((local / "topology.yaml").read_text())
    bound: dict[str, list[str]] = {"postgres": [], "mysql": [], "redis": []}
    for service in topology["services"]:
        if service.get("kind") == "database":
            engine = "mysql" if bound["postgres"] else "postgres"
            service.update(engine=engine, connection="components" if engine == "postgres" else "default")
            bound[engine].append(service["name"])
        elif service.get("kind") == "cache":
            service["connection"] = "default"
            bound["redis"].append(service["name"])
    (local / "topology.yaml").write_text(yaml.safe_dump(topology))
    connections = yaml.safe_load((local / "connections.yaml").read_text())
    connections["postgres"]["components"] = servers["postgres"].connection()
    connections["mysql"]["default"] = servers["mysql"].connection()
    connections["redis"]["default"] = {"url": servers["redis"].url()}
    (local / "connections.yaml").write_text(yaml.safe_dump(connections))
    return {kind: names for kind, names in bound.items() if names}


def secret_connections(base: dict[str, Any], redis_url: str | None = None) -> dict[str, Any]:
    """``base`` connections with planted secrets: a PostgreSQL password and an API bearer token from
    ``${RCA_PG_PASSWORD}`` and ``${RCA_API_TOKEN}``, and a ``private`` Redis at ``redis_url``."""
    import copy

    connections = copy.deepcopy(base)
    connections["postgres"]["default"]["password"] = "${RCA_PG_PASSWORD}"
    connections["api"]["default"] = {**connections["api"].get("default", {}),
                                     "headers": {"Authorization": "Bearer ${RCA_API_TOKEN}"}}  # fmt: skip
    if redis_url:
        connections["redis"]["private"] = {"url": redis_url}
    return connections


def new_secrets() -> dict[str, str]:
    return {
        "RCA_PG_PASSWORD": f"pg-secret-{uuid.uuid4().hex}",
        "RCA_REDIS_ACCESS": f"redis-secret-{uuid.uuid4().hex}",  # an innocent name: found by its value
        "RCA_API_TOKEN": f"api-token-{uuid.uuid4().hex}",
    }


def cycle_secrets(
    url: str, token: str, alert: dict[str, Any], local: Any, root_cause: str, secrets: dict[str, str],
    reflector: str, state: Any,
) -> Outcome:  # fmt: skip
    """A cycle whose telemetry connection carries a password and whose health checks send a bearer
    token to a service that reflects it (``local``: the incident environment's folder, edited here):
    its report, the Prefect logs since it started, the Prefect database and result files, and the
    state folder's stores must hold neither, plainly or encoded."""
    from pathlib import Path

    import yaml
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterTimestamp
    from prefect.settings import PREFECT_LOCAL_STORAGE_PATH, PREFECT_SERVER_DATABASE_CONNECTION_URL

    from flows.alerts import parse_alert_group

    outcome = Outcome("security: secrets in a cycle", load="1 cycle with planted secrets")
    connections = secret_connections(yaml.safe_load((local / "connections.yaml").read_text()))
    (local / "connections.yaml").write_text(yaml.safe_dump(connections))
    topology = yaml.safe_load((local / "topology.yaml").read_text())
    for service in topology["services"]:
        if service.get("health_url") and service["name"] != root_cause:
            service["health_url"] = f"{reflector}/{service['name']}/health"
    (local / "topology.yaml").write_text(yaml.safe_dump(topology))
    since = datetime.now(UTC) - timedelta(seconds=1)
    payload = alert_variant(alert, f"secrets-{uuid.uuid4().hex[:8]}")
    with api(url, token) as http:
        answer = http.post("/api/v1/alerts", json=payload)
    if answer.status_code != 202:
        outcome.problem(f"the webhook answered {answer.status_code}: {answer.text[:200]}")
        return outcome
    tag = parse_alert_group(payload).group_tag
    runs = wait_for_cycles([tag], timeout=150).get(tag, [])
    if len(runs) != 1 or runs[0].state is None or not runs[0].state.is_completed():
        outcome.lost = 1
        outcome.problem(f"the cycle did not complete: {runs}")
        return outcome
    report = cycle_report(runs[0].id) or ""
    logs: list[Any] = []
    with get_client(sync_client=True) as client:
        while True:  # pages of 200, the API's most
            page = client.read_logs(
                log_filter=LogFilter(timestamp=LogFilterTimestamp(after_=since)),  # type: ignore[arg-type]
                limit=200,
                offset=len(logs),
            )
            logs += page
            if len(page) < 200:
                break
    database = Path(str(PREFECT_SERVER_DATABASE_CONNECTION_URL.value()).split("///", 1)[-1])
    stores = [*database.parent.glob(database.name + "*"), *Path(state).glob("*.sqlite3*")]
    stores += [p for p in Path(str(PREFECT_LOCAL_STORAGE_PATH.value())).rglob("*") if p.is_file()]
    searched = {"the report": report, "the Prefect logs": "\n".join(entry.message for entry in logs)}
    searched |= {p.name: p.read_bytes().decode("utf-8", "replace") for p in stores if p.is_file()}
    for where, text in searched.items():
        found = leaks_in(text, secrets.values())
        if found:
            outcome.leaks += len(found)
            outcome.problem(f"{where} holds {[s[:8] + '...' for s in found]}")
    if not report or len(stores) < 3:
        outcome.problem(f"too little to search: report {len(report)} chars, {len(logs)} logs, {len(stores)} stores")
    outcome.figures = f"report, {len(logs)} log lines and {len(stores)} store files searched"
    return outcome


SCHEMATHESIS_CONFIG = """
[checks.negative_data_rejection]
expected-statuses = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429"]
"""


def schemathesis_run(url: str, token: str, workdir: Any, *, max_examples: int, time_limit: float = 120) -> Outcome:
    """schemathesis over every served route (all its checks; a 413 counts as a rejection). The
    gateway's environment should allow reads only, with a short timeout: generated tasks run."""
    import re
    import subprocess
    import sys
    from pathlib import Path

    outcome = Outcome("bad input: schemathesis (OpenAPI)", load=f"{max_examples} examples per operation")
    config = Path(workdir) / "schemathesis.toml"
    config.write_text(SCHEMATHESIS_CONFIG)
    command = [
        str(Path(sys.executable).parent / "st"), "--config-file", str(config), "run", f"{url}/openapi.json",
        "--header", f"Authorization: Bearer {token}", "--checks", "all", "--max-examples", str(max_examples),
        "--workers", "1", "--generation-database", "none", "--no-color", "--report-dir", str(Path(workdir) / "st"),
    ]  # fmt: skip
    try:
        run = subprocess.run(command, capture_output=True, text=True, timeout=time_limit, cwd=workdir)
    except subprocess.TimeoutExpired as exc:
        outcome.problem(f"schemathesis ran past {time_limit:g} s:\n{exc.stdout!s:.3000}")
        return outcome
    generated = re.search(r"(\d+) generated", run.stdout)
    outcome.bad_inputs = int(generated.group(1)) if generated else 0
    outcome.server_errors = len(re.findall(r"Server error", run.stdout))
    if run.returncode != 0:
        outcome.problem(run.stdout[-6000:] + run.stderr[-2000:])
    outcome.figures = f"{outcome.bad_inputs} generated requests"
    return outcome
