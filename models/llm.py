"""The LLM analyser's pure side: what a language model is told about an incident, and what is
accepted back from it. No network here: ``flows.llm`` sends the messages and calls these.

    masker = Masker(environment.redact, scrub=redact_text)   # secrets out, names → <HOST_1>
    space = CandidateSpace.of(analysis)                        # what the model may name
    summary = summarize_evidence(analysis, facts, space=space, masker=masker, budget_tokens=3000)
    messages = analysis_messages(summary, space, masker, task_types=[...], max_tasks=5)
    reply = parse_reply(content)                               # MalformedReply unless the schema
    view = read_reply(reply, space, masker)                    # unmasked; unknown names dropped
    merged = merge_rankings(analysis.hypotheses, view.hypotheses)

Errors (``ModelsError`` below, see ``models._errors``)::

    ModelsError
    ├── MalformedReply     the reply is not the JSON object the schema asks for
    └── InvalidRedaction   an environment's ``redact`` entry is not a regular expression

The model's view is a second opinion, never trusted blindly: names it uses must be candidates of
the ranker, its confidences are discounted before they are combined, and the fixes it proposes
are shown to a person, never run.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from models._analysis import Analysis
from models._catalog import FixHistory, fix_suggestions, verification_tasks
from models._errors import ModelsError
from models._hypothesis import FixSuggestion, Hypothesis
from models._observations import LONG_RUNNING_SECONDS, Observations
from models._target import TargetContext
from models._types import FAULTS_BY_KIND, FaultType, Risk, ServiceKind


class MalformedReply(ModelsError):
    """The model's reply is not one JSON object of the reply schema (one line saying why)."""


class InvalidRedaction(ModelsError):
    """A ``re:`` entry of an environment's ``redact`` list does not compile."""


# ---------------------------------------------------------------------------------------------
# Masking


#: Placeholders this module issues: ``<HOST_1>``, ``<IP_2>``...
PLACEHOLDER = re.compile(r"<(?:IP|HOST|EMAIL|USER|ID)_\d+>")
_IPV4 = re.compile(r"^\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?$")
_IPV6 = re.compile(r"^[0-9a-f]{0,4}(?::[0-9a-f]{0,4}){2,7}$", re.IGNORECASE)
_USER = re.compile(r"^(?:\d+|(?:u|uid|user|usr)[-_:.]?\w+)$", re.IGNORECASE)


def _kind_of(value: str) -> str:
    """The placeholder kind of a masked value, from its shape (tells the model what it was)."""
    if _IPV4.match(value) or _IPV6.match(value):
        return "IP"
    if "@" in value:
        return "EMAIL"
    if _USER.match(value):
        return "USER"
    if re.search(r"[A-Za-z]", value) and re.search(r"[.-]", value) and " " not in value:
        return "HOST"
    return "ID"


class Masker:
    """Masks what must not leave the process before anything is sent to a language model.

    Two kinds of values are masked, in this order:

    * secrets, irreversibly: ``scrub`` (the executors' ``redact_text``: every registered secret
      and inline credentials such as ``Authorization: Bearer …``) turns them into ``***``; a
      secret is never needed back, so not even the local map holds it;
    * the environment's sensitive names (its ``redact`` list: literal strings, or regular
      expressions written ``re:…``), reversibly: each distinct value becomes a placeholder such as
      ``<HOST_1>`` or ``<IP_2>``, the same one everywhere, so the model can reason about "the
      host" and name it in its reply; ``unmask`` maps the reply back. The map lives in this object
      only and is never serialised.

    Matching ignores case (a host name in upper case is the same host); over-masking is the
    safe side. Text that already looks like one of our placeholders (a hostile log line) is
    defused (``‹HOST_1›``) so that unmasking cannot be steered to a real value.

    Raises:
        InvalidRedaction: when a ``re:`` entry does not compile.
    """

    def __init__(self, redact: Sequence[str] = (), *, scrub: Callable[[str], str] | None = None):
        literals = sorted({entry for entry in redact if entry and not entry.startswith("re:")}, key=len, reverse=True)
        alternatives = [re.escape(literal) for literal in literals]
        for entry in redact:
            if not entry.startswith("re:"):
                continue
            try:
                re.compile(entry[3:])
            except re.error as exc:
                raise InvalidRedaction(f"redact entry {entry!r} is not a regular expression: {exc}") from exc
            alternatives.append(f"(?:{entry[3:]})")
        self._pattern = re.compile("|".join(alternatives), re.IGNORECASE) if alternatives else None
        self._scrub = scrub
        self._forward: dict[str, str] = {}
        self._reverse: dict[str, str] = {}
        self._issued: Counter[str] = Counter()

    def __repr__(self) -> str:
        return f"Masker({len(self._reverse)} placeholders)"  # never the values

    @property
    def placeholders(self) -> dict[str, str]:
        """``{placeholder: original}`` issued so far (a copy; local use only)."""
        return dict(self._reverse)

    def mask(self, text: str) -> str:
        """``text`` with secrets scrubbed and sensitive names replaced by placeholders (idempotent)."""
        if not text:
            return text
        text = PLACEHOLDER.sub(lambda m: m.group(0) if m.group(0) in self._reverse else f"‹{m.group(0)[1:-1]}›", text)
        if self._scrub is not None:
            text = self._scrub(text)
        if self._pattern is None:
            return text
        return self._pattern.sub(self._placeholder, text)

    def _placeholder(self, match: re.Match[str]) -> str:
        value = match.group(0)
        if not value:
            return value  # a pattern that matches the empty string must not mask between letters
        key = value.casefold()
        found = self._forward.get(key)
        if found is None:
            kind = _kind_of(value)
            self._issued[kind] += 1
            found = f"<{kind}_{self._issued[kind]}>"
            self._forward[key] = found
            self._reverse[found] = value
        return found

    def unmask(self, text: str) -> str:
        """``text`` with our placeholders replaced by the values they stand for."""
        if not text or not self._reverse:
            return text
        return PLACEHOLDER.sub(lambda m: self._reverse.get(m.group(0), m.group(0)), text)

    def mask_value(self, value: Any) -> Any:
        """``mask`` over every string (keys included) of JSON-like ``value``."""
        return _map_strings(value, self.mask)

    def unmask_value(self, value: Any) -> Any:
        """``unmask`` over every string (keys included) of JSON-like ``value``."""
        return _map_strings(value, self.unmask)


