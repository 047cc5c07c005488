#!/usr/bin/env python
"""Held-out incident generator for judging a root-cause ranker.

Independent of the project's simulators: a fluid (per-second) model of a microservice system
(call graph with services, databases and caches; diurnal + bursty load; queueing, retries,
timeouts, circuit breakers, connection pools, cache-aside masking, GC, restarts), faults injected
into it, and an observation layer that imitates Prometheus-style monitoring (15 s / 30 s scrapes,
per-target phase and jitter, rate windows, counters vs gauges, unit differences, missing scrapes,
missing metrics).

    python generate.py --out DIR --cases 60 --seed 7

Writes DIR/<id>/{metrics.csv, truth.json, topology.yaml[, logs.csv]} and DIR.manifest.json (the
scenario of each case, kept outside the case folders so a ranker cannot read it).

A judge, not a training generator: written by someone who had not read the ranker, from how
production systems fail, and scored with ``bench/rca_accuracy.py --cases-dir``. Nothing in
``models/`` trains, calibrates or is tuned on it; a change made because of its numbers makes them
worthless as ground the model was not built on.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.holdout._observation import exposures_for, make_logs, observe
from bench.holdout._scenarios import make_background, make_fault, pick_scenarios
from bench.holdout._simulation import Fault, Sim, load_curve
from bench.holdout._system import build_topology, calibrate, topo_order

# ------------------------------------------------------------------------------------ alert


def smooth(x, w):
    cs = np.concatenate([[0], np.cumsum(x)])
    idx = np.arange(1, len(x) + 1)
    lo = np.maximum(idx - w, 0)
    return (cs[idx] - cs[lo]) / (idx - lo)


def entry_signals(out, window):
    rps = np.maximum(out["rps"][:, 0], 1e-3)
    p99 = smooth(out["p99"][:, 0] * rps, window) / smooth(rps, window)
    err = smooth(out["err"][:, 0] * rps, window) / smooth(rps, window)
    return p99, err


def alert_rule(rng, out, t_inj, window):
    """Thresholds an on-call team would have set: a multiple of normal p99 that the last
    half hour did not cross, and an error ratio of a few percent."""
    p99, err = entry_signals(out, window)
    pre = slice(60 + window, int(t_inj))
    thr_l = max(np.median(p99[pre]) * rng.uniform(1.6, 2.2), p99[pre].max() * 1.2)
    thr_e = max(float(rng.choice([0.01, 0.02, 0.05])), np.median(err[pre]) * 5, err[pre].max() * 1.3)
    return {"lat_thr_ms": float(thr_l), "err_thr": float(thr_e), "for_s": int(rng.choice([60, 120])), "eval_s": None}


def find_alert(out, rule, t_from, T, window, phase):
    p99, err = entry_signals(out, window)
    since = None
    for tk in np.arange(int(t_from) + phase, T, rule["eval_s"]):
        k = int(tk)
        if p99[k] > rule["lat_thr_ms"] or err[k] > rule["err_thr"]:
            since = tk if since is None else since
            if tk - since >= rule["for_s"]:
                return float(tk), ("latency" if p99[k] > rule["lat_thr_ms"] else "errors")
        else:
            since = None
    return None, None


def healthy_baseline(out, nodes, t_inj, window) -> bool:
    p99, err = entry_signals(out, window)
    pre = slice(60 + window, int(t_inj))
    if err[pre].max() > 0.02 or p99[pre].max() > 3.5 * np.median(p99[pre]):
        return False
    bad = (out["err"][60 : int(t_inj)] > 0.05).mean(axis=0)
    return bool(bad.max() < 0.02)


def end_level(f: Fault) -> None:
    if "end" in f.extra:
        end, orig = f.extra["end"], f.level
        f.level = lambda t: 0.0 if t >= end else orig(t)


def gen_case(rng, case_id, fault, variant, out_dir):
    n_total = int(rng.integers(8, 31))
    for attempt in range(30):  # noqa: B007  # the manifest records the attempt that alerted
        nodes, edges = build_topology(rng, n_total)
        order = topo_order(nodes, edges)
        rps0 = float(np.exp(rng.uniform(np.log(30), np.log(800))))
        calibrate(rng, nodes, edges, order, rps0)
        pre = float(rng.uniform(400, 1260))
        horizon = 2100.0
        T = int(pre + horizon)
        t0_epoch = float(rng.integers(1_700_000_000, 1_760_000_000))
        load, burst_events = load_curve(rng, T, t0_epoch, rps0)
        hard = rng.random() < 0.35
        step = int(rng.choice([15, 30], p=[0.6, 0.4]))
        window = int(rng.choice([60, 60, 120])) if step == 30 else int(rng.choice([30, 60, 60]))
        phase = float(rng.uniform(0, step))
        sev = float(rng.uniform(0.6, 1.0))
        # background (and the counterfactual without the fault) fixed for this system
        fault_seed = int(rng.integers(1 << 62))
        faults0, roots0 = make_fault(np.random.default_rng(fault_seed), fault, variant, nodes, edges, pre, 1.0)
        if faults0 is None:
            continue
        bg, notes = make_background(rng, nodes, edges, roots0, pre, T, hard)
        for b in bg:
            end_level(b)
        base = Sim(np.random.default_rng(1), nodes, edges, order, load, [], bg)
        base._restarts = []
        out0 = base.run()
        if not healthy_baseline(out0, nodes, pre, window):
            continue
        rule = alert_rule(rng, out0, pre, window)
        rule["eval_s"] = step
        # the counterfactual must stay quiet: the alert is the fault's
        if find_alert(out0, rule, pre - 300, T, window, phase)[0] is not None:
            continue
        ok = False
        for _tries in range(6):
            faults, roots = make_fault(np.random.default_rng(fault_seed), fault, variant, nodes, edges, pre, sev)
            faults = [f for f in faults]
            sim = Sim(np.random.default_rng(2), nodes, edges, order, load, faults, bg)
            sim._restarts = []
            out = sim.run()
            alert, by = find_alert(out, rule, pre, T, window, phase)
            onset = max(f.onset for f in faults)
            if variant == "leak":
                onset = max(
                    onset, min((n.heap_max - n.live0) / f.extra["rate"] for f in faults for n in [nodes[f.target]])
                )
            deadline = pre + onset + 420
            if alert is not None and alert <= deadline and alert - pre < horizon - 420:
                ok = True
                break
            sev *= 1.4
        if ok:
            break
    else:
        raise NoUsableCase(f"{case_id}: no usable system/fault after 12 attempts")
    rule["by"] = by
    fault, variant = faults[0].fault, faults[0].variant if variant not in ("hog-pair", "deploy-pair") else variant
    post = float(rng.uniform(180, 600))
    i0 = 60  # the first minute is the model settling
    i1 = int(min(T, max(alert + post, i0 + 660)))
    dialect = str(rng.choice(["short", "prom"]))
    exps = exposures_for(rng, nodes, dialect, roots)
    restarts = list(sim._restarts) + [(t, i) for t, i in zip(*np.nonzero(out["restart"]), strict=False)]
    times, cols = observe(rng, out, nodes, exps, i0, i1, step, window, restarts)
    metrics = pd.DataFrame({"time": np.round(t0_epoch + times, 3), **cols})
    # drop rows whose every metric is missing
    metrics = metrics[metrics.drop(columns="time").notna().any(axis=1)]
    folder = Path(out_dir) / case_id
    folder.mkdir(parents=True, exist_ok=True)
    metrics.to_csv(folder / "metrics.csv", index=False)
    truth = {
        "service": nodes[roots[0]].name,
        "fault": fault,
        "inject_time": round(t0_epoch + pre, 3),
        "alert_time": round(t0_epoch + alert, 3),
        "root_causes": [nodes[r].name for r in dict.fromkeys(roots)],
        "generator": "holdout",
        "id": case_id,
    }
    (folder / "truth.json").write_text(json.dumps(truth, indent=1))
    ns = str(rng.choice(["shop", "prod", "default", "commerce"]))
    topo = {"services": [], "calls": [[nodes[e.src].name, nodes[e.dst].name] for e in edges]}
    for n in nodes:
        d = {"name": n.name, "kind": n.kind}
        if n.engine:
            d["engine"] = n.engine
        d["namespace"] = ns
        if n.kind == "service":
            d["deployment"] = n.name
            d["replicas"] = int(n.replicas)
        topo["services"].append(d)
    (folder / "topology.yaml").write_text(yaml.safe_dump(topo, sort_keys=False))
    with_logs = rng.random() < 0.5
    if with_logs:
        events = [(t, i, "Started application (new replica)") for t, i in sim._restarts]
        restarted = zip(*np.nonzero(out["restart"]), strict=True)
        events += [(int(t), int(i), "Container restarted after OOMKilled") for t, i in restarted]
        logs = make_logs(rng, out, nodes, i0, i1, t0_epoch, events)
        if len(logs):
            logs["time"] = logs["time"].round(3)
            logs.to_csv(folder / "logs.csv", index=False)
    p99s, errs = entry_signals(out, window)
    a0, a1 = int(alert), int(min(T, alert + 180))
    impact = {
        "entry_err_at_alert": round(float(np.median(errs[a0:a1])), 4),
        "entry_p99_ratio_at_alert": round(float(np.median(p99s[a0:a1]) / np.median(p99s[60 + window : int(pre)])), 2),
        "max_err_any_service": round(float(np.median(out["err"][a0:a1], axis=0).max()), 3),
    }
    meta = {
        "impact": impact,
        "id": case_id,
        "fault": fault,
        "variant": variant,
        "roots": truth["root_causes"],
        "n_nodes": len(nodes),
        "entry": nodes[0].name,
        "root_depth": nodes[roots[0]].depth,
        "root_kind": nodes[roots[0]].kind,
        "onset_s": round(max(f.onset for f in faults), 1),
        "severity_scale": round(sev, 3),
        "attempt": attempt,
        "alert_after_s": round(alert - pre, 1),
        "alert_rule": rule,
        "scrape_s": step,
        "rate_window_s": window,
        "dialect": dialect,
        "logs": with_logs,
        "hard_distractor": hard,
        "background": notes,
        "bursts": len(burst_events),
        "rows": len(metrics),
        "columns": len(cols),
    }
    return meta


class NoUsableCase(RuntimeError):
    """No system drawn for a case both stays healthy without the fault and alerts with it."""


def _one(args):
    seed, k, fault, variant, out = args
    case_id = f"holdout-{seed}-{k:03d}"
    try:
        return gen_case(np.random.default_rng([seed, k]), case_id, fault, variant, out)
    except NoUsableCase as exc:  # this draw gives no case: the others stand
        return {"id": case_id, "fault": fault, "variant": variant, "skipped": str(exc)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--cases", type=int, default=60)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    out = Path(args.out)
    if out.exists() and any(out.iterdir()):
        raise SystemExit(f"error: {out} is not empty; give a new folder")
    out.mkdir(parents=True, exist_ok=True)
    plan = pick_scenarios(np.random.default_rng(args.seed), args.cases)
    jobs = [(args.seed, k, f, v, str(out)) for k, (f, v) in enumerate(plan)]
    if args.jobs > 1:
        import multiprocessing as mp

        with mp.Pool(args.jobs) as pool:
            metas = []
            for meta in pool.imap(_one, jobs):
                metas.append(meta)
                _report(meta)
    else:
        metas = [_report(_one(j)) for j in jobs]
    Path(str(out).rstrip("/") + ".manifest.json").write_text(json.dumps(metas, indent=1))


def _report(meta):
    if "skipped" in meta:
        print(f"{meta['id']} skipped: {meta['skipped']}", flush=True)
        return meta
    print(
        f"{meta['id']} {meta['fault']:18s} {meta['variant']:14s} root={','.join(meta['roots']):28s} "
        f"alert+{meta['alert_after_s']:6.0f}s by {meta['alert_rule']['by']:7s} n={meta['n_nodes']} "
        f"sev={meta['severity_scale']}",
        flush=True,
    )
    return meta


if __name__ == "__main__":
    main()
