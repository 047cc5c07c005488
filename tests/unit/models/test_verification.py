from collections.abc import Iterator

import pytest

from executors import CloudAgent
from models import FaultType, Hypothesis, TargetContext, interpret_verification, verification_tasks
from tests.executor_servers import K8S_URL_VARIABLE, RecordedKubernetesAPI, published


def hypothesis(fault: FaultType, component: str = "orders-db") -> Hypothesis:
    return Hypothesis(component=component, fault=fault, confidence=0.7)


def sql(rows: list[list[object]], columns: list[str] | None = None, engine: str = "postgres") -> dict:
    columns = columns or ["pid", "duration", "state", "wait_event_type", "query"]
    return {
        "type": engine,
        "status": "succeeded",
        "data": {
            "result_sets": [
                {"statement": "q", "columns": columns, "rows": rows, "row_count": len(rows), "truncated": False}
            ]
        },
    }


def test_slow_queries_confirm_and_their_absence_refutes() -> None:
    slow = interpret_verification(hypothesis(FaultType.DB_SLOW_QUERY), [sql([[1, 45.0, "active", None, "SELECT big"]])])
    assert slow.status == "confirmed" and "longest 45 s" in slow.reason
    assert (slow.component, slow.fault) == ("orders-db", FaultType.DB_SLOW_QUERY)
    quick = interpret_verification(hypothesis(FaultType.DB_SLOW_QUERY), [sql([[1, 0.1, "active", None, "SELECT 1"]])])
    assert quick.status == "refuted"


def test_pool_usage() -> None:
    full = sql([[100, 100]], ["connections", "max_connections"])
    assert interpret_verification(hypothesis(FaultType.DB_POOL_EXHAUSTED), [full]).status == "confirmed"
    # A bare count with room to spare says nothing about an application's own pool (which is
    # exhausted long before the server's max_connections): neither confirmed nor refuted.
    low = sql([[10, 100]], ["connections", "max_connections"])
    assert interpret_verification(hypothesis(FaultType.DB_POOL_EXHAUSTED), [low]).status == "inconclusive"


SESSION_COLUMNS = ["pid", "application_name", "duration", "state", "wait_event_type", "query"]


def test_an_application_pool_held_by_long_statements_confirms_pool_exhaustion() -> None:
    stuck = [[100 + i, "orders-service", 40.0 + i, "active", None, "SELECT pg_sleep(900)"] for i in range(12)]
    other = [[300, "billing", 0.2, "active", None, "SELECT 1"]]
    verdict = interpret_verification(hypothesis(FaultType.DB_POOL_EXHAUSTED), [sql(stuck + other, SESSION_COLUMNS)])
    assert verdict.status == "confirmed"
    assert "12 of 12 connections of orders-service" in verdict.reason


def test_sessions_without_a_stuck_pool_refute_pool_exhaustion() -> None:
    # What the re-verification after a successful fix sees: sessions, none of them stuck.
    quick = [[100 + i, "orders-service", 0.1, "active", None, "SELECT 1"] for i in range(3)]
    verdict = interpret_verification(hypothesis(FaultType.DB_POOL_EXHAUSTED), [sql(quick, SESSION_COLUMNS)])
    assert verdict.status == "refuted"
    # A few long statements among many connections of one client are not an exhausted pool.
    few = [[100 + i, "orders-service", 30.0 if i < 2 else 0.1, "active", None, "SELECT x"] for i in range(10)]
    assert (
        interpret_verification(hypothesis(FaultType.DB_POOL_EXHAUSTED), [sql(few, SESSION_COLUMNS)]).status == "refuted"
    )


def test_failed_or_denied_tasks_are_inconclusive() -> None:
    failed = {"type": "postgres", "status": "failed", "error": {"code": "auth_failed", "message": "no"}}
    denied = {"type": "postgres", "status": "denied", "error": {"code": "denied", "message": "policy"}}
    verdict = interpret_verification(hypothesis(FaultType.DB_SLOW_QUERY), [failed, denied])
    assert verdict.status == "inconclusive"
    assert "failed" in verdict.reason and "denied" in verdict.reason


