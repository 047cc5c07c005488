"""Policy for the elasticsearch, clickhouse, k8s and prometheus task types (no servers needed)."""

from __future__ import annotations

import pytest

from executors import InvalidTask, Policy, PolicyConfig, RiskClass, TaskSpec, Verdict
from executors._policy.sql import analyze_sql


def decide(task: dict, **config: object):
    return Policy(PolicyConfig.model_validate(config), "test").decide(TaskSpec.parse(task))


@pytest.mark.parametrize(
    ("command", "risk"),
    [
        ("kubectl get pods -n production -o wide", RiskClass.READ),
        ("kubectl top pods", RiskClass.READ),
        ("kubectl describe pod dependency-service-xxx", RiskClass.READ),
        ("kubectl logs -n production my-app-pod --tail=1000", RiskClass.READ),
        ("kubectl rollout history deployment/my-app", RiskClass.READ),
        ("kubectl rollout restart deployment/my-app -n production", RiskClass.WRITE),
        ("kubectl rollout undo deployment/my-app", RiskClass.WRITE),
        ("kubectl scale deployment/my-app --replicas=0", RiskClass.WRITE),
    ],
)
def test_k8s_reads_run_and_changes_need_an_approval(command: str, risk: RiskClass) -> None:
    decision = decide({"type": "k8s", "command": command})
    assert decision.risk is risk
    assert decision.verdict is (Verdict.ALLOW if risk is RiskClass.READ else Verdict.NEEDS_APPROVAL)
    approved = decide({"type": "k8s", "command": command, "approval": {"approved_by": "oncall"}})
    assert approved.verdict is Verdict.ALLOW


def test_k8s_unsupported_verbs_are_invalid_not_guessed() -> None:
    with pytest.raises(InvalidTask, match="kubectl delete is not supported; supported: get, describe"):
        decide({"type": "k8s", "command": "kubectl delete deployment my-app"})
    with pytest.raises(InvalidTask, match="needs a command"):
        decide({"type": "k8s", "command": ""})


def test_k8s_environment_deny_patterns_see_the_effective_namespace() -> None:
    rules = {"deny": [{"pattern": r"-n kube-system\b", "reason": "hands off the control plane", "types": ["k8s"]}]}
    by_flag = decide({"type": "k8s", "command": "kubectl logs -n kube-system coredns-1"}, **rules)
    by_params = decide(
        {"type": "k8s", "command": "kubectl logs coredns-1", "params": {"namespace": "kube-system"}}, **rules
    )
    assert by_flag.verdict is by_params.verdict is Verdict.DENY
    assert by_flag.rule == "environment.deny"
    assert decide({"type": "k8s", "command": "kubectl logs -n shop web-1"}, **rules).verdict is Verdict.ALLOW


def test_k8s_writes_are_refused_where_max_risk_is_read() -> None:
    task = {"type": "k8s", "command": "kubectl rollout restart deployment/x", "approval": {"approved_by": "a"}}
    decision = decide(task, max_risk="read")
    assert decision.verdict is Verdict.DENY
    assert decision.rule == "environment.max-risk"


def test_elasticsearch_and_prometheus_only_read() -> None:
    search = decide({"type": "elasticsearch", "params": {"index": "app-logs-*", "query": {"match_all": {}}}})
    assert (search.verdict, search.risk) == (Verdict.ALLOW, RiskClass.READ)
    assert search.assessment.subjects == ["search app-logs-*"]
    with pytest.raises(InvalidTask, match="supported: search, count, get"):
        decide({"type": "elasticsearch", "params": {"operation": "delete_by_query"}})
    promql = decide({"type": "prometheus", "command": "up"})
    assert (promql.verdict, promql.risk) == (Verdict.ALLOW, RiskClass.READ)
    with pytest.raises(InvalidTask, match="PromQL"):
        decide({"type": "prometheus", "params": {}})


def test_elasticsearch_deny_patterns_match_the_index() -> None:
    rules = {"deny": [{"pattern": r"^search \.security", "types": ["elasticsearch"]}]}
    assert decide({"type": "elasticsearch", "params": {"index": ".security-7"}}, **rules).verdict is Verdict.DENY


@pytest.mark.parametrize(
    ("sql", "risk", "rule"),
    [
        (
            "SELECT service, count(*) FROM error_logs WHERE timestamp > now() - INTERVAL 1 HOUR GROUP BY service",
            RiskClass.READ,
            None,
        ),
        ("SELECT * FROM clusterAllReplicas('main', system.errors)", RiskClass.READ, None),
        ("CHECK TABLE error_logs", RiskClass.READ, None),
        ("KILL QUERY WHERE query_id = 'abc'", RiskClass.WRITE, None),
        ("SYSTEM DROP DNS CACHE", RiskClass.WRITE, None),
        ("SYSTEM FLUSH LOGS", RiskClass.WRITE, None),
        ("OPTIMIZE TABLE error_logs FINAL", RiskClass.WRITE, None),
        ("DETACH TABLE error_logs", RiskClass.WRITE, None),
        ("SYSTEM DROP REPLICA 'r2' FROM TABLE db.t", RiskClass.DESTRUCTIVE, None),
        ("ALTER TABLE error_logs DROP PARTITION 202401", RiskClass.DESTRUCTIVE, None),
        ("SELECT * FROM s3Cluster('c', 'https://bucket/x.csv')", RiskClass.WRITE, None),
        ("SELECT * FROM mongodb('h:27017', 'db', 'c', 'u', 'p', 'x String')", RiskClass.WRITE, None),
        ("SELECT * FROM sqlite('/var/lib/app.db', 'users')", None, "sql.file-access"),
        ("SELECT * FROM file('/etc/passwd', 'LineAsString')", None, "sql.file-access"),
        ("SYSTEM SHUTDOWN", None, "sql.shutdown"),
        ("SYSTEM KILL", None, "sql.shutdown"),
    ],
)
def test_clickhouse_statements(sql: str, risk: RiskClass | None, rule: str | None) -> None:
    assessment = analyze_sql(sql, "clickhouse")
    if rule is None:
        assert assessment.risk is risk
        assert not assessment.denials
    else:
        assert rule in [denial.rule for denial in assessment.denials]


def test_clickhouse_only_names_do_not_change_postgres() -> None:
    # sqlite() is a ClickHouse table function reading server files (denied there); in PostgreSQL it
    # is just a name: not refused, but as any function not on the read list, a write.
    postgres = analyze_sql("SELECT sqlite(1)", "postgres")
    assert postgres.risk is RiskClass.WRITE and not postgres.denials
    assert analyze_sql("OPTIMIZE TABLE t", "mysql").risk is RiskClass.WRITE
