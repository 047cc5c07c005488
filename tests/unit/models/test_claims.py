"""A fault type is claimed only where its evidence is."""

import numpy as np
import pandas as pd
import pytest

from models import DeployEvent, FaultType, Observations
from models.ranking._analysis import type_faults
from models.signals._claims import FAULT_FEATURES, fault_table, missing_evidence, overruling, support
from models.signals._evidence import gather_evidence
from tests.unit.models._signals import T0, noisy_series, signals_of


def test_a_database_whose_latency_moved_is_not_claimed_to_have_a_full_pool() -> None:
    signals = signals_of(
        {"orders-db_latency": noisy_series(1, 30), "orders-db_cpu": noisy_series(2), "api_latency": noisy_series(3, 20)}
    )
    backed = support(signals, signals.position("orders-db"))
    assert backed[FaultType.LATENCY] == ["latency metric"]
    assert backed[FaultType.DB_POOL_EXHAUSTED] == [] and backed[FaultType.DB_SLOW_QUERY] == []
    assert backed[FaultType.ANOMALY] == []  # a named fault is supported: no need for the plain claim
    missing = missing_evidence(signals, signals.position("orders-db"), FaultType.LATENCY)
    assert any(line.startswith("db_pool_exhausted: a connection count") for line in missing)


def test_a_connection_count_that_moved_supports_an_exhausted_pool() -> None:
    signals = signals_of({"orders-db_connections": noisy_series(1, 40), "orders-db_latency": noisy_series(2, 30)})
    backed = support(signals, signals.position("orders-db"))
    assert backed[FaultType.DB_POOL_EXHAUSTED] == ["connections metric"]


def test_a_service_s_pool_is_supported_by_its_pool_metrics_not_by_its_tcp_connections() -> None:
    signals = signals_of(
        {
            "checkout_hikaricp_connections_pending": noisy_series(1, 40),
            "checkout_latency": noisy_series(2, 30),
            "web_tcp_connections_active": noisy_series(3, 40),
            "web_latency": noisy_series(4, 30),
        }
    )
    assert support(signals, signals.position("checkout"))[FaultType.DB_POOL_EXHAUSTED] == ["pool metric"]
    assert support(signals, signals.position("web"))[FaultType.DB_POOL_EXHAUSTED] == []


def test_a_deploy_supports_a_bad_deploy_and_nothing_else_does() -> None:
    columns = {"cart_errors": noisy_series(1, 50), "cart_latency": noisy_series(2)}
    assert support(signals_of(columns), 0)[FaultType.BAD_DEPLOY] == []
    deployed = Observations(deploys=[DeployEvent(service="cart", time=T0 + 380, revision="r2")])
    signals = signals_of(columns, deployed)
    assert support(signals, signals.position("cart"))[FaultType.BAD_DEPLOY] == ["a deploy just before the change"]


def _lines(service: str, seconds: list[float], message: str, level: str = "INFO") -> pd.DataFrame:
    return pd.DataFrame({"time": [T0 + s for s in seconds], "service": service, "level": level, "message": message})


def test_start_up_lines_just_before_the_change_are_a_rollout() -> None:
    # Four replicas of cart start one after the other (version 2.4.1), then its errors rise; the
    # platform's rollout history is not at hand, the logs are.
    columns = {"cart_errors": noisy_series(1, 50), "cart_latency": noisy_series(2), "web_latency": noisy_series(3)}
    started = "[main] c.s.Application - Started CartApplication in 14.2 seconds (version 2.4.1)"
    signals = signals_of(columns, logs=_lines("cart", [385, 410, 440, 470], started))
    assert support(signals, signals.position("cart"))[FaultType.BAD_DEPLOY] == ["a deploy just before the change"]
    assert support(signals, signals.position("web"))[FaultType.BAD_DEPLOY] == []
    [deploy] = signals.observations.deploys
    assert (deploy.service, deploy.time, deploy.revision, deploy.from_logs) == ("cart", T0 + 385, "2.4.1", True)
    # What the claim rests on leads, though the errors it caused moved further.
    first = gather_evidence(signals, "cart", FaultType.BAD_DEPLOY)[0]
    assert first.summary.startswith("cart started revision 2.4.1 (a start-up line in its logs) 15 s before")