def test_unreachable_is_the_confirmation_of_dependency_down() -> None:
    unreachable = {
        "type": "api",
        "status": "failed",
        "data": None,
        "error": {"code": "unreachable", "message": "refused"},
    }
    assert interpret_verification(hypothesis(FaultType.DEPENDENCY_DOWN, "pay"), [unreachable]).status == "confirmed"
    # ... but for any other fault an unreachable check says nothing.
    assert interpret_verification(hypothesis(FaultType.CPU, "pay"), [unreachable]).status == "inconclusive"
    healthy = {"type": "api", "status": "succeeded", "data": {"status_code": 200, "elapsed_ms": 3.0}}
    assert interpret_verification(hypothesis(FaultType.DEPENDENCY_DOWN, "pay"), [healthy]).status == "refuted"
    timeout = {"type": "shell", "status": "timed_out", "error": {"code": "timed_out", "message": "ping"}}
    assert interpret_verification(hypothesis(FaultType.DEPENDENCY_DOWN, "pay"), [timeout]).status == "confirmed"


def test_one_look_at_cache_counters_says_nothing_of_this_incident() -> None:
    cache = hypothesis(FaultType.CACHE, "redis")
    # Evictions and misses count from the server's start: one look cannot place them in this incident.
    lifetime = {
        "type": "redis",
        "status": "succeeded",
        "invocation": "redis: INFO stats @local",
        "data": {"keyspace_hits": 20, "keyspace_misses": 80, "evicted_keys": 500},
    }
    verdict = interpret_verification(cache, [lifetime])
    assert verdict.status == "inconclusive" and "evictions now from evictions long ago" in verdict.reason
    # A gauge is read at once: a cache at its memory limit is.
    full = {**lifetime, "data": {**lifetime["data"], "used_memory": 99, "maxmemory": 100}}
    assert interpret_verification(cache, [full]).status == "confirmed"
    # Over a window, the same counters decide.
    later = {**lifetime, "data": {"keyspace_hits": 40, "keyspace_misses": 380, "evicted_keys": 900}}
    assert interpret_verification(cache, [later], baseline=[lifetime]).status == "confirmed"
    quiet = {**lifetime, "data": {"keyspace_hits": 2000, "keyspace_misses": 81, "evicted_keys": 500}}
    assert interpret_verification(cache, [quiet], baseline=[lifetime]).status == "refuted"


def info(evicted: int, hits: int, misses: int, used: int, maxmemory: int) -> dict:
    data = {"evicted_keys": evicted, "keyspace_hits": hits, "keyspace_misses": misses}
    return {
        "type": "redis",
        "status": "succeeded",
        "invocation": "redis: INFO @local",
        "data": {**data, "used_memory": used, "maxmemory": maxmemory},
    }


def test_cache_counters_are_read_over_the_window_since_the_baseline() -> None:
    cache = hypothesis(FaultType.CACHE, "redis")
    storm = info(evicted=9000, hits=100, misses=2900, used=2_000_000, maxmemory=2_100_000)
    # Maxmemory raised by the fix: the lifetime counters still say "storm", the window says it ended.
    raised = info(evicted=9000, hits=100, misses=2900, used=2_000_000, maxmemory=3_150_000)
    assert interpret_verification(cache, [raised]).status == "inconclusive"
    after_fix = interpret_verification(cache, [raised], baseline=[raised])
    assert after_fix.status == "refuted" and "evicted nothing in the window" in after_fix.reason
    # Still evicting after the fix: 400 more keys in the window, whatever memory says.
    still = info(evicted=9400, hits=150, misses=3050, used=3_100_000, maxmemory=3_150_000)
    assert interpret_verification(cache, [still], baseline=[raised]).status == "confirmed"
    # Restarted (counters went down) in between: its counters count from the restart.
    restarted = info(evicted=0, hits=90, misses=10, used=500_000, maxmemory=3_150_000)
    assert interpret_verification(cache, [restarted], baseline=[storm]).status == "refuted"
    # A baseline of another task (another invocation) is not paired.
    other = {**raised, "invocation": "redis: INFO @other"}
    assert interpret_verification(cache, [raised], baseline=[other]).status == "inconclusive"


