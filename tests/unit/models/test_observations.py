import pytest

from models import cache_stats_from_info, db_snapshot_from_result, health_check_from_result
from models.domain._observations import parse_duration


def result_set(columns: list[str], rows: list[list[object]]) -> dict:
    return {"statement": "x", "columns": columns, "rows": rows, "row_count": len(rows), "truncated": False}


def test_postgres_activity() -> None:
    data = {
        "result_sets": [
            result_set(
                ["pid", "duration", "state", "wait_event_type", "query"],
                [
                    [11, 93.5, "active", None, "SELECT * FROM orders WHERE id = $1"],
                    [12, "00:00:07.25", "idle in transaction", "Lock", "UPDATE orders SET x = 1"],
                    [13, 0.2, "active", None, "SELECT 1"],
                    [14, None, "idle", None, ""],
                ],
            ),
            result_set(["connections", "max_connections"], [[4, 100]]),
        ]
    }
    snapshot = db_snapshot_from_result(data, "postgres", "orders-db")
    assert (snapshot.connections, snapshot.max_connections, snapshot.usage) == (4, 100, 0.04)
    assert snapshot.long_running == 2
    assert snapshot.longest_seconds == 93.5
    assert snapshot.waiting_on_locks == 1
    assert [q.id for q in snapshot.top_queries] == ["11", "12", "13"]


def test_mysql_processlist_and_status() -> None:
    data = {
        "result_sets": [
            result_set(
                ["Id", "User", "Host", "db", "Command", "Time", "State", "Info"],
                [
                    [7, "app", "h", "shop", "Sleep", 900, "", None],
                    [8, "app", "h", "shop", "Query", 64, "Sending data", "SELECT * FROM items"],
                    [9, "app", "h", "shop", "Query", 3, "Waiting for table metadata lock", "ALTER TABLE items"],
                ],
            ),
            result_set(["Variable_name", "Value"], [["Threads_connected", "151"]]),
            result_set(["Variable_name", "Value"], [["max_connections", "151"]]),
        ]
    }
    snapshot = db_snapshot_from_result(data, "mysql", "items-db")
    assert snapshot.engine == "mysql"
    assert (snapshot.connections, snapshot.max_connections) == (151, 151)
    assert snapshot.active == 2  # the sleeping thread holds a connection but does nothing
    assert snapshot.long_running == 1
    assert snapshot.waiting_on_locks == 1
    assert snapshot.top_queries[0].id == "8"


def test_information_schema_processlist_lowercase_columns() -> None:
    data = {
        "result_sets": [
            result_set(["ID", "TIME", "COMMAND", "STATE", "INFO"], [[5, 120, "Query", "executing", "SELECT 2"]])
        ]
    }
    snapshot = db_snapshot_from_result({"status": "succeeded", "data": data}, "mysql", "db")
    assert snapshot.long_running == 1 and snapshot.longest_seconds == 120


@pytest.mark.parametrize(
    ("text", "seconds"), [("00:01:02", 62.0), ("1 day 00:00:01.5", 86401.5), (3, 3.0), ("nope", None)]
)
def test_parse_duration(text: object, seconds: float | None) -> None:
    assert parse_duration(text) == seconds


def test_cache_stats_from_info() -> None:
    stats = cache_stats_from_info(
        {"evicted_keys": 12, "keyspace_hits": 30, "keyspace_misses": 70, "used_memory": 99, "maxmemory": 100}, "cache"
    )
    assert stats.hit_ratio == 0.3
    assert stats.memory_usage == 0.99
    assert stats.rejected_connections == 0
    assert cache_stats_from_info({}, "cache").hit_ratio is None


def test_health_checks() -> None:
    unreachable = {"status": "failed", "data": None, "error": {"code": "unreachable", "message": "refused"}}
    failing = {
        "status": "failed",
        "data": {"status_code": 503, "elapsed_ms": 4.0},
        "error": {"code": "http_error", "message": "503"},
    }
    healthy = {"status": "succeeded", "data": {"status_code": 200, "elapsed_ms": 12.5}, "error": None}
    assert health_check_from_result(unreachable, "a").unreachable
    assert not health_check_from_result(unreachable, "a").ok
    check = health_check_from_result(failing, "a")
    assert (check.status_code, check.ok) == (503, False)
    check = health_check_from_result(healthy, "a")
    assert (check.ok, check.latency_ms) == (True, 12.5)
