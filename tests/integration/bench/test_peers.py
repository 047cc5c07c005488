"""The peers' client: case folders written from incidents, the peers' run in their own venv, scores."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from bench.peers.client import PEERS_PYTHON, PeersError, run_peers, score, write_case
from models import read_topology, simulate_incident

needs_pyrca = pytest.mark.skipif(
    importlib.util.find_spec("pyrca") is None, reason="PyRCA is not installed (make setup installs it)"
)
needs_peers_env = pytest.mark.skipif(
    not PEERS_PYTHON.exists(), reason="the peers' environment is missing: run `make peers-env`"
)


def test_a_simulator_incident_round_trips_through_its_case_folder(tmp_path: Path) -> None:
    incident = simulate_incident(5, n_services=12)
    folder = write_case(incident, tmp_path / "case")
    metrics = pd.read_csv(folder / "metrics.csv")
    pd.testing.assert_frame_equal(metrics, incident.telemetry.metrics, check_exact=True)
    truth = json.loads((folder / "truth.json").read_text())
    assert incident.root_cause is not None
    assert truth["service"] == incident.root_cause[0] and truth["fault"] == incident.root_cause[1].value
    assert truth["root_causes"] == [incident.root_cause[0]]
    assert (truth["inject_time"], truth["alert_time"]) == (incident.inject_time, incident.alert_time)
    assert read_topology(folder / "topology.yaml") == incident.topology
    assert not (folder / "graph.json").exists()
    assert (folder / "logs.csv").exists() == (incident.telemetry.logs is not None)


@needs_pyrca
def test_a_pyrca_incident_writes_its_true_graph_and_no_fault_type(tmp_path: Path) -> None:
    from models.generators import PyRCAConfig, pyrca_incident

    incident = pyrca_incident(3, config=PyRCAConfig(nodes=(8, 10)))
    folder = write_case(incident, tmp_path / "case")
    graph = json.loads((folder / "graph.json").read_text())
    assert graph["nodes"] == incident.telemetry.metric_columns()
    assert [tuple(edge) for edge in graph["edges"]] == list(incident.metric_graph or ())
    truth = json.loads((folder / "truth.json").read_text())
    assert truth["fault"] is None and truth["generator"] == "pyrca"
    assert truth["root_causes"] == [service for service, _ in incident.root_causes]


def test_a_missing_environment_names_make_peers_env(tmp_path: Path) -> None:
    with pytest.raises(PeersError, match="make peers-env"):
        run_peers([tmp_path], tmp_path / "out.json", python=tmp_path / "no-venv" / "bin" / "python")


def test_score_counts_any_root_cause_and_the_first_one_and_failures_as_misses() -> None:
    def case(roots: list[str], ranked: list[str] | None) -> dict:
        outcome = {"ok": ranked is not None, "ranked_services": ranked or [], "seconds": 1.0}
        return {"truth": {"service": roots[0], "root_causes": roots}, "methods": {"m": outcome}}

    results = {
        "cases": {
            "a": case(["x", "y"], ["y", "x", "z"]),  # a second root cause first: "any" hit, "first" miss at 1
            "b": case(["x"], ["z", "w", "x"]),
            "c": case(["x"], None),
            "d": {"error": "JSONDecodeError: ..."},  # unreadable: no truth, no methods
        }
    }
    table = score(results)["m"]
    assert table["ac1_any"] == pytest.approx(1 / 4) and table["ac1_first"] == 0.0
    assert table["ac3_any"] == pytest.approx(2 / 4) and table["ac3_first"] == pytest.approx(2 / 4)
    assert table["failures"] == 2 and table["cases"] == 4


@pytest.mark.slow
@needs_pyrca
@needs_peers_env
def test_the_peers_run_on_every_kind_of_case_and_record_failures(tmp_path: Path) -> None:
    from models.generators import PyRCAConfig, pyrca_incident

    small = PyRCAConfig(nodes=(8, 10))
    with_graph = write_case(pyrca_incident(1, config=small), tmp_path / "with-graph")
    with_topology = write_case(simulate_incident(2, n_services=10), tmp_path / "with-topology")
    bare = shutil.copytree(with_graph, tmp_path / "bare")  # neither graph nor topology: PyRCA's PC
    (bare / "graph.json").unlink()
    (bare / "topology.yaml").unlink()
    late = shutil.copytree(with_graph, tmp_path / "late")  # an alert between two samples
    truth = json.loads((late / "truth.json").read_text())
    (late / "truth.json").write_text(json.dumps({**truth, "alert_time": truth["alert_time"] + 0.5}))
    broken = shutil.copytree(with_graph, tmp_path / "broken")
    (broken / "metrics.csv").write_text("time,a_value\n1,2\n")  # too short for anything
    unreadable = shutil.copytree(with_graph, tmp_path / "unreadable")
    (unreadable / "truth.json").write_text("{")

    results = run_peers([with_graph, with_topology, bare, late, broken, unreadable], tmp_path / "out.json")

    cases = results["cases"]
    assert results["settings"]["anomaly_time"] == "alert_time"
    for name, graph in (("with-graph", "true"), ("with-topology", "topology"), ("bare", "pc")):
        methods = cases[name]["methods"]
        assert all(outcome["ok"] for outcome in methods.values()), name
        assert methods["ht"]["graph"] == graph and methods["ht-nograph"]["graph"] == "none"
        services = set(read_topology(with_topology / "topology.yaml").names) if name == "with-topology" else None
        for outcome in methods.values():
            assert outcome["ranked_services"] and outcome["seconds"] >= 0
            if services is not None:
                assert set(outcome["ranked_services"]) <= services
    assert cases["late"]["anomaly_time"] == truth["alert_time"]  # rounded down to a sample
    # On the broken cases the methods, or the case as a whole, fail; the run goes on.
    assert not any(outcome["ok"] for outcome in cases["broken"]["methods"].values())
    assert "JSONDecodeError" in cases["unreadable"]["error"]
