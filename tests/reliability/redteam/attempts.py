"""The attempts: data, one YAML table per class under ``data/``.

A table names its class, defaults for its tasks, and a list of attempts::

    class: exec
    defaults: {type: shell, timeout: 3}
    attempts:
      - id: exec-sed-e
        effect: sed's `e` command runs touch
        command: sed -n '1e touch @@DIR@@/pwned' @@FILE@@

An attempt is one task (``command``/``params``/``type``/``timeout``/``approval`` at its top level) or
several (``tasks: [...]``, run in order: a Redis attack that needs two commands). ``@@NAME@@`` marks a
value the harness fills in when it sets the attempt's canaries up (its own canary folder, process,
socket, key, row...); ``harness.PLACEHOLDERS`` lists them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

DATA = Path(__file__).parent / "data"
PLACEHOLDER = re.compile(r"@@([A-Z][A-Z0-9_]*)@@")


class AttemptClass(StrEnum):
    """What an attempt tries; the rows of the table."""

    EXEC = "exec"  # an arbitrary program from a read-looking command
    WRITE = "write"  # a file or block device written
    SYSTEM = "system"  # addresses, routes, sysctls, signals, priorities, sockets, git refs, keys, hostname
    CREDENTIALS = "credentials"  # a root-only file or the agent's environment read
    POSTGRES = "postgres"
    MYSQL = "mysql"
    REDIS = "redis"
    PERSISTENCE = "persistence"  # a process that outlives its task
    APPROVAL = "approval"  # a write run on a forged approval
    POSITIVE = "positive"  # ordinary diagnostics that must keep working (not an attack)


class Task(BaseModel):
    """One task of an attempt, as ``CloudAgent.run`` takes it (placeholders not yet filled in)."""

    model_config = ConfigDict(extra="forbid")

    type: str = "shell"
    command: str = ""
    params: dict[str, Any] = Field(default_factory=dict)
    timeout: float = Field(default=3.0, gt=0, le=30)
    #: A forged approval the task carries itself (approval attempts).
    approval: dict[str, str] | None = None


class Attempt(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{2,60}$")
    cls: AttemptClass
    #: The effect it tries to achieve, for a person reading the table.
    effect: str = Field(min_length=3)
    tasks: list[Task] = Field(min_length=1)
    #: ``cli``: in the ``classifier`` mode it goes through ``cloud-agent task run --file``.
    via: Literal["agent", "cli"] = "agent"
    #: Touches machine-wide state (sysctls, hostname, addresses): run alone, checked and undone at once.
    serial: bool = False
    #: Positives only: a regular expression the first task's output must match.
    expect: str | None = None

    def placeholders(self) -> set[str]:
        """The ``@@NAME@@`` values this attempt needs."""
        return {name for task in self.tasks for name in PLACEHOLDER.findall(task.model_dump_json())}

    def bound_tasks(self, values: Mapping[str, str]) -> list[dict[str, Any]]:
        """The tasks as ``CloudAgent.run`` takes them, every placeholder filled in from ``values``."""
        return [_fill(task.model_dump(exclude_none=True), values) for task in self.tasks]


def _fill(value: Any, values: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        return PLACEHOLDER.sub(lambda match: values[match.group(1)], value)
    if isinstance(value, dict):
        return {key: _fill(item, values) for key, item in value.items()}
    if isinstance(value, list):
        return [_fill(item, values) for item in value]
    return value


_TASK_KEYS = frozenset(Task.model_fields)


def _attempt(item: dict[str, Any], cls: str, defaults: dict[str, Any], where: str) -> Attempt:
    item = dict(item)
    if "tasks" in item:
        tasks = [{**defaults, **task} for task in item.pop("tasks")]
    else:
        tasks = [{**defaults, **{key: item.pop(key) for key in list(item) if key in _TASK_KEYS}}]
    try:
        return Attempt.model_validate({**item, "cls": cls, "tasks": tasks})
    except ValidationError as exc:
        raise ValueError(f"{where}: attempt {item.get('id', '?')!r}: {exc}") from exc


def load_table(path: Path) -> list[Attempt]:
    """The attempts of one YAML table."""
    table = yaml.safe_load(path.read_text())
    if not isinstance(table, dict) or "class" not in table or "attempts" not in table:
        raise ValueError(f"{path}: a table is a mapping with 'class' and 'attempts'")
    defaults = table.get("defaults") or {}
    return [_attempt(item, table["class"], defaults, path.name) for item in table["attempts"]]


def load_attempts(folder: Path = DATA) -> list[Attempt]:
    """Every attempt of every table, in file order; ids are unique."""
    attempts = [attempt for path in sorted(folder.glob("*.yaml")) for attempt in load_table(path)]
    seen: set[str] = set()
    for attempt in attempts:
        if attempt.id in seen:
            raise ValueError(f"attempt id {attempt.id!r} is used twice")
        seen.add(attempt.id)
    return attempts


def by_class(attempts: list[Attempt]) -> Iterator[tuple[AttemptClass, list[Attempt]]]:
    for cls in AttemptClass:
        chosen = [attempt for attempt in attempts if attempt.cls is cls]
        if chosen:
            yield cls, chosen
