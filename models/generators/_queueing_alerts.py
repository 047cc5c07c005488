"""Alerting as Prometheus does it: rules over measured series, evaluated every 15-60 s, firing
after their condition held for ``for:``, and Alertmanager's alert for the first one that pages.

User-facing services carry SLO rules (p99 latency, error ratio), set by people to round numbers a
few times above normal. Some teams also page on their own components (a database out of
connections, a disk almost full, a target down, pods crash-looping); high CPU only warns. So the
alert usually names an entry service, sometimes a component, and only fires once symptoms are
visible: a detection delay of ``for:`` plus up to one evaluation interval, after the onset.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from models.domain._types import ServiceKind
from models.generators._queueing_events import Events
from models.generators._queueing_exporters import Measured
from models.generators._queueing_state import Knobs, State
from models.generators._queueing_system import System

_LATENCY_STEPS = (0.1, 0.2, 0.25, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)
_ERROR_STEPS = (0.01, 0.02, 0.05, 0.1)


@dataclass(frozen=True)
class RuleBook:
    """An estate's alerting: SLO rules on entries, component rules as the usual rule sets write
    them (kube-prometheus: TargetDown for 10m, KubePodCrashLooping for 15m; node-exporter:
    filesystem almost full for 30m-1h), some teams shorter; component rules page only in estates
    that page on components at all (a third of them), else they only warn."""

    pages_on_components: bool
    latency_margin: float  # the p99 SLO sits at the first round number this many times normal p99
    latency_for: int
    error_for: int
    down_for: int
    crash_for: int
    disk_for: int
    connections_for: int
    interval: int  # rule evaluation interval (s)
    offset: int  # first evaluation after the window's start (s)

    @classmethod
    def draw(cls, rng: np.random.Generator) -> RuleBook:
        interval = int(rng.choice([15, 30, 60]))
        return cls(
            pages_on_components=bool(rng.random() < 0.3),
            latency_margin=float(rng.uniform(2.0, 3.5)),
            latency_for=int(rng.choice([60, 120, 180])),
            error_for=int(rng.choice([60, 120])),
            down_for=int(rng.choice([60, 300, 600])),
            crash_for=int(rng.choice([300, 900])),
            disk_for=int(rng.choice([300, 1800])),
            connections_for=int(rng.choice([60, 300])),
            interval=interval,
            offset=int(rng.integers(0, interval)),
        )

    @property
    def component_severity(self) -> str:
        return "critical" if self.pages_on_components else "warning"


@dataclass(frozen=True)
class Rule:
    alertname: str
    component: int
    severity: str
    hold: int  # the rule's ``for:`` (s)
    condition: np.ndarray  # per second
    summary: str


@dataclass(frozen=True)
class Fired:
    rule: Rule
    second: int


def rules(book: RuleBook, system: System, m: Measured, onset: int) -> list[Rule]:
    """The estate's rules over what was measured, thresholds set from behaviour before ``onset``."""
    found: list[Rule] = []
    normal = slice(0, max(onset, 30))
    for i in system.entries:
        name = system.components[i].name
        p99 = float(np.nanmedian(m.p99[i, normal])) if np.isfinite(m.p99[i, normal]).any() else 0.5
        limit = next((x for x in _LATENCY_STEPS if x >= book.latency_margin * p99), _LATENCY_STEPS[-1])
        slow = np.nan_to_num(m.p99[i], nan=0.0) > limit
        found.append(Rule("HighRequestLatency", i, "critical", book.latency_for, slow, f"{name} p99 above {limit:g}s"))
        baseline = float(np.nanmean(m.error_ratio[i, normal]))
        ratio = next((x for x in _ERROR_STEPS if x >= 5 * baseline), _ERROR_STEPS[-1])
        failing = np.nan_to_num(m.error_ratio[i], nan=0.0) > ratio
        found.append(Rule("HighErrorRate", i, "critical", book.error_for, failing, f"{name} errors above {ratio:.0%}"))
    severity = book.component_severity
    for i, c in enumerate(system.components):
        level = severity if c.kind != ServiceKind.SERVICE else "warning"
        found.append(Rule("TargetDown", i, level, book.down_for, ~m.scraped[i], f"{c.name} is not answering scrapes"))
        restarted = _increase(m.restarts[i], 300) >= 1
        found.append(Rule("KubePodCrashLooping", i, severity, book.crash_for, restarted, f"{c.name} pods restarting"))
        killed = _increase(m.oom_kills[i], 60) >= 1
        found.append(Rule("KubeContainerOOMKilled", i, severity, 0, killed, f"{c.name} container OOMKilled"))
        full = m.disk_used[i] > 0.9
        found.append(Rule("DiskAlmostFull", i, severity, book.disk_for, full, f"{c.name} disk above 90%"))
        if c.kind == ServiceKind.DATABASE:
            crowded = m.conn_usage[i] > 0.9
            summary = f"{c.name} connections above 90% of max_connections"
            found.append(Rule("TooManyConnections", i, severity, book.connections_for, crowded, summary))
        if c.kind == ServiceKind.SERVICE:
            hot = m.cpu_ratio[i] > 0.9
            found.append(Rule("HighCPU", i, "warning", 900, hot, f"{c.name} CPU above 90% of its limit"))
    return found


