"""The statistical peers on case folders: RCAEval's BARO and N-sigma, PyRCA's hypothesis testing (HT).

Runs inside the peers' own environment (``make peers-env`` makes ``bench/.peers-venv``); it imports
only RCAEval, PyRCA and their pinned stack, never the project. The product talks to it through
``bench/peers/client.py``.

    bench/.peers-venv/bin/python bench/peers/run_peers.py --cases CASES_DIR --out peers.json
    bench/.peers-venv/bin/python bench/peers/run_peers.py --check

A case folder holds ``metrics.csv`` (``time,<service>_<metric>,...``), ``truth.json``
(``service, fault, inject_time, alert_time``) and optionally ``topology.yaml`` and ``graph.json``
(``{"nodes": [...], "edges": [[cause, effect], ...]}`` over metric columns). ``--cases`` takes case
folders or folders of them.

How each method is called (the settings of RCAEval's ``main.py`` benchmark and PyRCA's README):

- Data, as RCAEval's ``main.py`` prepares it: infinities to NaN, forward fill, then 0; the last
  600 samples before the anomaly time and the first 600 from it (``--length 20`` minutes there).
- The anomaly time given to the methods is the case's ``alert_time`` rounded down to a sample
  (the only time a real user has), or ``inject_time`` with ``--oracle-time``.
- BARO: ``RCAEval.e2e.baro.baro(data, anomaly_time, dataset=..., dk_select_useful=False)``; any
  dataset name but ``None`` selects RCAEval's standard preprocessing (drop ``time``, drop constant
  columns), which is what ``main.py`` does for every dataset. RobustScaler fitted on the normal
  window, columns ranked by their largest anomalous score.
- N-sigma: ``RCAEval.e2e.nsigma``, the same call (StandardScaler instead).
- HT: ``pyrca.analyzers.ht.HT(HTConfig(graph=..., aggregator="max", root_cause_top_k=<all>))``,
  ``train(normal)``, ``find_root_causes(anomalous, adjustment=False)``: regression of every metric
  on its parents in the graph, scored by its largest anomalous residual; "Hypothesis-testing" of
  PyRCA's README benchmark (1.00 Recall@1 on its simulated data with the true graph). Its graph:
  the case's true graph (``graph.json``), else the service topology mapped to metrics (every
  metric of a caller depends on every metric of its callees), else PyRCA's PC (``PC(PCConfig())``:
  alpha 0.01, pdag-to-dag, trained on the normal window as PyRCA's README and example notebook
  do), within ``--pc-max-columns`` and ``--pc-timeout``.
- ``ht-adj``: the same with ``adjustment=True``, PyRCA's descendant adjustment ("Hypothesis-testing
  (ADJ)" there; the call of its example notebook). On a graph with a cycle the adjustment cannot
  run: HT then runs without it and says so.
- ``ht-nograph``: HT on an empty graph (every metric on its own: PyRCA allows it).
- ``ht-pc`` and ``ht-adj-pc`` (with ``--ht-pc``): HT on PyRCA's PC graph even when the case has
  a graph ("(PC)" and "(ADJ-PC)" there).

Every method's failure on a case is recorded in the output, never fatal.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import queue
import sys
import time
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

#: RCAEval's main.py keeps --length 20 minutes: 20 * 60 // 2 samples each side of the anomaly time.
WINDOW = 600
#: Any name but None and "causalrca-sock-shop" gives RCAEval's standard preprocessing.
DATASET = "cloud-agent-rca"
METHODS = ("baro", "nsigma", "ht", "ht-adj", "ht-nograph")
PC_METHODS = ("ht-pc", "ht-adj-pc")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", type=Path, help="case folders, or folders of case folders")
    parser.add_argument("--out", type=Path, help="where to write the JSON results")
    parser.add_argument("--oracle-time", action="store_true", help="give the methods inject_time, not alert_time")
    parser.add_argument("--ht-pc", action="store_true", help="also run HT on PyRCA's PC graph for every case")
    parser.add_argument(
        "--no-pc", action="store_true", help="a case without a graph gets HT on an empty graph, not PyRCA's PC"
    )
    parser.add_argument("--pc-max-columns", type=int, default=60, help="PC on at most this many columns")
    parser.add_argument("--pc-timeout", type=float, default=300.0, help="seconds PC may take on one case")
    parser.add_argument("--check", action="store_true", help="import the three methods, print versions, exit")
    args = parser.parse_args(argv)
    if args.check:
        print(json.dumps(versions()))
        return 0
    if not args.cases or not args.out:
        parser.error("--cases and --out are needed (or --check)")
    folders = find_cases(args.cases)
    if not folders:
        parser.error(f"no case folder (one with metrics.csv) under {', '.join(map(str, args.cases))}")
    settings = {
        "anomaly_time": "inject_time" if args.oracle_time else "alert_time",
        "window_samples": WINDOW,
        "dataset": DATASET,
        "pc_max_columns": args.pc_max_columns,
        "pc_timeout_seconds": args.pc_timeout,
        "methods": [*METHODS, *(PC_METHODS if args.ht_pc else ())],
        "versions": versions(),
    }
    cases: dict[str, Any] = {}
    for number, folder in enumerate(folders, 1):
        started = time.perf_counter()
        name = case_name(folder, args.cases)
        try:
            outcome = run_case(folder, args)
        except Exception as exc:  # an unreadable case is recorded; the others still run
            outcome = {"error": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc(limit=4)}
        cases[str(folder) if name in cases else name] = outcome
        print(f"[{number}/{len(folders)}] {folder.name}: {time.perf_counter() - started:.1f} s", file=sys.stderr)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"settings": settings, "cases": cases}, indent=1))
    return 0


def versions() -> dict[str, str]:
    """The three methods imported from their packages, and the versions of what they run on."""
    from importlib.metadata import version

    _methods()
    packages = ("RCAEval", "sfr-pyrca", "numpy", "pandas", "scikit-learn", "scipy", "networkx")
    return {name: version(name) for name in packages}


def _methods() -> dict[str, Callable[..., Any]]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pkg_resources' deprecation, sklearn's FutureWarnings
        from pyrca.analyzers.ht import HT
        from RCAEval.e2e import nsigma
        from RCAEval.e2e.baro import baro
    # RCAEval's e2e turns every warning off for the process on import; that is its choice, kept.
    return {"baro": baro, "nsigma": nsigma, "HT": HT}


def find_cases(roots: list[Path]) -> list[Path]:
    folders: list[Path] = []
    for root in roots:
        if (root / "metrics.csv").is_file():
            folders.append(root)
        elif root.is_dir():
            folders.extend(sorted(path.parent for path in root.glob("*/metrics.csv")))
    return folders


def case_name(folder: Path, roots: list[Path]) -> str:
    for root in roots:
        if folder != root and folder.is_relative_to(root):
            return str(folder.relative_to(root))
    return folder.name


# -- one case ----------------------------------------------------------------------------------------


def run_case(folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    truth = json.loads((folder / "truth.json").read_text())
    services = read_topology(folder / "topology.yaml")
    data = prepare(pd.read_csv(folder / "metrics.csv"))
    wanted = truth["inject_time"] if args.oracle_time else truth["alert_time"]
    if wanted is None:
        return {"truth": truth, "error": f"truth.json has no {'inject_time' if args.oracle_time else 'alert_time'}"}
    anomaly_time = sample_at_or_before(data["time"], float(wanted))
    data = window(data, anomaly_time)
    service_of = service_splitter(services[0] if services else [])
    results: dict[str, Any] = {}
    methods = _methods()
    for name in ("baro", "nsigma"):
        results[name] = timed(lambda method=methods[name]: rcaeval_ranks(method, data, anomaly_time), service_of)
    normal = data[data["time"] < anomaly_time].drop(columns="time")
    anomalous = data[data["time"] >= anomaly_time].drop(columns="time")
    kind, graph, graph_note = case_graph(folder, list(normal.columns), services)
    graphs = CaseGraphs(normal, anomalous, args)
    ht = methods["HT"]
    variants = [("ht", kind, graph, False), ("ht-adj", kind, graph, True), ("ht-nograph", "none", None, False)]
    if kind == "pc" and args.no_pc:
        # Without a graph and without PC (minutes per case), HT is the graph-free variant.
        variants = [("ht", "none", None, False), ("ht-nograph", "none", None, False)]
        graph_note = "no graph and --no-pc: HT on an empty graph"
    if args.ht_pc:
        variants += [("ht-pc", "pc", None, False), ("ht-adj-pc", "pc", None, True)]
    for name, graph_kind, given, adjust in variants:
        results[name] = timed(
            lambda k=graph_kind, g=given, a=adjust: ht_ranks(ht, normal, anomalous, lambda: graphs.get(k, g), a),
            service_of,
        )
    for name in ("ht", "ht-adj"):
        if name in results:
            results[name]["graph_note"] = graph_note
    return {
        "truth": truth,
        "anomaly_time": anomaly_time,
        "anomaly_time_source": "inject_time" if args.oracle_time else "alert_time",
        "samples": {"normal": len(normal), "anomalous": len(anomalous)},
        "columns": len(normal.columns),
        "methods": results,
    }


def prepare(data: pd.DataFrame) -> pd.DataFrame:
    """RCAEval main.py's preparation: infinities to NaN, forward fill, the rest 0."""
    data = data.replace([np.inf, -np.inf], np.nan).ffill().fillna(0)
    return data.sort_values("time").reset_index(drop=True)


