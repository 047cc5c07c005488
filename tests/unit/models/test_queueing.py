"""The queueing incident generator: determinism, each fault's mechanism, no label leaks, formats."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from models import FaultType, ServiceKind, Telemetry, split_metric_column
from models.domain._types import INJECTED_FAULTS
from models.generators import QueueingConfig, SimulatedIncident, queueing_cases, queueing_incident

#: Small estates, every component instrumented, no flapping: mechanisms are visible and tests fast.
CLEAR = QueueingConfig(n_services=14, mode="full", p_uninstrumented=0.0, p_flapping=0.0, decoys=0)
SEEDS = (11, 12, 13)


@pytest.fixture(scope="module")
def cases() -> dict[FaultType, list[SimulatedIncident]]:
    return {fault: [queueing_incident(seed, fault, config=CLEAR) for seed in SEEDS] for fault in INJECTED_FAULTS}


def _columns(incident: SimulatedIncident, service: str, *patterns: str) -> list[str]:
    """Metric columns of ``service`` whose metric name matches one of ``patterns`` (regexes)."""
    names = incident.topology.names
    found = []
    for column in incident.telemetry.metric_columns():
        owner, metric = split_metric_column(column, names)
        if owner == service and any(re.search(p, metric) for p in patterns):
            found.append(column)
    return found


def _series(incident: SimulatedIncident, column: str) -> pd.Series:
    frame = incident.telemetry.metrics
    return pd.Series(frame[column].to_numpy(), index=frame["time"].to_numpy())


def _rise(incident: SimulatedIncident, column: str, factor: float = 1.5) -> float | None:
    """When ``column`` first stays above ``factor`` x its pre-onset median (plus noise) for 10 s,
    or None."""
    series = _series(incident, column)
    before = series[series.index < _onset(incident)].dropna()
    after = series[series.index >= _onset(incident)]
    level = max(float(before.median()) * factor, float(before.median() + 4 * before.std()), 1e-6)
    above = (after > level).astype(int).rolling(10).sum() >= 10
    hits = above[above].index
    return float(hits[0]) - 9 if len(hits) else None


def _rose(incident: SimulatedIncident, column: str, factor: float = 1.5) -> bool:
    return _rise(incident, column, factor) is not None


def _callers(incident: SimulatedIncident, name: str) -> list[str]:
    return incident.topology.callers(name)


def _root(incident: SimulatedIncident) -> str:
    assert incident.root_cause is not None
    return incident.root_cause[0]


def _onset(incident: SimulatedIncident) -> float:
    assert incident.inject_time is not None
    return incident.inject_time


def _logs(incident: SimulatedIncident) -> pd.DataFrame:
    assert incident.telemetry.logs is not None
    return incident.telemetry.logs


LATENCY = (r"latency", r"duration", r"p9\d")
ERRORS = (r"^error", r"5xx", r"error_r")


def test_same_arguments_give_the_same_incident() -> None:
    first = queueing_incident(5, FaultType.DB_SLOW_QUERY, config=CLEAR)
    again = queueing_incident(5, FaultType.DB_SLOW_QUERY, config=CLEAR)
    pd.testing.assert_frame_equal(first.telemetry.metrics, again.telemetry.metrics)
    pd.testing.assert_frame_equal(first.telemetry.logs, again.telemetry.logs)
    pd.testing.assert_frame_equal(first.telemetry.traces, again.telemetry.traces)
    assert first.observations == again.observations
    assert (first.root_cause, first.alert, first.inject_time, first.decoys) == (
        again.root_cause,
        again.alert,
        again.inject_time,
        again.decoys,
    )
    other = queueing_incident(6, FaultType.DB_SLOW_QUERY, config=CLEAR)
    assert not first.telemetry.metrics.equals(other.telemetry.metrics)


def test_cases_are_balanced_and_reproducible() -> None:
    config = QueueingConfig(n_services=10, mode="metrics", duration=240)
    faults = [FaultType.CPU, FaultType.CACHE, FaultType.DEPENDENCY_DOWN]
    cases = queueing_cases(6, 3, faults=faults, config=config)
    assert sorted(case.root_cause[1] for case in cases if case.root_cause) == sorted(faults * 2)
    again = queueing_cases(6, 3, faults=faults, config=config)
    assert [c.id for c in cases] == [c.id for c in again]
    assert len({c.seed for c in cases}) == 6


def test_nothing_fails_before_the_fault(cases: dict[FaultType, list[SimulatedIncident]]) -> None:
    for incident in (case for group in cases.values() for case in group):
        frame = incident.telemetry.metrics
        before = frame[frame["time"] < _onset(incident)]
        for entry in (s.name for s in incident.topology.services if not incident.topology.callers(s.name)):
            ratios = _columns(incident, entry, r"error_rat(e|io)$")
            if ratios:
                share = before[ratios[0]]
            else:  # errors per second over requests per second
                errors = _columns(incident, entry, r"^error$", r"^http_5xx$")
                traffic = _columns(incident, entry, r"^workload$", r"requests_per_second", r"^rps$", r"request_rate")
                if not errors or not traffic:
                    continue
                share = before[errors[0]] / before[traffic[0]].clip(lower=1e-9)
            assert share.mean() < 0.01, f"{incident.id}: {entry} already failing {share.mean():.3f}"


def test_cpu_utilisation_climbs_before_the_callers_slow_down(cases: dict[FaultType, list[SimulatedIncident]]) -> None:
    for incident in cases[FaultType.CPU]:
        root = _root(incident)
        cpu = _columns(incident, root, r"^cpu(_usage|_percent)?$", r"cpu_utilization")
        assert cpu, f"{root} exports no CPU column"
        # Utilisation of the limit climbs (a hog adds usage; a cut quota raises the share used).
        climbed = _rise(incident, cpu[0], 1.15)
        assert climbed is not None, f"{incident.id}: {cpu[0]} did not climb"
        slowed = [
            t
            for c in _callers(incident, root)
            for col in _columns(incident, c, *LATENCY)
            if (t := _rise(incident, col))
        ]
        series = _series(incident, cpu[0])
        watched = not series[(series.index >= _onset(incident)) & (series.index <= climbed)].isna().any()
        if slowed and watched:  # (a scrape gap hides when it climbed; exporters' windows differ by <= 15 s)
            assert climbed <= min(slowed) + 15, f"{incident.id}: callers slowed before {root}'s CPU climbed"


def test_memory_leak_grows_rss_and_gets_pods_restarted(cases: dict[FaultType, list[SimulatedIncident]]) -> None:
    for incident in cases[FaultType.MEMORY]:
        root = _root(incident)
        memory = _columns(incident, root, r"^mem", r"memory")
        assert memory and _rose(incident, memory[0], 1.15), f"{incident.id}: RSS of {root} did not grow"
        pod = next(p for p in incident.observations.pods if p.service == root)
        # Killed by the kernel at the container limit, or (a JVM, Node) failing at its heap maximum.
        assert pod.restarts > 0 and pod.reason in ("OOMKilled", "Error"), f"{incident.id}: {pod}"
        if pod.reason == "Error":
            logs = _logs(incident)
            assert logs["message"].str.contains("OutOfMemoryError|heap out of memory").any(), incident.id


def test_disk_fills_up_or_slows_down(cases: dict[FaultType, list[SimulatedIncident]]) -> None:
    for incident in cases[FaultType.DISK]:
        root = _root(incident)
        logs = _logs(incident)
        refused = logs[logs["message"].str.contains("No space left on device|no space left on device|ENOSPC")]
        usage = _columns(incident, root, r"disk_used|fs_usage")
        filled = bool(usage) and float(_series(incident, usage[0]).max()) >= 99.0
        if filled:
            assert len(refused), f"{incident.id}: a full disk but no write failed"
        full = filled or len(refused) > 0
        slower = _columns(incident, root, *LATENCY, r"io_?wait", r"slow_queries")
        assert full or any(_rose(incident, c) for c in slower), f"{incident.id}: no full disk and no slower {root}"
        if len(refused):  # the writer is the root or, for a full database, its callers
            assert set(refused["service"]) <= {root, *_callers(incident, root)}


def test_added_latency_shows_at_the_root(cases: dict[FaultType, list[SimulatedIncident]]) -> None:
    for incident in cases[FaultType.LATENCY]:
        root = _root(incident)
        assert any(_rose(incident, c, 2.0) for c in _columns(incident, root, *LATENCY)), incident.id


def test_packet_loss_means_retransmits_resets_and_slow_tails(cases: dict[FaultType, list[SimulatedIncident]]) -> None:
    for incident in cases[FaultType.NETWORK_ERRORS]:
        root = _root(incident)
        involved = [root, *_callers(incident, root)]
        retransmits = [c for name in involved for c in _columns(incident, name, r"retransmit")]
        errors = [c for name in involved for c in _columns(incident, name, *ERRORS)]
        tails = [c for name in involved for c in _columns(incident, name, r"p9\d", r"latency-90")]
        assert any(_rose(incident, c, 3.0) for c in retransmits + errors + tails), incident.id
        resets = _logs(incident)["message"].str.contains("reset", case=False).any()
        assert resets, f"{incident.id}: no caller logged a connection reset"


def test_slow_query_loads_the_database_and_holds_callers(cases: dict[FaultType, list[SimulatedIncident]]) -> None:
    for incident in cases[FaultType.DB_SLOW_QUERY]:
        db = _root(incident)
        assert incident.topology.kind_of(db) == ServiceKind.DATABASE
        busy = _columns(incident, db, r"^cpu", r"threads_running|active_sessions", r"slow_queries")
        assert any(_rose(incident, c, 1.3) for c in busy), f"{incident.id}: {db} no busier"
        # Callers wait for connections: slower, or failing once their threads are all held.
        held = [c for caller in _callers(incident, db) for c in _columns(incident, caller, *LATENCY, *ERRORS)]
        assert any(_rose(incident, c) for c in held), f"{incident.id}: no caller of {db} slowed or failed"


def test_pool_exhaustion_fills_connections_and_fails_callers(cases: dict[FaultType, list[SimulatedIncident]]) -> None:
    for incident in cases[FaultType.DB_POOL_EXHAUSTED]:
        db = _root(incident)
        snapshot = next(s for s in incident.observations.db if s.service == db)
        stuck = snapshot.usage is not None and snapshot.usage >= 0.9
        waiting = snapshot.waiting_on_locks > 0 or snapshot.long_running > 0
        assert stuck or waiting, f"{incident.id}: {snapshot}"
        failing = [c for caller in _callers(incident, db) for c in _columns(incident, caller, *ERRORS)]
        assert any(_rose(incident, c) for c in failing), f"{incident.id}: no caller of {db} failed"


def test_a_component_down_fails_its_callers(cases: dict[FaultType, list[SimulatedIncident]]) -> None:
    for incident in cases[FaultType.DEPENDENCY_DOWN]:
        root = _root(incident)
        failing = [c for caller in _callers(incident, root) for c in _columns(incident, caller, *ERRORS)]
        # Clients that treat a cache's errors as misses keep working, reading the database instead.
        logs = _logs(incident)
        fell_back = logs["message"].str.contains("cache read failed, using the database").any()
        kept_going = incident.topology.kind_of(root) == ServiceKind.CACHE and fell_back
        assert kept_going or any(_rose(incident, c) for c in failing), f"{incident.id}: callers of {root} kept working"
        own = incident.telemetry.metrics[_columns(incident, root, r".")]
        after = own[incident.telemetry.metrics["time"] > _onset(incident) + 30]
        assert after.isna().mean().mean() > 0.5, f"{incident.id}: {root}'s metrics did not vanish"


def test_cache_misses_go_to_the_database_behind_it(cases: dict[FaultType, list[SimulatedIncident]]) -> None:
    for incident in cases[FaultType.CACHE]:
        cache = _root(incident)
        hits = _columns(incident, cache, r"keyspace_hits|get_hits")[0]
        misses = _columns(incident, cache, r"keyspace_misses|get_misses")[0]
        frame = incident.telemetry.metrics
        ratio = frame[hits] / (frame[hits] + frame[misses])
        before = ratio[frame["time"] < _onset(incident)].median()
        after = ratio[frame["time"] > _onset(incident) + 30].median()
        assert after < before - 0.2, f"{incident.id}: hit ratio {before:.2f} -> {after:.2f}"
        topology = incident.topology
        behind = {
            d for caller in topology.callers(cache) for d in topology.callees(caller)
            if topology.kind_of(d) == ServiceKind.DATABASE
        }  # fmt: skip
        # More queries (diluted when the database has other callers) and more CPU for the misses.
        loaded = [c for d in behind for c in _columns(incident, d, r"queries_per_second|xact_per_second", r"^cpu")]
        assert any(_rose(incident, c, 1.2) for c in loaded), f"{incident.id}: no database behind {cache} got busier"


def test_bad_deploy_starts_with_a_deploy_of_the_root(cases: dict[FaultType, list[SimulatedIncident]]) -> None:
    for incident in cases[FaultType.BAD_DEPLOY]:
        root = _root(incident)
        deploys = [d for d in incident.observations.deploys if d.service == root]
        assert any(abs(d.time - _onset(incident)) < 1 for d in deploys), incident.id
        changed = _columns(incident, root, *LATENCY, *ERRORS, r"^cpu", r"cpu_")
        callers = [c for caller in _callers(incident, root) for c in _columns(incident, caller, *ERRORS)]
        assert any(_rose(incident, c, 1.3) for c in changed + callers), f"{incident.id}: nothing changed"


def test_observations_cover_healthy_components_too(cases: dict[FaultType, list[SimulatedIncident]]) -> None:
    for incident in (case for group in cases.values() for case in group):
        topology, observed = incident.topology, incident.observations
        root = _root(incident)
        services = {s.name for s in topology.services if s.kind == ServiceKind.SERVICE}
        databases = {s.name for s in topology.services if s.kind == ServiceKind.DATABASE}
        caches = {s.name for s in topology.services if s.kind == ServiceKind.CACHE}
        assert {h.service for h in observed.health} == services
        assert {p.service for p in observed.pods} >= services
        # A component that does not answer yields no snapshot: only the root may be missing, and
        # only when it is down.
        assert databases - {s.service for s in observed.db} <= {root}
        assert caches - {s.service for s in observed.cache} <= {root}
        assert len(observed.db) + len(observed.cache) >= len(databases | caches) - 1


def test_the_alert_usually_names_another_service() -> None:
    config = QueueingConfig(n_services=12, mode="metrics", duration=420)
    incidents = queueing_cases(20, 21, config=config)
    elsewhere = sum(incident.alert["labels"]["service"] != _root(incident) for incident in incidents)
    assert elsewhere >= 12, f"the alert named the root cause in {20 - elsewhere} of 20 cases"
    for incident in incidents:
        labels = incident.alert["labels"]
        assert set(labels) == {"alertname", "service", "severity", "env"}
        assert incident.alert["status"] == "firing"
        assert pd.Timestamp(incident.alert["startsAt"]).timestamp() == pytest.approx(incident.alert_time)
        assert incident.alert_time > _onset(incident), "an alert before its fault"


def test_nothing_written_names_the_fault(cases: dict[FaultType, list[SimulatedIncident]]) -> None:
    words = re.compile(r"inject|root.?cause|fault|chaos", re.IGNORECASE)
    for incident in (case for group in cases.values() for case in group):
        assert not any(words.search(c) for c in incident.telemetry.metric_columns())
        assert not _logs(incident)["message"].str.contains(words).any()
        assert not words.search(str(incident.alert))


def test_metrics_mode_has_only_the_metrics_frame() -> None:
    incident = queueing_incident(3, FaultType.LATENCY, config=QueueingConfig(n_services=10, mode="metrics"))
    assert incident.telemetry.logs is None and incident.telemetry.traces is None
    assert incident.observations.model_dump() == {"db": [], "health": [], "cache": [], "deploys": [], "pods": []}


def test_frames_are_valid_telemetry_and_columns_round_trip(cases: dict[FaultType, list[SimulatedIncident]]) -> None:
    for incident in (group[0] for group in cases.values()):
        telemetry = incident.telemetry
        again = Telemetry(metrics=telemetry.metrics, logs=telemetry.logs, traces=telemetry.traces)
        assert again.metrics.shape == telemetry.metrics.shape
        assert (np.diff(telemetry.metrics["time"]) == 1.0).all()
        names = set(incident.topology.names)
        for column in telemetry.metric_columns():
            service, metric = split_metric_column(column)  # without the topology, as RCAEval splits
            assert service in names and metric and f"{service}_{metric}" == column
            assert split_metric_column(column, names) == (service, metric)
        spans = telemetry.traces
        assert spans is not None
        assert set(spans["status"]) <= {"ok", "error"} and (spans["duration"] >= 0).all()
        roots = spans[spans["parent"] == ""]
        assert len(roots) and set(roots["service"]) <= {s.name for s in incident.topology.services}
        assert set(_logs(incident)["service"]) <= names


def test_a_scrape_interval_gives_fewer_rows() -> None:
    config = QueueingConfig(n_services=10, mode="metrics", step=15, duration=600)
    incident = queueing_incident(4, FaultType.CPU, config=config)
    times = incident.telemetry.metrics["time"].to_numpy()
    assert len(times) == 40 and (np.diff(times) == 15).all()


def test_config_is_checked() -> None:
    with pytest.raises(ValidationError):
        QueueingConfig(n_services=60)
    with pytest.raises(ValidationError):
        QueueingConfig(mode="logs")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        QueueingConfig(unknown=1)  # type: ignore[call-arg]
