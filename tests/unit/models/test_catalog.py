import pytest

from models import (
    Evidence,
    FaultType,
    FixHistory,
    Hypothesis,
    Risk,
    TargetContext,
    Topology,
    fix_suggestions,
    success_rate,
    verification_tasks,
)
from models.playbook._catalog import PG_TERMINATE, index_target
from tests.playbook_targets import SHOP as TARGET

EXECUTOR_TYPES = {"postgres", "mysql", "redis", "api", "shell", "k8s", "prometheus"}


def hypothesis(
    component: str, fault: FaultType, confidence: float = 0.8, evidence: list[Evidence] | None = None
) -> Hypothesis:
    return Hypothesis(
        component=component, fault=fault, confidence=confidence, evidence=evidence or [], affected=["checkout"]
    )


@pytest.mark.parametrize("fault", list(FaultType))
def test_every_fault_has_well_formed_verification_tasks(fault: FaultType) -> None:
    component = {"db_slow_query": "orders-db", "db_pool_exhausted": "items-db", "cache": "session-cache"}.get(
        fault.value, "checkout"
    )
    tasks = verification_tasks(hypothesis(component, fault), TARGET)
    assert tasks
    for task in tasks:
        assert set(task) == {"type", "command", "params", "timeout", "agent_id"}
        assert task["type"] in EXECUTOR_TYPES
        assert task["command"] or task["params"].get("url")
        assert task["agent_id"] == "agent-prod-001"


def test_tasks_are_filled_from_the_target() -> None:
    [pg] = verification_tasks(hypothesis("orders-db", FaultType.DB_SLOW_QUERY), TARGET)
    assert pg["type"] == "postgres" and pg["params"] == {"connection": "orders"}
    assert "pg_stat_activity" in pg["command"]
    [mysql] = verification_tasks(hypothesis("items-db", FaultType.DB_POOL_EXHAUSTED), TARGET)
    assert mysql["command"].startswith("SHOW PROCESSLIST; SHOW STATUS LIKE 'Threads_connected';")
    redis = verification_tasks(hypothesis("session-cache", FaultType.CACHE), TARGET)
    assert [t["command"] for t in redis] == ["INFO stats", "INFO memory", "SLOWLOG GET 10"]
    down = verification_tasks(hypothesis("checkout", FaultType.DEPENDENCY_DOWN), TARGET)
    assert down[0] == {
        "type": "api",
        "command": "",
        "params": {"method": "GET", "url": "http://checkout/health"},
        "timeout": 15,
        "agent_id": "agent-prod-001",
    }
    assert any(t["command"] == "kubectl get pods -n shop -o wide" for t in down)


def test_unknown_engine_gets_both_dialects_and_defaults() -> None:
    tasks = verification_tasks(hypothesis("mystery-db", FaultType.DB_SLOW_QUERY))
    assert [t["type"] for t in tasks] == ["postgres", "mysql"]
    assert all(t["params"] == {"connection": "default"} for t in tasks)


def test_bad_deploy_fixes_roll_back_first() -> None:
    fixes = fix_suggestions(hypothesis("checkout", FaultType.BAD_DEPLOY), TARGET)
    assert [f.action for f in fixes] == ["rollback_deployment", "restart_service"]
    assert fixes[0].command["command"] == "kubectl rollout undo deployment/checkout-v2 -n shop"
    assert fixes[0].risk is Risk.MEDIUM and fixes[1].risk is Risk.LOW
    assert fixes[0].confidence == pytest.approx(0.8 * 0.9)


def test_history_moves_fix_confidence() -> None:
    base = success_rate(FaultType.MEMORY, "restart_service")
    good = FixHistory.from_outcomes([(FaultType.MEMORY, "restart_service", True)] * 10)
    bad = FixHistory.from_outcomes([("memory", "restart_service", False)] * 10)
    assert (
        success_rate(FaultType.MEMORY, "restart_service", good)
        > base
        > success_rate(FaultType.MEMORY, "restart_service", bad)
    )
    fixes = fix_suggestions(hypothesis("checkout", FaultType.MEMORY), TARGET, history=bad)
    assert fixes[0].action == "scale_out"  # restarting stopped working: scale-out comes first now


def test_slow_query_fixes_use_the_evidence() -> None:
    db = Evidence(
        kind="db",
        source="items-db",
        summary="...",
        score=0.9,
        details={
            "top_queries": [{"id": "41", "seconds": 300, "query": "SELECT * FROM orders o WHERE o.customer_id = ?"}]
        },
    )
    fixes = {
        f.action: f for f in fix_suggestions(hypothesis("items-db", FaultType.DB_SLOW_QUERY, evidence=[db]), TARGET)
    }
    assert fixes["terminate_long_queries"].command["command"] == "KILL 41;"
    assert fixes["add_index"].command["command"] == "CREATE INDEX idx_orders_customer_id ON orders (customer_id)"
    assert fixes["add_index"].runnable and fixes["optimize_table"].runnable
    pg = {f.action: f for f in fix_suggestions(hypothesis("orders-db", FaultType.DB_SLOW_QUERY), TARGET)}
    assert pg["terminate_long_queries"].command["command"] == PG_TERMINATE
    assert not pg["add_index"].runnable
    assert "optimize_table" not in pg