def test_a_restart_after_the_change_is_not_its_cause() -> None:
    # It failed, then came back: the start-up line follows the change by more than one sample.
    columns = {"cart_errors": noisy_series(1, 50), "cart_latency": noisy_series(2)}
    crashed = pd.concat(
        [_lines("cart", [401], "panic: runtime error", "ERROR"), _lines("cart", [404], "Server listening on port 8080")]
    )
    signals = signals_of(columns, logs=crashed)
    assert support(signals, signals.position("cart"))[FaultType.BAD_DEPLOY] == []
    # Routine chatter that merely mentions starting is no start-up line.
    chatter = _lines("cart", [380], "started processing batch 42; listening for more")
    assert signals_of(columns, logs=chatter).observations.deploys == []


def test_metrics_of_no_known_kind_support_only_the_plain_claim() -> None:
    signals = signals_of({"node-1_value": noisy_series(1, 20), "node-2_value": noisy_series(2)})
    backed = support(signals, signals.position("node-1"))
    assert {fault for fault, sources in backed.items() if sources} == {FaultType.ANOMALY}
    rows = fault_table(signals, ["node-1"])
    assert set(rows.loc[rows["supported"] > 0, "fault"]) == {"anomaly"}
    assert list(rows["fault"]) == [fault.value for fault in backed]


def test_a_container_that_restarts_supports_its_being_down_and_says_so_first() -> None:
    restarts = np.zeros(500)
    restarts[410:], restarts[445:] = 1, 2  # kube-state-metrics' counter: killed twice after the change
    signals = signals_of(
        {
            "cart_kube_pod_container_status_restarts_total": restarts,
            "cart_latency": noisy_series(1, 30),
            "web_latency": noisy_series(2, 20),
        }
    )
    backed = support(signals, signals.position("cart"))
    assert backed[FaultType.DEPENDENCY_DOWN] == ["its containers restarting"]
    assert backed[FaultType.MEMORY] == []  # a restart's reason is not in its count
    shown = gather_evidence(signals, "cart", FaultType.DEPENDENCY_DOWN)
    assert shown[0].source == "cart_kube_pod_container_status_restarts_total"
    assert support(signals, signals.position("web"))[FaultType.DEPENDENCY_DOWN] == []


def test_a_spike_that_settles_below_normal_is_told_as_a_spike() -> None:
    # A retransmit rate that jumps, then stays a little under its old level: the level since the
    # change is lower than before, so "rose from 100 to 90" would contradict itself.
    spiky = noisy_series(1)
    spiky[400:420], spiky[420:] = 200.0, 90.0 + np.random.default_rng(2).normal(0, 0.2, 80)
    signals = signals_of({"cart_tcp_retransmits": spiky, "cart_latency": noisy_series(3, 30)})
    line = next(
        item
        for item in gather_evidence(signals, "cart", FaultType.NETWORK_ERRORS)
        if item.source == "cart_tcp_retransmits"
    )
    assert line.summary.startswith("cart_tcp_retransmits rose from 99.9 to 200, then returned to 90.1 ")


def test_a_component_that_went_silent_changed_when_its_samples_stopped() -> None:
    # cart's process died 5 s before the change point; its callers' errors rose at the change.
    silent = {f"cart_{metric}": noisy_series(seed) for seed, metric in enumerate(("cpu", "latency", "rps"), start=1)}
    for values in silent.values():
        values[395:] = np.nan
    signals = signals_of({**silent, "web_errors": noisy_series(4, 50), "api_errors": noisy_series(5, 40)})
    onsets = dict(zip(signals.frame.columns, signals.deviations.onset, strict=True))
    assert onsets["cart_cpu"] == onsets["cart_rps"] == -5.0
    lag = dict(zip(signals.services, signals.table["svc_onset_lag"], strict=True))
    assert lag["cart"] == 0.0 and lag["web"] > 0 and lag["api"] > 0  # the first to change


def _restarted(memory_jump: float) -> dict[str, np.ndarray]:
    restarts = np.zeros(500)
    restarts[420:], restarts[460:] = 1, 2
    return {
        "cart_memory_rss": noisy_series(1, memory_jump),
        "cart_pod_restarts_total": restarts,
        "cart_latency": noisy_series(2, 30),
        "web_latency": noisy_series(3, 20),
    }


