"""The judge's fault scenarios: which fault, where, how strong, and the background noise and
distractors around it (see ``generate``)."""

from __future__ import annotations

import numpy as np

from bench.holdout._simulation import Fault

# ---------------------------------------------------------------------------------- scenarios

SCENARIOS = [
    # (fault, variant, weight)
    ("cpu", "hog", 4),
    ("cpu", "steal", 1.5),
    ("cpu", "hog-pair", 1.2),
    ("memory", "leak", 5),
    ("latency", "slow-internal", 2.5),
    ("latency", "net-delay", 2),
    ("latency", "lock", 2),
    ("network_errors", "loss", 4),
    ("disk", "disk-sat", 4),
    ("db_slow_query", "slow-query", 3),
    ("db_slow_query", "lock", 1.5),
    ("db_pool_exhausted", "pool-leak", 3),
    ("db_pool_exhausted", "pool-shrink", 1.5),
    ("dependency_down", "down", 2.5),
    ("dependency_down", "crashloop", 2),
    ("cache", "flush", 2),
    ("cache", "evict", 1.5),
    ("cache", "cache-down", 1.5),
    ("bad_deploy", "deploy-errors", 3),
    ("bad_deploy", "deploy-latency", 2),
    ("bad_deploy", "deploy-cpu", 1.5),
    ("bad_deploy", "deploy-pair", 1),
]


def critical_reach(nodes, edges) -> set[int]:
    """Nodes whose failure reaches the entry through critical calls (or db behind a cache)."""
    seen = {0}
    stack = [0]
    while stack:
        i = stack.pop()
        for k in nodes[i].out:
            e = edges[k]
            if (e.critical or e.kind == "db") and e.dst not in seen:
                seen.add(e.dst)
                stack.append(e.dst)
    return seen


def pick_scenarios(rng, n_cases):
    w = np.array([s[2] for s in SCENARIOS], float)
    counts = np.floor(w / w.sum() * n_cases).astype(int)
    while counts.sum() < n_cases:
        k = int(rng.choice(len(SCENARIOS), p=w / w.sum()))
        counts[k] += 1
    items = [SCENARIOS[k][:2] for k in range(len(SCENARIOS)) for _ in range(counts[k])]
    rng.shuffle(items)
    return items


def make_fault(rng, fault, variant, nodes, edges, t_inj, sev_scale):
    """The fault(s) of a scenario; returns (faults, root node indexes)."""
    crit = critical_reach(nodes, edges)
    svcs = sorted(i for i in crit if nodes[i].kind == "service" and i != 0)
    if len(svcs) < 2:
        svcs = [i for i, n in enumerate(nodes) if n.kind == "service" and i != 0]
    svcs_entry_ok = svcs + ([0] if rng.random() < 0.08 else [])
    dbs = sorted(i for i in crit if nodes[i].kind == "database") or [
        i for i, n in enumerate(nodes) if n.kind == "database"
    ]
    caches = [
        i for i, n in enumerate(nodes) if n.kind == "cache" and any(e.cache == i and e.src in crit for e in edges)
    ]
    pooled = [i for i in svcs if nodes[i].pool]
    abrupt = rng.random() < 0.7
    onset = 0.0 if abrupt else float(rng.uniform(90, 600))

    def choose(c):
        return int(rng.choice(c))

    s = sev_scale
    if fault == "cpu":
        if variant == "hog-pair":
            a, b = rng.choice(svcs, size=2, replace=False) if len(svcs) >= 2 else (svcs[0], svcs[0])
            sev = float(min(0.97, rng.uniform(0.55, 0.85) * s))
            return [
                Fault("cpu", "hog", int(a), t_inj, sev, onset),
                Fault("cpu", "hog", int(b), t_inj + rng.uniform(0, 20), sev * rng.uniform(0.6, 0.95), onset),
            ], [int(a), int(b)]
        i = choose(svcs_entry_ok)
        sev = float(min(0.97, rng.uniform(0.45, 0.8) * s))
        return [Fault("cpu", variant, i, t_inj, sev, onset)], [i]
    if fault == "memory":
        i = choose(svcs)
        n = nodes[i]
        # a leak that fills the headroom in 4-15 minutes
        fill = rng.uniform(240, 900) / s
        rate = (n.heap_max - n.live0) / fill
        return [Fault("memory", "leak", i, t_inj, 1.0, 0.0, {"rate": rate})], [i]
    if fault == "latency":
        if variant == "lock":
            i = choose(svcs)
            return [Fault("latency", "lock", i, t_inj, float(min(0.95, rng.uniform(0.4, 0.75) * s)), onset)], [i]
        i = choose(svcs)
        ms = float(rng.uniform(80, 600))
        return [Fault("latency", variant, i, t_inj, float(s), onset, {"ms": ms})], [i]
    if fault == "network_errors":
        i = choose(svcs + dbs)
        return [Fault("network_errors", "loss", i, t_inj, float(s), onset, {"loss": rng.uniform(0.03, 0.15)})], [i]
    if fault == "disk":
        i = choose(dbs)
        return [Fault("disk", "disk-sat", i, t_inj, float(s), onset, {"io": rng.uniform(0.6, 0.9)})], [i]
    if fault == "db_slow_query":
        i = choose(dbs)
        if variant == "lock":
            return [Fault("db_slow_query", "lock", i, t_inj, float(min(0.95, rng.uniform(0.5, 0.85) * s)), onset)], [i]
        return [Fault("db_slow_query", "slow-query", i, t_inj, float(s), onset, {"x": rng.uniform(2, 8)})], [i]
    if fault == "db_pool_exhausted":
        i = choose(pooled) if pooled else choose(svcs)
        if not nodes[i].pool:
            nodes[i].pool = 10
        if variant == "pool-leak":
            return [
                Fault(
                    "db_pool_exhausted", "pool-leak", i, t_inj, float(min(1.0, 0.9 * s)), float(rng.uniform(120, 600))
                )
            ], [i]
        return [
            Fault("db_pool_exhausted", "pool-shrink", i, t_inj, float(s), 0.0, {"shrink": rng.uniform(0.7, 0.92)})
        ], [i]
    if fault == "dependency_down":
        i = choose(svcs + dbs)
        return [Fault("dependency_down", variant, i, t_inj, 1.0, 0.0, {"fast": bool(rng.random() < 0.7)})], [i]
    if fault == "cache":
        if not caches:
            return None, None  # this system has no cache in front of a database: draw another
        i = choose(caches)
        if variant == "evict":
            return [Fault("cache", "evict", i, t_inj, float(s), onset, {"drop": rng.uniform(0.5, 0.9)})], [i]
        return [Fault("cache", variant, i, t_inj, 1.0, 0.0)], [i]
    if fault == "bad_deploy":
        if variant == "deploy-pair":
            a, b = rng.choice(svcs, size=2, replace=False) if len(svcs) >= 2 else (svcs[0], svcs[0])
            return [
                Fault("bad_deploy", "deploy-errors", int(a), t_inj, float(min(0.9, rng.uniform(0.05, 0.4) * s))),
                Fault(
                    "bad_deploy",
                    "deploy-errors",
                    int(b),
                    t_inj + rng.uniform(5, 60),
                    float(min(0.9, rng.uniform(0.03, 0.2) * s)),
                ),
            ], [int(a), int(b)]
        i = choose(svcs_entry_ok)
        if variant == "deploy-errors":
            return [Fault("bad_deploy", variant, i, t_inj, float(min(0.6, rng.uniform(0.04, 0.35) * s)))], [i]
        if variant == "deploy-latency":
            if not any(edges[k].kind == "db" for k in nodes[i].out):
                return [Fault("bad_deploy", "deploy-cpu", i, t_inj, float(rng.uniform(0.6, 1.5) * s))], [i]
            return [Fault("bad_deploy", variant, i, t_inj, float(s), 0.0, {"nplus1": rng.uniform(3, 10) * s})], [i]
        return [Fault("bad_deploy", variant, i, t_inj, float(rng.uniform(0.5, 1.2) * s))], [i]
    raise ValueError(fault)


