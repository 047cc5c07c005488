import numpy as np
import pandas as pd
import pytest

from models import (
    SPEC_SCENARIOS,
    FaultType,
    GeneratorError,
    ServiceKind,
    SimulationConfig,
    simulate_cases,
    simulate_incident,
)
from models.domain._types import FAULTS_BY_KIND, INJECTED_FAULTS


def test_same_seed_same_incident() -> None:
    first, second = simulate_incident(11, n_services=12), simulate_incident(11, n_services=12)
    pd.testing.assert_frame_equal(first.telemetry.metrics, second.telemetry.metrics)
    assert first.root_cause == second.root_cause
    assert first.observations == second.observations
    assert first.alert == second.alert
    other = simulate_incident(12, n_services=12)
    assert not first.telemetry.metrics.equals(other.telemetry.metrics)


@pytest.mark.parametrize("fault", INJECTED_FAULTS)
def test_every_fault_has_a_root_that_can_have_it(fault: FaultType) -> None:
    incident = simulate_incident(3, fault, 15)
    assert incident.root_cause is not None
    service, root_fault = incident.root_cause
    assert root_fault is fault
    kind = incident.topology.kind_of(service)
    assert kind is not None and fault in FAULTS_BY_KIND[kind]
    assert incident.inject_time is not None and incident.inject_time < incident.alert_time


def test_its_pool_runs_dry_at_a_database() -> None:
    # A service may have that fault (its own pool), but this simulator models a connection limit only.
    incidents = [simulate_incident(seed, FaultType.DB_POOL_EXHAUSTED, 15) for seed in range(8)]
    assert {incident.topology.kind_of(incident.root_cause[0]) for incident in incidents} == {ServiceKind.DATABASE}


def test_sizes_and_kinds() -> None:
    for seed in range(5):
        incident = simulate_incident(seed)
        n = len(incident.topology.services)
        assert 10 <= n <= 50
        kinds = {service.kind for service in incident.topology.services}
        assert {ServiceKind.SERVICE, ServiceKind.DATABASE, ServiceKind.CACHE} <= kinds
        assert len(incident.telemetry.metrics) == 600


def test_spec_scenarios() -> None:
    assert set(SPEC_SCENARIOS.values()) == {
        FaultType.DB_SLOW_QUERY,
        FaultType.DEPENDENCY_DOWN,
        FaultType.DB_POOL_EXHAUSTED,
    }


def _latency_rise(metrics: pd.DataFrame, after: pd.Series, service: str) -> float:
    column = f"{service}_latency-50"
    if column not in metrics:
        return float("nan")
    return float(metrics.loc[after, column].median() - metrics.loc[~after, column].median())


def test_faults_propagate_to_callers() -> None:
    """A slow database slows its callers down by more, in absolute terms, than itself."""
    bigger = 0
    for seed in range(6):
        incident = simulate_incident(seed, FaultType.DB_SLOW_QUERY, 15)
        root = incident.root_cause[0]
        metrics = incident.telemetry.metrics
        after = metrics["time"] >= incident.inject_time + 30
        callers = incident.topology.callers(root)
        assert callers
        caller_rises = [_latency_rise(metrics, after, c) for c in callers]
        assert np.nanmax(caller_rises) > 0
        bigger += int(np.nanmax(caller_rises) > _latency_rise(metrics, after, root))
    assert bigger >= 2


def test_label_is_not_leaked_by_what_is_observed() -> None:
    """Observations cover every database and cache, and the page names the root only sometimes."""
    names_root = 0
    for seed in range(10):
        incident = simulate_incident(seed, n_services=20, config=SimulationConfig(p_db=1.0, p_cache=1.0))
        topology = incident.topology
        databases = {s.name for s in topology.services if s.kind is ServiceKind.DATABASE}
        caches = {s.name for s in topology.services if s.kind is ServiceKind.CACHE}
        assert {snapshot.service for snapshot in incident.observations.db} == databases
        assert {stats.service for stats in incident.observations.cache} == caches
        names_root += int(incident.alert["labels"]["service"] == incident.root_cause[0])
    assert names_root < 8


def test_decoys_and_missing_metrics_happen() -> None:
    cases = simulate_cases(12, 3, n_services=15)
    assert all(case.decoys for case in cases)
    assert any(case.telemetry.metrics.isna().to_numpy().any() for case in cases)


def test_healthy_case_has_no_root() -> None:
    incident = simulate_incident(4, n_services=12, healthy=True)
    assert incident.root_cause is None and incident.inject_time is None


def test_simulate_cases_cycles_faults_and_uses_distinct_seeds() -> None:
    cases = simulate_cases(4, 9, faults=[FaultType.CPU, FaultType.CACHE], n_services=12)
    assert [case.root_cause[1] for case in cases] == [FaultType.CPU, FaultType.CACHE] * 2
    assert len({case.seed for case in cases}) == 4
    assert {case.seed for case in simulate_cases(4, 10, n_services=12)}.isdisjoint(case.seed for case in cases)


@pytest.mark.parametrize("claim", [FaultType.ERRORS, FaultType.ANOMALY])
def test_a_claim_is_not_a_fault_to_inject(claim: FaultType) -> None:
    with pytest.raises(GeneratorError, match="is a claim, not a fault to inject"):
        simulate_incident(3, claim, 15)
