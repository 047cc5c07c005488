"""The hypothesis catalog: for each fault type, the tasks that verify it and the fixes for it.

Verification tasks start from the spec's examples (``INFO stats`` for a cache, the MySQL
process list for slow queries, the health endpoint for a dependency...). Every task is a plain
task spec ``{"type", "command", "params", "timeout"}`` for the executors, filled from the
``TargetContext``. Fixes carry ``action, command, confidence, risk`` as in the spec's examples;
a fix's confidence is P(hypothesis) x P(fix works | fault), the latter a Beta posterior: a prior
per (fault, action) updated with the outcomes of past fixes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from models.domain._hypothesis import FixSuggestion, Hypothesis
from models.domain._observations import LONG_RUNNING_SECONDS, MAX_TOP_QUERIES
from models.domain._target import TargetContext
from models.domain._types import FaultType, Risk, ServiceKind, guess_service_kind

PG_ACTIVITY = (
    "SELECT pid, usename, application_name, client_addr, now() - query_start AS duration, state, wait_event_type, "
    "query FROM pg_stat_activity WHERE state <> 'idle' AND pid <> pg_backend_pid() ORDER BY duration DESC NULLS LAST"
)
PG_CONNECTIONS = (
    "SELECT count(*) AS connections, current_setting('max_connections')::int AS max_connections FROM pg_stat_activity"
)
PG_TERMINATE = (
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE state <> 'idle' "
    "AND now() - query_start > interval '60 seconds' AND pid <> pg_backend_pid()"
)
MYSQL_SLOW = "SELECT * FROM information_schema.processlist WHERE time > 5 ORDER BY time DESC;"
MYSQL_POOL = "SHOW PROCESSLIST; SHOW STATUS LIKE 'Threads_connected'; SHOW VARIABLES LIKE 'max_connections';"
EVENTS = "kubectl get events -n {ns} --sort-by='.lastTimestamp' | tail -50"

# (successes, failures) pseudo-counts: what we believe before any outcome of our own.
FIX_PRIORS: dict[tuple[FaultType, str], tuple[float, float]] = {
    (FaultType.CPU, "scale_out"): (6, 3),
    (FaultType.CPU, "restart_service"): (3, 3),
    (FaultType.MEMORY, "restart_service"): (7, 3),
    (FaultType.MEMORY, "scale_out"): (3, 4),
    (FaultType.DISK, "restart_service"): (3, 5),
    (FaultType.DISK, "optimize_table"): (3, 4),
    (FaultType.LATENCY, "scale_out"): (4, 4),
    (FaultType.LATENCY, "restart_service"): (3, 5),
    (FaultType.NETWORK_ERRORS, "restart_service"): (5, 4),
    (FaultType.DB_SLOW_QUERY, "terminate_long_queries"): (6, 3),
    (FaultType.DB_SLOW_QUERY, "add_index"): (6, 4),
    (FaultType.DB_SLOW_QUERY, "optimize_table"): (2, 5),
    (FaultType.DB_POOL_EXHAUSTED, "terminate_long_queries"): (6, 3),
    (FaultType.DB_POOL_EXHAUSTED, "restart_callers"): (6, 4),
    (FaultType.DB_POOL_EXHAUSTED, "restart_service"): (6, 4),
    (FaultType.DB_POOL_EXHAUSTED, "scale_out"): (3, 5),
    (FaultType.DEPENDENCY_DOWN, "restart_service"): (7, 3),
    (FaultType.DEPENDENCY_DOWN, "rollback_deployment"): (3, 5),
    (FaultType.DEPENDENCY_DOWN, "scale_out"): (3, 5),
    (FaultType.CACHE, "raise_maxmemory"): (6, 4),
    (FaultType.CACHE, "flush_cache"): (4, 4),
    (FaultType.BAD_DEPLOY, "rollback_deployment"): (9, 1),
    (FaultType.BAD_DEPLOY, "restart_service"): (2, 6),
    # A claim from an error rate alone: a recent rollout or a stuck process are common, not certain.
    (FaultType.ERRORS, "rollback_deployment"): (3, 5),
    (FaultType.ERRORS, "restart_service"): (3, 5),
}


class FixHistory(BaseModel):
    """Past fix outcomes: ``(successes, failures)`` per (fault, action)."""

    model_config = ConfigDict(frozen=True)

    counts: dict[str, tuple[int, int]] = Field(default_factory=dict)

    @staticmethod
    def key(fault: FaultType | str, action: str) -> str:
        return f"{FaultType(fault).value}:{action}"

    @classmethod
    def from_outcomes(cls, outcomes: Iterable[tuple[FaultType | str, str, bool]]) -> FixHistory:
        """From ``(fault, action, worked)`` triples."""
        counts: dict[str, list[int]] = {}
        for fault, action, worked in outcomes:
            pair = counts.setdefault(cls.key(fault, action), [0, 0])
            pair[0 if worked else 1] += 1
        return cls(counts={key: (value[0], value[1]) for key, value in counts.items()})

    def of(self, fault: FaultType, action: str) -> tuple[int, int]:
        return self.counts.get(self.key(fault, action), (0, 0))


def success_rate(fault: FaultType, action: str, history: FixHistory | None = None) -> float:
    """Posterior mean of P(fix works | fault): Beta(prior + successes, prior + failures)."""
    alpha, beta = FIX_PRIORS.get((fault, action), (1.0, 1.0))
    successes, failures = history.of(fault, action) if history is not None else (0, 0)
    return (alpha + successes) / (alpha + beta + successes + failures)


# ---------------------------------------------------------------------------------------------
# task specs


def _spec(
    kind: str, command: str, params: Mapping[str, Any] | None, timeout: float, target: TargetContext
) -> dict[str, Any]:
    spec: dict[str, Any] = {"type": kind, "command": command, "params": dict(params or {}), "timeout": timeout}
    if target.agent_id:
        spec["agent_id"] = target.agent_id
    return spec


def _k8s(command: str, namespace: str, target: TargetContext, timeout: float = 60) -> dict[str, Any]:
    return _spec("k8s", command, {"namespace": namespace}, timeout, target)


def _shell(command: str, target: TargetContext, timeout: float = 30) -> dict[str, Any]:
    return _spec("shell", command, {}, timeout, target)


def _sql(engine: str, command: str, connection: str, target: TargetContext) -> dict[str, Any]:
    return _spec(engine, command, {"connection": connection}, 30, target)


def _redis(command: str, connection: str, target: TargetContext) -> dict[str, Any]:
    return _spec("redis", command, {"connection": connection}, 15, target)


def _promql(query: str, target: TargetContext) -> dict[str, Any]:
    return _spec("prometheus", query, {"range": "10m", "step": "15s"}, 30, target)


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def _own_pool(hypothesis: Hypothesis, target: TargetContext) -> bool:
    """Whether ``hypothesis`` is a service whose own pool of database connections ran dry (it
    leaked them, or has too few), rather than a database out of connections."""
    c = hypothesis.component
    return (
        hypothesis.fault is FaultType.DB_POOL_EXHAUSTED
        and (target.kind_of(c) or guess_service_kind(c, set())) is ServiceKind.SERVICE
        and target.engine_of(c) is None
    )


def _engines(component: str, target: TargetContext) -> list[str]:
    engine = target.engine_of(component)
    return [engine] if engine else ["postgres", "mysql"]


def verification_tasks(hypothesis: Hypothesis, target: TargetContext | None = None) -> list[dict[str, Any]]:
    """Executor task specs that would confirm or refute ``hypothesis``.

    Args:
        hypothesis: the (component, fault) to check.
        target: where the component lives; defaults (namespace ``default``, connection
            ``default``, deployment = component name) when ``None``.
    """
    target = target or TargetContext()
    c = hypothesis.component
    ns = target.namespace_of(c)
    deploy = target.deployment_of(c)
    conn = target.connection_of(c)
    pods = f'namespace="{_label(ns)}", pod=~"{_label(deploy)}-.*"'
    fault = hypothesis.fault
    tasks: list[dict[str, Any]] = []
    if fault is FaultType.CPU:
        tasks += [
            _k8s(f"kubectl top pods -n {ns}", ns, target),
            _shell("top -bn1 | head -20", target),
            _promql(f"sum(rate(container_cpu_usage_seconds_total{{{pods}}}[1m]))", target),
        ]
    elif fault is FaultType.MEMORY:
        tasks += [
            _k8s(f"kubectl get pods -n {ns} -o wide", ns, target),
            _k8s(EVENTS.format(ns=ns), ns, target),
            _k8s(f"kubectl top pods -n {ns}", ns, target),
            _promql(f"sum(container_memory_working_set_bytes{{{pods}}})", target),
        ]
    elif fault is FaultType.DISK:
        tasks += [
            _shell("df -h && free -m && cat /proc/loadavg", target),
            _promql(f"sum(rate(container_fs_writes_bytes_total{{{pods}}}[1m]))", target),
        ]
    elif fault is FaultType.LATENCY:
        url = target.health_url_of(c)
        if url:
            tasks.append(_spec("api", "", {"method": "GET", "url": url}, 15, target))
        tasks += [
            _shell(f"ping -c 5 {target.host_of(c)}", target),
            _promql(
                "histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket"
                f'{{namespace="{_label(ns)}", service="{_label(c)}"}}[1m])))',
                target,
            ),
        ]
    elif fault is FaultType.NETWORK_ERRORS:
        tasks += [
            _shell(f"ping -c 5 {target.host_of(c)}", target),
            _k8s(f"kubectl get svc,endpoints -n {ns}", ns, target),
            _promql(
                f"sum(rate(container_network_receive_errors_total{{{pods}}}[1m])) + "
                f"sum(rate(container_network_transmit_errors_total{{{pods}}}[1m]))",
                target,
            ),
        ]
    elif fault is FaultType.DB_SLOW_QUERY:
        for engine in _engines(c, target):
            tasks.append(_sql(engine, PG_ACTIVITY if engine == "postgres" else MYSQL_SLOW, conn, target))
    elif fault is FaultType.DB_POOL_EXHAUSTED:
        # A service's own pool holds its sessions on the databases it calls (the default connection
        # when nobody said which those are).
        holders = (target.databases_called_by(c) or [c]) if _own_pool(hypothesis, target) else [c]
        for database in holders:
            held_on = target.connection_of(database)
            for engine in _engines(database, target):
                if engine == "postgres":
                    tasks += [_sql(engine, PG_CONNECTIONS, held_on, target), _sql(engine, PG_ACTIVITY, held_on, target)]
                else:
                    tasks.append(_sql(engine, MYSQL_POOL, held_on, target))
    elif fault is FaultType.DEPENDENCY_DOWN:
        kind = target.kind_of(c)
        url = target.health_url_of(c)
        if url:
            tasks.append(_spec("api", "", {"method": "GET", "url": url}, 15, target))
        if kind is ServiceKind.DATABASE or target.engine_of(c):
            tasks += [_sql(engine, "SELECT 1", conn, target) for engine in _engines(c, target)]
        elif kind is ServiceKind.CACHE:
            tasks.append(_redis("INFO stats", conn, target))
        tasks += [
            _k8s(f"kubectl get pods -n {ns} -o wide", ns, target),
            _k8s(f"kubectl get svc,endpoints -n {ns}", ns, target),
            _k8s(EVENTS.format(ns=ns), ns, target),
            _shell(f"ping -c 5 {target.host_of(c)}", target),
        ]
    elif fault is FaultType.CACHE:
        tasks += [
            _redis("INFO stats", conn, target),
            _redis("INFO memory", conn, target),
            _redis("SLOWLOG GET 10", conn, target),
        ]
    elif fault is FaultType.BAD_DEPLOY:
        tasks += [
            _k8s(f"kubectl rollout history deployment/{deploy} -n {ns}", ns, target),
            _k8s(EVENTS.format(ns=ns), ns, target),
            _k8s(f"kubectl logs -n {ns} deployment/{deploy} --tail=1000", ns, target, timeout=90),
            _promql(
                f'sum(rate(http_requests_total{{namespace="{_label(ns)}", service="{_label(c)}", code=~"5.."}}[1m]))',
                target,
            ),
        ]
    elif fault in (FaultType.ERRORS, FaultType.ANOMALY):
        # A claim from one metric: look at the component itself, its logs and its health.
        url = target.health_url_of(c)
        if url:
            tasks.append(_spec("api", "", {"method": "GET", "url": url}, 15, target))
        tasks += [
            _k8s(f"kubectl get pods -n {ns} -o wide", ns, target),
            _k8s(EVENTS.format(ns=ns), ns, target),
            _k8s(f"kubectl logs -n {ns} deployment/{deploy} --tail=500", ns, target, timeout=90),
        ]
        if fault is FaultType.ERRORS:
            tasks.append(
                _promql(
                    f'sum(rate(http_requests_total{{namespace="{_label(ns)}", service="{_label(c)}", '
                    'code=~"5.."}[1m]))',
                    target,
                )
            )
    return tasks


# ---------------------------------------------------------------------------------------------
# fixes

_QUERY_TABLE = re.compile(
    r"\bfrom\s+([A-Za-z_][\w.]*)(?:\s+(?:as\s+)?[A-Za-z_]\w*)?\s+where\s+(?:[A-Za-z_]\w*\.)?([A-Za-z_]\w*)\s*(?:=|in\b|>|<)",
    re.I,
)
_UPDATE_TABLE = re.compile(
    r"\bupdate\s+([A-Za-z_][\w.]*)\s+set\b.*?\bwhere\s+(?:[A-Za-z_]\w*\.)?([A-Za-z_]\w*)\s*(?:=|in\b)", re.I | re.S
)
_RESERVED = {"select", "where", "and", "or", "not", "null", "true", "false"}


def index_target(query: str) -> tuple[str, str] | None:
    """``(table, column)`` an index would serve, read from a simple slow query, else ``None``."""
    for pattern in (_QUERY_TABLE, _UPDATE_TABLE):
        match = pattern.search(query)
        if match and match.group(2).lower() not in _RESERVED:
            return match.group(1), match.group(2)
    return None


def _db_details(hypothesis: Hypothesis) -> dict[str, Any]:
    for evidence in hypothesis.evidence:
        if evidence.kind == "db":
            return evidence.details
    return {}


def _cache_details(hypothesis: Hypothesis) -> dict[str, Any]:
    for evidence in hypothesis.evidence:
        if evidence.kind == "cache":
            return evidence.details
    return {}


def fix_suggestions(
    hypothesis: Hypothesis, target: TargetContext | None = None, history: FixHistory | None = None
) -> list[FixSuggestion]:
    """Fixes for ``hypothesis``, most confident first.

    Args:
        hypothesis: the root cause the fixes address (its evidence supplies query ids, tables,
            cache sizes when it has them).
        target: where the component lives.
        history: past fix outcomes; the catalog's priors alone when ``None``.
    """
    target = target or TargetContext()
    c = hypothesis.component
    fault = hypothesis.fault
    ns = target.namespace_of(c)
    deploy = target.deployment_of(c)
    conn = target.connection_of(c)
    own_pool = _own_pool(hypothesis, target)
    datastore = not own_pool and (
        target.kind_of(c) in (ServiceKind.DATABASE, ServiceKind.CACHE)
        or fault in (FaultType.DB_SLOW_QUERY, FaultType.DB_POOL_EXHAUSTED, FaultType.CACHE)
    )
    fixes: list[FixSuggestion] = []

    def add(action: str, description: str, command: dict[str, Any], risk: Risk, runnable: bool = True) -> None:
        rate = success_rate(fault, action, history)
        fixes.append(
            FixSuggestion(
                action=action,
                description=description,
                command=command,
                confidence=round(hypothesis.confidence * hypothesis.fault_confidence * rate, 4),
                risk=risk,
                runnable=runnable,
                success_rate=round(rate, 4),
            )
        )

    def restart() -> None:
        # Restarting a database or a cache drops its state and every client's connections.
        add(
            "restart_service",
            f"Restart {deploy} in {ns} (rolling restart of its pods).",
            _k8s(f"kubectl rollout restart deployment/{deploy} -n {ns}", ns, target),
            Risk.HIGH if datastore else Risk.LOW,
        )

    def scale_out() -> None:
        replicas = target.replicas_of(c)
        wanted = replicas + max(1, replicas // 2) if replicas else None
        add(
            "scale_out",
            f"Scale {deploy} out to {wanted if wanted else '<N>'} replicas"
            + ("" if wanted else " (current replica count unknown: choose N)."),
            _k8s(f"kubectl scale deployment/{deploy} --replicas={wanted if wanted else '<N>'} -n {ns}", ns, target),
            Risk.MEDIUM,
            runnable=wanted is not None,
        )

    def rollback() -> None:
        add(
            "rollback_deployment",
            f"Roll {deploy} back to its previous revision.",
            _k8s(f"kubectl rollout undo deployment/{deploy} -n {ns}", ns, target),
            Risk.MEDIUM,
        )

    def terminate_queries() -> None:
        details = _db_details(hypothesis)
        # The sessions the evidence saw stuck, by id: the fix ends those and nothing else.
        ids = [
            str(q["id"])
            for q in details.get("top_queries", [])
            if str(q.get("id") or "").isdigit() and q.get("seconds", 0) > LONG_RUNNING_SECONDS
        ][:MAX_TOP_QUERIES]
        for engine in _engines(c, target):
            if engine == "postgres":
                if ids:
                    # The age guard keeps a pid reused by a new session since the evidence alive.
                    command = (
                        f"SELECT pid, pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid IN ({', '.join(ids)}) "
                        f"AND state <> 'idle' AND now() - query_start > interval '{LONG_RUNNING_SECONDS:g} seconds'"
                    )
                    description = (
                        f"Terminate the {len(ids)} statement(s) seen running over {LONG_RUNNING_SECONDS:g} s on {c}."
                    )
                else:
                    command = PG_TERMINATE
                    description = f"Terminate statements running for more than 60 s on {c}."
                add("terminate_long_queries", description, _sql("postgres", command, conn, target), Risk.MEDIUM)
            else:
                command = " ".join(f"KILL {i};" for i in ids) if ids else "KILL <id>;"
                add(
                    "terminate_long_queries",
                    f"Kill the {len(ids)} statement(s) seen running over {LONG_RUNNING_SECONDS:g} s on {c}"
                    if ids
                    else f"Kill the long-running statements on {c} (ids unknown: read them from the process list).",
                    _sql("mysql", command, conn, target),
                    Risk.MEDIUM,
                    runnable=bool(ids),
                )

    def add_index() -> None:
        details = _db_details(hypothesis)
        found = None
        for query in details.get("top_queries", []):
            found = index_target(str(query.get("query", "")))
            if found:
                break
        for engine in _engines(c, target):
            if found:
                table, column = found
                name = f"idx_{table.split('.')[-1]}_{column}"
                concurrently = "CONCURRENTLY " if engine == "postgres" else ""
                command = f"CREATE INDEX {concurrently}{name} ON {table} ({column})"
            else:
                command = "CREATE INDEX idx_<table>_<column> ON <table> (<column>)"
            add(
                "add_index",
                f"Add an index for the slow query on {c}"
                + (f" ({found[0]}.{found[1]})." if found else " (table and column unknown: read EXPLAIN first)."),
                _sql(engine, command, conn, target),
                Risk.MEDIUM,
                runnable=found is not None,
            )

    def optimize_table() -> None:
        is_database = target.kind_of(c) is ServiceKind.DATABASE or target.engine_of(c) is not None
        if fault is not FaultType.DB_SLOW_QUERY and not is_database:
            return
        if "mysql" not in _engines(c, target):
            return
        details = _db_details(hypothesis)
        table = None
        for query in details.get("top_queries", []):
            found = index_target(str(query.get("query", "")))
            if found:
                table = found[0]
                break
        add(
            "optimize_table",
            f"Rebuild {table or '<table>'} on {c} to reclaim space and refresh statistics.",
            _sql("mysql", f"OPTIMIZE TABLE {table or '<table>'};", conn, target),
            Risk.MEDIUM,
            runnable=table is not None,
        )

    if fault is FaultType.CPU:
        scale_out()
        restart()
    elif fault is FaultType.MEMORY:
        restart()
        scale_out()
    elif fault is FaultType.DISK:
        restart()
        optimize_table()
    elif fault is FaultType.LATENCY:
        scale_out()
        restart()
    elif fault is FaultType.NETWORK_ERRORS:
        restart()
    elif fault is FaultType.DB_SLOW_QUERY:
        terminate_queries()
        add_index()
        optimize_table()
    elif own_pool:
        # A restart returns the connections it leaked; more replicas bring more pools.
        restart()
        scale_out()
    elif fault is FaultType.DB_POOL_EXHAUSTED:
        terminate_queries()
        for caller in hypothesis.affected[:3]:
            caller_ns = target.namespace_of(caller)
            caller_deploy = target.deployment_of(caller)
            add(
                "restart_callers",
                f"Restart {caller_deploy}, which holds connections to {c}, to release them.",
                _k8s(f"kubectl rollout restart deployment/{caller_deploy} -n {caller_ns}", caller_ns, target),
                Risk.LOW,
            )
    elif fault is FaultType.DEPENDENCY_DOWN:
        restart()
        rollback()
        scale_out()
    elif fault is FaultType.CACHE:
        details = _cache_details(hypothesis)
        maxmemory = details.get("maxmemory")
        wanted = int(maxmemory * 1.5) if isinstance(maxmemory, int | float) and maxmemory > 0 else None
        add(
            "raise_maxmemory",
            f"Raise {c}'s maxmemory to {wanted if wanted else '<bytes>'}"
            + ("" if wanted else " (current limit unknown: read INFO memory)."),
            _redis(f"CONFIG SET maxmemory {wanted if wanted else '<bytes>'}", conn, target),
            Risk.MEDIUM,
            runnable=wanted is not None,
        )
        add(
            "flush_cache",
            f"Empty {c}'s current database (every key is lost; callers refill it from the source).",
            _redis("FLUSHDB", conn, target),
            Risk.HIGH,
        )
    elif fault is FaultType.BAD_DEPLOY or fault is FaultType.ERRORS:
        rollback()
        restart()
    # ANOMALY: one metric moved and nothing says how; a person decides what to do.
    fixes.sort(key=lambda fix: (-fix.confidence, list(Risk).index(fix.risk)))
    return fixes
