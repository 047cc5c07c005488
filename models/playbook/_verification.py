"""Reading verification task results: does what the executors found confirm the hypothesis?

Each result is a whole task result dict (``{"type", "status", "data", "output", "error"}``).
Each readable result casts a signed vote, strong (+/-2) or weak (+/-1); a task that failed, was
denied or is awaiting approval votes nothing, except that a component which cannot be reached
*is* the confirmation of ``dependency_down``. The hypothesis is confirmed when the votes add up
to at least 2 — or a strong vote for it outweighs weak ones against — with no strong vote against;
refuted in the mirror case; inconclusive otherwise.

Results are read from their typed ``data``: SQL result sets, a parsed INFO, Prometheus rows, an
HTTP check, the ``k8s`` executor's rows in ``data["items"]`` (pods, events, endpoints). Text is read
only where the text itself is what was asked for: a shell command's output, a ``kubectl logs``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from models.domain._hypothesis import Evidence, Hypothesis, Verification
from models.domain._observations import (
    LONG_RUNNING_SECONDS,
    STUCK_POOL_MIN_SESSIONS,
    STUCK_POOL_SHARE,
    CacheStats,
    cache_stats_from_info,
    db_snapshot_from_result,
    health_check_from_result,
    prometheus_samples,
    task_error_code,
)
from models.domain._target import TargetContext
from models.domain._types import FaultType
from models.playbook._verification_k8s import _read_k8s
from models.playbook._votes import STRONG, WEAK, _Vote

_NOT_RUN = {"denied", "approval_required", "pending", "running"}
_UNREACHABLE = {"unreachable", "timed_out", "connection_refused"}
_PACKET_LOSS = re.compile(r"(\d+(?:\.\d+)?)% packet loss")
_RTT = re.compile(r"= [\d.]+/([\d.]+)/")
_CPU_IDLE = re.compile(r"([\d.]+)\s*id\b")
_DF_USE = re.compile(r"\s(\d{1,3})%\s+(/\S*)")


def interpret_verification(
    hypothesis: Hypothesis,
    task_results: Sequence[Mapping[str, Any]],
    target: TargetContext | None = None,
    baseline: Sequence[Mapping[str, Any]] = (),
) -> Verification:
    """The verdict of ``task_results`` (whole task result dicts) on ``hypothesis``.

    ``target`` names the component's Kubernetes deployment when it differs from the component
    (its pods are ``<deployment>-...``). ``baseline`` holds the same tasks' results from an
    earlier moment (paired by ``invocation``): Redis's counters are then read over the window
    between the two (what happened since a fix) rather than over the server's lifetime.
    """
    votes: list[_Vote] = []
    notes: list[str] = []
    deployment = target.deployment_of(hypothesis.component) if target is not None else hypothesis.component
    earlier = {str(result["invocation"]): result for result in baseline if result.get("invocation")}
    for result in task_results:
        vote = _read(hypothesis, result, notes, deployment, earlier.get(str(result.get("invocation"))))
        if vote is not None:
            votes.append(vote)
    total = sum(vote.weight for vote in votes)
    strong_for = any(vote.weight >= STRONG for vote in votes)
    strong_against = any(vote.weight <= -STRONG for vote in votes)
    evidence = [vote.evidence for vote in votes]
    for_ = [v.evidence.summary for v in votes if v.weight > 0]
    against = [v.evidence.summary for v in votes if v.weight < 0]
    # A strong signal outweighs weak contrary ones (a dependency answering 500 while its pods look
    # ready is still down); two strong signals that disagree leave the question open.
    if not strong_against and (total >= STRONG or (strong_for and total > 0)):
        return Verification(
            component=hypothesis.component,
            fault=hypothesis.fault,
            status="confirmed",
            reason="; ".join(for_),
            evidence=evidence,
        )
    if not strong_for and (total <= -STRONG or (strong_against and total < 0)):
        return Verification(
            component=hypothesis.component,
            fault=hypothesis.fault,
            status="refuted",
            reason="; ".join(against),
            evidence=evidence,
        )
    if not votes:
        reason = "; ".join(notes) if notes else "no task result bears on this hypothesis"
    else:
        reason = "mixed or weak signals: " + "; ".join([*for_, *against, *notes])
    return Verification(
        component=hypothesis.component, fault=hypothesis.fault, status="inconclusive", reason=reason, evidence=evidence
    )


def _read(
    hypothesis: Hypothesis,
    result: Mapping[str, Any],
    notes: list[str],
    deployment: str,
    earlier: Mapping[str, Any] | None = None,
) -> _Vote | None:
    kind = str(result.get("type") or _type_from_invocation(result)).lower()
    status = str(result.get("status") or "").lower()
    fault = hypothesis.fault
    c = hypothesis.component
    if status in _NOT_RUN:
        notes.append(f"{kind} task not run ({status})")
        return None
    code = task_error_code(result)
    if kind == "api":
        return _read_health(hypothesis, result)
    if status != "succeeded":
        if fault is FaultType.DEPENDENCY_DOWN and code in _UNREACHABLE:
            message = (result.get("error") or {}).get("message", "")
            return _Vote(
                STRONG,
                Evidence(
                    kind="health",
                    source=c,
                    summary=f"{c} cannot be reached ({code}): {message}".strip(),
                    score=1.0,
                    details={"code": code},
                ),
            )
        notes.append(f"{kind} task {status or 'failed'}" + (f" ({code})" if code else ""))
        return None
    data = result.get("data")
    output = str(result.get("output") or "")
    if kind in ("postgres", "mysql") and isinstance(data, Mapping):
        return _read_sql(hypothesis, kind, data)
    if kind == "redis":
        return _read_redis(hypothesis, data, earlier, notes)
    if kind == "shell":
        return _read_shell(hypothesis, output)
    if kind == "k8s":
        return _read_k8s(hypothesis, data, output, deployment)
    if kind == "prometheus":
        return _read_prometheus(hypothesis, data)
    return None


def _type_from_invocation(result: Mapping[str, Any]) -> str:
    invocation = str(result.get("invocation") or "")
    return invocation.split(":", 1)[0] if ":" in invocation else ""


def _read_health(hypothesis: Hypothesis, result: Mapping[str, Any]) -> _Vote | None:
    c = hypothesis.component
    check = health_check_from_result(result, c)
    details = check.model_dump()
    if hypothesis.fault is FaultType.DEPENDENCY_DOWN:
        if check.unreachable:
            return _Vote(
                STRONG,
                Evidence(
                    kind="health",
                    source=c,
                    summary=f"{c} health check: unreachable ({check.error})",
                    score=1.0,
                    details=details,
                ),
            )
        if not check.ok and check.status_code is not None and check.status_code >= 500:
            return _Vote(
                STRONG,
                Evidence(
                    kind="health",
                    source=c,
                    summary=f"{c} health check: HTTP {check.status_code}",
                    score=0.9,
                    details=details,
                ),
            )
        if check.ok:
            return _Vote(
                -STRONG,
                Evidence(
                    kind="health",
                    source=c,
                    summary=f"{c} answers its health check (HTTP {check.status_code})",
                    score=0.9,
                    details=details,
                ),
            )
        return None
    if hypothesis.fault is FaultType.LATENCY and check.latency_ms is not None:
        if check.latency_ms > 1000:
            return _Vote(
                WEAK,
                Evidence(
                    kind="health",
                    source=c,
                    summary=f"{c} health check took {check.latency_ms:.0f} ms",
                    score=0.6,
                    details=details,
                ),
            )
        return None
    if hypothesis.fault is FaultType.BAD_DEPLOY and check.status_code is not None and check.status_code >= 500:
        return _Vote(
            WEAK,
            Evidence(
                kind="health",
                source=c,
                summary=f"{c} health check: HTTP {check.status_code}",
                score=0.5,
                details=details,
            ),
        )
    return None


def _read_sql(hypothesis: Hypothesis, engine: str, data: Mapping[str, Any]) -> _Vote | None:
    c = hypothesis.component
    fault = hypothesis.fault
    if fault is FaultType.DEPENDENCY_DOWN:
        return _Vote(-STRONG, Evidence(kind="db", source=c, summary=f"{c} answers queries", score=0.9, details={}))
    snapshot = db_snapshot_from_result(data, engine, c)
    details = snapshot.model_dump()
    sessions_seen = any(
        {"pid", "id"} & {str(col).lower() for col in rs.get("columns") or []} for rs in data.get("result_sets") or []
    )
    if fault is FaultType.DB_SLOW_QUERY:
        if not sessions_seen:
            return None
        if snapshot.long_running >= 1 and snapshot.longest_seconds >= LONG_RUNNING_SECONDS:
            top = snapshot.top_queries[0].query[:120] if snapshot.top_queries else ""
            return _Vote(
                STRONG,
                Evidence(
                    kind="db",
                    source=c,
                    score=min(1.0, snapshot.long_running / 5),
                    summary=(
                        f"{snapshot.long_running} statement(s) over {LONG_RUNNING_SECONDS:g} s on {c}, "
                        f"longest {snapshot.longest_seconds:.0f} s: {top}"
                    ),
                    details=details,
                ),
            )
        return _Vote(
            -STRONG,
            Evidence(
                kind="db",
                source=c,
                summary=f"no statement over {LONG_RUNNING_SECONDS:g} s on {c}",
                score=0.8,
                details=details,
            ),
        )
    if fault is FaultType.DB_POOL_EXHAUSTED:
        usage = snapshot.usage
        stuck = snapshot.stuck_client
        if (
            stuck is not None
            and stuck.long_running >= STUCK_POOL_MIN_SESSIONS
            and (stuck.long_running >= STUCK_POOL_SHARE * stuck.connections)
        ):
            # The spec's scenario 3: long-running statements hold an application's connections,
            # which exhausts its pool long before the server's max_connections.
            summary = (
                f"{c}: {stuck.long_running} of {stuck.connections} connections of {stuck.client} are held by "
                f"statements over {LONG_RUNNING_SECONDS:g} s (longest {snapshot.longest_seconds:.0f} s)"
            )
            return _Vote(STRONG, Evidence(kind="db", source=c, summary=summary, score=0.95, details=details))
        if usage is not None and usage >= 0.9:
            summary = f"{c}: {snapshot.connections}/{snapshot.max_connections} connections ({usage:.0%})"
            return _Vote(STRONG, Evidence(kind="db", source=c, summary=summary, score=min(1.0, usage), details=details))
        if sessions_seen:
            summary = (
                f"{c}: no client's connections are held by long statements ({snapshot.active} active sessions, "
                f"longest {snapshot.longest_seconds:.0f} s)"
            )
            return _Vote(-STRONG, Evidence(kind="db", source=c, summary=summary, score=0.8, details=details))
        if usage is None:
            return None
        # A bare connection count with room to spare says nothing of an application's own pool.
        summary = f"{c}: {snapshot.connections}/{snapshot.max_connections} connections ({usage:.0%})"
        return _Vote(0, Evidence(kind="db", source=c, summary=summary, score=0.3, details=details))
    return None


def _memory_vote(c: str, stats: CacheStats) -> _Vote | None:
    """What one look at a cache says by its gauges alone (memory against maxmemory)."""
    memory = stats.memory_usage
    if memory is not None and memory >= 0.95:
        summary = f"{c} is at {memory:.0%} of maxmemory (its counters need two looks to say more)"
        return _Vote(STRONG, Evidence(kind="cache", source=c, summary=summary, score=0.8, details=stats.model_dump()))
    return None


def windowed(task: Mapping[str, Any]) -> bool:
    """Whether a verification task's result is read as counters over a window (two looks needed)."""
    return str(task.get("type")) == "redis" and str(task.get("command", "")).strip().upper().startswith("INFO STATS")


