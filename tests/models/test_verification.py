from models import FaultType, Hypothesis, interpret_verification


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


def test_cache_counters() -> None:
    evicting = {
        "type": "redis",
        "status": "succeeded",
        "data": {"keyspace_hits": 20, "keyspace_misses": 80, "evicted_keys": 500},
    }
    assert interpret_verification(hypothesis(FaultType.CACHE, "redis"), [evicting]).status == "confirmed"
    fine = {
        "type": "redis",
        "status": "succeeded",
        "data": {"keyspace_hits": 99, "keyspace_misses": 1, "evicted_keys": 0},
    }
    assert interpret_verification(hypothesis(FaultType.CACHE, "redis"), [fine]).status == "refuted"


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
    assert interpret_verification(cache, [raised]).status == "confirmed"
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
    assert interpret_verification(cache, [raised], baseline=[other]).status == "confirmed"


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
    pods = {
        "type": "k8s",
        "status": "succeeded",
        "output": "NAME READY STATUS RESTARTS AGE\npay-7f9c-x 0/1 CrashLoopBackOff 7 5m\nweb-1 1/1 Running 0 1d\n",
    }
    assert interpret_verification(hypothesis(FaultType.DEPENDENCY_DOWN, "pay"), [pods]).status == "confirmed"
    oom = {"type": "k8s", "status": "succeeded", "output": "NAME READY STATUS RESTARTS AGE\npay-1 1/1 OOMKilled 3 5m\n"}
    assert interpret_verification(hypothesis(FaultType.MEMORY, "pay"), [oom]).status == "confirmed"


def test_mixed_signals_are_inconclusive() -> None:
    unreachable = {"type": "api", "status": "failed", "error": {"code": "unreachable", "message": "refused"}}
    answers = sql([[1]], ["?column?"])
    verdict = interpret_verification(hypothesis(FaultType.DEPENDENCY_DOWN), [unreachable, answers])
    assert verdict.status == "inconclusive"


def pods(rows: list[str]) -> dict:
    header = "NAME                     READY   STATUS    RESTARTS   AGE"
    return {"type": "k8s", "status": "succeeded", "output": "\n".join([header, *rows]), "data": {}}


def health(status: int) -> dict:
    return {
        "type": "api",
        "status": "succeeded" if status < 400 else "failed",
        "data": {"status_code": status, "elapsed_ms": 3.0},
        "error": None if status < 400 else {"code": "http_error", "message": f"HTTP {status}"},
    }


def test_a_strong_signal_outweighs_a_weak_contrary_one() -> None:
    ready = pods(["pay-7d9f8c6b5-x2k4q      1/1     Running   0          3h"])
    down = interpret_verification(hypothesis(FaultType.DEPENDENCY_DOWN, "pay"), [health(500), ready])
    assert down.status == "confirmed"  # answering 500 with ready pods is still down
    back = interpret_verification(hypothesis(FaultType.DEPENDENCY_DOWN, "pay"), [health(200), ready])
    assert back.status == "refuted"


def test_pods_are_matched_by_the_components_deployment() -> None:
    from models import ServiceTarget, TargetContext

    crashing = pods(["payments-api-6f9d8c7b5-abcde   0/1     CrashLoopBackOff   7          1h"])
    target = TargetContext(services={"pay": ServiceTarget(deployment="payments-api")})
    hypothesis_ = hypothesis(FaultType.DEPENDENCY_DOWN, "pay")
    assert interpret_verification(hypothesis_, [crashing], target).status == "confirmed"
    # Without the target the pods of "pay" are looked for, and there are none: a weak hint only.
    assert interpret_verification(hypothesis_, [crashing]).status == "inconclusive"