def sample_at_or_before(times: pd.Series, moment: float) -> float:
    before = times[times <= moment]
    return float(before.iloc[-1]) if len(before) else float(times.iloc[0])


def window(data: pd.DataFrame, anomaly_time: float) -> pd.DataFrame:
    normal = data[data["time"] < anomaly_time].tail(WINDOW)
    anomalous = data[data["time"] >= anomaly_time].head(WINDOW)
    return pd.concat([normal, anomalous], ignore_index=True)


def timed(run: Callable[[], dict[str, Any]], service_of: Callable[[str], str]) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        result = run()
    except Exception as exc:  # a failure on one case is a result, not the end of the run
        return {
            "ok": False,
            "error": f"{type(exc).__name__}: {exc}",
            "trace": traceback.format_exc(limit=4),
            "seconds": time.perf_counter() - started,
        }
    elapsed = time.perf_counter() - started
    ranked = [str(column) for column in result.pop("ranks")]
    return {
        "ok": True,
        "ranked_metrics": ranked,
        "ranked_services": ranked_services(ranked, service_of),
        # A graph learned once for several HT variants counts in full for each of them.
        "seconds": result.get("ht_seconds", elapsed) + result.get("graph_seconds", 0.0),
        **result,
    }


def ranked_services(columns: list[str], service_of: Callable[[str], str]) -> list[str]:
    """Services in the order of their first metric in the ranking."""
    seen: dict[str, None] = {}
    for column in columns:
        seen.setdefault(service_of(column), None)
    return list(seen)