def _read_redis(hypothesis: Hypothesis, data: Any, earlier: Mapping[str, Any] | None, notes: list[str]) -> _Vote | None:
    c = hypothesis.component
    if hypothesis.fault is FaultType.DEPENDENCY_DOWN:
        return _Vote(-STRONG, Evidence(kind="cache", source=c, summary=f"{c} answers commands", score=0.9, details={}))
    if hypothesis.fault is not FaultType.CACHE or not isinstance(data, Mapping):
        return None
    stats = cache_stats_from_info(data, c)
    if earlier is not None and earlier.get("status") == "succeeded" and isinstance(earlier.get("data"), Mapping):
        stats = stats.since(cache_stats_from_info(earlier["data"], c))
    else:
        # Hits, misses and evictions count from the server's start: without an earlier look they
        # say nothing about this incident (a cache that evicted an hour ago is not evicting now).
        notes.append(f"{c}: one look at its counters cannot tell evictions now from evictions long ago")
        return _memory_vote(c, stats)
    details = stats.model_dump()
    hit, memory = stats.hit_ratio, stats.memory_usage
    if stats.rejected_connections > 0:
        return _Vote(
            STRONG,
            Evidence(
                kind="cache",
                source=c,
                summary=f"{c} rejected {stats.rejected_connections} connections",
                score=0.9,
                details=details,
            ),
        )
    if memory is not None and memory >= 0.95:
        return _Vote(
            STRONG,
            Evidence(
                kind="cache", source=c, summary=f"{c} is at {memory:.0%} of maxmemory", score=0.9, details=details
            ),
        )
    if hit is not None and hit < 0.8 and stats.evicted_keys > 0:
        return _Vote(
            STRONG,
            Evidence(
                kind="cache",
                source=c,
                summary=f"{c} hit ratio {hit:.0%}, {stats.evicted_keys} keys evicted",
                score=0.9,
                details=details,
            ),
        )
    if stats.window and stats.evicted_keys > 0:
        return _Vote(
            STRONG,
            Evidence(
                kind="cache",
                source=c,
                summary=f"{c} evicted {stats.evicted_keys} keys in the window",
                score=0.9,
                details=details,
            ),
        )
    if stats.window and stats.evicted_keys == 0 and memory is not None and memory < 0.9:
        # Room below maxmemory and no eviction since the earlier look: the pressure is gone.
        return _Vote(
            -STRONG,
            Evidence(
                kind="cache",
                source=c,
                summary=f"{c} evicted nothing in the window and is at {memory:.0%} of maxmemory",
                score=0.8,
                details=details,
            ),
        )
    if hit is not None and hit >= 0.9 and stats.evicted_keys == 0:
        return _Vote(
            -STRONG,
            Evidence(
                kind="cache",
                source=c,
                summary=f"{c} hit ratio {hit:.0%} and nothing evicted",
                score=0.8,
                details=details,
            ),
        )
    if memory is not None and memory < 0.8:
        return _Vote(
            -WEAK,
            Evidence(
                kind="cache", source=c, summary=f"{c} is at {memory:.0%} of maxmemory", score=0.5, details=details
            ),
        )
    return None


