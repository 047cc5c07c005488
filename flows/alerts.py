"""Alert intake: Alertmanager's webhook (version 4) → one incident per alert group.

Alertmanager sends one POST per alert *group* (alerts sharing ``groupLabels``), again and again
while the group fires. Each group becomes at most one running ``rca-incident`` flow run: runs are
tagged with a digest of the group key, and a new run for a group whose run is still in progress
is not started (the gateway checks before emitting; the flow checks again when it starts, which
closes the race between two webhooks arriving together).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

ALERT_EVENT = "cloud-agent.alert.firing"
#: The flow an alert group starts (``flows.cycle``); its runs are the incidents.
INCIDENT_FLOW = "rca-incident"
ALERT_RESOURCE_PREFIX = "cloud-agent.alert-group."
GROUP_TAG_PREFIX = "alert-group:"
#: Alertmanager's "no end time" marker.
_NO_END = datetime(1, 1, 1, tzinfo=UTC)


class InvalidAlert(ValueError):
    """The payload is not an Alertmanager webhook we can act on (one clear line)."""


class Alert(BaseModel):
    model_config = ConfigDict(extra="ignore")

    status: Literal["firing", "resolved"]
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    startsAt: datetime
    endsAt: datetime | None = None
    generatorURL: str = ""
    fingerprint: str = ""

    @field_validator("startsAt", "endsAt")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class AlertGroup(BaseModel):
    """The webhook body. Unknown fields are ignored: Alertmanager adds fields between versions."""

    model_config = ConfigDict(extra="ignore")

    version: Literal["4"]
    groupKey: str = Field(min_length=1, max_length=10_000)
    truncatedAlerts: int = 0
    status: Literal["firing", "resolved"]
    receiver: str = ""
    groupLabels: dict[str, str] = Field(default_factory=dict)
    commonLabels: dict[str, str] = Field(default_factory=dict)
    commonAnnotations: dict[str, str] = Field(default_factory=dict)
    externalURL: str = ""
    alerts: list[Alert] = Field(min_length=1, max_length=10_000)

    @model_validator(mode="after")
    def _storable_text(self) -> AlertGroup:
        # The group's text becomes flow run names, tags, parameters and report text: a lone
        # surrogate cannot be encoded and a NUL cannot be stored in a PostgreSQL-backed Prefect,
        # so a cycle the webhook accepted would be lost on the way. Refuse it at the door instead.
        for where, text in self._texts():
            if "\x00" in text:
                raise ValueError(f"{where} contains a NUL byte")
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                raise ValueError(f"{where} is not valid Unicode (a lone surrogate)") from None
        return self

    def _texts(self) -> Iterator[tuple[str, str]]:
        yield "groupKey", self.groupKey
        yield "receiver", self.receiver
        yield "externalURL", self.externalURL
        for field_name in ("groupLabels", "commonLabels", "commonAnnotations"):
            for key, value in getattr(self, field_name).items():
                yield f"{field_name}.{key!r}", key + value
        for index, alert in enumerate(self.alerts):
            yield f"alerts.{index}.generatorURL", alert.generatorURL + alert.fingerprint
            for field_name in ("labels", "annotations"):
                for key, value in getattr(alert, field_name).items():
                    yield f"alerts.{index}.{field_name}.{key!r}", key + value

    @property
    def group_id(self) -> str:
        """A short stable digest of the group key (tags and resource ids cannot hold the key)."""
        return hashlib.sha256(self.groupKey.encode()).hexdigest()[:16]

    @property
    def group_tag(self) -> str:
        return f"{GROUP_TAG_PREFIX}{self.group_id}"

    def label(self, name: str) -> str | None:
        """A label common to the group, else the first alert's."""
        if name in self.commonLabels:
            return self.commonLabels[name]
        return next((a.labels[name] for a in self.alerts if name in a.labels), None)

    @property
    def alertname(self) -> str:
        return self.label("alertname") or "alert"

    @property
    def service(self) -> str | None:
        return self.label("service") or self.label("app") or self.label("job")

    @property
    def environment(self) -> str | None:
        return self.label("env") or self.label("environment")

    @property
    def namespace(self) -> str | None:
        return self.label("namespace")

    @property
    def starts_at(self) -> datetime:
        return min(alert.startsAt for alert in self.alerts)

    @property
    def firing(self) -> list[Alert]:
        return [alert for alert in self.alerts if alert.status == "firing"]

    @property
    def summary(self) -> str:
        return (
            self.commonAnnotations.get("summary")
            or self.alerts[0].annotations.get("summary")
            or f"{self.alertname} on {self.service or 'unknown service'}"
        )


def parse_alert_group(payload: Any) -> AlertGroup:
    """Validate an Alertmanager webhook body, raising ``InvalidAlert`` with one clear line."""
    if not isinstance(payload, dict):
        raise InvalidAlert(f"an Alertmanager webhook is a JSON object, not {type(payload).__name__}")
    try:
        # Validated as the JSON it arrives as, strictly: a number is neither a date-time (it would
        # be read as a Unix time) nor a string, and a string is not a number — what Alertmanager
        # sends and what the served OpenAPI document says.
        return AlertGroup.model_validate_json(json.dumps(payload, default=str), strict=True)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc']) or 'body'}: {error['msg']}"
            for error in exc.errors(include_url=False)[:5]
        )
        raise InvalidAlert(f"not an Alertmanager v4 webhook: {problems}") from exc


def alert_event_payload(group: AlertGroup) -> dict[str, Any]:
    """What the emitted event carries: the whole group, for the deployment trigger's parameters."""
    return {"alert": group.model_dump(mode="json")}


def alert_event_resource(group: AlertGroup) -> dict[str, str]:
    return {
        "prefect.resource.id": f"{ALERT_RESOURCE_PREFIX}{group.group_id}",
        "prefect.resource.name": f"{group.alertname} {group.service or ''}".strip(),
        "cloud-agent.group-key": group.groupKey[:500],
    }