def test_shell_and_k8s_outputs() -> None:
    ping = {
        "type": "shell",
        "status": "succeeded",
        "output": "5 packets transmitted, 3 received, 40% packet loss, time 4005ms",
    }
    assert interpret_verification(hypothesis(FaultType.NETWORK_ERRORS, "pay"), [ping]).status == "confirmed"
    df = {
        "type": "shell",
        "status": "succeeded",
        "output": "Filesystem Size Used Avail Use% Mounted on\n/dev/sda1 50G 48G 2G 96% /\n",
    }
    assert interpret_verification(hypothesis(FaultType.DISK, "pay"), [df]).status == "confirmed"
    crashing = pods([pod("pay-7f9c-x", "0/1", "CrashLoopBackOff", 7), pod("web-1", "1/1", "Running")])
    assert interpret_verification(hypothesis(FaultType.DEPENDENCY_DOWN, "pay"), [crashing]).status == "confirmed"
    oom = pods([pod("pay-1", "1/1", "OOMKilled", 3)])
    assert interpret_verification(hypothesis(FaultType.MEMORY, "pay"), [oom]).status == "confirmed"


def test_mixed_signals_are_inconclusive() -> None:
    unreachable = {"type": "api", "status": "failed", "error": {"code": "unreachable", "message": "refused"}}
    answers = sql([[1]], ["?column?"])
    verdict = interpret_verification(hypothesis(FaultType.DEPENDENCY_DOWN), [unreachable, answers])
    assert verdict.status == "inconclusive"


def pod(name: str, ready: str, status: str, restarts: int = 0) -> dict:
    """A pod row as the ``k8s`` executor returns it in ``data["items"]`` (``kubectl get pods``)."""
    ready_containers, total_containers = (int(count) for count in ready.split("/"))
    return {
        "kind": "Pod",
        "namespace": "production",
        "name": name,
        "ready": ready,
        "ready_containers": ready_containers,
        "total_containers": total_containers,
        "status": status,
        "restarts": restarts,
    }


def pods(rows: list[dict]) -> dict:
    return {"type": "k8s", "status": "succeeded", "data": {"namespace": "production", "items": rows}}


def health(status: int) -> dict:
    return {
        "type": "api",
        "status": "succeeded" if status < 400 else "failed",
        "data": {"status_code": status, "elapsed_ms": 3.0},
        "error": None if status < 400 else {"code": "http_error", "message": f"HTTP {status}"},
    }


def test_a_strong_signal_outweighs_a_weak_contrary_one() -> None:
    ready = pods([pod("pay-7d9f8c6b5-x2k4q", "1/1", "Running")])
    down = interpret_verification(hypothesis(FaultType.DEPENDENCY_DOWN, "pay"), [health(500), ready])
    assert down.status == "confirmed"  # answering 500 with ready pods is still down
    back = interpret_verification(hypothesis(FaultType.DEPENDENCY_DOWN, "pay"), [health(200), ready])
    assert back.status == "refuted"


def test_pods_are_matched_by_the_components_deployment() -> None:
    from models import ServiceTarget, TargetContext

    crashing = pods([pod("payments-api-6f9d8c7b5-abcde", "0/1", "CrashLoopBackOff", 7)])
    target = TargetContext(services={"pay": ServiceTarget(deployment="payments-api")})
    hypothesis_ = hypothesis(FaultType.DEPENDENCY_DOWN, "pay")
    assert interpret_verification(hypothesis_, [crashing], target).status == "confirmed"
    # Without the target the pods of "pay" are looked for, and there are none: a weak hint only.
    assert interpret_verification(hypothesis_, [crashing]).status == "inconclusive"


@pytest.fixture
def recorded_kubernetes() -> Iterator[RecordedKubernetesAPI]:
    server = RecordedKubernetesAPI()
    with published(K8S_URL_VARIABLE, server.url):
        yield server
    server.close()