def test_restarts_as_its_memory_grew_are_an_oom_kill_that_explains_its_going_down() -> None:
    signals = signals_of(_restarted(memory_jump=40))
    backed = support(signals, signals.position("cart"))
    assert "restarts as its memory grew" in backed[FaultType.MEMORY]
    assert backed[FaultType.DEPENDENCY_DOWN] == ["its containers restarting"]
    rows = fault_table(signals, ["cart"])
    memory = rows["fault"] == "memory"
    assert rows.loc[memory, "decisive"].item() == 1.0 and rows.loc[memory, "oom_killed"].item() == 1.0
    chosen = rows.loc[overruling(FaultType.DEPENDENCY_DOWN, rows), "fault"]
    assert list(chosen) == ["memory"]


def test_restarts_as_its_memory_fell_are_no_oom_kill() -> None:
    # A crash loop starts each process with an empty heap: memory falls, nothing ran out of it.
    signals = signals_of(_restarted(memory_jump=-40))
    backed = support(signals, signals.position("cart"))
    assert "restarts as its memory grew" not in backed[FaultType.MEMORY]
    rows = fault_table(signals, ["cart"])
    assert not overruling(FaultType.DEPENDENCY_DOWN, rows).any()


def test_a_leak_that_grew_until_its_restart_is_an_oom_kill_that_explains_its_busy_cpu() -> None:
    # The heap has climbed since long before the change, the container is killed at its limit and
    # starts low; the memory's z-score says nothing of it (its normal period is the climb), while
    # the CPU, busy with garbage collection, moved far.
    memory = np.full(500, 800.0)
    memory[150:430] = 800.0 + np.arange(280) * 5.0
    memory[430:] = 600.0 + np.arange(70) * 5.0
    restarts = np.zeros(500)
    restarts[430:] = 1.0
    columns = {"cart_memory_rss": memory, "cart_cpu": noisy_series(1, 200), "cart_latency": noisy_series(2, 30)}
    signals = signals_of({**columns, "cart_pod_restarts_total": restarts})
    assert "restarts as its memory grew" in support(signals, signals.position("cart"))[FaultType.MEMORY]
    rows = fault_table(signals, ["cart"])
    assert list(rows.loc[overruling(FaultType.CPU, rows), "fault"]) == ["memory"]
    assert not overruling(FaultType.BAD_DEPLOY, rows).any()  # a rollout that brought the leak explains it
    steady = 1200.0 + np.random.default_rng(3).normal(0, 5, 500)
    crashed = signals_of({**columns, "cart_memory_rss": steady, "cart_pod_restarts_total": restarts})
    assert support(crashed, crashed.position("cart"))[FaultType.MEMORY] == []  # no leak, no kill: a crash


def test_a_cause_that_moved_far_is_decisive_and_the_symptoms_never_are() -> None:
    signals = signals_of(
        {"cart_cpu": noisy_series(1, 200), "cart_latency": noisy_series(2, 300), "cart_errors": noisy_series(3, 100)}
    )
    rows = fault_table(signals, ["cart"]).set_index("fault")
    assert rows.loc["cpu", "decisive"] == 1.0
    assert rows.loc["latency", "decisive"] == 0.0 and rows.loc["errors", "decisive"] == 0.0
    assert (rows["decisive"] <= rows["supported"]).all()


def test_a_cause_that_moved_a_little_is_supported_but_not_decisive() -> None:
    # Past the detection threshold (it moved), far below DECISIVE_Z: a busier CPU beside a slow
    # dependency is what every caller shows.
    signals = signals_of({"cart_cpu": noisy_series(1, 8), "cart_latency": noisy_series(2, 300)})
    rows = fault_table(signals, ["cart"]).set_index("fault")
    assert rows.loc["cpu", "supported"] == 1.0 and rows.loc["cpu", "decisive"] == 0.0


