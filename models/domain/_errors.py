"""The error tree of ``models``.

    ModelsError
    ├── TelemetryError      metrics/logs/traces that cannot be analysed (missing ``time``, empty...)
    ├── TopologyError       a topology file or dict that does not describe a call graph
    ├── ModelStoreError     a model version that cannot be saved, found or trusted
    ├── OutcomeStoreError   an outcome that cannot be recorded or read
    └── GeneratorError      an incident generator that cannot draw (a missing optional package...)

Every message is one line meant for a person; callers print it as is. None of them derives from
``ValueError`` on purpose: pydantic would wrap a ``ValueError`` raised while validating a value
object into its own ``ValidationError`` and the one clear line would be lost.
"""

from __future__ import annotations


class ModelsError(Exception):
    """Base of every error raised on purpose by ``models``."""


class TelemetryError(ModelsError):
    """Telemetry that cannot be analysed."""


class TopologyError(ModelsError):
    """A topology that does not describe a call graph."""


class ModelStoreError(ModelsError):
    """A model version that cannot be saved, found or trusted."""


class OutcomeStoreError(ModelsError):
    """An outcome that cannot be recorded or read."""


class GeneratorError(ModelsError):
    """An incident generator that cannot draw an incident."""
