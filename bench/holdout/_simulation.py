"""The judge's per-second fluid simulation: load, queueing, retries, timeouts, circuit breakers,
pools, caches, GC and restarts, with faults acting on it (see ``generate``)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from bench.holdout._system import phi

# ------------------------------------------------------------------------------------ faults


@dataclass
class Fault:
    fault: str  # project fault name (truth)
    variant: str
    target: int
    start: float  # seconds from simulation start
    sev: float
    onset: float = 0.0  # ramp seconds (0 = abrupt)
    extra: dict = field(default_factory=dict)

    def level(self, t: float) -> float:
        if t < self.start:
            return 0.0
        if self.onset <= 0:
            return 1.0
        return min(1.0, (t - self.start) / self.onset)


class Effects:
    """Per-node knobs for one second of simulation."""

    def __init__(self, n: int) -> None:
        self.hog = np.zeros(n)  # cores burnt inside the container
        self.steal = np.zeros(n)  # capacity lost to a noisy neighbour (not in the container's cpu)
        self.cost_mult = np.ones(n)
        self.lat_add = np.zeros(n)  # ms added to own processing
        self.lat_mult = np.ones(n)
        self.net_delay = np.zeros(n)  # ms on every packet in/out
        self.loss = np.zeros(n)
        self.err_add = np.zeros(n)
        self.down = np.zeros(n, bool)
        self.down_fast = np.ones(n, bool)  # connection refused (fast) vs dropped (connect timeout)
        self.lock = np.zeros(n)  # share of capacity lost to lock contention
        self.io_ext = np.zeros(n)  # extra disk utilisation
        self.hit_mult = np.ones(n)  # caches
        self.pool_leak = np.zeros(n)  # connections leaked per replica
        self.fanout_mult = np.ones(n)  # multiplies this node's calls to databases (N+1 queries)
        self.cpu_jitter = np.zeros(n)

    def freeze(self) -> None:
        for k, v in list(vars(self).items()):
            setattr(self, k, v.tolist())


# -------------------------------------------------------------------------------- simulation


def load_curve(rng: np.random.Generator, T: int, t0_epoch: float, rps0: float) -> tuple[np.ndarray, list]:
    t = np.arange(T)
    tod = ((t0_epoch + t) % 86400) / 3600.0
    diurnal = 0.35 + 0.65 * (0.5 - 0.5 * np.cos(2 * np.pi * (tod - 4.0) / 24.0)) ** 1.3
    ar = np.zeros(T)
    eps = rng.normal(0, 0.012, T)
    for k in range(1, T):
        ar[k] = 0.985 * ar[k - 1] + eps[k]
    bursts = np.zeros(T)
    events = []
    n_b = rng.poisson(T / 1500.0)
    for _ in range(n_b):
        b0 = rng.uniform(0, T)
        amp = rng.uniform(0.15, 0.7)
        rise = rng.uniform(10, 90)
        decay = rng.uniform(60, 400)
        x = t - b0
        shape = np.where(x < 0, 0.0, np.where(x < rise, x / rise, np.exp(-(x - rise) / decay)))
        bursts += amp * shape
        events.append(("burst", float(b0), float(amp)))
    spikes = (rng.random(T) < 0.002) * rng.uniform(0.05, 0.3, T)
    lam = rps0 * diurnal / diurnal.mean() * np.exp(ar) * (1 + bursts + spikes)
    return lam, events


class Sim:
    METRICS = (
        "rps",
        "err",
        "p50",
        "p99",
        "cpu",
        "mem",
        "conns",
        "gc",
        "retrans",
        "pool_active",
        "pool_pending",
        "disk_util",
        "disk_read",
        "hit",
        "evict",
        "locks",
        "up",
        "restart",
        "net_tx",
        "ready",
    )

    def __init__(self, rng, nodes, edges, order, load, faults, background):
        self.rng, self.nodes, self.edges, self.order = rng, nodes, edges, order
        self.load, self.faults, self.background = load, faults, background
        self.N, self.T = len(nodes), len(load)

    def run(self) -> dict:
        rng, nodes, edges, N, T = self.rng, self.nodes, self.edges, self.N, self.T
        out = {m: np.zeros((T, N)) for m in self.METRICS}
        cause = np.empty((T, N), dtype=object)
        R = [n.replicas for n in nodes]
        # per-replica state
        live = [np.full(n.replicas, n.live0) * rng.uniform(0.95, 1.05, n.replicas) for n in nodes]
        restart_until = [np.full(n.replicas, -1.0) for n in nodes]
        warm_until = [np.full(n.replicas, -1.0) for n in nodes]
        new_version = [np.zeros(n.replicas, bool) for n in nodes]
        leak_rate = [np.zeros(n.replicas) for n in nodes]
        leak_start = [math.inf] * N
        self.dirty = [1.0] * N  # replica state may change until then
        callers_of = [[e.src for e in edges if e.dst == i] for i in range(N)]
        caller_reps = [float(sum(nodes[j].replicas for j in callers_of[i])) for i in range(N)]
        Q = [0.0] * N
        p50 = [n.s50 for n in nodes]
        p99 = [n.s50 * n.tail for n in nodes]
        err = [0.0] * N
        fail_edge = [0.0] * len(edges)
        breaker_open = [0.0] * len(edges)
        pool_fail = [0.0] * N
        reject = [0.0] * N
        hit_state = [n.hit0 if n.kind == "cache" else 0.0 for n in nodes]
        cache_fill = [1.0] * N  # fraction of the working set cached
        crash_sched = {}
        flushes = {}
        for f in self.faults + self.background:
            if f.variant in ("leak",):
                leak_rate[f.target][:] = f.extra["rate"] * rng.uniform(0.8, 1.2, R[f.target])
                leak_start[f.target] = f.start
            if f.fault == "dependency_down" and f.variant == "crashloop":
                # down windows with a growing back-off, short up windows in between
                windows, t = [], f.start
                back = rng.uniform(10, 25)
                while t < T:
                    windows.append((t, t + back))
                    t += back + rng.uniform(8, 20)
                    back = min(back * 2, 300)
                crash_sched[f.target] = windows
            if f.fault == "cache" and f.variant == "flush":
                flushes[int(f.start)] = f.target
        deploys = [f for f in self.faults + self.background if f.variant.startswith("deploy")]
        for f in deploys:
            f.extra["order"] = list(rng.permutation(R[f.target]))
            f.extra["step"] = float(rng.uniform(15, 45))
        cron = self.background_cron()
        # cached replica-level aggregates: up, warm, new, gc, memory without the concurrency term
        agg = [None] * N

        def refresh(i: int, t: int) -> None:
            n = nodes[i]
            alive = restart_until[i] < t
            up_i = float(alive.sum())
            warm_i = float(((warm_until[i] >= t) & alive).sum())
            new_i = float((new_version[i] & alive).sum())
            gc_i, mem_i = 0.0, 0.0
            if n.kind == "service":
                frac = live[i] / n.heap_max
                if n.lang == "jvm":
                    g = 0.01 * (1.0 / np.maximum(0.04, 1 - frac)) ** 1.6
                else:
                    g = 0.004 * (1.0 / np.maximum(0.1, 1 - frac))
                gc_i = float(min(0.6, g[alive].mean())) if up_i else 0.0
                warm_mem = np.where(warm_until[i] >= t, 0.6, 1.0)[alive]
                if n.lang == "jvm":
                    heap = np.maximum(n.heap_max * 0.6, live[i][alive] * 1.25)
                    mem_i = float((n.mem_base + np.minimum(heap, n.heap_max) * warm_mem).sum())
                else:
                    mem_i = float((live[i][alive] * warm_mem).sum())
            agg[i] = (up_i, warm_i, new_i, gc_i, mem_i)

        for t in range(T):
            ef = Effects(N)
            self.apply(ef, t, crash_sched, deploys, restart_until, warm_until, new_version)
            for i, (period, dur, amp, phase) in cron.items():
                if (t + phase) % period < dur:
                    ef.hog[i] += amp
            ef.freeze()
            row = {m: [0.0] * N for m in self.METRICS}
            crow = [None] * N
            # ---- memory / GC / replicas
            for i, n in enumerate(nodes):
                leaking = t >= leak_start[i]
                if leaking:
                    live[i] += leak_rate[i] * (restart_until[i] < t)
                    frac = live[i] / n.heap_max
                    oom = (restart_until[i] < t) & (frac >= 0.985)
                    for r in np.flatnonzero(oom):
                        restart_until[i][r] = t + rng.uniform(15, 45)
                        warm_until[i][r] = restart_until[i][r] + rng.uniform(30, 90)
                        self.dirty[i] = max(self.dirty[i], warm_until[i][r] + 1)
                        live[i][r] = n.live0 * rng.uniform(0.95, 1.05)
                        row["restart"][i] += 1
                        crow[i] = "oom"
                if leaking or t <= self.dirty[i] or agg[i] is None:
                    refresh(i, t)
            up = [a[0] for a in agg]
            warm = [a[1] for a in agg]
            gc = [a[3] for a in agg]
            upf = [up[i] / R[i] for i in range(N)]
            # ---- arrival rates, callers first
            lam = [0.0] * N
            lam[0] = float(self.load[t])
            miss = [0.0] * N
            for i, n in enumerate(nodes):
                if n.kind == "cache":
                    target = n.hit0 * ef.hit_mult[i] * cache_fill[i]
                    hit_state[i] += (target - hit_state[i]) * 0.2
                    miss[i] = 1 - hit_state[i]
                    if ef.down[i] or up[i] == 0:
                        miss[i] = 1.0
            for i in self.order:
                served = lam[i] * (1 - reject[i])
                if ef.down[i] or up[i] == 0:
                    served = 0.0
                for k in nodes[i].out:
                    e = edges[k]
                    p = e.p
                    if e.kind == "db":
                        p *= ef.fanout_mult[i]
                        if e.cache >= 0:
                            p = p * miss[e.cache] + e.p_write
                        p *= 1 - pool_fail[i]
                    f = fail_edge[k]
                    attempts = 1 + min(e.budget, sum(f**r for r in range(1, e.retries + 1)))
                    if breaker_open[k] > 0.5:
                        attempts = 0.05
                    lam[e.dst] += served * p * attempts
            # ---- latency and errors, callees first
            pool_active = [0.0] * N
            pool_pending = [0.0] * N
            conns_db = [0.0] * N
            retrans = [0.0] * N
            for i in reversed(self.order):
                n = nodes[i]
                if up[i] == 0 or ef.down[i]:
                    err[i] = 1.0
                    p50[i] = p99[i] = 0.5 if ef.down_fast[i] or up[i] == 0 else 3000.0
                    Q[i] = 0.0
                    reject[i] = 1.0
                    crow[i] = crow[i] or "down"
                    continue
                warm_mult = 1 + 1.5 * warm[i] / max(up[i], 1)
                cost = n.cost * (1 + gc[i] * 1.5) * ef.cost_mult[i] * warm_mult
                cores_av = max(0.02, up[i] * n.cores - ef.hog[i] - ef.steal[i])
                mu = cores_av / cost * (1 - ef.lock[i])
                Q[i] = min(max(0.0, Q[i] + lam[i] - mu), mu * n.qmax_s + 1)
                reject[i] = max(0.0, (lam[i] - mu) / lam[i]) if (Q[i] >= mu * n.qmax_s and lam[i] > 0) else 0.0
                rho = min(lam[i] / mu, 0.985) if mu > 0 else 0.985
                c = max(1.0, up[i] * n.cores * 2)
                own = n.s50 * ef.lat_mult[i] * (1 + 0.6 * warm[i] / max(up[i], 1))
                if n.kind == "database":
                    io = min(0.985, n.io_cost * lam[i] + ef.io_ext[i] + 0.03 * math.sin(t / 97.0) ** 8)
                    row["disk_util"][i] = io
                    row["disk_read"][i] = lam[i] * 8192 * (0.3 + 2 * (ef.cost_mult[i] - 1)) + ef.io_ext[i] * 2.5e8
                    own *= 1 + n.io_frac * (io / (1 - io)) * 0.7
                wait = own * rho ** (math.sqrt(2 * (c + 1)) - 1) / (c * (1 - rho))
                if ef.lock[i] > 0:
                    wait += own * 4 * ef.lock[i] / max(0.05, 1 - rho)
                qwait = 1000.0 * Q[i] / max(mu, 1e-3)
                gcp = gc[i] * 400.0 if n.lang == "jvm" else gc[i] * 60
                o50 = own + ef.lat_add[i] + wait + qwait
                o99 = own * n.tail + ef.lat_add[i] * 2.0 + wait * 3 + qwait * 1.2 + gcp
                c50, cvar = [], []
                succ = 1.0
                worst, worst_name = 0.0, None
                pool_wait, pf = 0.0, 0.0
                db_conc = 0.0
                for k in n.out:
                    e = edges[k]
                    d = e.dst
                    p = e.p
                    if e.kind == "db":
                        p *= ef.fanout_mult[i]
                        if e.cache >= 0:
                            p = p * miss[e.cache] + e.p_write
                    delay = ef.net_delay[i] + ef.net_delay[d]
                    loss = 1 - (1 - ef.loss[i]) * (1 - ef.loss[d])
                    l50 = p50[d] + delay + 1000 * loss * 0.3
                    l99 = max(p99[d] + delay * 1.5 + (1000 * min(1, loss * 30)), l50 * 1.01)
                    T_ = e.timeout
                    if err[d] >= 0.999 and p50[d] < 1:  # refused
                        f = 1.0
                        l50 = l99 = 1.0 + delay
                    else:
                        sig = max(0.05, math.log(l99 / max(l50, 1e-3)) / 2.326)
                        ptime = 1 - phi((math.log(T_) - math.log(max(l50, 1e-3))) / sig)
                        f = 1 - (1 - err[d]) * (1 - ptime) * (1 - min(0.9, loss * 3))
                    fail_edge[k] = f
                    if e.breaker:
                        breaker_open[k] = 1.0 if f > 0.5 else (0.0 if f < 0.2 else breaker_open[k])
                    extra = sum(f**r for r in range(1, e.retries + 1))
                    attempts = 1 + min(e.budget, extra)
                    ff = f ** (1 + (e.retries * min(1.0, e.budget / extra) if extra > 0 else 0))
                    if breaker_open[k] > 0.5:
                        ff, attempts, l50c, l99c = 1.0, 0.0, 0.2, 0.5
                    else:
                        l50c, l99c = min(l50, T_) * attempts, min(l99, T_) * attempts
                    if e.kind == "db" and n.pool:
                        rate = lam[i] * (1 - reject[i]) * p
                        db_conc += rate * min(l50 * 1.4, T_) / 1000.0
                    c50.append(min(p, 1.5) * l50c)
                    cvar.append((min(p, 1.5) * max(0.0, l99c - l50c)) ** 2)
                    if e.critical:
                        contrib = 1 - (1 - ff) ** p
                        succ *= 1 - contrib
                        if contrib > worst:
                            worst, worst_name = contrib, (nodes[d].name, "timeout" if ff > err[d] + 1e-9 else "5xx")
                    retrans[d] += lam[i] * p * (loss * 8 + 0.0005) * attempts
                if n.parallel and c50:
                    d50 = max(c50) + 0.15 * (sum(c50) - max(c50))
                    dvar = max(cvar) + 0.15 * (sum(cvar) - max(cvar))
                else:
                    d50, dvar = sum(c50), sum(cvar)
                if n.pool:
                    cap = max(1.0, (n.pool - ef.pool_leak[i]) * up[i])
                    u = db_conc / cap
                    pool_active[i] = min(db_conc, cap) + ef.pool_leak[i] * up[i]
                    if u > 0.75:
                        pool_wait = 5.0 * (min(u, 0.999) - 0.75) / max(0.001, 1 - min(u, 0.999)) * 4
                    if u >= 1:
                        pf = min(0.98, 1 - 1 / u)
                        pool_wait += 1000.0 * pf * 3  # acquire timeout ~3 s for those
                        pool_pending[i] = (u - 1) * cap
                    pool_fail[i] = pf
                    conns_db[i] = max(cap * 0.4, pool_active[i])
                p50[i] = o50 + d50 + min(pool_wait, 3000)
                p99[i] = p50[i] + math.sqrt((o99 - o50) ** 2 + dvar) + (3000 * (pf > 0.01))
                if n.kind == "service" and n.lang == "jvm":
                    p99[i] += gcp
                own_err = n.base_err + ef.err_add[i]
                err[i] = 1 - (1 - min(own_err, 1)) * (1 - reject[i]) * succ * (1 - pf)
                if row["restart"][i] > 0:  # restarts kill in-flight requests
                    err[i] = min(1.0, err[i] + 0.3 / R[i])
                parts = {"own": own_err, "reject": reject[i], "pool": pf, "dep": 1 - succ}
                top = max(parts, key=parts.get)
                if crow[i] is None and parts[top] > 0.01:
                    crow[i] = {
                        "own": "own",
                        "reject": "overload",
                        "pool": "pool",
                        "dep": f"dep:{worst_name[0]}:{worst_name[1]}" if worst_name else "dep",
                    }[top]
            # ---- resource and other metrics
            for i, n in enumerate(nodes):
                if up[i] == 0 or ef.down[i]:
                    row["err"][i] = 1.0
                    row["p50"][i] = p50[i]
                    row["p99"][i] = p99[i]
                    continue
                row["up"][i] = upf[i]
                row["ready"][i] = up[i]
                served = lam[i] * (1 - reject[i])
                busy_cost = n.cost * (1 + gc[i] * 1.5) * ef.cost_mult[i] * (1 + 1.5 * warm[i] / max(up[i], 1))
                cpu = min(up[i] * n.cores, served * busy_cost + ef.hog[i] + 0.02 * up[i] * n.cores)
                if ef.lock[i] > 0 and n.kind == "database":
                    cpu *= 1 - 0.4 * ef.lock[i]
                row["cpu"][i] = cpu
                row["rps"][i] = lam[i]
                row["err"][i] = err[i]
                row["p50"][i] = p50[i]
                row["p99"][i] = p99[i]
                row["gc"][i] = gc[i]
                conc = lam[i] * p50[i] / 1000.0
                if n.kind == "service":
                    row["mem"][i] = agg[i][4] + (conc * 2e5 if n.lang != "jvm" else 0.0)
                    row["conns"][i] = conc + 4 * caller_reps[i]
                    row["pool_active"][i] = pool_active[i]
                    row["pool_pending"][i] = pool_pending[i]
                elif n.kind == "database":
                    row["mem"][i] = n.mem_base * (0.97 + 0.01 * math.sin(t / 300.0))
                    row["conns"][i] = sum(conns_db[j] for j in callers_of[i]) + 3 + conc * 0.2
                    row["locks"][i] = ef.lock[i] * conc * 2 + conc * 0.01
                else:
                    cache_fill[i] += (1.0 - cache_fill[i]) * 0.004
                    row["mem"][i] = n.mem_base * (0.3 + 0.7 * cache_fill[i])
                    row["hit"][i] = hit_state[i]
                    row["evict"][i] = lam[i] * miss[i] * 0.05 * (1 + 20 * (1 - ef.hit_mult[i]))
                    row["conns"][i] = 5 + 8 * caller_reps[i]
                row["retrans"][i] = retrans[i] + lam[i] * (ef.loss[i] * 8) + 0.01
                row["net_tx"][i] = lam[i] * (2000 + 6000 * (n.kind != "cache"))
            if t in flushes:  # a flushed cache starts cold and warms up over minutes
                cache_fill[flushes[t]] = 0.02
                hit_state[flushes[t]] = 0.05
            for m in self.METRICS:
                out[m][t] = row[m]
            cause[t] = crow
        out["_cause"] = cause
        return out

    def background_cron(self) -> dict:
        cron = {}
        for f in self.background:
            if f.variant == "cron":
                cron[f.target] = (f.extra["period"], f.extra["dur"], f.extra["amp"], f.extra["phase"])
        return cron

    def apply(self, ef: Effects, t: int, crash_sched, deploys, restart_until, warm_until, new_version) -> None:
        nodes, rng = self.nodes, self.rng
        for f in self.faults + self.background:
            i = f.target
            a = f.level(t)
            if f.variant.startswith("deploy"):
                # rolling update: one replica at a time, surge pod comes up then old one is killed
                k = int((t - f.start) // f.extra["step"]) if t >= f.start else -1
                for j, r in enumerate(f.extra["order"]):
                    if j <= k and not new_version[i][r]:
                        new_version[i][r] = True
                        restart_until[i][r] = t + rng.uniform(3, 10)
                        warm_until[i][r] = restart_until[i][r] + rng.uniform(40, 120)
                        self.dirty[i] = max(self.dirty[i], warm_until[i][r] + 1)
                        self._restarts.append((t, i))
                if a <= 0:
                    continue
                frac = new_version[i].mean()
                v = f.variant
                if v == "deploy-errors":
                    ef.err_add[i] += f.sev * frac
                elif v == "deploy-latency":
                    ef.fanout_mult[i] *= 1 + (f.extra["nplus1"] - 1) * frac
                    ef.lat_add[i] += f.sev * 30 * frac
                elif v == "deploy-cpu":
                    ef.cost_mult[i] *= 1 + f.sev * 1.5 * frac
                continue
            if a <= 0:
                continue
            v = f.variant
            cores = nodes[i].cores * nodes[i].replicas
            if v == "hog":
                ef.hog[i] += a * f.sev * cores
            elif v == "steal":
                ef.steal[i] += a * f.sev * cores
            elif v == "cron":
                pass
            elif v == "leak":
                pass  # handled through leak_rate
            elif v in ("net-delay",):
                ef.net_delay[i] += a * f.sev * f.extra["ms"]
            elif v == "slow-internal":
                ef.lat_add[i] += a * f.sev * f.extra["ms"]
            elif v == "soft-slow":
                ef.lat_add[i] += a * f.extra["ms"]
            elif v == "lock":
                ef.lock[i] += a * min(0.95, f.sev)
            elif v == "loss":
                ef.loss[i] += a * min(0.5, f.sev * f.extra["loss"])
            elif v == "disk-sat":
                ef.io_ext[i] += a * min(0.97, f.sev * f.extra["io"])
            elif v == "slow-query":
                ef.cost_mult[i] *= 1 + a * f.sev * f.extra["x"]
                ef.lat_mult[i] *= 1 + a * f.sev * f.extra["x"] * 0.8
            elif v == "pool-leak":
                ef.pool_leak[i] += min(nodes[i].pool * 0.97, a * f.sev * nodes[i].pool)
            elif v == "pool-shrink":
                ef.pool_leak[i] += nodes[i].pool * min(0.97, f.sev * f.extra["shrink"])
            elif v in ("down",):
                ef.down[i] = True
                ef.down_fast[i] = f.extra.get("fast", True)
            elif v == "crashloop":
                if any(s <= t < e for s, e in crash_sched.get(i, [])):
                    ef.down[i] = True
            elif v == "evict":
                ef.hit_mult[i] *= 1 - a * min(0.98, f.sev * f.extra["drop"])
            elif v == "flush":
                pass
            elif v == "cache-down":
                ef.down[i] = True
            elif v == "batch-db":
                ef.io_ext[i] += a * f.sev
                ef.cost_mult[i] *= 1 + 0.3 * a
