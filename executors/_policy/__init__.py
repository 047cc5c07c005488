"""The policy: one place that decides whether a task may run, before any executor touches anything.

    decide(spec) = analyse the task for its type       -> risk class, default-rule denials, subjects
                 + the environment's lifted rules       (a default denial can be lifted by id)
                 + the environment's deny patterns      (matched against every subject)
                 + the environment's ``max_risk``       (e.g. nothing destructive in prod)
                 + the approval rule                    (write/destructive need ``spec.approval``)

Analysers per task type live beside this module (``shell``, ``sql``, ``redis``, ``http``; the
kubectl parser the ``k8s`` analyser shares with its executor is ``executors.k8s._kubectl``); a task
type without one is treated as ``write`` so an unknown plugin never runs unapproved.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property
from typing import Any

from contract import RiskClass, TaskSpec
from executors._config import PolicyConfig
from executors._errors import InvalidTask
from executors._policy._assessment import Assessment, Denial
from executors._policy.http import check_url, method_risk
from executors._policy.redis import analyze_redis
from executors._policy.shell import ShellRules, analyze_shell
from executors._policy.sql import analyze_sql

__all__ = ["Assessment", "Decision", "Denial", "Policy", "Verdict", "register_analyzer"]


class Verdict(StrEnum):
    ALLOW = "allow"
    DENY = "deny"
    NEEDS_APPROVAL = "needs_approval"


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    risk: RiskClass
    reason: str = ""
    rule: str | None = None
    assessment: Assessment = field(default_factory=Assessment)

    @property
    def allowed(self) -> bool:
        return self.verdict is Verdict.ALLOW


Analyzer = Callable[[TaskSpec, "Policy"], Assessment]
_ANALYZERS: dict[str, Analyzer] = {}


def register_analyzer(task_type: str) -> Callable[[Analyzer], Analyzer]:
    """Declare how tasks of ``task_type`` are classified (used by built-in and plugin types)."""

    def decorator(analyzer: Analyzer) -> Analyzer:
        _ANALYZERS[task_type] = analyzer
        return analyzer

    return decorator


class Policy:
    """The policy of one environment."""

    def __init__(self, config: PolicyConfig, environment: str = ""):
        self.config = config
        self.environment = environment
        self._deny_patterns = [(re.compile(rule.pattern, re.IGNORECASE), rule) for rule in config.deny]

    @cached_property
    def shell_rules(self) -> ShellRules:
        return ShellRules(
            read_only_commands=frozenset(self.config.read_only_commands),
            http_allow_hosts=tuple(self.config.http_allow_hosts),
            http_deny_hosts=tuple(self.config.http_deny_hosts),
            redis_denied=frozenset(c.upper() for c in self.config.redis_deny_commands),
        )

    def assess(self, spec: TaskSpec) -> Assessment:
        analyzer = _ANALYZERS.get(spec.type)
        if analyzer is None:
            assessment = Assessment()
            assessment.escalate(RiskClass.WRITE, f"no risk analyser for task type {spec.type!r}")
            return assessment
        return analyzer(spec, self)

    def decide(self, spec: TaskSpec) -> Decision:
        """Allow, deny, or ask for an approval. Raises ``InvalidTask`` for malformed tasks."""
        assessment = self.assess(spec)
        lifted = set(self.config.lift)
        for denial in assessment.denials:
            if denial.rule not in lifted:
                return Decision(Verdict.DENY, assessment.risk, denial.reason, denial.rule, assessment)
        for pattern, rule in self._deny_patterns:
            if rule.types and spec.type not in rule.types:
                continue
            for subject in assessment.subjects:
                if pattern.search(subject):
                    reason = rule.reason or f"matches the deny pattern {rule.pattern!r}"
                    return Decision(Verdict.DENY, assessment.risk, reason, "environment.deny", assessment)
        if assessment.risk.rank > self.config.max_risk.rank:
            return Decision(
                Verdict.DENY,
                assessment.risk,
                f"{assessment.risk.value} tasks are not allowed in environment {self.environment!r} "
                f"(max_risk: {self.config.max_risk.value}): {'; '.join(assessment.reasons)}",
                "environment.max-risk",
                assessment,
            )
        if assessment.risk is not RiskClass.READ and spec.approval is None:
            return Decision(
                Verdict.NEEDS_APPROVAL,
                assessment.risk,
                f"{assessment.risk.value} task needs an approval: {'; '.join(assessment.reasons)}",
                None,
                assessment,
            )
        return Decision(Verdict.ALLOW, assessment.risk, "; ".join(assessment.reasons), None, assessment)


def _require_command(spec: TaskSpec) -> str:
    if not spec.command.strip():
        raise InvalidTask(f"a {spec.type} task needs a command")
    return spec.command


@register_analyzer("shell")
def _analyze_shell(spec: TaskSpec, policy: Policy) -> Assessment:
    return analyze_shell(_require_command(spec), policy.shell_rules)


@register_analyzer("postgres")
def _analyze_postgres(spec: TaskSpec, policy: Policy) -> Assessment:
    return analyze_sql(_require_command(spec), "postgres")


@register_analyzer("mysql")
def _analyze_mysql(spec: TaskSpec, policy: Policy) -> Assessment:
    return analyze_sql(_require_command(spec), "mysql")


@register_analyzer("clickhouse")
def _analyze_clickhouse(spec: TaskSpec, policy: Policy) -> Assessment:
    return analyze_sql(_require_command(spec), "clickhouse")


@register_analyzer("redis")
def _analyze_redis(spec: TaskSpec, policy: Policy) -> Assessment:
    return analyze_redis(_require_command(spec), extra_denied=policy.shell_rules.redis_denied)


@register_analyzer("api")
def _analyze_api(spec: TaskSpec, policy: Policy) -> Assessment:
    params: dict[str, Any] = spec.params
    method = str(params.get("method") or "GET").upper()
    url = params.get("url") or spec.command.strip()
    assessment = Assessment()
    if not isinstance(url, str) or not url:
        raise InvalidTask("an api task needs params.url")
    assessment.subjects.append(f"{method} {url}")
    risk = method_risk(method)
    if risk is not RiskClass.READ:
        assessment.escalate(risk, f"HTTP {method} changes state")
    if "://" in url:  # relative URLs are joined to the connection's base_url, checked at run time
        check_url(
            url,
            assessment,
            allow_hosts=policy.config.http_allow_hosts,
            deny_hosts=policy.config.http_deny_hosts,
        )
    return assessment


@register_analyzer("k8s")
def _analyze_k8s(spec: TaskSpec, policy: Policy) -> Assessment:
    from executors.k8s._kubectl import parse_kubectl  # its tables load with the first k8s task

    command = parse_kubectl(_require_command(spec))
    namespace = command.namespace_for(spec.params.get("namespace"), default="")
    assessment = Assessment()
    assessment.subjects.append(command.subject(namespace or None))
    if command.risk is not RiskClass.READ:
        assessment.escalate(command.risk, f"kubectl {command.operation} changes the cluster")
    return assessment


#: Elasticsearch/OpenSearch operations the executor runs; all of them only read.
ELASTICSEARCH_OPERATIONS = ("search", "count", "get")


@register_analyzer("elasticsearch")
def _analyze_elasticsearch(spec: TaskSpec, policy: Policy) -> Assessment:
    operation = spec.params.get("operation", "search")
    if operation not in ELASTICSEARCH_OPERATIONS:
        raise InvalidTask(
            f"elasticsearch operation {operation!r} is not supported; supported: {', '.join(ELASTICSEARCH_OPERATIONS)}"
        )
    assessment = Assessment()
    index = spec.params.get("index")
    assessment.subjects.append(f"{operation} {index if isinstance(index, str) and index else '<default index>'}")
    return assessment


@register_analyzer("prometheus")
def _analyze_prometheus(spec: TaskSpec, policy: Policy) -> Assessment:
    query = spec.params.get("query") or spec.command.strip()
    if not isinstance(query, str) or not query:
        raise InvalidTask("a prometheus task needs a PromQL query (command or params.query)")
    assessment = Assessment()  # the query API only reads
    assessment.subjects.append(f"promql {query}")
    return assessment