@pytest.mark.integration
def test_the_k8s_executors_results_are_read_from_their_rows(
    recorded_kubernetes: RecordedKubernetesAPI, agent: CloudAgent
) -> None:
    """The catalog's k8s tasks for a dependency, run by the ``k8s`` executor against the recorded API
    server (``tests/data/k8s_recordings/``): pods, endpoints and events read from ``data["items"]``."""
    target = TargetContext(namespace="production")
    tasks = [t for t in verification_tasks(hypothesis(FaultType.DEPENDENCY_DOWN, "x"), target) if t["type"] == "k8s"]
    assert [t["command"].split(" -n ")[0] for t in tasks] == [
        "kubectl get pods",
        "kubectl get svc,endpoints",
        "kubectl get events",
    ]
    results = [agent.run(task, actor="test").model_dump(mode="json") for task in tasks]
    assert all(result["status"] == "succeeded" and result["data"]["items"] for result in results)

    down = interpret_verification(hypothesis(FaultType.DEPENDENCY_DOWN, "payment-service"), results, target)
    assert down.status == "confirmed"
    assert [evidence.summary for evidence in down.evidence] == [
        "payment-service pods not ready: CrashLoopBackOff",
        "service payment-service has no endpoints",
        "failure events for payment-service",
    ]
    assert down.evidence[0].details["pods"] == [
        {"name": "payment-service-6f9d8c7b5-abcde", "ready": "0/1", "status": "CrashLoopBackOff", "restarts": 7}
    ]
    assert down.evidence[1].details["endpoints"]["not_ready"] == ["10.244.1.31:8080"]
    assert {event["reason"] for event in down.evidence[2].details["events"]} == {"Pulled", "BackOff"}

    healthy = interpret_verification(hypothesis(FaultType.DEPENDENCY_DOWN, "my-app"), results, target)
    assert healthy.status == "refuted"
    assert [evidence.summary for evidence in healthy.evidence] == [
        "all 2 pod(s) of my-app running and ready",
        "service my-app has endpoints 10.244.1.17:8080,10.244.2.23:8080",
    ]
    # The tables kubectl would print are not read: without them the verdicts are the same.
    blank = [{**result, "output": ""} for result in results]
    for component, verdict in (("payment-service", down), ("my-app", healthy)):
        assert interpret_verification(hypothesis(FaultType.DEPENDENCY_DOWN, component), blank, target) == verdict


def test_logs_are_the_one_k8s_result_read_as_text() -> None:
    """``kubectl logs`` returns no rows (``data`` counts the lines): its output is the log itself."""
    lines = [f"panic: runtime error: invalid memory address #{i}" for i in range(5)]
    logs = {
        "type": "k8s",
        "status": "succeeded",
        "output": "\n".join(lines) + "\n",
        "data": {"pod": "pay-1", "namespace": "production", "container": None, "lines": 5},
    }
    verdict = interpret_verification(hypothesis(FaultType.BAD_DEPLOY, "pay"), [logs])
    assert [evidence.summary for evidence in verdict.evidence] == ["5 panic/exception lines in pay's logs"]
    # The same text as a table's output, with rows in data, is not scanned.
    table = {**logs, "data": {"namespace": "production", "items": []}}
    assert interpret_verification(hypothesis(FaultType.BAD_DEPLOY, "pay"), [table]).evidence == []


def promql(values: list[float], step: float = 15.0) -> dict:
    """A prometheus task result as the executor gives it: tidy rows of one series."""
    rows = [{"labels": {"pod": "api-1"}, "timestamp": 1000 + i * step, "value": v} for i, v in enumerate(values)]
    return {"type": "prometheus", "status": "succeeded", "data": {"result_type": "matrix", "series": 1, "rows": rows}}


def test_a_promql_result_in_the_executors_tidy_rows_casts_a_vote() -> None:
    rising = interpret_verification(hypothesis(FaultType.CPU, "api"), [promql([0.1] * 6 + [0.5] * 6)])
    assert rising.evidence and "rose 5.0x" in rising.evidence[0].summary
    flat = interpret_verification(hypothesis(FaultType.CPU, "api"), [promql([0.2] * 12)])
    assert flat.evidence and "flat" in flat.evidence[0].summary
    # NaN arrives as text and is left out; too few points say nothing
    short = interpret_verification(hypothesis(FaultType.CPU, "api"), [promql([0.1, "NaN", 0.4])])  # type: ignore[list-item]
    assert short.evidence == [] and short.status == "inconclusive"