def make_background(rng, nodes, edges, roots, t_inj, T, hard_distractor):
    """Benign things that happen in real systems, and optionally a loud unrelated degradation."""
    bg = []
    notes = []
    svc = [i for i, n in enumerate(nodes) if n.kind == "service" and i not in roots]
    dbs = [i for i, n in enumerate(nodes) if n.kind == "database" and i not in roots]
    for i in svc:
        if rng.random() < 0.07:
            bg.append(
                Fault(
                    "-",
                    "cron",
                    i,
                    0,
                    0,
                    0,
                    {
                        "period": int(rng.choice([300, 600, 900])),
                        "dur": int(rng.uniform(20, 90)),
                        "amp": float(nodes[i].cores * nodes[i].replicas * rng.uniform(0.1, 0.3)),
                        "phase": int(rng.integers(0, 900)),
                    },
                )
            )
            notes.append(f"cron:{nodes[i].name}")
    if svc and rng.random() < 0.35:
        i = int(rng.choice(svc))
        bg.append(Fault("-", "deploy-benign", i, float(rng.uniform(90, t_inj + 600)), 0.0))
        notes.append(f"benign-deploy:{nodes[i].name}")
    if dbs and rng.random() < 0.2:
        i = int(rng.choice(dbs))
        t0 = float(rng.uniform(30, t_inj))
        bg.append(Fault("-", "batch-db", i, t0, float(rng.uniform(0.2, 0.45)), 30.0))
        bg[-1].extra["end"] = t0 + rng.uniform(120, 400)
        notes.append(f"db-batch:{nodes[i].name}")
    if hard_distractor:
        # an unrelated service degrades loudly near the fault but is masked (soft dependency,
        # off the critical path) or is just a noisy benign event
        soft_targets = [
            e.dst
            for e in edges
            if e.kind == "rpc" and not e.critical and e.dst not in roots and nodes[e.dst].kind == "service"
        ]
        t0 = t_inj + float(rng.uniform(-240, 120))
        choice = rng.random()
        if soft_targets and choice < 0.5:
            i = int(rng.choice(soft_targets))
            bg.append(
                Fault("-", "soft-slow", i, t0, 1.0, float(rng.uniform(0, 60)), {"ms": float(rng.uniform(300, 3000))})
            )
            notes.append(f"distractor-soft-slow:{nodes[i].name}")
        elif svc:
            i = int(rng.choice(svc))
            bg.append(Fault("-", "hog", i, t0, float(np.clip(0.75 - 1.4 * nodes[i].util, 0.15, 0.45)), 20.0))
            bg[-1].extra["end"] = t0 + rng.uniform(120, 600)
            notes.append(f"distractor-cpu:{nodes[i].name}")
    return bg, notes
