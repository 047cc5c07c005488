"""The product's side of the statistical peers: incidents as case folders, the peers run in their own venv, scores.

Runs in the product's venv. ``run_peers.py`` runs in ``bench/.peers-venv`` (``make peers-env``)
because RCAEval and PyRCA pin old libraries; the two sides share only files: case folders in,
one JSON out.

    from bench.peers.client import write_case, run_peers, score
    dirs = [write_case(incident, root / incident.id) for incident in incidents]
    results = run_peers(dirs, root / "peers.json")
    print(score(results))
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from models import SimulatedIncident
from models.generators.pyrca import GENERATOR as PYRCA_GENERATOR

REPO = Path(__file__).resolve().parents[2]
PEERS_PYTHON = REPO / "bench" / ".peers-venv" / "bin" / "python"
RUN_PEERS = Path(__file__).with_name("run_peers.py")

#: Generators whose incidents carry a placeholder fault type: their truth.json says ``"fault": null``.
_NO_FAULT_TYPES = {PYRCA_GENERATOR}


class PeersError(RuntimeError):
    """The peers' environment is missing or their run failed."""


def write_case(incident: SimulatedIncident, folder: str | Path) -> Path:
    """Write ``incident`` as a case folder (``metrics.csv``, ``truth.json``, ``topology.yaml``,
    ``graph.json`` when the generator knows the causal graph, ``logs.csv`` / ``traces.csv`` when
    there are any) and return the folder.

    ``truth.json`` has ``service``, ``fault`` (``null`` for a healthy case or a generator without
    fault types), ``inject_time`` and ``alert_time``, plus ``root_causes`` (every root-cause
    service, the main one first), ``generator`` and ``id``.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    telemetry = incident.telemetry
    # Python's float repr: values read back bit for bit.
    telemetry.metrics.to_csv(folder / "metrics.csv", index=False, float_format=None)
    root = incident.root_cause
    truth = {
        "service": root[0] if root else None,
        "fault": root[1].value if root and incident.generator not in _NO_FAULT_TYPES else None,
        "inject_time": incident.inject_time,
        "alert_time": incident.alert_time,
        "root_causes": [service for service, _fault in incident.root_causes],
        "generator": incident.generator,
        "id": incident.id,
    }
    (folder / "truth.json").write_text(json.dumps(truth, indent=1))
    (folder / "topology.yaml").write_text(yaml.safe_dump(incident.topology.to_dict(), sort_keys=False))
    if incident.metric_graph is not None:
        graph = {"nodes": telemetry.metric_columns(), "edges": [list(edge) for edge in incident.metric_graph]}
        (folder / "graph.json").write_text(json.dumps(graph))
    if telemetry.logs is not None:
        telemetry.logs.to_csv(folder / "logs.csv", index=False)
    if telemetry.traces is not None:
        telemetry.traces.to_csv(folder / "traces.csv", index=False)
    return folder


def run_peers(
    case_dirs: Sequence[str | Path],
    out: str | Path,
    *,
    oracle_time: bool = False,
    ht_pc: bool = False,
    pc_max_columns: int | None = None,
    pc_timeout: float | None = None,
    no_pc: bool = False,
    python: str | Path | None = None,
) -> dict[str, Any]:
    """Run BARO, N-sigma (RCAEval) and HT (PyRCA) on ``case_dirs`` in the peers' venv; the parsed JSON.

    Progress goes to this process's stderr. See ``run_peers.py`` for the methods' settings and
    the JSON layout (``{"settings": ..., "cases": {name: {"truth", "methods": {method: ...}}}}``).

    Raises:
        PeersError: the peers' venv is missing (run ``make peers-env``) or the run failed.
    """
    interpreter = Path(python) if python is not None else PEERS_PYTHON
    if not interpreter.exists():
        raise PeersError(f"the peers' environment is missing ({interpreter}): run `make peers-env` in {REPO}")
    if not case_dirs:
        raise PeersError("no case folder to run the peers on")
    command = [str(interpreter), str(RUN_PEERS), "--cases", *map(str, case_dirs), "--out", str(out)]
    if oracle_time:
        command.append("--oracle-time")
    if ht_pc:
        command.append("--ht-pc")
    if no_pc:
        command.append("--no-pc")
    if pc_max_columns is not None:
        command += ["--pc-max-columns", str(pc_max_columns)]
    if pc_timeout is not None:
        command += ["--pc-timeout", str(pc_timeout)]
    completed = subprocess.run(command, stdout=subprocess.PIPE, stderr=sys.stderr, text=True, check=False)
    if completed.returncode != 0:
        raise PeersError(f"run_peers.py exited with {completed.returncode}: {' '.join(command[:3])} ...")
    return json.loads(Path(out).read_text())


def score(results: dict[str, Any], ks: Sequence[int] = (1, 3)) -> dict[str, dict[str, float]]:
    """Service-level AC@k of every method in a ``run_peers`` result.

    ``ac{k}_any``: any true root cause in the first ``k`` services; ``ac{k}_first``: the main root
    cause (``truth.service``) there. A failed method, or a case that could not be read, counts as
    a miss. Also ``seconds`` (mean per case), ``failures`` and ``cases``.
    """
    names = list(dict.fromkeys(name for case in results["cases"].values() for name in case.get("methods", {})))
    methods: dict[str, list[tuple[list[str], list[str], dict[str, Any]]]] = {name: [] for name in names}
    for case in results["cases"].values():
        truth = case.get("truth") or {}
        roots = truth.get("root_causes") or [truth.get("service")]
        for name in names:
            # A case that could not be read at all has no methods: a miss for every one.
            outcome = case.get("methods", {}).get(name) or {"ok": False, "seconds": 0.0}
            methods[name].append((outcome.get("ranked_services") or [], roots, outcome))
    table: dict[str, dict[str, float]] = {}
    for name, rows in methods.items():
        entry: dict[str, float] = {"cases": len(rows)}
        for k in ks:
            entry[f"ac{k}_any"] = float(np.mean([bool(set(ranked[:k]) & set(roots)) for ranked, roots, _ in rows]))
            entry[f"ac{k}_first"] = float(np.mean([roots[0] in ranked[:k] for ranked, roots, _ in rows]))
        entry["seconds"] = float(np.mean([outcome["seconds"] for _, _, outcome in rows]))
        entry["failures"] = sum(not outcome["ok"] for _, _, outcome in rows)
        table[name] = entry
    return table
