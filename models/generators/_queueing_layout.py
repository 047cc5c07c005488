"""The system as arrays for the vectorised passes: parameters per component and per edge, the
levels the passes walk (callers first for traffic, callees first for delay), and sums of edge
rows per component."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.domain._types import ServiceKind
from models.generators._queueing_math import UNLIMITED
from models.generators._queueing_system import System


@dataclass(frozen=True)
class Groups:
    """Sums of edge rows per component without BLAS (tiny matrix products are erratic when its
    threads compete for two cores): rows sorted by component, ``np.add.reduceat`` per segment."""

    order: np.ndarray  # edge rows in component order
    starts: np.ndarray  # first row of each non-empty segment
    targets: np.ndarray  # the component (row of the result) of each segment
    size: int

    @classmethod
    def of(cls, owner: np.ndarray, size: int) -> Groups:
        order = np.argsort(owner, kind="stable")
        sorted_owner = owner[order]
        starts = np.flatnonzero(np.r_[True, sorted_owner[1:] != sorted_owner[:-1]]) if len(owner) else owner
        return cls(order, starts, sorted_owner[starts] if len(owner) else owner, size)

    def sum(self, values: np.ndarray) -> np.ndarray:
        result = np.zeros((self.size, values.shape[1]))
        if len(self.order):
            result[self.targets] = np.add.reduceat(values[self.order], self.starts, axis=0)
        return result

    def max(self, values: np.ndarray) -> np.ndarray:
        result = np.zeros((self.size, values.shape[1]))
        if len(self.order):
            result[self.targets] = np.maximum.reduceat(values[self.order], self.starts, axis=0)
        return result


@dataclass(frozen=True)
class Layout:
    """Parameters as arrays and the levels the passes walk, computed once per system."""

    comp: dict[str, np.ndarray]  # per component, shape (n, 1)
    edge: dict[str, np.ndarray]  # per edge, shape (E, 1)
    caller: np.ndarray
    callee: np.ndarray
    fatal: np.ndarray  # (E,) a failed call fails the caller's request (not a cache edge that falls back)
    into: Groups  # edges grouped by callee
    pool_edges: np.ndarray  # edges with a connection pool (into databases)
    pool_db: np.ndarray  # their database
    pool_members: np.ndarray  # the databases with pooled edges
    pool_position: np.ndarray  # each pooled edge's row in ``pool_members``
    pool_groups: Groups  # pooled edges grouped by their database's row
    up_levels: list[np.ndarray]  # edges into each level of components, callers first (traffic)
    down_levels: list[tuple[np.ndarray, np.ndarray, Groups]]  # (components, out-edges, by caller), callees first


def layout(system: System) -> Layout:
    """Arrays and levels of ``system``, kept in its cache (whoever changes a system clears it)."""
    made = system.cache.get("layout")
    if not isinstance(made, Layout):
        made = _layout(system)
        system.cache["layout"] = made
    return made


def _layout(system: System) -> Layout:
    comps, edges = system.components, system.edges
    col = lambda values: np.asarray(values, dtype=float)[:, None]  # noqa: E731
    comp = {
        name: col([getattr(c, name) for c in comps])
        for name in ("cpu_time", "io_time", "cores", "replicas", "workers", "cv", "queue_seconds", "io_parallel")
    }
    comp["unlimited"] = comp["workers"] >= UNLIMITED
    edge = {
        name: col([getattr(x, name) for x in edges])
        for name in ("p", "calls", "timeout", "retries", "cpu_time", "io_time", "pool", "pool_timeout", "parallel")
    }
    caller = np.array([x.caller for x in edges], dtype=int)
    callee = np.array([x.callee for x in edges], dtype=int)
    fatal = np.array([comps[x.callee].kind != ServiceKind.CACHE or not x.fallback for x in edges], dtype=bool)
    n = len(comps)
    depth = [0] * n  # longest path from an entry
    for j in system.order:
        for e in system.in_edges(j):
            depth[j] = max(depth[j], depth[edges[e].caller] + 1)
    height = [0] * n  # longest path to a leaf
    for j in reversed(system.order):
        for e in system.out_edges(j):
            height[j] = max(height[j], height[edges[e].callee] + 1)
    depths = np.array(depth)
    up_levels = [np.flatnonzero(np.isin(callee, np.flatnonzero(depths == d))) for d in range(1, max(depth) + 1)]
    down_levels = []
    for h in range(max(height) + 1):
        members = np.flatnonzero(np.array(height) == h)
        out = np.array([e for j in members for e in system.out_edges(int(j))], dtype=int)
        by_caller = Groups.of(np.searchsorted(members, caller[out]), len(members))
        down_levels.append((members, out, by_caller))
    pooled = np.array(
        [e for e, x in enumerate(edges) if x.pool and comps[x.callee].kind == ServiceKind.DATABASE], dtype=int
    )
    pool_db = callee[pooled]
    members = np.unique(pool_db)
    position = np.searchsorted(members, pool_db)
    return Layout(
        comp, edge, caller, callee, fatal, Groups.of(callee, n), pooled, pool_db, members, position,
        Groups.of(position, len(members)), up_levels, down_levels,
    )  # fmt: skip
