"""Fuzzing: schemathesis against the served OpenAPI (every route, as an approver, bounded), and
hypothesis properties of the task parser, the shell/SQL/Redis analysers and the alert parser.

The properties are the ones the policy's safety rests on: analysing any text either classifies it
or refuses it (never an exception that could fail open), and combining a command with another —
chained, substituted, wrapped, commented, re-cased — never makes it less risky than its parts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from executors import InvalidTask, Policy, PolicyConfig, RiskClass, TaskSpec, Verdict
from executors._policy.redis import analyze_redis
from executors._policy.shell import analyze_shell
from executors._policy.sql import analyze_sql
from flows.alerts import AlertGroup, InvalidAlert, parse_alert_group
from tests.environments import write_environment
from tests.gateway_fixtures import GatewayFactory
from tests.identities import APPROVER
from tests.reliability import scenarios

pytestmark = [
    pytest.mark.reliability,
    # Hypothesis checks that `random`'s state is unchanged around each draw, to catch strategies
    # that use it; other threads of this process (cycles that an earlier test's webhook started,
    # Prefect's services) use it meanwhile and trip that check. Our strategies do not use it.
    pytest.mark.filterwarnings("ignore:Do not use the `random` module inside strategies"),
]

#: Bounded: examples per property (a property takes well under a second at this size).
PROPERTY = settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
POLICY = Policy(PolicyConfig(), "fuzz")

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


# -- schemathesis -----------------------------------------------------------------------------------


@pytest.mark.integration
@pytest.mark.slow
def test_every_route_keeps_its_openapi_contract(
    prefect_api: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, gateway_factory: GatewayFactory
) -> None:
    # As an approver, the role that reaches every operation. Generated commands must not do
    # anything: the environment allows reads only, stopped after a second. An alert that happened
    # to be valid would be an event on the test Prefect server, which starts nothing.
    folder = tmp_path / "fuzz"
    write_environment(folder, "local", agents=["agent-local-001"], policy={"max_risk": "read"},
                      limits={"max_timeout_seconds": 1, "max_output_bytes": 4096})  # fmt: skip
    monkeypatch.setenv("CLOUD_AGENT_CONFIG_DIR", str(folder))
    monkeypatch.setenv("CLOUD_AGENT_CYCLE_START", "event")
    gateway = gateway_factory(gateway_run_as="engine")

    outcome = scenarios.schemathesis_run(gateway.url, APPROVER, tmp_path, max_examples=20, time_limit=90)

    scenarios.check(outcome)


# -- the task parser ------------------------------------------------------------------------------


@PROPERTY
@given(json_values)
def test_parsing_any_json_gives_a_task_or_invalid_task(data: Any) -> None:
    try:
        TaskSpec.parse(data)
    except InvalidTask as exc:
        assert str(exc)


task_fields = st.fixed_dictionaries(
    {"type": st.sampled_from(["shell", "postgres", "redis", "api"]) | json_values},
    optional={
        "agent_id": json_values,
        "command": st.text(max_size=50) | json_values,
        "params": st.dictionaries(st.text(max_size=8), json_values, max_size=4) | json_values,
        "sync": json_values,
        "timeout": st.floats() | json_values,
        "approval": json_values,
    },
)


@PROPERTY
@given(task_fields)
def test_a_parsed_task_survives_its_own_round_trip(data: dict[str, Any]) -> None:
    try:
        spec = TaskSpec.parse(data)
    except InvalidTask:
        return
    again = TaskSpec.parse(spec.model_dump(mode="json"))
    assert again == spec
    spec.model_dump_json().encode("utf-8")  # whatever was accepted can be stored and sent on


# -- the analysers: any text is classified or refused ---------------------------------------------


@PROPERTY
@given(st.text(max_size=200))
def test_any_shell_text_is_classified(text: str) -> None:
    assessment = analyze_shell(text)
    assert assessment.risk in RiskClass


@PROPERTY
@given(st.text(max_size=200), st.sampled_from(["postgres", "mysql", "clickhouse"]))
def test_any_sql_text_is_classified(text: str, dialect: Any) -> None:
    assessment = analyze_sql(text, dialect)
    assert assessment.risk in RiskClass


@PROPERTY
@given(st.text(max_size=100))
def test_any_redis_text_is_classified_or_refused(text: str) -> None:
    try:
        assessment = analyze_redis(text)
    except InvalidTask:
        return
    assert assessment.risk in RiskClass


@PROPERTY
@given(st.sampled_from(["shell", "postgres", "mysql", "redis", "k8s", "api", "prometheus"]), st.text(max_size=120))
def test_the_policy_decides_any_command_or_refuses_it(task_type: str, command: str) -> None:
    if "\x00" in command:
        return  # refused by TaskSpec before any policy sees it
    try:
        decision = POLICY.decide(TaskSpec(type=task_type, command=command))
    except InvalidTask:
        return
    assert decision.verdict in Verdict


# -- the analysers: combining never lowers the risk -----------------------------------------------

SHELL_PARTS = [
    "df -h", "echo hi", "cat /proc/loadavg", "grep -c x /var/log/syslog", "touch /tmp/x", "rm -f /tmp/x",
    "rm -rf /", "shutdown -h now", "curl http://169.254.169.254/", "cat /etc/shadow", "python3 -c 'print(1)'",
    "kill -9 1", "echo x > /dev/sda", "systemctl restart nginx", "ls /", "dd if=/dev/zero of=/dev/sda",
]  # fmt: skip
CONNECTORS = ["; ", " && ", " || ", "\n", " | ", " & "]
WRAPPERS = ["{}", "$({})", "`{}`", "bash -c '{}'", "sudo {}", "env {}", "timeout 5 {}", "( {} )", "nohup {}"]


def _shell(command: str) -> tuple[int, bool]:
    decision = POLICY.decide(TaskSpec(type="shell", command=command))
    return decision.risk.rank, decision.verdict is Verdict.DENY


@PROPERTY
@given(st.sampled_from(SHELL_PARTS), st.sampled_from(SHELL_PARTS), st.sampled_from(CONNECTORS))
def test_chaining_shell_commands_never_lowers_the_risk(first: str, second: str, connector: str) -> None:
    combined = _shell(first + connector + second)
    for part in (first, second):
        rank, denied = _shell(part)
        assert combined[0] >= rank, (first, connector, second)
        assert combined[1] or not denied, (first, connector, second)


@PROPERTY
@given(st.sampled_from(SHELL_PARTS), st.sampled_from(WRAPPERS))
def test_wrapping_a_shell_command_never_lowers_the_risk(part: str, wrapper: str) -> None:
    if "'" in part and "'" in wrapper:
        return  # quoting a quote needs escaping: another command
    rank, denied = _shell(part)
    wrapped = _shell("echo " + wrapper.format(part) if wrapper.startswith(("$", "`")) else wrapper.format(part))
    assert wrapped[0] >= rank and (wrapped[1] or not denied), wrapper.format(part)


SQL_PARTS = [
    "SELECT 1", "SELECT * FROM pg_stat_activity", "SHOW PROCESSLIST", "DELETE FROM t WHERE id = 1",
    "DROP TABLE t", "DROP DATABASE test", "UPDATE t SET a = 1", "SET TRANSACTION READ WRITE",
    "SELECT pg_read_file('/etc/passwd')", "COPY t TO PROGRAM 'id'", "CREATE INDEX i ON t (a)",
    "SELECT pg_terminate_backend(42)", "TRUNCATE t", "SELECT 1 INTO OUTFILE '/tmp/x'",
]  # fmt: skip


def _sql(sql: str, dialect: Any) -> tuple[int, bool]:
    assessment = analyze_sql(sql, dialect)
    return assessment.risk.rank, bool(assessment.denials)


@PROPERTY
@given(
    st.sampled_from(SQL_PARTS),
    st.sampled_from(SQL_PARTS),
    st.sampled_from(["; ", ";\n", " ;/**/ ", "; -- x\n"]),
    st.sampled_from(["postgres", "mysql"]),
)
def test_stacking_sql_statements_never_lowers_the_risk(first: str, second: str, separator: str, dialect: Any) -> None:
    combined = _sql(first + separator + second, dialect)
    for part in (first, second):
        rank, denied = _sql(part, dialect)
        assert combined[0] >= rank and (combined[1] or not denied), (first, separator, second)


@PROPERTY
@given(st.sampled_from(SQL_PARTS), st.randoms(use_true_random=False), st.sampled_from(["postgres", "mysql"]))
def test_recasing_and_commenting_sql_never_lowers_the_risk(sql: str, random: Any, dialect: Any) -> None:
    rank, denied = _sql(sql, dialect)
    words = [w.upper() if random.random() < 0.5 else w.lower() for w in sql.split(" ")]
    if any("'" in w for w in words):
        words = sql.split(" ")  # string literals keep their case
    mangled = "/* x */ " + " /**/ ".join(words)
    assert _sql(mangled, dialect)[0] >= rank and (_sql(mangled, dialect)[1] or not denied), mangled


REDIS_DENIED = [
    "FLUSHALL",
    "EVAL 'return 1' 0",
    "CONFIG SET dir /tmp",
    "MODULE LOAD /tmp/x.so",
    "SHUTDOWN",
    "DEBUG SLEEP 1",
]


@PROPERTY
@given(st.sampled_from(REDIS_DENIED), st.randoms(use_true_random=False), st.sampled_from(["{}", '"{}"', "'{}'"]))
def test_redis_denials_hold_whatever_the_case_and_quoting(command: str, random: Any, quoting: str) -> None:
    name, _, rest = command.partition(" ")
    name = "".join(c.upper() if random.random() < 0.5 else c.lower() for c in name)
    assert analyze_redis(f"{quoting.format(name)} {rest}".strip()).denials


# -- the alert parser -----------------------------------------------------------------------------

alert_like = st.fixed_dictionaries(
    {
        "version": st.sampled_from(["4", 4]) | json_values,
        "groupKey": st.text(max_size=30) | json_values,
        "status": st.sampled_from(["firing", "resolved"]) | json_values,
        "alerts": st.lists(
            st.fixed_dictionaries(
                {"status": st.sampled_from(["firing", "resolved"]), "startsAt": st.datetimes().map(str) | json_values},
                optional={"labels": st.dictionaries(st.text(max_size=8), st.text(max_size=8)) | json_values},
            ),
            max_size=3,
        )
        | json_values,
    },
    optional={"commonLabels": st.dictionaries(st.text(max_size=8), st.text(max_size=8)) | json_values},
)


@PROPERTY
@given(alert_like | json_values)
def test_any_payload_is_an_alert_group_or_invalid_alert(payload: Any) -> None:
    try:
        group = parse_alert_group(payload)
    except InvalidAlert as exc:
        assert str(exc)
        return
    assert isinstance(group, AlertGroup)
    assert group.group_tag.isascii() and len(group.group_id) == 16
    group.model_dump_json().encode("utf-8")  # what the cycle gets can be stored and sent on