def _read_shell(hypothesis: Hypothesis, output: str) -> _Vote | None:
    c = hypothesis.component
    fault = hypothesis.fault
    loss = _PACKET_LOSS.search(output)
    if loss:
        percent = float(loss.group(1))
        rtt = _RTT.search(output)
        average = float(rtt.group(1)) if rtt else None
        details = {"packet_loss": percent, "rtt_avg_ms": average}
        if fault is FaultType.NETWORK_ERRORS:
            if percent > 0:
                return _Vote(
                    STRONG,
                    Evidence(
                        kind="health",
                        source=c,
                        summary=f"ping {c}: {percent:g}% packet loss",
                        score=min(1.0, percent / 20),
                        details=details,
                    ),
                )
            return _Vote(
                -WEAK,
                Evidence(kind="health", source=c, summary=f"ping {c}: no packet loss", score=0.5, details=details),
            )
        if fault is FaultType.DEPENDENCY_DOWN and percent >= 100:
            return _Vote(
                STRONG,
                Evidence(kind="health", source=c, summary=f"ping {c}: 100% packet loss", score=1.0, details=details),
            )
        if fault is FaultType.LATENCY and average is not None:
            if average > 100:
                return _Vote(
                    WEAK,
                    Evidence(
                        kind="health",
                        source=c,
                        summary=f"ping {c}: {average:.0f} ms average",
                        score=0.6,
                        details=details,
                    ),
                )
            return _Vote(
                -WEAK,
                Evidence(
                    kind="health", source=c, summary=f"ping {c}: {average:.1f} ms average", score=0.4, details=details
                ),
            )
        return None
    if fault is FaultType.DISK:
        uses = [(int(used), mount) for used, mount in _DF_USE.findall(output)]
        if uses:
            worst = max(uses)
            details = {"use_percent": worst[0], "mount": worst[1]}
            if worst[0] >= 90:
                return _Vote(
                    STRONG,
                    Evidence(
                        kind="health",
                        source=c,
                        summary=f"{worst[1]} is {worst[0]}% full",
                        score=worst[0] / 100,
                        details=details,
                    ),
                )
            if worst[0] < 80:
                return _Vote(
                    -WEAK,
                    Evidence(
                        kind="health",
                        source=c,
                        summary=f"fullest mount {worst[1]} at {worst[0]}%",
                        score=0.4,
                        details=details,
                    ),
                )
        return None
    if fault is FaultType.CPU:
        idle = _CPU_IDLE.search(output)
        if idle:
            value = float(idle.group(1))
            details = {"idle_percent": value}
            if value < 10:
                return _Vote(
                    WEAK,
                    Evidence(
                        kind="health", source=c, summary=f"host CPU {100 - value:.0f}% busy", score=0.6, details=details
                    ),
                )
            if value > 50:
                return _Vote(
                    -WEAK,
                    Evidence(
                        kind="health", source=c, summary=f"host CPU {value:.0f}% idle", score=0.4, details=details
                    ),
                )
    return None


def _read_prometheus(hypothesis: Hypothesis, data: Any) -> _Vote | None:
    c = hypothesis.component
    numbers = list(prometheus_samples(data).values())
    if len(numbers) < 6:
        return None
    third = len(numbers) // 3
    early = sum(numbers[:third]) / third
    late = sum(numbers[-third:]) / third
    ratio = late / early if early > 0 else (float("inf") if late > 0 else 1.0)
    details = {"early": early, "late": late}
    if ratio >= 2:
        return _Vote(
            WEAK,
            Evidence(
                kind="metric",
                source=c,
                summary=f"{hypothesis.fault.value} metric of {c} rose {ratio:.1f}x over the window",
                score=0.6,
                details=details,
            ),
        )
    if ratio <= 1.2:
        return _Vote(
            -WEAK,
            Evidence(
                kind="metric",
                source=c,
                summary=f"{hypothesis.fault.value} metric of {c} flat over the window",
                score=0.4,
                details=details,
            ),
        )
    return None
