"""The SQL analyser's allow-list of read functions, and the constructs its lexer cannot be trusted on.

No server here: these are the classifier's own answers. That the server refuses what a misjudged
read would do, with the read account, is in ``test_read_accounts.py``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from contract import RiskClass
from executors._policy.sql import analyze_sql
from models import FaultType, Hypothesis, ServiceKind, TargetContext, Topology, verification_tasks
from models.playbook import PlannedTask
from models.playbook.collection import (
    LogsSource,
    MetricsSource,
    TelemetrySources,
    TracesSource,
    Window,
    plan_evidence,
    plan_follow_ups,
    plan_metrics,
)

EXAMPLES = Path(__file__).parents[2] / "data" / "task-examples.json"
SQL_TYPES = ("postgres", "mysql", "clickhouse")

# What the red team ran as "reads", and what else runs SQL or changes the server from a SELECT.
WRITES = [
    ("postgres", 'SELECT "pg_terminate_backend"(pid) FROM pg_stat_activity'),
    ("postgres", 'SELECT "pg_cancel_backend"(42)'),
    ("postgres", 'SELECT "count"(*) FROM pg_stat_activity'),
    ("postgres", 'SELECT U&"\\0070g_terminate_backend"(42)'),
    ("postgres", "SELECT U&'\\0041' AS a"),
    ("postgres", "SELECT 1 /* /* */ , pg_sleep(1) */"),
    ("postgres", "SELECT /* outer /* inner */ still a comment to PostgreSQL */ 1"),
    ("postgres", "SELECT $$quoted$$"),
    ("postgres", "SELECT $tag$ body $tag$"),
    ("postgres", "SELECT pg_terminate_backend(42)"),
    ("postgres", "SELECT pg_cancel_backend(42)"),
    ("postgres", "SELECT pg_stat_reset()"),
    ("postgres", "SELECT pg_stat_statements_reset()"),
    ("postgres", "SELECT pg_stat_reset_shared('bgwriter')"),
    ("postgres", "SELECT set_config('log_statement', 'all', false)"),
    ("postgres", "SELECT pg_reload_conf()"),
    ("postgres", "SELECT pg_advisory_lock(1)"),
    ("postgres", "SELECT nextval('s')"),
    ("postgres", "SELECT txid_current()"),
    ("postgres", "SELECT pg_ls_logdir()"),
    ("postgres", "SELECT * FROM query_to_xml('DELETE FROM t RETURNING 1', true, true, '')"),
    ("postgres", "SELECT * FROM dblink('dbname=test', 'SELECT 1') AS t(a int)"),
    ("postgres", "SELECT dblink_exec('dbname=test', 'DROP TABLE t')"),
    ("postgres", "SELECT lo_creat(-1)"),
    ("postgres", "SELECT lo_unlink(16400)"),
    ("postgres", "SELECT my_cleanup_function()"),
    ("postgres", "SELECT public.now()"),
    ("postgres", "SELECT evil.pg_catalog.now()"),
    ("postgres", 'SELECT "pg_catalog".now()'),
    ("postgres", "SELECT evil.values(1), evil.exists(2)"),
    ("postgres", "SELECT 1 FROM t WHERE a IN (pg_terminate_backend(42))"),
    ("postgres", "SELECT * FROM evil() AS (a int)"),
    ("postgres", "WITH a(x) AS (SELECT 1), b(y) AS (SELECT pg_terminate_backend(1)) SELECT * FROM a, b"),
    ("postgres", "EXECUTE purge_plan"),
    ("postgres", "PREPARE p AS SELECT 1"),
    ("postgres", "DO 'BEGIN PERFORM 1; END'"),
    ("postgres", "CALL cleanup()"),
    ("postgres", "EXPLAIN (FORMAT JSON, ANALYZE) UPDATE t SET a = 1 WHERE id = 1"),
    ("postgres", "EXPLAIN SELECT my_immutable_liar(1)"),
    ("mysql", "SELECT `load_file`('/etc/hostname')"),
    ("mysql", "SELECT `now`()"),
    ("mysql", "SELECT GET_LOCK('x', 10)"),
    ("mysql", "SELECT RELEASE_ALL_LOCKS()"),
    ("mysql", "SELECT BENCHMARK(100000000, MD5('a'))"),
    ("mysql", "SELECT app.cleanup()"),
    ("mysql", "SELECT 1 FROM DUAL PROCEDURE ANALYSE()"),
    ("mysql", "DO SLEEP(1)"),
    ("mysql", "HANDLER t OPEN"),
    ("clickhouse", "SELECT * FROM url('http://169.254.169.254/latest', CSV, 'a String')"),
    ("clickhouse", "SELECT * FROM remote('db2:9000', system.one)"),
    ("clickhouse", "SELECT * FROM executable('x.sh', TSV, 'a String')"),
    ("clickhouse", "SELECT my_udf(1)"),
]

READS = [
    ("postgres", "SELECT pg_size_pretty(pg_database_size(current_database()))"),
    ("postgres", "SELECT now(), version(), current_setting('max_connections')::int"),
    ("postgres", "SELECT pg_catalog.now()"),
    ("postgres", "SELECT pg_sleep(0.1)"),
    ("postgres", "SELECT relname, n_dead_tup FROM pg_stat_user_tables ORDER BY n_dead_tup DESC LIMIT 10"),
    ("postgres", "SELECT count(*) FILTER (WHERE state = 'active') FROM pg_stat_activity"),
    ("postgres", "SELECT percentile_cont(0.99) WITHIN GROUP (ORDER BY duration) FROM traces"),
    ("postgres", "SELECT row_number() OVER (PARTITION BY service ORDER BY time) FROM logs"),
    ("postgres", "SELECT CAST(duration AS numeric(10, 2)), EXTRACT(EPOCH FROM now() - query_start) FROM t"),
    ("postgres", "SELECT a FROM t WHERE a IN (SELECT 1) AND EXISTS (SELECT 1) AND b = ANY (ARRAY[1, 2])"),
    ("postgres", "SELECT date_trunc('minute', time), avg(value) FROM metrics GROUP BY 1"),
    ("postgres", "SELECT * FROM information_schema.tables"),
    ("postgres", "WITH x AS (SELECT 1 AS a) SELECT coalesce(a, 0) FROM x"),
    ("postgres", "EXPLAIN SELECT * FROM traces WHERE duration > 1000"),
    ("postgres", "SELECT pid, pg_blocking_pids(pid) FROM pg_stat_activity"),
    ("postgres", "SELECT n FROM generate_series(1, 3) AS g(n)"),
    ("postgres", "WITH x(n) AS NOT MATERIALIZED (SELECT 1) SELECT n FROM x"),
    ("mysql", "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 10) SELECT n FROM r"),
    ("mysql", "SELECT NOW(), DATE_SUB(NOW(), INTERVAL 1 HOUR), UNIX_TIMESTAMP(NOW())"),
    ("mysql", "SELECT * FROM performance_schema.events_statements_summary_by_digest LIMIT 5"),
    ("mysql", "SELECT IFNULL(a, 0), GROUP_CONCAT(b) FROM t GROUP BY a"),
    ("mysql", "SELECT SLEEP(0.1)"),
    ("clickhouse", "SELECT countIf(level = 'ERROR'), quantilesOrNull(0.5, 0.99)(duration) FROM logs"),
    ("clickhouse", "SELECT toStartOfMinute(timestamp), uniqExact(trace_id) FROM spans GROUP BY 1"),
    ("clickhouse", "SELECT formatReadableSize(sum(bytes_on_disk)) FROM system.parts"),
    ("clickhouse", "SELECT count() FROM logs WHERE service = {service:String}"),
]


@pytest.mark.parametrize(("dialect", "sql"), WRITES, ids=[f"{d}:{s[:60]}" for d, s in WRITES])
def test_what_the_analyser_cannot_vouch_for_is_at_least_write(dialect: Any, sql: str) -> None:
    assessment = analyze_sql(sql, dialect)

    assert assessment.risk.rank >= RiskClass.WRITE.rank, assessment.reasons


@pytest.mark.parametrize(("dialect", "sql"), READS, ids=[f"{d}:{s[:60]}" for d, s in READS])
def test_diagnostic_sql_stays_read(dialect: Any, sql: str) -> None:
    assessment = analyze_sql(sql, dialect)

    assert assessment.risk is RiskClass.READ, assessment.reasons


def test_reasons_name_the_function_that_is_not_on_the_list() -> None:
    assessment = analyze_sql("SELECT a FROM t WHERE my_cleanup_function(a)", "postgres")

    assert any("my_cleanup_function() is not on the list of read-only functions" in r for r in assessment.reasons)


def test_a_writing_statement_keeps_its_own_reason() -> None:
    # The table name before "(" is not reported as an unknown function of an INSERT.
    assessment = analyze_sql("INSERT INTO t (a) VALUES (1)", "postgres")

    assert assessment.risk is RiskClass.WRITE
    assert not any("read-only functions" in reason for reason in assessment.reasons), assessment.reasons


def test_quoted_file_functions_are_still_denied() -> None:
    assert [d.rule for d in analyze_sql("SELECT \"pg_read_file\"('/etc/passwd')", "postgres").denials] == [
        "sql.file-access"
    ]
    assert [d.rule for d in analyze_sql("SELECT `load_file`('/etc/passwd')", "mysql").denials] == ["sql.file-access"]


def test_mariadb_executable_comments_are_refused() -> None:
    for sql in ("SELECT 1 /*! , SLEEP(1) */", "SELECT 1 /*M! , SLEEP(1) */", "SELECT 1 /*M!100500 , 2 */"):
        assert [d.rule for d in analyze_sql(sql, "mysql").denials] == ["sql.executable-comment"], sql


# -- the SQL the spec and the cycle send stay read -------------------------------------------------


def _spec_sql_reads() -> list[tuple[str, str]]:
    examples = json.loads(EXAMPLES.read_text())
    reads = []
    for example in examples:
        if example.get("type") not in SQL_TYPES:
            continue
        command = example["command"]
        if command.split()[0].upper() in ("CREATE", "OPTIMIZE") or command.endswith("..."):
            continue  # the spec's fixes, and its "EXPLAIN SELECT ..." placeholder
        reads.append((example["type"], command))
    return reads


def test_the_spec_examples_we_skip_are_the_fixes_only() -> None:
    examples = [e for e in json.loads(EXAMPLES.read_text()) if e.get("type") in SQL_TYPES]
    assert len(_spec_sql_reads()) == len(examples) - 3  # CREATE INDEX, OPTIMIZE TABLE, EXPLAIN SELECT ...


@pytest.mark.parametrize(("dialect", "sql"), _spec_sql_reads())
def test_spec_sql_examples_are_reads(dialect: Any, sql: str) -> None:
    assessment = analyze_sql(sql, dialect)

    assert assessment.risk is RiskClass.READ, assessment.reasons


def _cycle_sql() -> list[tuple[str, str]]:
    """Every SQL text collection and verification send, for every SQL dialect they support."""
    window = Window(1_700_000_000.0, 1_700_000_900.0)
    tasks: list[dict[str, Any]] = []
    for dialect in SQL_TYPES:
        sources = TelemetrySources(
            metrics=MetricsSource(type=dialect, table="rca.metrics"),
            logs=LogsSource(type=dialect),
            traces=TracesSource(type=dialect),
        )
        assert sources.metrics is not None
        tasks += [item.task for item in plan_metrics(sources.metrics, ["checkout", "orders-db"], window)]
        topology = {
            "services": [
                {"name": "checkout"},
                {"name": "orders-db", "kind": "database", "engine": "postgres", "connection": "default"},
                {"name": "users-db", "kind": "database", "engine": "mysql", "connection": "default"},
            ],
            "calls": [["checkout", "orders-db"], ["checkout", "users-db"]],
        }
        plan: list[PlannedTask] = plan_evidence(sources, Topology.from_dict(topology), ["checkout"], window)
        tasks += [item.task for item in plan]
        logs = pd.DataFrame({"level": ["ERROR"], "trace_id": ["abc123"], "time": [1_700_000_100.0]})
        tasks += [item.task for item in plan_follow_ups(sources, logs, window)]
    for engine in ("postgres", "mysql"):
        target = TargetContext.model_validate(
            {"services": {"orders-db": {"kind": ServiceKind.DATABASE, "engine": engine}}}
        )
        for fault in FaultType:
            hypothesis = Hypothesis(component="orders-db", fault=fault, confidence=0.5)
            tasks += verification_tasks(hypothesis, target)
    return sorted({(t["type"], t["command"]) for t in tasks if t.get("type") in SQL_TYPES})


def test_the_cycle_sends_sql_of_every_kind() -> None:
    kinds = {(dialect, sql.split()[0].upper()) for dialect, sql in _cycle_sql()}
    assert {("postgres", "SELECT"), ("mysql", "SELECT"), ("mysql", "SHOW"), ("clickhouse", "SELECT")} <= kinds


@pytest.mark.parametrize(("dialect", "sql"), _cycle_sql(), ids=lambda value: str(value)[:70])
def test_collection_and_verification_sql_are_reads(dialect: Any, sql: str) -> None:
    assessment = analyze_sql(sql, dialect)

    assert assessment.risk is RiskClass.READ, assessment.reasons
