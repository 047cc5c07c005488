"""The Redis analyser: read commands from an allow-list, and arguments that turn a read into a write."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from contract import RiskClass
from executors._policy.redis import analyze_redis
from models import FaultType, Hypothesis, ServiceKind, TargetContext, Topology, verification_tasks
from models.playbook.collection import TelemetrySources, Window, plan_evidence

EXAMPLES = Path(__file__).parents[2] / "data" / "task-examples.json"

WRITES = [
    "SET k v",
    "GETEX k PERSIST",
    "CONFIG SET maxmemory 1gb",
    "CONFIG RESETSTAT",
    "ACL LOG RESET",
    "ACL LOG 10 RESET",
    "SLOWLOG RESET",
    "SLOWLOG GET RESET",
    "LATENCY RESET",
    "MEMORY PURGE",
    "CLIENT KILL ID 7",
    "CLIENT NO-EVICT on",
    "CLIENT SETNAME x",
    "CONFIG GET *",
    "CONFIG GET requirepass",
    "CONFIG GET maxmemory masterauth",
    "config get *pass*",
    "GEORADIUS_RO k 0 0 10 km STORE dest",
    "GEOSEARCH k FROMLONLAT 0 0 BYRADIUS 1 km STOREDIST dest",
    "SORT k STORE dest",
    "SELECT 1",
    "HELLO 3",
    "MULTI",
    "SUBSCRIBE ch",
    "MONITOR",
    "ınfo",  # Python upper-cases the dotless i to I; Redis does not, and the two must not disagree
    "CLIENT lıst",
]

READS = [
    "INFO stats",
    "INFO memory",
    "SLOWLOG GET 10",
    "SLOWLOG LEN",
    "CONFIG GET maxmemory",
    "config get maxmemory-policy",
    "ACL LOG 5",
    "CLIENT LIST",
    "MEMORY USAGE k",
    "LATENCY LATEST",
    "GEOSEARCH k FROMLONLAT 0 0 BYRADIUS 1 km ASC",
    "SCAN 0 MATCH app:* COUNT 100",
    "GET k",
]


@pytest.mark.parametrize("command", WRITES)
def test_what_is_not_a_plain_read_is_at_least_write(command: str) -> None:
    assessment = analyze_redis(command)

    assert assessment.risk.rank >= RiskClass.WRITE.rank, assessment.reasons


@pytest.mark.parametrize("command", READS)
def test_diagnostic_redis_commands_stay_read(command: str) -> None:
    assessment = analyze_redis(command)

    assert assessment.risk is RiskClass.READ, assessment.reasons


def test_the_reason_names_the_argument() -> None:
    (reason,) = analyze_redis("ACL LOG RESET").reasons

    assert "RESET" in reason and "clears the log" in reason


def _cycle_redis() -> list[str]:
    window = Window(1_700_000_000.0, 1_700_000_900.0)
    topology = Topology.from_dict(
        {"services": [{"name": "api"}, {"name": "cache", "kind": "cache", "connection": "default"}],
         "calls": [["api", "cache"]]}
    )  # fmt: skip
    tasks = [item.task for item in plan_evidence(TelemetrySources(), topology, ["api"], window)]
    target = TargetContext.model_validate({"services": {"cache": {"kind": ServiceKind.CACHE}}})
    for fault in FaultType:
        tasks += verification_tasks(Hypothesis(component="cache", fault=fault, confidence=0.5), target)
    return sorted({t["command"] for t in tasks if t.get("type") == "redis"})


def test_the_cycle_sends_the_redis_commands_the_read_account_allows() -> None:
    # deployments/accounts/redis.acl allows exactly these diagnostic commands besides +@read.
    assert _cycle_redis() == ["INFO memory", "INFO stats", "SLOWLOG GET 10"]


@pytest.mark.parametrize("command", _cycle_redis())
def test_collection_and_verification_redis_commands_are_reads(command: str) -> None:
    assert analyze_redis(command).risk is RiskClass.READ


def test_spec_redis_examples() -> None:
    examples = {e["command"] for e in json.loads(EXAMPLES.read_text()) if e.get("type") == "redis"}

    assert examples == {"INFO stats", "FLUSHDB"}
    assert analyze_redis("INFO stats").risk is RiskClass.READ
    assert analyze_redis("FLUSHDB").risk is RiskClass.DESTRUCTIVE