def _map_strings(value: Any, function: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return function(value)
    if isinstance(value, Mapping):
        return {function(str(k)): _map_strings(v, function) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_map_strings(v, function) for v in value]
    return value


# ---------------------------------------------------------------------------------------------
# Token budget


def estimate_tokens(text: str) -> int:
    """A conservative token count: 3 ASCII characters per token, 1 token per other character.

    BPE tokenisers average about 4 characters per token on English prose, fewer on logs and SQL
    (symbols, ids, numbers); CJK text takes about one token per character or more. Erring high
    keeps a prompt inside its budget on any server without shipping a tokeniser.
    """
    if not text:
        return 0
    other = len(text) - len(text.encode("ascii", "ignore"))
    return math.ceil((len(text) - other) / 3) + other


# ---------------------------------------------------------------------------------------------
# What the model may name


class CandidateSpace(BaseModel):
    """The components the model may name and the faults each can have: the ranker's candidates."""

    model_config = ConfigDict(frozen=True)

    faults: dict[str, list[FaultType]]

    @classmethod
    def of(cls, analysis: Analysis, components: Iterable[str] = ()) -> CandidateSpace:
        """The candidates ``analysis`` scored; ``components`` (known from elsewhere) may have any fault."""
        faults: dict[str, list[FaultType]] = {}
        if analysis.candidates is not None:
            for component, fault in analysis.candidates.candidates:
                faults.setdefault(component, []).append(FaultType(fault))
        extra = [
            *(h.component for h in analysis.hypotheses),
            *analysis.detection.involved_services,
            *components,
        ]
        for component in extra:
            faults.setdefault(component, list(FaultType))
        return cls(faults=faults)

    @property
    def components(self) -> list[str]:
        return list(self.faults)

    def kind_of(self, component: str) -> ServiceKind | None:
        """The kind whose faults the component's candidates are (a database has slow queries...);
        ``None`` for a component that may have any fault."""
        faults = set(self.faults.get(component, ()))
        for kind in (ServiceKind.DATABASE, ServiceKind.CACHE, ServiceKind.SERVICE):
            if faults <= set(FAULTS_BY_KIND[kind]):
                return kind
        return None

    def resolve(self, component: str, fault: str) -> tuple[str, FaultType] | str:
        """``(component, fault)`` as the ranker names them, or the reason the pair is not a candidate."""
        name = component.strip()
        if name not in self.faults:
            matches = [known for known in self.faults if known.casefold() == name.casefold()]
            if len(matches) != 1:
                return f"unknown component {name!r}"
            name = matches[0]
        text = re.sub(r"[\s-]+", "_", fault.strip().lower())
        try:
            fault_type = FaultType(text)
        except ValueError:
            return f"unknown fault type {fault!r} (known: {', '.join(f.value for f in FaultType)})"
        if fault_type not in self.faults[name]:
            kind = self.kind_of(name)
            return f"{name} is a {kind.value if kind else 'component'} that cannot have {fault_type.value}"
        return name, fault_type


# ---------------------------------------------------------------------------------------------
# The evidence summary


class IncidentFacts(BaseModel):
    """What the summary is made of besides the ranker's analysis."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    alertname: str
    service: str | None = None
    summary: str = ""
    started_at: datetime
    #: Logs and traces frames in the ``Telemetry`` layout.
    logs: pd.DataFrame | None = None
    traces: pd.DataFrame | None = None
    observations: Observations = Field(default_factory=Observations)
    target: TargetContext = Field(default_factory=TargetContext)


class EvidenceSummary(BaseModel):
    """The compact, masked text a model is given, and what the budget left out."""

    model_config = ConfigDict(frozen=True)

    text: str
    tokens: int
    budget: int
    lines: int
    #: Lines left out for the budget, per section.
    omitted: dict[str, int] = Field(default_factory=dict)

    def describe(self) -> str:
        """One line for the report: size, budget and what was left out."""
        left_out = ", ".join(f"{section} {count}" for section, count in self.omitted.items())
        return f"{self.lines} evidence lines, ~{self.tokens} of {self.budget} tokens" + (
            f" (left out for the budget: {left_out})" if left_out else ""
        )


#: Sections in the order they are shown (and kept when lines tie on depth).
_SECTIONS = {
    "alert": "Alert",
    "components": "Components (name: kind[, engine, connection]) - use these names verbatim",
    "detection": "Detection",
    "evidence": "Evidence the statistical ranker found (strongest first)",
    "logs": "Log patterns, most frequent first (count x service level: template; variable parts as <*>)",
    "traces": "Error spans per service",
    "db": "Databases",
    "cache": "Caches",
    "health": "Health checks",
    "k8s": "Pods and deploys",
}
_SECTION_ORDER = {name: index for index, name in enumerate(_SECTIONS)}
#: A line longer than this is shortened at a word boundary, after masking (so neither a secret
#: nor a masked name can be cut in half); the budget then drops whole lines only.
MAX_LINE_CHARS = 400
_FAILED_SPAN_STATUSES = ("error", "failed", "fail", "err", "2")
_VARIABLE = re.compile(
    r"(<(?:IP|HOST|EMAIL|USER|ID)_\d+>)"  # our placeholders stay
    r"|\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b"
    r"|\b0x[0-9a-f]+\b|\b(?=[0-9a-f]*\d)[0-9a-f]{12,}\b"
    r"|\b\d+(?:\.\d+)?(?:ms|s|m|h|kb|mb|gb|%)?\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class _Line:
    section: str
    #: 0 for what the model cannot do without; the budget keeps shallow lines first.
    depth: int
    order: int
    text: str


def _depth(index: int) -> int:
    """Depth of a section's ``index``-th line: its first three lines come before anyone's fourth."""
    return 1 if index < 3 else 2 if index < 10 else 3


def summarize_evidence(
    analysis: Analysis,
    facts: IncidentFacts,
    *,
    space: CandidateSpace,
    masker: Masker,
    budget_tokens: int,
) -> EvidenceSummary:
    """The evidence of one incident as compact, masked text within ``budget_tokens``.

    Every line is masked when it is made, before the budget is applied; the budget then keeps
    whole lines, shallowest first (each section's first lines before any section's later ones,
    sections in a fixed order on ties), and says per section how many it left out.

    Args:
        analysis: the ranker's analysis (detection and the evidence behind its hypotheses; its
            own conclusions are left out so that the model's opinion is a second, independent one).
        facts: the alert, logs, traces, observations and targets of the incident.
        space: the components the model may name.
        masker: masks every line.
        budget_tokens: the most the summary may take (``estimate_tokens``).
    """

    def line(section: str, depth: int, order: int, text: str) -> _Line:
        return _Line(section, depth, order, _shorten(masker.mask(" ".join(text.split()))))

    lines = [
        line("alert", 0, 0, _alert_text(facts)),
        *_component_lines(space, facts.target, analysis, line),
        *_detection_lines(analysis, line),
        *_evidence_lines(analysis, line),
        *_log_lines(facts.logs, masker, line),
        *_trace_lines(facts.traces, line),
        *_db_lines(facts.observations, line),
        *_cache_lines(facts.observations, line),
        *_health_lines(facts.observations, line),
        *_k8s_lines(facts.observations, line),
    ]
    chosen: list[_Line] = []
    omitted: Counter[str] = Counter()
    used = 0
    opened: set[str] = set()
    # Room for a "(n more not shown)" note per section, so that what was left out is said.
    reserve = len({x.section for x in lines}) * estimate_tokens("(9999 more not shown)\n")
    for item in sorted(lines, key=lambda x: (x.depth, _SECTION_ORDER[x.section], x.order)):
        cost = estimate_tokens(item.text + "\n") + (0 if item.section in opened else _header_cost(item.section))
        if used + cost > budget_tokens - reserve:
            omitted[item.section] += 1
            continue
        chosen.append(item)
        opened.add(item.section)
        used += cost
    notes = []
    for section in sorted(omitted, key=_SECTION_ORDER.__getitem__):
        note = _Line(section, 9, 10**9, f"({omitted[section]} more not shown)")
        cost = estimate_tokens(note.text + "\n") + (0 if section in opened else _header_cost(section))
        if used + cost <= budget_tokens:
            notes.append(note)
            opened.add(section)
            used += cost
    text = _render([*chosen, *notes])
    return EvidenceSummary(
        text=text,
        tokens=estimate_tokens(text),
        budget=budget_tokens,
        lines=len(chosen),
        omitted={s: omitted[s] for s in sorted(omitted, key=_SECTION_ORDER.__getitem__)},
    )


def _header(section: str) -> str:
    return f"## {_SECTIONS[section]}\n"


def _header_cost(section: str) -> int:
    return estimate_tokens("\n" + _header(section))


def _render(lines: Sequence[_Line]) -> str:
    blocks = []
    for section in _SECTIONS:
        mine = sorted((x for x in lines if x.section == section), key=lambda x: (x.order, x.depth))
        if mine:
            blocks.append(_header(section) + "".join(f"{x.text}\n" for x in mine))
    return "\n".join(blocks)


def _shorten(text: str) -> str:
    if len(text) <= MAX_LINE_CHARS:
        return text
    cut = text.rfind(" ", 0, MAX_LINE_CHARS - 20)
    cut = cut if cut > 0 else MAX_LINE_CHARS - 20
    return f"{text[:cut]} …(+{len(text) - cut} chars)"


def _clock(epoch: float | None) -> str:
    if epoch is None or not np.isfinite(epoch):
        return "?"
    return datetime.fromtimestamp(float(epoch), UTC).strftime("%H:%M:%S")


LineMaker = Callable[[str, int, int, str], _Line]


def _alert_text(facts: IncidentFacts) -> str:
    return (
        f"{facts.alertname} on {facts.service or 'an unknown service'}, started "
        f"{facts.started_at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC: {facts.summary}"
    )


def _component_lines(space: CandidateSpace, target: TargetContext, analysis: Analysis, line: LineMaker) -> list[_Line]:
    involved = {*analysis.detection.involved_services, *(h.component for h in analysis.hypotheses)}

    def describe(name: str) -> str:
        kind = target.kind_of(name) or space.kind_of(name)
        parts = [kind.value if kind else "kind unknown"]
        engine = target.engine_of(name)
        if engine:
            parts.append(engine)
        if kind in (ServiceKind.DATABASE, ServiceKind.CACHE):
            parts.append(f"connection {target.connection_of(name)}")
        return f"{name}: {', '.join(parts)}"

    first = [name for name in space.components if name in involved]
    rest = [name for name in space.components if name not in involved]
    lines = []
    # Ten names a line, involved ones first: a large topology loses its quiet corners, not its heart.
    for index, start in enumerate(range(0, len(first), 10)):
        lines.append(line("components", 0, index, "; ".join(describe(n) for n in first[start : start + 10])))
    for index, start in enumerate(range(0, len(rest), 10)):
        text = "; ".join(describe(n) for n in rest[start : start + 10])
        lines.append(line("components", 2 + index, len(first) + index, text))
    return lines


def _detection_lines(analysis: Analysis, line: LineMaker) -> list[_Line]:
    detection = analysis.detection
    involved = ", ".join(detection.involved_services[:8]) or "-"
    lines = [
        line(
            "detection",
            0,
            0,
            f"anomaly: {'yes' if detection.is_anomaly else 'no'} (score {detection.score:.1f}), change at "
            f"{_clock(detection.change_point)} UTC; involved components, strongest first: {involved}",
        )
    ]
    if detection.anomalous_metrics:
        lines.append(line("detection", 1, 1, "moving metrics: " + ", ".join(detection.anomalous_metrics[:15])))
    return lines


def _evidence_lines(analysis: Analysis, line: LineMaker) -> list[_Line]:
    seen: dict[str, float] = {}
    for hypothesis in analysis.hypotheses:
        for evidence in hypothesis.evidence:
            text = f"[{evidence.kind}] {evidence.summary}"
            seen[text] = max(seen.get(text, 0.0), evidence.score)
    ranked = sorted(seen, key=lambda text: -seen[text])
    return [line("evidence", _depth(i), i, text) for i, text in enumerate(ranked)]


def log_template(message: str) -> str:
    """A log message with its variable parts (numbers, ids, hex) as ``<*>``; placeholders stay."""
    return _VARIABLE.sub(lambda m: m.group(1) or "<*>", message)


def _log_lines(logs: pd.DataFrame | None, masker: Masker, line: LineMaker) -> list[_Line]:
    if logs is None or logs.empty or "message" not in logs.columns:
        return []
    messages = logs["message"].astype(str)
    # Mask before templating: an IP on the redact list must become <IP_1>, not <*>.<*>.
    templates = {text: log_template(masker.mask(text)) for text in messages.unique()}
    frame = pd.DataFrame(
        {
            "service": logs["service"].astype(str) if "service" in logs.columns else "?",
            "level": logs["level"].astype(str).str.upper() if "level" in logs.columns else "?",
            "template": messages.map(templates),
            "time": pd.to_numeric(logs["time"], errors="coerce") if "time" in logs.columns else np.nan,
        }
    )
    groups = (
        frame.groupby(["service", "level", "template"], sort=False, dropna=False)["time"]
        .agg(["size", "min"])
        .reset_index()
        .sort_values(["size", "min"], ascending=[False, True], kind="stable")
    )
    return [
        line(
            "logs",
            _depth(i),
            i,
            f"{int(row.size)}x {row.service} {row.level}: {row.template} (first at {_clock(row.min)})",
        )
        for i, row in enumerate(groups.itertuples(index=False))
    ]


def _trace_lines(traces: pd.DataFrame | None, line: LineMaker) -> list[_Line]:
    if traces is None or traces.empty or not {"service", "status", "duration"} <= set(traces.columns):
        return []
    failed = traces["status"].astype(str).str.lower().isin(_FAILED_SPAN_STATUSES)
    duration = pd.to_numeric(traces["duration"], errors="coerce")
    frame = pd.DataFrame({"service": traces["service"].astype(str), "failed": failed, "duration": duration})
    rows = []
    for service, spans in frame.groupby("service", sort=False):
        errors = spans[spans["failed"]]
        if errors.empty:
            continue
        rows.append(
            (
                len(errors),
                f"{service}: {len(errors)} of {len(spans)} spans failed; failed spans p95 "
                f"{errors['duration'].quantile(0.95):.0f} ms, all spans p95 {spans['duration'].quantile(0.95):.0f} ms",
            )
        )
    if not rows:
        return [line("traces", 1, 0, f"no failed span among {len(frame)} spans")]
    rows.sort(key=lambda row: -row[0])
    return [line("traces", _depth(i), i, text) for i, (_, text) in enumerate(rows)]


def _db_lines(observations: Observations, line: LineMaker) -> list[_Line]:
    lines = []
    for index, db in enumerate(observations.db):
        limit = db.max_connections or "?"
        lines.append(
            line(
                "db",
                1,
                index * 100,
                f"{db.service} ({db.engine}): {db.connections}/{limit} connections, {db.active} active, "
                f"{db.long_running} running over {LONG_RUNNING_SECONDS:.0f} s (longest {db.longest_seconds:.0f} s), "
                f"{db.waiting_on_locks} waiting on locks",
            )
        )
        for rank, client in enumerate(db.clients[:3]):
            lines.append(
                line(
                    "db",
                    2,
                    index * 100 + 1 + rank,
                    f"{db.service} client {client.client}: {client.connections} sessions, {client.active} active, "
                    f"{client.long_running} long-running",
                )
            )
        for rank, query in enumerate(db.top_queries[:5]):
            lines.append(
                line(
                    "db",
                    2 if rank < 3 else 3,
                    index * 100 + 10 + rank,
                    f"{db.service} statement running {query.seconds:.0f} s [{query.state or '?'}]: {query.query}",
                )
            )
    return lines


def _cache_lines(observations: Observations, line: LineMaker) -> list[_Line]:
    lines = []
    for index, cache in enumerate(observations.cache):
        parts = []
        if cache.hit_ratio is not None:
            parts.append(f"hit ratio {cache.hit_ratio:.0%}")
        parts.append(f"{cache.evicted_keys} evicted keys")
        if cache.memory_usage is not None:
            parts.append(f"memory {cache.memory_usage:.0%} of maxmemory")
        if cache.connected_clients is not None:
            parts.append(f"{cache.connected_clients} clients")
        parts.append(f"{cache.rejected_connections} rejected connections")
        lines.append(line("cache", _depth(index), index, f"{cache.service}: {', '.join(parts)}"))
    return lines


def _health_lines(observations: Observations, line: LineMaker) -> list[_Line]:
    failing = [check for check in observations.health if not check.ok]
    healthy = [check for check in observations.health if check.ok]
    lines = [
        line(
            "health",
            _depth(index),
            index,
            f"{check.service}: {'unreachable' if check.unreachable else f'HTTP {check.status_code}'}"
            + (f" after {check.latency_ms:.0f} ms" if check.latency_ms is not None else "")
            + (f" ({check.error})" if check.error else ""),
        )
        for index, check in enumerate(failing)
    ]
    if healthy:
        text = "healthy: " + ", ".join(
            f"{c.service}" + (f" ({c.latency_ms:.0f} ms)" if c.latency_ms is not None else "") for c in healthy
        )
        lines.append(line("health", 2, len(failing), text))
    return lines


def _k8s_lines(observations: Observations, line: LineMaker) -> list[_Line]:
    texts = [
        f"pod of {pod.service}: {'ready' if pod.ready else 'NOT ready'}, {pod.restarts} restarts"
        + (f", {pod.reason}" if pod.reason else "")
        for pod in observations.pods
        if not pod.ready or pod.restarts or pod.reason
    ]
    texts += [
        f"{deploy.service} deployed{f' {deploy.revision}' if deploy.revision else ''} at {_clock(deploy.time)} UTC"
        for deploy in observations.deploys
    ]
    return [line("k8s", _depth(index), index, text) for index, text in enumerate(texts)]


# ---------------------------------------------------------------------------------------------
# Messages


class ChatMessage(BaseModel):
    """One chat-completions message."""

    model_config = ConfigDict(frozen=True)

    role: Literal["system", "user", "assistant"]
    content: str


def analysis_messages(
    summary: EvidenceSummary,
    space: CandidateSpace,
    *,
    task_types: Sequence[str],
    max_tasks: int,
) -> list[ChatMessage]:
    """The first round: what the model is, the rules of its answer, and the evidence."""
    kinds = "; ".join(
        f"a {kind.value} can have {', '.join(f.value for f in faults)}" for kind, faults in FAULTS_BY_KIND.items()
    )
    verification = (
        f"- verification: read-only diagnostic tasks that would confirm or refute it, at most {max_tasks} over "
        f"all hypotheses, as task specs {{type, command, params, timeout}}; type is one of "
        f"{', '.join(task_types)}. SQL and redis tasks name their connection in params "
        '({"connection": "<name>"}), api tasks their URL ({"url": "..."}). They run under a policy that refuses '
        "anything that changes state; propose none when the evidence suffices."
        if max_tasks > 0
        else "- verification: an empty list (no tasks will be run)."
    )
    system = "\n".join(
        [
            "You are a senior site reliability engineer finding the root cause of a production incident.",
            "You get a summary of the evidence collected around an alert. Answer with the most likely root "
            "causes, most likely first (at most 5), each with:",
            "- component: one of the names under Components, verbatim.",
            f"- type: the fault, one of {', '.join(f.value for f in FaultType)} ({kinds}).",
            "- confidence: your probability (0 to 1) that this is the root cause.",
            "- reasoning: one or two sentences citing the evidence.",
            verification,
            "- fixes: {action, command, risk (low, medium or high), description}; a person reviews them, "
            "nothing runs them automatically.",
            "Values such as <HOST_1>, <IP_2> or <USER_3> stand for masked values: use them verbatim, do not "
            "guess what they are. *** is a removed secret.",
            "Reply with one JSON object and nothing else.",
        ]
    )
    return [ChatMessage(role="system", content=system), ChatMessage(role="user", content=summary.text)]


def refinement_messages(first: Sequence[ChatMessage], first_reply: str, results: str) -> list[ChatMessage]:
    """The refinement round: the first exchange, then what the verification tasks returned."""
    return [
        *first,
        ChatMessage(role="assistant", content=first_reply),
        ChatMessage(
            role="user",
            content=(
                "Your verification tasks ran (or were refused by policy). Their results:\n\n"
                f"{results}\n\nRevise your hypotheses and confidences in the light of these results, "
                "in the same JSON format. Verification tasks you propose now will not be run."
            ),
        ),
    ]


def correction_message(problem: MalformedReply) -> ChatMessage:
    """What a malformed reply is answered with before its one retry."""
    return ChatMessage(
        role="user",
        content=f"Your reply could not be used: {problem}. Reply again with only the JSON object the schema describes.",
    )


def schema_instruction(schema: Mapping[str, Any]) -> str:
    """The schema as an instruction, for servers that refuse ``response_format``."""
    return "Your reply must be one JSON object valid against this JSON schema:\n" + json.dumps(schema)


# ---------------------------------------------------------------------------------------------
# The reply


#: Hypotheses read from one reply, at most (the prompt asks for 5).
MAX_REPLY_HYPOTHESES = 10


class ProposedTask(BaseModel):
    """A task spec the model proposes. Anything beyond ``type, command, params, timeout`` (an
    ``approval``, an ``agent_id``) is dropped: the flow picks the agent, and nothing a model
    says is an approval."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    type: str = Field(min_length=1, max_length=64)
    command: str = Field(default="", max_length=10_000)
    params: dict[str, Any] = Field(default_factory=dict)
    timeout: float = Field(default=30.0, gt=0)

    def describe(self) -> str:
        what = self.command.strip().splitlines()[0] if self.command.strip() else json.dumps(self.params)
        return f"{self.type}: {what if len(what) <= 70 else what[:67] + '...'}"


class ProposedFix(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    action: str = Field(min_length=1, max_length=200)
    command: ProposedTask | str | None = None
    risk: Risk
    description: str = Field(default="", max_length=2000)

    @field_validator("risk", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value


class ProposedHypothesis(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    component: str = Field(min_length=1, max_length=200)
    #: The fault; kept as text so that one unknown type drops one hypothesis, not the reply.
    type: str = Field(min_length=1, max_length=64)
    confidence: float = Field(ge=0.0, le=1.0)
    reasoning: str = Field(default="", max_length=4000)
    verification: list[ProposedTask] = Field(default_factory=list)
    fixes: list[ProposedFix] = Field(default_factory=list)


class LLMReply(BaseModel):
    """A reply of the reply schema (``reply_schema``)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    hypotheses: list[ProposedHypothesis]

    @field_validator("hypotheses")
    @classmethod
    def _at_most(cls, value: list[ProposedHypothesis]) -> list[ProposedHypothesis]:
        return value[:MAX_REPLY_HYPOTHESES]


#: Components listed in the schema's enum up to this many (a long enum costs more than it helps).
_ENUM_COMPONENTS = 100


def reply_schema(space: CandidateSpace, masker: Masker, *, task_types: Sequence[str], max_tasks: int) -> dict[str, Any]:
    """The JSON schema of a reply, as sent in ``response_format`` (component names masked)."""
    task = {
        "type": "object",
        "properties": {
            "type": {"type": "string", "enum": list(task_types)},
            "command": {"type": "string"},
            "params": {"type": "object"},
            "timeout": {"type": "number", "description": "seconds"},
        },
        "required": ["type", "command", "params", "timeout"],
        "additionalProperties": False,
    }
    component: dict[str, Any] = {"type": "string", "description": "a name listed under Components"}
    if len(space.components) <= _ENUM_COMPONENTS:
        component["enum"] = sorted({masker.mask(name) for name in space.components})
    hypothesis = {
        "type": "object",
        "properties": {
            "component": component,
            "type": {"type": "string", "enum": [f.value for f in FaultType]},
            "confidence": {"type": "number", "minimum": 0, "maximum": 1},
            "reasoning": {"type": "string"},
            "verification": {"type": "array", "items": task, "maxItems": max(max_tasks, 0)},
            "fixes": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "action": {"type": "string"},
                        "command": task,
                        "risk": {"type": "string", "enum": [r.value for r in Risk]},
                        "description": {"type": "string"},
                    },
                    "required": ["action", "command", "risk", "description"],
                    "additionalProperties": False,
                },
            },
        },
        "required": ["component", "type", "confidence", "reasoning", "verification", "fixes"],
        "additionalProperties": False,
    }
    return {
        "type": "object",
        "properties": {"hypotheses": {"type": "array", "items": hypothesis, "maxItems": 5}},
        "required": ["hypotheses"],
        "additionalProperties": False,
    }


_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL | re.IGNORECASE)
_THINKING = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)


def parse_reply(content: str | None) -> LLMReply:
    """The reply in ``content``: one JSON object of the reply schema.

    A Markdown code fence around it, and a reasoning model's ``<think>…</think>`` before it, are
    tolerated (servers without ``response_format`` add them); nothing else is.

    Raises:
        MalformedReply: with one line saying what is wrong.
    """
    if content is None or not content.strip():
        raise MalformedReply("the reply is empty")
    text = _THINKING.sub("", content).strip()
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise MalformedReply(f"the reply is not JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from exc
    if not isinstance(data, dict):
        raise MalformedReply(f"the reply is a JSON {type(data).__name__}, not an object")
    try:
        return LLMReply.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc']) or 'reply'}: {error['msg']}"
            for error in exc.errors(include_url=False)[:3]
        )
        raise MalformedReply(f"the reply does not match the schema ({problems})") from exc


class LLMView(BaseModel):
    """The model's opinion in our terms: unmasked, checked against the candidates."""

    model_config = ConfigDict(frozen=True)

    #: Most likely first, ``proposed_by=["llm"]``, the model's own confidence; its verification
    #: tasks as specs and its fixes as suggestions that are never runnable.
    hypotheses: list[Hypothesis] = Field(default_factory=list)
    #: ``"component/fault"`` → the model's reasoning.
    reasoning: dict[str, str] = Field(default_factory=dict)
    #: Verification tasks of the kept hypotheses, unmasked, in the order proposed.
    tasks: list[ProposedTask] = Field(default_factory=list)
    #: ``"component/fault: reason"`` for every hypothesis that was not kept.
    dropped: list[str] = Field(default_factory=list)


def read_reply(reply: LLMReply, space: CandidateSpace, masker: Masker) -> LLMView:
    """Unmask ``reply`` and keep the hypotheses about candidates (each dropped one with its reason)."""
    hypotheses: list[Hypothesis] = []
    reasoning: dict[str, str] = {}
    tasks: list[ProposedTask] = []
    dropped: list[str] = []
    for proposed in reply.hypotheses:
        component = masker.unmask(proposed.component)
        resolved = space.resolve(component, proposed.type)
        if isinstance(resolved, str):
            dropped.append(f"{component}/{proposed.type}: {resolved}")
            continue
        name, fault = resolved
        if any(h.key == resolved for h in hypotheses):
            dropped.append(f"{name}/{fault.value}: proposed twice (the first one is kept)")
            continue
        verification = [ProposedTask.model_validate(masker.unmask_value(t.model_dump())) for t in proposed.verification]
        hypotheses.append(
            Hypothesis(
                component=name,
                fault=fault,
                confidence=round(proposed.confidence, 4),
                verification=[t.model_dump() for t in verification],
                fixes=[_suggestion(fix, proposed.confidence, masker) for fix in proposed.fixes],
                proposed_by=["llm"],
                rank=len(hypotheses) + 1,
            )
        )
        reasoning[f"{name}/{fault.value}"] = masker.unmask(proposed.reasoning)
        tasks += verification
    return LLMView(hypotheses=hypotheses, reasoning=reasoning, tasks=tasks, dropped=dropped)


def _suggestion(fix: ProposedFix, confidence: float, masker: Masker) -> FixSuggestion:
    if isinstance(fix.command, ProposedTask):
        command = masker.unmask_value(fix.command.model_dump())
    else:
        command = {"command": masker.unmask(fix.command)} if fix.command else {}
    return FixSuggestion(
        action=masker.unmask(fix.action),
        description=masker.unmask(fix.description) or "proposed by the LLM",
        command=command,
        # Nothing is known of how well a model's fix works: an even prior.
        confidence=round(confidence * 0.5, 4),
        risk=fix.risk,
        runnable=False,
        success_rate=0.5,
    )


# ---------------------------------------------------------------------------------------------
# Task results fed back


def summarize_results(
    tasks: Sequence[ProposedTask], results: Sequence[Mapping[str, Any]], masker: Masker, *, budget_tokens: int
) -> str:
    """What the model's verification tasks returned, masked, within ``budget_tokens``.

    Each task gets an equal share of the budget; its output is kept in whole lines.
    ``results`` are task results as dicts, with secret keys already masked by the caller.
    """
    share = max(budget_tokens // max(len(tasks), 1), 40)
    blocks = []
    for index, (task, result) in enumerate(zip(tasks, results, strict=True), start=1):
        status = str(result.get("status", "unknown"))
        error = result.get("error") if isinstance(result.get("error"), Mapping) else None
        head = f"[{index}] {task.describe()} -> {status}"
        if status in ("denied", "approval_required"):
            head += " (refused by policy, not run)"
        if error:
            head += f": {error.get('code', 'error')}: {error.get('message', '')}"
        head = masker.mask(head)
        used = estimate_tokens(head + "\n")
        body = _output_lines(result)
        kept = []
        for text in body:
            text = _shorten(masker.mask(text))
            cost = estimate_tokens(text + "\n")
            if used + cost > share:
                break
            kept.append(text)
            used += cost
        if len(kept) < len(body):
            kept.append(f"({len(body) - len(kept)} more lines not shown)")
        blocks.append("\n".join([head, *kept]))
    return "\n\n".join(blocks)


def _output_lines(result: Mapping[str, Any]) -> list[str]:
    lines: list[str] = []
    for key in ("output", "stderr"):
        text = result.get(key)
        if isinstance(text, str) and text.strip():
            lines += [row for row in text.splitlines() if row.strip()]
    data = result.get("data")
    if data not in (None, "", [], {}):
        lines += json.dumps(data, indent=1, default=str, ensure_ascii=False).splitlines()
    return lines


# ---------------------------------------------------------------------------------------------
# Merging the two views


#: How much a model's confidence counts beside the ranker's calibrated one: its probabilities are
#: not calibrated, and it saw some of the same evidence, so it is discounted before combining.
LLM_WEIGHT = 0.5
#: Agreement never makes a hypothesis certain: verification decides.
AGREEMENT_CAP = 0.95


class Agreement(BaseModel):
    """Both analysers name this root cause: each one's confidence and the combined one."""

    model_config = ConfigDict(frozen=True)

    component: str
    fault: FaultType
    ranker: float
    llm: float
    merged: float


class MergedRanking(BaseModel):
    """The final ranking, and where the analysers agreed and disagreed."""

    model_config = ConfigDict(frozen=True)

    hypotheses: list[Hypothesis]
    agreements: list[Agreement] = Field(default_factory=list)
    #: One line per disagreement, for the report.
    disagreements: list[str] = Field(default_factory=list)


def agreement_confidence(ranker: float, llm: float, *, weight: float = LLM_WEIGHT, cap: float = AGREEMENT_CAP) -> float:
    """Noisy-OR of the ranker's confidence and the model's discounted one, capped below 1.

    ``1 - (1 - ranker) * (1 - weight * llm)``, at most ``cap``, never below ``ranker``: agreement
    only raises a confidence (0.6 and 0.8 give 0.76 at weight 0.5).
    """
    combined = 1.0 - (1.0 - ranker) * (1.0 - weight * llm)
    return round(max(ranker, min(cap, combined)), 4)


def merge_rankings(
    ranker: Sequence[Hypothesis],
    llm: Sequence[Hypothesis],
    *,
    weight: float = LLM_WEIGHT,
    cap: float = AGREEMENT_CAP,
    target: TargetContext | None = None,
    history: FixHistory | None = None,
) -> MergedRanking:
    """The ranker's hypotheses and the model's, as one ranking that says who proposed what.

    * Both name it: ``proposed_by=["ranker", "llm"]``, confidence ``agreement_confidence``, the
      ranker's evidence, verification and fixes.
    * Only the ranker: unchanged.
    * Only the model: ``proposed_by=["llm"]``, confidence ``weight`` x its own (at most ``cap``),
      and the catalog's verification tasks and fixes for the pair, never the model's: what runs
      against the world comes from the catalog and the policy.

    Sorted by confidence (stable: the ranker's order on ties), ranks renumbered.

    Args:
        ranker: the ranker's hypotheses, most likely first.
        llm: the model's, most likely first (``LLMView.hypotheses``).
        weight: how much the model's confidence counts.
        cap: the most an agreement or a model-only hypothesis may reach.
        target: where components live, for the catalog's tasks.
        history: past fix outcomes, for the catalog's fix confidences.
    """
    theirs = {h.key: h for h in llm}
    ours = {h.key for h in ranker}
    merged: list[Hypothesis] = []
    agreements: list[Agreement] = []
    for hypothesis in ranker:
        other = theirs.get(hypothesis.key)
        if other is None:
            merged.append(hypothesis)
            continue
        confidence = agreement_confidence(hypothesis.confidence, other.confidence, weight=weight, cap=cap)
        agreements.append(
            Agreement(
                component=hypothesis.component,
                fault=hypothesis.fault,
                ranker=hypothesis.confidence,
                llm=other.confidence,
                merged=confidence,
            )
        )
        merged.append(hypothesis.model_copy(update={"confidence": confidence, "proposed_by": ["ranker", "llm"]}))
    for hypothesis in llm:
        if hypothesis.key in ours:
            continue
        draft = Hypothesis(
            component=hypothesis.component,
            fault=hypothesis.fault,
            confidence=round(min(cap, weight * hypothesis.confidence), 4),
            proposed_by=["llm"],
        )
        merged.append(
            draft.model_copy(
                update={
                    "verification": verification_tasks(draft, target),
                    "fixes": fix_suggestions(draft, target, history),
                }
            )
        )
    merged.sort(key=lambda h: -h.confidence)
    ranked = [h.model_copy(update={"rank": index}) for index, h in enumerate(merged, start=1)]
    return MergedRanking(hypotheses=ranked, agreements=agreements, disagreements=_disagreements(ranker, llm))


def _disagreements(ranker: Sequence[Hypothesis], llm: Sequence[Hypothesis]) -> list[str]:
    if not ranker or not llm:
        return []
    lines = []

    def name(h: Hypothesis) -> str:
        return f"{h.component}/{h.fault.value} ({h.confidence:.2f})"

    if ranker[0].key != llm[0].key:
        lines.append(f"top cause differs: the ranker says {name(ranker[0])}, the llm says {name(llm[0])}")
    theirs = {h.key for h in llm}
    if ranker[0].key not in theirs:
        lines.append(f"the llm does not name the ranker's top cause {name(ranker[0])}")
    ours = {h.key for h in ranker}
    lines += [
        f"only the llm proposes {name(h)}; it is not among the ranker's top {len(ranker)}"
        for h in llm
        if h.key not in ours
    ]
    return lines