def service_splitter(services: list[str]) -> Callable[[str], str]:
    """A column's service: the longest topology name it starts with, else the part before the first ``_``."""
    known = sorted(services, key=len, reverse=True)

    def split(column: str) -> str:
        for name in known:
            if column.startswith(name + "_"):
                return name
        return column.partition("_")[0]

    return split


# -- RCAEval -----------------------------------------------------------------------------------------


def rcaeval_ranks(method: Callable[..., dict[str, Any]], data: pd.DataFrame, anomaly_time: float) -> dict[str, Any]:
    output = method(data.copy(), anomaly_time, dataset=DATASET, dk_select_useful=False, anomalies=None)
    return {"ranks": output["ranks"]}


# -- PyRCA's HT and its graph ------------------------------------------------------------------------


def read_topology(path: Path) -> tuple[list[str], list[tuple[str, str]]] | None:
    if not path.is_file():
        return None
    document = yaml.safe_load(path.read_text()) or {}
    names = [entry if isinstance(entry, str) else entry["name"] for entry in document.get("services") or []]
    calls = []
    for edge in document.get("calls") or document.get("edges") or []:
        if isinstance(edge, dict):
            calls.append((str(edge.get("caller", edge.get("from"))), str(edge.get("callee", edge.get("to")))))
        else:
            calls.append((str(edge[0]), str(edge[1])))
    return names, calls


def case_graph(
    folder: Path, columns: list[str], services: tuple[list[str], list[tuple[str, str]]] | None
) -> tuple[str, pd.DataFrame | None, str]:
    """HT's graph for the case: the true one, else the topology's, else PC (learned when first asked, timed)."""
    graph_file = folder / "graph.json"
    if graph_file.is_file():
        document = json.loads(graph_file.read_text())
        edges = [(str(cause), str(effect)) for cause, effect in document["edges"]]
        unknown = {end for edge in edges for end in edge} - set(columns)
        note = f"graph.json; {len(unknown)} of its nodes have no column" if unknown else "graph.json"
        return "true", adjacency(columns, edges), note
    if services is not None:
        names, calls = services
        service_of = service_splitter(names)
        metrics: dict[str, list[str]] = {}
        for column in columns:
            metrics.setdefault(service_of(column), []).append(column)
        # Anomalies travel from callee to caller: every metric of a caller depends on every metric of its callees.
        edges = [
            (cause, effect)
            for caller, callee in calls
            for cause in metrics.get(callee, [])
            for effect in metrics.get(caller, [])
        ]
        return "topology", adjacency(columns, edges), "topology.yaml, service calls mapped to metric columns"
    return "pc", None, "no graph.json or topology.yaml: PyRCA's PC"


def adjacency(columns: list[str], edges: list[tuple[str, str]]) -> pd.DataFrame:
    """PyRCA's layout: ``graph.loc[cause, effect] == 1``."""
    matrix = pd.DataFrame(0, index=columns, columns=columns)
    for cause, effect in edges:
        if cause in matrix.index and effect in matrix.columns and cause != effect:
            matrix.loc[cause, effect] = 1
    return matrix


