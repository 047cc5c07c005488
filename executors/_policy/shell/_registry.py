"""Which family validates which command: one validator per family module, looked up by name."""

from __future__ import annotations

from executors._policy.shell._family import Family
from executors._policy.shell.awk import AwkValidator
from executors._policy.shell.builtin_commands import Builtins
from executors._policy.shell.changes import KnownWriters
from executors._policy.shell.containers import ContainerClis
from executors._policy.shell.databases import DatabaseClients
from executors._policy.shell.files import FileFacts
from executors._policy.shell.find import FindValidator
from executors._policy.shell.http_clients import NetworkClients
from executors._policy.shell.network import NetworkDiagnostics
from executors._policy.shell.sed import SedValidator
from executors._policy.shell.services import LogsAndServices
from executors._policy.shell.shells import Interpreters
from executors._policy.shell.system import SystemState
from executors._policy.shell.text import TextFilters
from executors._policy.shell.vcs import SourceControl
from executors._policy.shell.wrappers import Wrappers

FAMILIES: tuple[Family, ...] = (
    TextFilters(),
    SedValidator(),
    AwkValidator(),
    FindValidator(),
    FileFacts(),
    SystemState(),
    NetworkDiagnostics(),
    NetworkClients(),
    LogsAndServices(),
    ContainerClis(),
    DatabaseClients(),
    SourceControl(),
    Wrappers(),
    Interpreters(),
    Builtins(),
    KnownWriters(),
)


def _by_name() -> dict[str, Family]:
    table: dict[str, Family] = {}
    for family in FAMILIES:
        for name in family.names:
            if name in table:
                raise RuntimeError(f"{name} is claimed by {type(table[name]).__name__} and {type(family).__name__}")
            table[name] = family
    return table


_BY_NAME = _by_name()


def validator_for(name: str) -> Family | None:
    """The family that judges the command ``name`` (a base name), or None: not a known command."""
    family = _BY_NAME.get(name)
    if family is not None:
        return family
    return next((f for f in FAMILIES if f.claims(name)), None)