class _PrefersSymptoms:
    """A fault typer that has learnt one system's habit: latency or errors first, whatever else moved."""

    feature_names = FAULT_FEATURES

    def score_incident(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        symptom = X[:, FAULT_FEATURES.index("fault_latency")] + X[:, FAULT_FEATURES.index("fault_errors")]
        score = 0.5 + 0.4 * symptom
        return score, score


def test_a_symptom_is_the_diagnosis_only_when_no_cause_is_decisive() -> None:
    saturated = signals_of({"cart_cpu": noisy_series(1, 200), "cart_latency": noisy_series(2, 300)})
    assert type_faults(_PrefersSymptoms(), fault_table(saturated, ["cart"]))["cart"][0] is FaultType.CPU
    busy = signals_of({"cart_cpu": noisy_series(1, 8), "cart_latency": noisy_series(2, 300)})
    assert type_faults(_PrefersSymptoms(), fault_table(busy, ["cart"]))["cart"][0] is FaultType.LATENCY


def test_a_deploy_just_before_the_change_is_the_diagnosis_over_the_errors_it_caused() -> None:
    columns = {"cart_errors": noisy_series(1, 50), "cart_latency": noisy_series(2)}
    assert type_faults(_PrefersSymptoms(), fault_table(signals_of(columns), ["cart"]))["cart"][0] is FaultType.ERRORS
    deployed = signals_of(columns, Observations(deploys=[DeployEvent(service="cart", time=T0 + 380, revision="r2")]))
    assert type_faults(_PrefersSymptoms(), fault_table(deployed, ["cart"]))["cart"][0] is FaultType.BAD_DEPLOY


class _PrefersDown:
    """A fault typer that has learnt one system's habit: a component that stopped reporting is down."""

    feature_names = FAULT_FEATURES

    def score_incident(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        score = 0.5 + 0.4 * X[:, FAULT_FEATURES.index("fault_dependency_down")]
        return score, score


@pytest.mark.parametrize("level", ["ERROR", "PANIC", "E", "3"])  # Go's panic, klog's letter, syslog's err
def test_a_component_down_whose_own_logs_name_a_cause_went_down_of_it(level: str) -> None:
    memory, latency = noisy_series(1, 50), noisy_series(2, 30)
    memory[405:] = np.nan  # killed: it stops reporting
    columns = {"cart_memory": memory, "cart_latency": latency}
    oom = pd.DataFrame(
        {
            "time": T0 + 402 + np.arange(5),
            "service": "cart",
            "level": level,
            "message": "java.lang.OutOfMemoryError: Java heap space",
        }
    )
    typed = {}
    for name, logs in (("quiet", None), ("oom", oom)):
        signals = signals_of(columns, logs=logs)
        assert support(signals, signals.position("cart"))[FaultType.DEPENDENCY_DOWN]
        typed[name] = type_faults(_PrefersDown(), fault_table(signals, ["cart"]))["cart"][0]
    assert typed == {"quiet": FaultType.DEPENDENCY_DOWN, "oom": FaultType.MEMORY}


def test_a_component_down_just_after_its_rollout_went_down_of_the_rollout() -> None:
    latency = noisy_series(2, 30)
    latency[405:] = np.nan  # it stops answering
    columns = {"cart_latency": latency, "cart_errors": noisy_series(1)}
    quiet = signals_of(columns)
    deployed = signals_of(columns, Observations(deploys=[DeployEvent(service="cart", time=T0 + 380, revision="r2")]))
    assert support(deployed, deployed.position("cart"))[FaultType.DEPENDENCY_DOWN]
    assert type_faults(_PrefersDown(), fault_table(quiet, ["cart"]))["cart"][0] is FaultType.DEPENDENCY_DOWN
    assert type_faults(_PrefersDown(), fault_table(deployed, ["cart"]))["cart"][0] is FaultType.BAD_DEPLOY


def _own_log_support(message: str) -> list[str]:
    logs = pd.DataFrame({"time": T0 + 402 + np.arange(5), "service": "cart", "level": "ERROR", "message": message})
    signals = signals_of({"cart_latency": noisy_series(1, 30)}, logs=logs)
    return support(signals, signals.position("cart"))[FaultType.DB_POOL_EXHAUSTED]


@pytest.mark.parametrize(
    "message",
    [
        "HikariPool-1 - Connection is not available, request timed out after 30000ms.",
        "QueuePool limit of size 5 overflow 10 reached, connection timed out, timeout 30.00",
        "psycopg_pool.PoolTimeout: couldn't get a connection after 30.00 sec",
        "Could not get JDBC Connection; nested exception is java.sql.SQLTransientConnectionException",
        "An attempt by a client to checkout a Connection has timed out.",
        "FATAL: sorry, too many clients already",
        "FATAL: remaining connection slots are reserved for non-replication superuser connections",
    ],
)
def test_a_connection_pool_running_dry_in_its_own_logs_supports_an_exhausted_pool(message: str) -> None:
    assert _own_log_support(message) == ["its logs"]


@pytest.mark.parametrize(
    "message",
    [
        "o.a.tomcat.util.threads.ThreadPoolExecutor - Task rejected: thread pool exhausted",
        "RejectedExecutionException: worker pool saturated",
    ],
)
def test_a_thread_pool_running_dry_is_a_busy_service_not_an_exhausted_connection_pool(message: str) -> None:
    assert _own_log_support(message) == []
