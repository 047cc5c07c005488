"""Contract tests: what the planners plan, the real executors run against real servers with data in
them, and what the executors return, the readers turn into the numbers that were written.

Planners (``models.playbook.collection``, the verification catalog) and executors were tested apart, and
never met: every PromQL metric task the cycle planned was refused (``metric: Extra inputs are not
permitted``), and verification read a Prometheus answer no executor returns. Here each telemetry
source type of an environment's ``telemetry:`` section — metrics from PostgreSQL, MariaDB,
ClickHouse (embedded) and Prometheus; logs and traces from the three SQL engines and an
OpenSearch-compatible server holding spans as Jaeger writes them — goes through plan → executor →
reader, and the frames must hold the seeded values.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from contract import PlannedTask
from executors import CloudAgent, EnvironmentCatalog, open_audit_log
from models import FaultType, Hypothesis, TargetContext, Topology, interpret_verification, verification_tasks
from models.playbook.collection import (
    LogsSource,
    MetricsSource,
    TelemetrySources,
    TracesSource,
    Window,
    evidence_from_results,
    metrics_from_results,
    plan_error_context,
    plan_evidence,
    plan_follow_ups,
    plan_metrics,
)
from tests.environments import LOCAL_CONNECTIONS, write_environment
from tests.executor_servers import RecordedKubernetesAPI, prometheus_binaries
from tests.http_stubs import health_endpoint
from tests.integration.telemetry import (
    CONTAINER,
    PROMQL_QUERIES,
    SERIES,
    STEP,
    Incident,
    every_source,
    make_incident,
)

pytestmark = pytest.mark.integration

SERVICES = ["checkout", "orders-db"]
SQL_TYPES = ["postgres", "mysql", "clickhouse"]


class Sources:
    """The seeded servers, and an agent whose environment ``contract`` reaches all of them."""

    def __init__(self, incident: Incident, names: dict[str, str], agent: CloudAgent) -> None:
        self.incident = incident
        self.names = names
        self.agent = agent
        self.window = Window(incident.start, incident.end)

    def metrics(self, kind: str) -> MetricsSource:
        if kind == "prometheus":
            return MetricsSource(type="prometheus", step_seconds=STEP, queries=PROMQL_QUERIES)
        return MetricsSource(type=kind, table=f"{self.names[kind]}.metrics", step_seconds=STEP)  # type: ignore[arg-type]

    def telemetry(self, kind: str) -> TelemetrySources:
        """Logs and traces from ``kind`` (a SQL engine or ``elasticsearch``), metrics from the same
        engine or, beside OpenSearch, from Prometheus."""
        if kind == "elasticsearch":
            return TelemetrySources(
                metrics=self.metrics("prometheus"),
                logs=LogsSource(type="elasticsearch", index="contract-logs-*"),
                traces=TracesSource(type="elasticsearch", index="contract-span-*"),
            )
        name = self.names[kind]
        return TelemetrySources(
            metrics=self.metrics(kind),
            logs=LogsSource(type=kind, table=f"{name}.logs"),  # type: ignore[arg-type]
            traces=TracesSource(type=kind, table=f"{name}.traces"),  # type: ignore[arg-type]
        )

    def run(self, plan: list[PlannedTask]) -> list[dict[str, Any]]:
        """Every planned task through the real executor, as the batch flow hands results on."""
        results = [self.agent.run({**item.task, "agent_id": "contract"}, actor="contract-test") for item in plan]
        return [result.model_dump(mode="json") for result in results]


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sources]:
    if prometheus_binaries() is None:
        pytest.skip("prometheus is not installed: apt-get install -y prometheus (.ci/run does it)")
    folder = tmp_path_factory.mktemp("contract")
    incident = make_incident()
    with every_source(incident, folder / "prometheus") as names:
        connections = {
            **LOCAL_CONNECTIONS,
            "elasticsearch": {"default": {"hosts": names["opensearch"], "flavor": "opensearch"}},
            "prometheus": {"default": {"url": names["prometheus"]}},
            "clickhouse": {"default": {"mode": "embedded"}},
        }
        write_environment(folder / "deployments", "contract", agents=["contract"], connections=connections)
        catalog = EnvironmentCatalog.load(folder / "deployments")
        with CloudAgent(catalog, open_audit_log(f"sqlite:///{folder / 'audit.sqlite3'}")) as agent:
            yield Sources(incident, names, agent)


def expected_metrics(incident: Incident, start: float, end: float, services: list[str]) -> pd.DataFrame:
    columns = {
        f"{service}_{metric}": [incident.value(service, metric, at) for at in incident.times if start <= at <= end]
        for (service, metric) in sorted(SERIES)
        if service in services
    }
    times = [at for at in incident.times if start <= at <= end]
    return pd.DataFrame(columns, index=pd.Index(times, name="time"))


def succeeded(plan: list[PlannedTask], results: list[dict[str, Any]]) -> None:
    failed = [
        f"{item.label}: {r['status']} {r.get('error')}"
        for item, r in zip(plan, results, strict=True)
        if r["status"] != "succeeded"
    ]
    assert not failed, failed


@pytest.mark.parametrize("kind", [*SQL_TYPES, "prometheus"])
def test_metrics_planned_for_a_source_come_back_as_the_seeded_numbers(sources: Sources, kind: str) -> None:
    plan = plan_metrics(sources.metrics(kind), SERVICES, sources.window)
    results = sources.run(plan)
    succeeded(plan, results)

    frame = metrics_from_results(plan, results).set_index("time")
    expected = expected_metrics(sources.incident, sources.incident.start, sources.incident.end, SERVICES)
    assert sorted(frame.columns) == sorted(expected.columns)
    assert frame.index.tolist() == pytest.approx(expected.index.tolist())
    for column in expected.columns:
        assert frame[column].tolist() == pytest.approx(expected[column].tolist()), column
    # the degradation is there to be found: orders-db's connections rose from 12 to 95
    assert frame["orders-db_connections"].iloc[0] == 12 and frame["orders-db_connections"].iloc[-1] == 95


@pytest.mark.parametrize("kind", [*SQL_TYPES, "elasticsearch"])
def test_logs_spans_and_the_cross_source_chain_come_back_from_a_source(sources: Sources, kind: str) -> None:
    incident = sources.incident
    telemetry = sources.telemetry(kind)
    plan = plan_evidence(telemetry, None, ["checkout"], sources.window)
    assert [item.purpose for item in plan] == ["logs", "logs", "traces"]
    results = sources.run(plan)
    succeeded(plan, results)
    evidence = evidence_from_results(plan, results)

    assert evidence.failures == [] and evidence.logs is not None and evidence.traces is not None
    logs = evidence.logs.sort_values("time")
    wanted = sorted(line for line in incident.in_window_logs() if line[2] in ("ERROR", "WARN") or "Started" in line[3])
    assert logs["level"].tolist() == [line[2] for line in wanted]
    assert logs["time"].tolist() == pytest.approx([line[0] for line in wanted], abs=0.002)
    assert logs["message"].tolist() == [line[3] for line in wanted]
    # error spans inside the window only: the old incident's span and the ok span are not asked for
    assert sorted(evidence.traces["span_id"]) == ["span-a1", "span-a2", "span-b1"]
    child = evidence.traces.set_index("span_id").loc["span-a2"]
    assert (child["parent"], child["service"], child["status"]) == ("span-a1", "orders-db", "error")
    assert child["duration"] == pytest.approx(4900.0) and child["time"] == pytest.approx(
        incident.end - 150.9, abs=0.002
    )

    # the spec's chain: error trace ids in the logs -> those traces -> metrics around the first error
    follow_ups = plan_follow_ups(telemetry, evidence.logs, sources.window)
    assert len(follow_ups) == 1
    traced_results = sources.run(follow_ups)
    succeeded(follow_ups, traced_results)
    traced = evidence_from_results(follow_ups, traced_results)
    assert traced.traces is not None
    assert sorted(set(traced.traces["trace_id"])) == incident.error_trace_ids == ["trace-a1", "trace-b2"]

    context = plan_error_context(telemetry, evidence.logs, traced.traces)
    assert sorted({item.service for item in context if item.service}) == SERVICES
    context_results = sources.run(context)
    succeeded(context, context_results)
    around = metrics_from_results(context, context_results).set_index("time")
    first_error = incident.end - 150
    expected = expected_metrics(incident, first_error - 60, first_error + 60, SERVICES)
    assert around.index.tolist() == pytest.approx(expected.index.tolist())
    assert around["orders-db_connections"].tolist() == pytest.approx(expected["orders-db_connections"].tolist())


@pytest.fixture
def health_url() -> Iterator[str]:
    with health_endpoint() as url:
        yield url


def test_the_rest_of_the_evidence_plan_runs_and_becomes_observations(
    sources: Sources, health_url: str, tmp_path: Path
) -> None:
    """Process lists, cache counters, health checks, pods and events: every other task the evidence
    planner produces, through the real executors (Kubernetes: the recorded API)."""
    kubernetes = RecordedKubernetesAPI()
    try:
        agent = _agent_with_kubernetes(sources, kubernetes.url, tmp_path)
        topology = Topology.from_dict(
            {
                "services": [
                    {"name": "checkout", "namespace": "production", "health_url": health_url},
                    {"name": "orders-db", "kind": "database", "engine": "postgres", "connection": "default"},
                    {"name": "ledger-db", "kind": "database", "engine": "mysql", "connection": "default"},
                    {"name": "sessions", "kind": "cache", "connection": "default"},
                ],
                "calls": [["checkout", "orders-db"], ["checkout", "ledger-db"], ["checkout", "sessions"]],
            }
        )
        plan = plan_evidence(TelemetrySources(kubernetes=True), topology, ["checkout"], sources.window)
        results = [
            agent.run({**item.task, "agent_id": "contract"}, actor="contract-test").model_dump(mode="json")
            for item in plan
        ]
    finally:
        agent.close()
        kubernetes.close()
    assert {item.purpose for item in plan} == {"db", "cache", "health", "k8s"}
    succeeded(plan, results)
    evidence = evidence_from_results(plan, results, topology)

    assert evidence.failures == [] and evidence.succeeded == len(plan)
    databases = {db.service: db for db in evidence.observations.db}
    assert set(databases) == {"orders-db", "ledger-db"}
    assert all(db.max_connections and db.max_connections > 1 for db in databases.values())
    [cache] = evidence.observations.cache
    assert cache.service == "sessions" and cache.used_memory and cache.used_memory > 0
    [health] = evidence.observations.health
    assert health.ok and health.status_code == 200


def _agent_with_kubernetes(sources: Sources, kubernetes_url: str, folder: Path) -> CloudAgent:
    connections = {
        **LOCAL_CONNECTIONS,
        "k8s": {"default": {"host": kubernetes_url, "namespace": "production"}},
    }
    write_environment(folder / "deployments", "contract", agents=["contract"], connections=connections)
    catalog = EnvironmentCatalog.load(folder / "deployments")
    return CloudAgent(catalog, open_audit_log(f"sqlite:///{folder / 'audit.sqlite3'}"))


PROMQL_FAULTS = [
    FaultType.CPU,
    FaultType.MEMORY,
    FaultType.DISK,
    FaultType.LATENCY,
    FaultType.NETWORK_ERRORS,
    FaultType.BAD_DEPLOY,
]


@pytest.mark.parametrize("fault", PROMQL_FAULTS)
def test_the_verification_planners_promql_runs_and_its_reading_votes(sources: Sources, fault: FaultType) -> None:
    """Each PromQL verification task of the catalog, through the prometheus executor against series
    named as cAdvisor and instrumented HTTP servers name them, is read into a vote."""
    target = TargetContext.model_validate(
        {
            "services": {"checkout": {"namespace": CONTAINER["namespace"], "deployment": "checkout-7d9f5"}},
            "agent_id": "contract",
        }
    )
    hypothesis = Hypothesis(component="checkout", fault=fault, confidence=0.6)
    tasks = [task for task in verification_tasks(hypothesis, target) if task["type"] == "prometheus"]
    assert len(tasks) == 1, tasks
    [result] = [sources.agent.run(task, actor="contract-test").model_dump(mode="json") for task in tasks]

    assert result["status"] == "succeeded", result.get("error")
    assert result["data"]["rows"], f"{tasks[0]['command']} found no series"
    verdict = interpret_verification(hypothesis, [result], target)
    [evidence] = verdict.evidence
    assert evidence.kind == "metric" and "rose" in evidence.summary, evidence.summary
