"""What the dynamics read and write: the knobs faults turn, and the state each second.

Arrays are ``(components, T)`` or ``(edges, T)``: one column per second of the window (or per
block of seconds in the coarse passes).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from models.domain._types import ServiceKind
from models.generators._queueing_system import System

#: Error causes a component's failed requests are split into.
CAUSES = ("internal", "rejected", "timeout", "connection", "pool", "disk", "upstream")
#: Time to fail an attempt at a component that refuses connections (s).
REFUSED_SECONDS = 0.001
#: Packets of one call (handshake, request, response, acks) exposed to loss.
PACKETS_PER_CALL = 8
#: Linux's minimum retransmission timeout and the initial SYN timeout (s).
RTO_MIN, SYN_RTO = 0.2, 1.0
#: Round trip inside a cluster, connection reuse and serialisation included (s).
NETWORK_RTT = 0.0004
#: Share of a component's requests that write (the ones a full disk fails).
WRITE_SHARE = 0.3


@dataclass
class Knobs:
    """Time-varying parameters, ``(components, T)`` or ``(edges, T)``; faults and confounders turn them."""

    ext: np.ndarray  # external requests/s (entry services, batch jobs)
    up: np.ndarray  # fraction of replicas serving
    down_refuses: np.ndarray  # per component: when down, connections are refused (else they hang)
    cpu_cap: np.ndarray  # multiplier on the CPU limit (throttling, a noisy neighbour)
    hog: np.ndarray  # cores burnt inside the container by something else
    cpu_mult: np.ndarray  # multiplier on CPU time per request
    io_add: np.ndarray  # seconds added to each request's own time (a lock, a slow call, fsync)
    io_mult: np.ndarray  # multiplier on I/O time (a slow or saturated disk)
    gc_frac: np.ndarray  # share of wall time in stop-the-world pauses
    gc_pause: np.ndarray  # typical pause (s)
    err: np.ndarray  # probability a request fails inside the component
    write_err: np.ndarray  # probability a write fails (disk full)
    loss: np.ndarray  # packet loss on the component's network
    hit: np.ndarray  # caches: hit ratio
    edge_mult: np.ndarray  # per edge: multiplier on the callee's work for this endpoint/query class
    edge_wait: np.ndarray  # per edge: seconds waited at the callee (row locks) for this class
    edge_calls: np.ndarray  # per edge: multiplier on calls per request (an N+1 query bug)
    edge_err: np.ndarray  # per edge: extra failure probability of an attempt (a wrong address)
    db_slots: np.ndarray  # databases: connection slots the pools may hold (max minus leaked sessions)

    def copy(self) -> Knobs:
        return Knobs(**{name: getattr(self, name).copy() for name in self.__dataclass_fields__})

    def blocks(self, size: int) -> Knobs:
        """The knobs averaged over blocks of ``size`` seconds (for the coarse passes)."""
        values = {name: getattr(self, name) for name in self.__dataclass_fields__}
        return Knobs(**{k: v if v.ndim == 1 else block_mean(v, size) for k, v in values.items()})

    @classmethod
    def baseline(cls, system: System, steps: int) -> Knobs:
        n, e = len(system.components), len(system.edges)
        ones, zeros = np.ones((n, steps)), np.zeros((n, steps))
        hit = zeros.copy()
        slots = zeros.copy()
        for i, c in enumerate(system.components):
            hit[i] = c.hit_ratio
            if c.kind == ServiceKind.DATABASE:
                slots[i] = c.max_connections - 3  # replication and monitoring sessions
        return cls(
            ext=zeros.copy(), up=ones.copy(), down_refuses=np.ones(n, dtype=bool), cpu_cap=ones.copy(),
            hog=zeros.copy(), cpu_mult=ones.copy(), io_add=zeros.copy(), io_mult=ones.copy(), gc_frac=zeros.copy(),
            gc_pause=np.full((n, steps), 0.02), err=zeros.copy(), write_err=zeros.copy(), loss=zeros.copy(),
            hit=hit, edge_mult=np.ones((e, steps)), edge_wait=np.zeros((e, steps)), edge_calls=np.ones((e, steps)),
            edge_err=np.zeros((e, steps)), db_slots=slots,
        )  # fmt: skip


@dataclass
class State:
    """What the system did each second (arrays ``(components, T)`` / ``(edges, T)``)."""

    arrivals: np.ndarray  # requests/s reaching the component, retries included
    served: np.ndarray
    err: np.ndarray  # share of arrivals that failed
    causes: dict[str, np.ndarray]  # share of arrivals failed by each cause
    resp: np.ndarray  # mean response time of served requests (s)
    scv: np.ndarray  # its squared coefficient of variation
    own: np.ndarray  # own service time (s), CPU stretch and pauses included
    wait: np.ndarray  # mean queueing delay: worker wait plus backlog
    p_wait: np.ndarray  # share of requests that queue at all
    backlog_delay: np.ndarray
    common: np.ndarray  # what every endpoint pays on top of its own work: queueing, downstream, pauses
    cpu_stretch: np.ndarray
    io_stretch: np.ndarray
    cpu_used: np.ndarray  # cores
    cpu_limit: np.ndarray  # cores the component may use
    busy: np.ndarray  # busy workers (Little's law), or in-flight requests
    edge_rate: np.ndarray  # attempts/s along each edge
    edge_timeouts: np.ndarray  # share of attempts cut off by the timeout
    edge_fail: np.ndarray  # share of calls failed after retries (pool failures included)
    edge_time: np.ndarray  # mean time a call costs the caller (retries and pool wait included)
    edge_attempt: np.ndarray  # mean callee-side response for this endpoint (s)
    pool_size: np.ndarray  # connections the pool may hold
    pool_in_use: np.ndarray
    pool_wait: np.ndarray
    pool_p_wait: np.ndarray
    pool_fail: np.ndarray
    retransmit_share: np.ndarray  # per edge: share of calls that lost a packet
    extras: dict[str, np.ndarray] = field(default_factory=dict)


def block_mean(values: np.ndarray, size: int) -> np.ndarray:
    steps = values.shape[1]
    if steps % size:
        values = np.concatenate([values, np.repeat(values[:, -1:], size - steps % size, axis=1)], axis=1)
    return values.reshape(values.shape[0], -1, size).mean(axis=2)
