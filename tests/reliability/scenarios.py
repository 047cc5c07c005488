"""The reliability scenarios: each drives a running system through the public API and returns an
``Outcome`` — what it tried, what came back, and the problems it saw.

The tests in this folder run them in a bounded form and assert ``outcome.passed``; the benchmark
(``bench/reliability.py``) runs them with the issue's numbers and prints the outcomes as one table.
Nothing here starts a server: callers hand in a gateway URL and tokens (see ``conftest.py`` and
the benchmark for the set-ups).
"""

from __future__ import annotations

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
                while True:
                    response = http.post("/api/v1/tasks", json=task)
                    if response.status_code != 429:
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


def cycle_runs(group_tag: str) -> list[Any]:
    """The ``rca-incident`` flow runs of one alert group."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags

    with get_client(sync_client=True) as client:
        return list(client.read_flow_runs(flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[group_tag]))))


def wait_for_cycles(group_tags: Sequence[str], *, timeout: float) -> dict[str, list[Any]]:
    """Each group's runs once they have all ended (or as they are when ``timeout`` runs out)."""
    runs: dict[str, list[Any]] = {}
    deadline = time.monotonic() + timeout
    pending = list(group_tags)
    while pending and time.monotonic() < deadline:
        still = []
        for tag in pending:
            runs[tag] = cycle_runs(tag)
            if not runs[tag] or not all(run.state is not None and run.state.is_final() for run in runs[tag]):
                still.append(tag)
        pending = still
        if pending:
            time.sleep(0.5)
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
            outcome.problem(f"cycle {flow_run.name} ended {state.name if state else 'without a state'}")
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
