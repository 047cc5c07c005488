"""The call graph: which components exist (services, databases, caches) and who calls whom."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from models.domain._errors import TopologyError
from models.domain._types import ServiceKind, guess_service_kind


class ServiceNode(BaseModel):
    """One component of the system and what we need to reach it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    kind: ServiceKind = ServiceKind.SERVICE
    engine: Literal["postgres", "mysql"] | None = None
    #: The executor connection name for this database or cache.
    connection: str | None = None
    namespace: str | None = None
    deployment: str | None = None
    health_url: str | None = None
    host: str | None = None
    replicas: int | None = Field(default=None, ge=0)


class Topology(BaseModel):
    """Components and ``calls`` edges ``(caller, callee)``.

    Raises:
        TopologyError: an edge naming an unknown component, duplicate names, a malformed file.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    services: list[ServiceNode]
    calls: list[tuple[str, str]] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> Topology:
        names = [service.name for service in self.services]
        if len(set(names)) != len(names):
            duplicates = sorted({name for name in names if names.count(name) > 1})
            raise TopologyError(f"topology: duplicate service names {duplicates}")
        known = set(names)
        unknown = sorted({end for edge in self.calls for end in edge if end not in known})
        if unknown:
            raise TopologyError(f"topology: calls name unknown services {unknown[:5]}")
        return self

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Topology:
        """A topology from plain data.

        Accepts ``{"services": [{"name", "kind", ...} | "name"], "calls": [[caller, callee] |
        {"caller", "callee"} | {"from", "to"}]}``; ``nodes`` is accepted for ``services`` and
        ``edges`` for ``calls``; and an adjacency map, ``{caller: [callee, ...]}``.
        """
        if not isinstance(data, Mapping):
            raise TopologyError(f"topology: expected a mapping, not {type(data).__name__}")
        if not {"services", "nodes", "calls", "edges"} & set(data):
            if data and all(isinstance(callees, list) for callees in data.values()):
                data = {"calls": [[caller, callee] for caller, callees in data.items() for callee in callees]}
            else:
                keys = ", ".join(repr(str(key)) for key in list(data)[:5]) or "none"
                raise TopologyError(
                    f"topology: expected 'services' and 'calls' (or an adjacency map of lists), found keys {keys}"
                )
        services: list[dict[str, Any]] = []
        listed: dict[str, dict[str, Any]] = {}
        for entry in data.get("services", data.get("nodes")) or []:
            service = {"name": entry} if isinstance(entry, str) else dict(entry)
            name = service.get("name")
            if isinstance(name, str) and name in listed:
                # A registry export may list a shared component twice; the same entry again says nothing new.
                if listed[name] != service:
                    raise TopologyError(
                        f"topology: {name!r} is listed twice, differently: {listed[name]} and {service}"
                    )
                continue
            if isinstance(name, str):
                listed[name] = service
            services.append(service)
        calls = []
        for edge in data.get("calls", data.get("edges")) or []:
            if isinstance(edge, Mapping):
                caller = edge.get("caller", edge.get("from", edge.get("source")))
                callee = edge.get("callee", edge.get("to", edge.get("target")))
            elif isinstance(edge, list | tuple) and len(edge) == 2:
                caller, callee = edge
            else:
                raise TopologyError(f"topology: cannot read the edge {edge!r}")
            if not caller or not callee:
                raise TopologyError(f"topology: an edge without caller or callee: {edge!r}")
            calls.append((str(caller), str(callee)))
        named = {service["name"] for service in services if "name" in service}
        for edge in calls:
            for end in edge:
                if end not in named:
                    services.append({"name": end})
                    named.add(end)
        # A component whose kind is not stated is what its name says (orders-db, redis-cart), as
        # without a topology: a database taken for a service has no query or pool fault to type.
        for service in services:
            if "kind" not in service and isinstance(service.get("name"), str):
                service["kind"] = guess_service_kind(service["name"], set())
        try:
            return cls.model_validate({"services": services, "calls": calls})
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            where = ".".join(str(part) for part in first["loc"])
            raise TopologyError(f"topology: {where}: {first['msg']}") from exc

    @cached_property
    def names(self) -> list[str]:
        return [service.name for service in self.services]

    @cached_property
    def index(self) -> dict[str, int]:
        return {name: position for position, name in enumerate(self.names)}

    def node(self, name: str) -> ServiceNode | None:
        position = self.index.get(name)
        return None if position is None else self.services[position]

    def kind_of(self, name: str) -> ServiceKind | None:
        node = self.node(name)
        return None if node is None else node.kind

    def callers(self, name: str) -> list[str]:
        return [caller for caller, callee in self.calls if callee == name]

    def callees(self, name: str) -> list[str]:
        return [callee for caller, callee in self.calls if caller == name]

    @cached_property
    def adjacency(self) -> np.ndarray:
        """``A[i, j]`` is true when ``names[i]`` calls ``names[j]``."""
        matrix = np.zeros((len(self.services), len(self.services)), dtype=bool)
        for caller, callee in self.calls:
            matrix[self.index[caller], self.index[callee]] = True
        return matrix

    @cached_property
    def reach(self) -> np.ndarray:
        """``R[i, j]`` is true when ``names[i]`` depends on ``names[j]`` through any call path."""
        return transitive_closure(self.adjacency)

    def ancestors(self, name: str) -> list[str]:
        """Every component that depends on ``name`` (its callers, their callers...)."""
        column = self.reach[:, self.index[name]]
        return [self.names[i] for i in np.flatnonzero(column)]

    def to_dict(self) -> dict[str, Any]:
        return {
            "services": [service.model_dump(exclude_none=True, mode="json") for service in self.services],
            "calls": [list(edge) for edge in self.calls],
        }


def transitive_closure(adjacency: np.ndarray) -> np.ndarray:
    """Reachability (paths of length >= 1) by repeated squaring: log2(n) boolean products."""
    reach = adjacency.astype(bool)
    if reach.size == 0:
        return reach
    while True:
        step = reach | ((reach.astype(np.int32) @ reach.astype(np.int32)) > 0)
        if np.array_equal(step, reach):
            return reach
        reach = step