def _increase(counter: np.ndarray, window: int) -> np.ndarray:
    """``increase(counter[window])`` per second."""
    before = np.concatenate([np.full(window, counter[0]), counter])[: len(counter)]
    return counter - before


def could_page(
    book: RuleBook, system: System, knobs: Knobs, events: Events, onset: int, st: State, step: int = 1
) -> bool:
    """Whether a paging rule could fire, judged from the model before anything is measured. Cheap;
    says no only when measuring would be wasted. ``st`` may be on a grid of ``step`` seconds.

    SLOs: an entry failing over half the rule's error ratio, or its p99 (lognormal from mean and
    SCV) past 60 % of the rule's threshold, for half the rule's ``for:`` after the onset (margins
    for what the estimate misses). Component rules, in estates that page on them: a database or
    cache not answering, an OOM kill or restarts, a disk past 90 %, a database's connections past
    90 % of its maximum, each for as long as its rule wants.
    """
    if book.pages_on_components and _components_could_page(book, system, knobs, events, onset):
        return True
    start = onset // step
    for i in system.entries:
        before = slice(max(start - 120 // step, 0), max(start, 1))
        after = slice(start, None)
        sigma = np.sqrt(np.log1p(st.scv[i]))
        p99 = st.resp[i] * np.exp(2.326 * sigma - sigma**2 / 2)
        normal = float(np.median(p99[before]))
        limit = next((x for x in _LATENCY_STEPS if x >= book.latency_margin * normal), _LATENCY_STEPS[-1])
        ratio = next((x for x in _ERROR_STEPS if x >= 5 * float(np.mean(st.err[i, before]))), _ERROR_STEPS[-1])
        if _held(st.err[i, after] > 0.5 * ratio, book.error_for // 2 // step):
            return True
        if _held(p99[after] > max(0.6 * limit, 1.5 * normal), book.latency_for // 2 // step):
            return True
    return False


def _held(flags: np.ndarray, steps: int) -> bool:
    return _longest_run(flags) >= max(steps, 1)


def _components_could_page(book: RuleBook, system: System, knobs: Knobs, events: Events, onset: int) -> bool:
    steps = knobs.up.shape[1]
    for i, c in enumerate(system.components):
        if c.kind != ServiceKind.SERVICE and _longest_run(knobs.up[i, onset:] <= 0) >= book.down_for:
            return True
    if any(second >= onset and (reason == "OOMKilled" or second + book.crash_for < steps)
           for _, second, reason in events.restarts):  # fmt: skip
        return True
    for i, fill in events.disk_fill.items():
        if _longest_run(system.components[i].disk_used + fill[onset:] > 0.9) >= book.disk_for:
            return True
    for d, leaked in events.leaked_sessions.items():
        c = system.components[d]
        pools = sum(system.edges[e].pool for e in system.in_edges(d))
        if _longest_run((leaked[onset:] + pools + 3) / c.max_connections > 0.9) >= book.connections_for:
            return True
    return False


def _longest_run(flags: np.ndarray) -> int:
    """The longest stretch of consecutive true values."""
    if not flags.any():
        return 0
    edges = np.diff(np.concatenate([[0], flags.astype(int), [0]]))
    return int((np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)).max())


def first_alert(
    book: RuleBook, found: list[Rule], onset: int, steps: int, *, paging_only: bool = False
) -> Fired | None:
    """The first rule to fire after ``onset`` (critical ones first), as the evaluation loop sees it;
    with ``paging_only``, only a critical one."""
    evaluations = np.arange(book.offset, steps, book.interval)
    best: dict[str, Fired] = {}
    for rule in found:
        pending = None
        for t in evaluations:
            if rule.condition[t]:
                pending = t if pending is None else pending
                if pending >= onset and t - pending >= rule.hold:
                    current = best.get(rule.severity)
                    if current is None or t < current.second:
                        best[rule.severity] = Fired(rule, int(t))
                    break
            else:
                pending = None
    return best.get("critical") or (None if paging_only else best.get("warning"))


def alert_payload(
    fired: Fired | None, system: System, start: int, env: str, fallback: tuple[int, int]
) -> tuple[dict[str, Any], float]:
    """An Alertmanager alert (as in its webhook's ``alerts``) and when it started firing.

    Without a rule firing, someone noticed: an alert on the entry named by ``fallback``.
    """
    if fired is None:
        entry, second = fallback
        rule = Rule(
            "UserReportedDegradation",
            entry,
            "critical",
            0,
            np.zeros(1, dtype=bool),
            f"{system.components[entry].name} degraded, reported by users",
        )
        fired = Fired(rule, second)
    name = system.components[fired.rule.component].name
    moment = float(start + fired.second)
    labels = {"alertname": fired.rule.alertname, "service": name, "severity": fired.rule.severity, "env": env}
    fingerprint = hashlib.sha256(repr(sorted(labels.items())).encode()).hexdigest()[:16]
    payload = {
        "status": "firing",
        "labels": labels,
        "annotations": {"summary": fired.rule.summary, "description": f"{fired.rule.summary} for {fired.rule.hold}s"},
        "startsAt": datetime.fromtimestamp(moment, tz=UTC).isoformat().replace("+00:00", "Z"),
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": f"http://prometheus.monitoring:9090/graph?g0.expr={fired.rule.alertname}",
        "fingerprint": fingerprint,
    }
    return payload, moment
