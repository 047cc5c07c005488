"""What a language model is told: the incident's evidence as compact, masked text within a token
budget, the messages of both rounds, and the verification results fed back."""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from models.domain._observations import LONG_RUNNING_SECONDS, Observations
from models.domain._target import TargetContext
from models.domain._types import FAULTS_BY_KIND, FaultType, ServiceKind
from models.llm._masking import PLACEHOLDER, Masker
from models.llm._reply import CandidateSpace, MalformedReply, ProposedTask
from models.ranking._analysis import Analysis


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
    f"({PLACEHOLDER.pattern})"  # our placeholders stay
    r"|\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b"
    r"|\b0x[0-9a-f]+\b|\b(?=[0-9a-f]*\d)[0-9a-f]{12,}\b"
    r"|\b\d+(?:\.\d+)?(?:ms|s|m|h|kb|mb|gb|%)?\b",
    re.IGNORECASE,
)

#: A number followed by one of these is a measure, not a status.
_UNIT_AFTER = re.compile(r"\s*(?:ms|s|sec|secs|seconds?|m|min|minutes?|h|hours?|bytes?|kb|mb|gb|%|rows?)\b", re.I)


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
    """A log message with its variable parts (numbers, ids, hex) as ``<*>``.

    Our placeholders stay, and so do bare integers from 100 to 599: an HTTP status ("returned
    503") tells more than it splits patterns.
    """

    def variable(match: re.Match[str]) -> str:
        text = match.group(0)
        if match.group(1):
            return text
        if text.isdigit() and 100 <= int(text) <= 599 and not _UNIT_AFTER.match(message, match.end()):
            return text
        return "<*>"

    return _VARIABLE.sub(variable, message)


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
