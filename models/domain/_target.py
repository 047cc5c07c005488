"""Where a component lives, so that task templates can name it: namespace, deployment, URLs."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from models.domain._topology import Topology
from models.domain._types import ServiceKind

DEFAULT_NAMESPACE = "default"
DEFAULT_CONNECTION = "default"


class ServiceTarget(BaseModel):
    """How to reach one component with the executors."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: ServiceKind | None = None
    namespace: str | None = None
    #: The Kubernetes deployment; the component's name when unknown.
    deployment: str | None = None
    health_url: str | None = None
    #: The executor connection of this database or cache.
    connection: str | None = None
    engine: Literal["postgres", "mysql"] | None = None
    #: Host name for ``ping``; the component's name when unknown.
    host: str | None = None
    replicas: int | None = Field(default=None, ge=0)
    #: The components it calls (the topology's edges), to find the databases behind its own pool.
    calls: tuple[str, ...] = ()


class TargetContext(BaseModel):
    """Per-component targets, with defaults for components nobody described.

    The flow builds it from its environment (or ``from_topology``) and passes it to the catalog.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    services: dict[str, ServiceTarget] = Field(default_factory=dict)
    namespace: str = DEFAULT_NAMESPACE
    connection: str = DEFAULT_CONNECTION
    agent_id: str | None = None

    def namespace_of(self, service: str) -> str:
        target = self.services.get(service)
        return (target.namespace if target and target.namespace else None) or self.namespace

    def deployment_of(self, service: str) -> str:
        target = self.services.get(service)
        return (target.deployment if target and target.deployment else None) or service

    def connection_of(self, service: str) -> str:
        target = self.services.get(service)
        return (target.connection if target and target.connection else None) or self.connection

    def engine_of(self, service: str) -> Literal["postgres", "mysql"] | None:
        target = self.services.get(service)
        return target.engine if target else None

    def health_url_of(self, service: str) -> str | None:
        target = self.services.get(service)
        return target.health_url if target else None

    def host_of(self, service: str) -> str:
        target = self.services.get(service)
        return (target.host if target and target.host else None) or service

    def kind_of(self, service: str) -> ServiceKind | None:
        target = self.services.get(service)
        return target.kind if target else None

    def replicas_of(self, service: str) -> int | None:
        target = self.services.get(service)
        return target.replicas if target else None

    def databases_called_by(self, service: str) -> list[str]:
        """The components ``service`` calls that are databases (by kind or by engine), in call order."""
        target = self.services.get(service)
        return [
            callee
            for callee in (target.calls if target else ())
            if self.kind_of(callee) is ServiceKind.DATABASE or self.engine_of(callee) is not None
        ]

    @classmethod
    def from_topology(
        cls, topology: Topology, *, namespace: str = DEFAULT_NAMESPACE, agent_id: str | None = None
    ) -> TargetContext:
        """Targets read from a topology's service attributes."""
        services = {
            node.name: ServiceTarget(
                kind=node.kind,
                namespace=node.namespace,
                deployment=node.deployment,
                health_url=node.health_url,
                connection=node.connection,
                engine=node.engine,
                host=node.host,
                replicas=node.replicas,
                calls=tuple(topology.callees(node.name)),
            )
            for node in topology.services
        }
        return cls(services=services, namespace=namespace, agent_id=agent_id)
