"""What a cycle knows about its incident before it starts: where, what, since when, and how to
reach the components involved (the environment's telemetry sources and topology)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from executors import ConfigurationError, Environment
from flows.alerts import AlertGroup
from flows.batch import default_agent_of
from flows.runtime import catalog
from models import TargetContext, Topology, TopologyError, read_topology
from models.playbook.collection import TelemetrySources, Window

ACTOR = "flow:rca-incident"


@dataclass
class IncidentContext:
    alert: AlertGroup
    environment: Environment
    agent_id: str
    sources: TelemetrySources
    topology: Topology | None
    window: Window
    target: TargetContext
    #: Things the report should say about the set-up (an unknown env label, a bad topology file).
    notes: list[str] = field(default_factory=list)

    @property
    def alert_time(self) -> float:
        return self.alert.starts_at.timestamp()

    @property
    def alert_service(self) -> str | None:
        """The component that paged, when it is one the analysis knows of."""
        return self.alert.service

    @property
    def metrics_window(self) -> Window:
        """The incident's window, reaching further back for the metrics (``metrics_history``)."""
        step = self.sources.metrics.step_seconds if self.sources.metrics is not None else 1.0
        return self.window.with_history(self.alert_time, step)

    def services(self) -> list[str]:
        """Every component known to the topology, else the alerting service alone."""
        if self.topology is not None:
            return list(self.topology.names)
        return [self.alert.service] if self.alert.service else []


def incident_context(alert: AlertGroup) -> IncidentContext:
    """Resolve the alert's environment (its ``env`` label, else the default agent's)."""
    configured = catalog()
    notes: list[str] = []
    label = alert.environment
    if label and label in configured.environments:
        environment = configured.environment(label)
    else:
        environment = configured.environment_of(None)
        if label:
            notes.append(f"the alert's env label {label!r} is not a configured environment; using {environment.name!r}")
    try:
        sources = TelemetrySources.model_validate(environment.telemetry or {})
    except ValueError as exc:
        raise ConfigurationError(f"environment {environment.name!r}: telemetry: {exc}") from exc
    topology = None
    if environment.topology and environment.folder is not None:
        try:
            topology = read_topology(environment.folder / environment.topology)
        except TopologyError as exc:
            notes.append(f"topology not used: {exc}")
    window = Window.around(alert.starts_at.timestamp(), now=time.time())
    namespace = alert.namespace or "default"
    agent_id = default_agent_of(environment.name)
    target = (
        TargetContext.from_topology(topology, namespace=namespace, agent_id=agent_id)
        if topology is not None
        else TargetContext(namespace=namespace, agent_id=agent_id)
    )
    return IncidentContext(
        alert=alert,
        environment=environment,
        agent_id=agent_id,
        sources=sources,
        topology=topology,
        window=window,
        target=target,
        notes=notes,
    )