def test_cache_and_pool_fixes() -> None:
    cache = {f.action: f for f in fix_suggestions(hypothesis("session-cache", FaultType.CACHE), TARGET)}
    assert cache["flush_cache"].risk is Risk.HIGH and cache["flush_cache"].command["command"] == "FLUSHDB"
    assert not cache["raise_maxmemory"].runnable
    pool = [
        f
        for f in fix_suggestions(hypothesis("items-db", FaultType.DB_POOL_EXHAUSTED), TARGET)
        if f.action == "restart_callers"
    ]
    assert pool[0].command["command"] == "kubectl rollout restart deployment/checkout-v2 -n shop"


def test_a_service_whose_own_pool_ran_dry_is_restarted_not_its_database() -> None:
    fixes = {f.action: f for f in fix_suggestions(hypothesis("checkout", FaultType.DB_POOL_EXHAUSTED), TARGET)}
    assert set(fixes) == {"restart_service", "scale_out"}
    assert fixes["restart_service"].command["command"] == "kubectl rollout restart deployment/checkout-v2 -n shop"
    assert fixes["restart_service"].risk is Risk.LOW


def test_a_services_own_pool_is_checked_on_the_databases_it_calls() -> None:
    topology = Topology.from_dict(
        {
            "services": [
                "checkout",
                {"name": "orders-db", "kind": "database", "engine": "postgres", "connection": "orders"},
                {"name": "items-db", "kind": "database", "engine": "mysql", "connection": "items"},
                {"name": "session-cache", "kind": "cache", "connection": "sessions"},
            ],
            "calls": [["checkout", "orders-db"], ["checkout", "session-cache"], ["checkout", "items-db"]],
        }
    )
    tasks = verification_tasks(
        hypothesis("checkout", FaultType.DB_POOL_EXHAUSTED), TargetContext.from_topology(topology)
    )
    assert [(task["type"], task["params"]["connection"]) for task in tasks] == [
        ("postgres", "orders"),
        ("postgres", "orders"),
        ("mysql", "items"),
    ]
    # Nobody said which databases it calls: the default connection, either engine.
    unknown = verification_tasks(hypothesis("checkout", FaultType.DB_POOL_EXHAUSTED), TARGET)
    assert {(task["type"], task["params"]["connection"]) for task in unknown} == {
        ("postgres", "default"),
        ("mysql", "default"),
    }


def test_restarting_a_datastore_is_high_risk_and_scale_needs_replicas() -> None:
    [restart] = [
        f for f in fix_suggestions(hypothesis("orders-db", FaultType.MEMORY), TARGET) if f.action == "restart_service"
    ]
    assert restart.risk is Risk.HIGH
    scale = {f.action: f for f in fix_suggestions(hypothesis("checkout", FaultType.CPU), TARGET)}["scale_out"]
    assert scale.runnable and "--replicas=6" in scale.command["command"]
    unknown = {f.action: f for f in fix_suggestions(hypothesis("web", FaultType.CPU))}["scale_out"]
    assert not unknown.runnable


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("SELECT * FROM orders WHERE customer_id = $1", ("orders", "customer_id")),
        ("select o.* from shop.orders o where o.status in ('a')", ("shop.orders", "status")),
        ("UPDATE inventory SET reserved = 1 WHERE sku = $1", ("inventory", "sku")),
        ("SELECT 1", None),
    ],
)
def test_index_target(query: str, expected: tuple[str, str] | None) -> None:
    assert index_target(query) == expected


def test_postgres_terminate_fix_names_the_stuck_sessions_it_saw() -> None:
    db = Evidence(
        kind="db",
        source="orders-db",
        summary="...",
        score=0.9,
        details={
            "top_queries": [
                {"id": "31471", "seconds": 40.0, "query": "SELECT pg_sleep(900)"},
                {"id": "31473", "seconds": 39.0, "query": "SELECT pg_sleep(900)"},
                {"id": "31480", "seconds": 0.2, "query": "SELECT 1"},  # not stuck: left alone
            ]
        },
    )
    hypothesis_ = hypothesis("orders-db", FaultType.DB_POOL_EXHAUSTED, evidence=[db])
    fix = {f.action: f for f in fix_suggestions(hypothesis_, TARGET)}["terminate_long_queries"]
    command = fix.command["command"]
    assert "pid IN (31471, 31473)" in command and "31480" not in command
    # A pid reused by a new session since the evidence is not terminated: the age guard.
    assert "now() - query_start > interval '5 seconds'" in command
    assert fix.runnable and fix.risk is Risk.MEDIUM
