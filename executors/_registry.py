"""Executor plug-ins by task type: the built-in ones, and any a package registers.

A package adds a type with an entry point in the ``cloud_agent.executors`` group::

    [project.entry-points."cloud_agent.executors"]
    mytype = "mypackage.executor:MyExecutor"

A package cannot replace a built-in type: an installed package naming ``shell`` would otherwise run
every shell task outside the sandbox. Built-in types are found without reading the installed
packages' metadata, which a CLI start would pay for.
"""

from __future__ import annotations

import importlib
from functools import cache
from importlib.metadata import entry_points

from executors._base import Executor
from executors._errors import ConfigurationError, UnknownExecutorType

ENTRY_POINT_GROUP = "cloud_agent.executors"
BUILT_IN = {
    "shell": "executors.shell:ShellExecutor",
    "postgres": "executors.postgres:PostgresExecutor",
    "mysql": "executors.mysql:MySQLExecutor",
    "redis": "executors.redis:RedisExecutor",
    "api": "executors.api:ApiExecutor",
    "elasticsearch": "executors.elasticsearch:ElasticsearchExecutor",
    "clickhouse": "executors.clickhouse:ClickHouseExecutor",
    "prometheus": "executors.prometheus:PrometheusExecutor",
    "k8s": "executors.k8s:KubernetesExecutor",
}


@cache
def executor_types() -> dict[str, str]:
    """``{task type: "module:Class"}`` for every type this installation can run."""
    found = {entry.name: entry.value for entry in entry_points(group=ENTRY_POINT_GROUP)}
    return dict(sorted({**found, **BUILT_IN}.items()))


def executor_class(task_type: str) -> type[Executor]:
    """The executor class for ``task_type``; an unknown type lists the known ones."""
    target = BUILT_IN.get(task_type) or executor_types().get(task_type)
    if target is None:
        raise UnknownExecutorType(f"unknown task type {task_type!r}; known types: {', '.join(executor_types())}")
    module_name, _, class_name = target.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError(f"the {task_type} executor ({target}) cannot be loaded: {exc}") from exc
    if not (isinstance(cls, type) and issubclass(cls, Executor)):
        raise ConfigurationError(f"{target} is not an Executor")
    return cls