class CaseGraphs:
    """The graphs HT variants ask for on one case; PyRCA's PC runs at most once and its cost goes to every user."""

    def __init__(self, normal: pd.DataFrame, anomalous: pd.DataFrame, args: argparse.Namespace) -> None:
        self.normal, self.anomalous, self.args = normal, anomalous, args
        self._pc: tuple[pd.DataFrame, dict[str, Any]] | Exception | None = None

    def get(self, kind: str, given: pd.DataFrame | None) -> tuple[pd.DataFrame, dict[str, Any]]:
        if kind == "none":
            return adjacency(list(self.normal.columns), []), {"graph": "none"}
        if kind != "pc":
            assert given is not None
            return given, {"graph": kind}
        if self._pc is None:
            started = time.perf_counter()
            try:
                graph, info = pc_graph(self.normal, self.anomalous, self.args.pc_max_columns, self.args.pc_timeout)
                self._pc = graph, {"graph": "pc", **info, "graph_seconds": time.perf_counter() - started}
            except Exception as exc:
                exc.add_note(f"after {time.perf_counter() - started:.1f} s")
                self._pc = exc
        if isinstance(self._pc, Exception):
            raise self._pc
        return self._pc


def ht_ranks(
    ht_class: Any,
    normal: pd.DataFrame,
    anomalous: pd.DataFrame,
    graph: Callable[[], tuple[pd.DataFrame, dict[str, Any]]],
    adjust: bool,
) -> dict[str, Any]:
    """HT's ranking; ``ht_seconds`` is HT's own time, ``graph_seconds`` (PC only) the graph's."""
    import networkx as nx

    adjacency_frame, info = graph()
    started = time.perf_counter()
    extra: dict[str, Any] = {**info, "graph_edges": int(adjacency_frame.to_numpy().sum()), "adjustment": adjust}
    columns = list(adjacency_frame.columns)
    model = ht_class(ht_class.config_class(graph=adjacency_frame, aggregator="max", root_cause_top_k=len(columns)))
    model.train(normal[columns])
    try:
        result = model.find_root_causes(anomalous[columns], None, adjustment=adjust)
    except nx.NetworkXUnfeasible:
        result = model.find_root_causes(anomalous[columns], None, adjustment=False)
        extra["adjustment"] = False
        extra["note"] = "the graph has a cycle: HT ran without PyRCA's descendant adjustment"
    extra["ht_seconds"] = time.perf_counter() - started
    return {"ranks": [node for node, _score in result.root_cause_nodes], **extra}


def pc_graph(
    normal: pd.DataFrame, anomalous: pd.DataFrame, max_columns: int, timeout: float
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """PyRCA's PC on the normal window, in a child process so that ``timeout`` can stop it.

    Constant columns are left out (PC's independence tests need a variance); beyond
    ``max_columns`` only the columns whose mean moves most in the anomalous window (in normal
    standard deviations) are kept. That cap is ours, not PyRCA's, and the output says when it cut.
    Columns PC did not see are nodes without edges.
    """
    varying = [column for column in normal.columns if normal[column].std() > 0]
    info: dict[str, Any] = {"pc_columns": len(varying), "pc_columns_total": len(normal.columns)}
    if len(varying) > max_columns:
        info["pc_capped"] = f"PC ran on {max_columns} of {len(varying)} varying columns (largest mean shift)"
        shift = (anomalous[varying].mean() - normal[varying].mean()).abs() / normal[varying].std()
        varying = list(shift.sort_values(ascending=False, kind="stable").index[:max_columns])
        info["pc_columns"] = len(varying)
    context = multiprocessing.get_context("fork")
    results: Any = context.Queue()
    child = context.Process(target=_pc_child, args=(normal[varying], results), daemon=True)
    child.start()
    try:
        outcome = results.get(timeout=timeout)
    except queue.Empty:
        child.kill()
        raise TimeoutError(f"PyRCA's PC took more than {timeout:g} s on {len(varying)} columns") from None
    finally:
        child.join(5)
    if isinstance(outcome, str):
        raise RuntimeError(f"PyRCA's PC failed: {outcome}")
    graph = adjacency(list(normal.columns), [])
    graph.loc[outcome.index, outcome.columns] = outcome.to_numpy()
    return graph, info


def _pc_child(frame: pd.DataFrame, results: Any) -> None:
    warnings.simplefilter("ignore")
    sys.stderr = open(os.devnull, "w")  # causal-learn's progress bars  # noqa: SIM115
    try:
        from pyrca.graphs.causal.pc import PC, PCConfig

        results.put(PC(PCConfig()).train(frame))
    except Exception as exc:
        results.put(f"{type(exc).__name__}: {exc}")


if __name__ == "__main__":
    sys.exit(main())
