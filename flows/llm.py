"""The LLM analyser: a second opinion beside the ranker, from any OpenAI-compatible server.

This module is the one place that talks to a language model server. It is off unless
``CLOUD_AGENT_LLM_BASE_URL`` and ``CLOUD_AGENT_LLM_MODEL`` are set. The cycle is complete without
it: when the server is unreachable, slow or talks nonsense the analysis is the ranker's, exactly
as without the analyser, and the report says why the model had nothing to add.

    analysis = second_opinion(ctx, analysis, facts, report)

1. The evidence is summarised within a token budget and masked (``models.llm``): secrets are
   scrubbed, the environment's ``redact`` values become placeholders whose map stays here.
2. The model answers in a JSON schema (``response_format``; the schema goes into the prompt for
   servers that refuse it). A malformed reply is retried once, then given up on.
3. Its verification tasks (at most ``llm_max_tasks``) run through ``run_batches`` on the
   environment's agent, under the same policy as everything else and with no approval, so
   anything but a read is refused and audited. Their results, masked, go back for one
   refinement round; tasks proposed in that round are not run.
4. Its hypotheses are merged with the ranker's (``models.llm.merge_rankings``).

Errors::

    LLMError
    ├── LLMUnavailable     no usable answer: connection, timeout, HTTP error, out of time
    └── LLMReplyInvalid    the reply was malformed twice
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, SecretStr

from contract import PlannedTask
from executors import executor_types, redact_text, redact_value, register_secret
from flows._models import outcome_store
from flows.context import IncidentContext
from flows.dispatch import run_batches
from flows.report import CycleReport
from flows.runtime import settings
from flows.settings import FlowSettings
from models import Analysis, Observations, Telemetry
from models.llm import (
    CandidateSpace,
    ChatMessage,
    IncidentFacts,
    InvalidRedaction,
    LLMReply,
    LLMView,
    MalformedReply,
    Masker,
    MergedRanking,
    ProposedTask,
    analysis_messages,
    correction_message,
    merge_rankings,
    parse_reply,
    read_reply,
    refinement_messages,
    reply_schema,
    schema_instruction,
    summarize_evidence,
    summarize_results,
)

log = logging.getLogger("cloud_agent.llm")

#: Who runs the model's tasks, in the audit log (distinct from the cycle's own tasks).
LLM_ACTOR = "flow:rca-incident:llm"
#: Seconds one of the model's tasks may run at most (the environment's cap applies on top).
MAX_TASK_SECONDS = 30.0
#: Seconds to connect to the server, at most (a dead server should not cost the full timeout).
CONNECT_SECONDS = 5.0
#: Characters of an error body quoted in a reason.
_QUOTED = 200

Runner = Callable[..., dict[str, list[dict[str, Any]]]]


class LLMError(Exception):
    """Base of the analyser's errors: the model has nothing to add (the message says why)."""


class LLMUnavailable(LLMError):
    pass


class LLMReplyInvalid(LLMError):
    pass


class LLMConfig(BaseModel):
    """Where the model is and how long it may take."""

    model_config = ConfigDict(frozen=True)

    base_url: str
    model: str
    api_key: SecretStr | None = None
    timeout_seconds: float = 60.0
    reply_tokens: int = 2000

    @classmethod
    def from_settings(cls, current: FlowSettings) -> LLMConfig | None:
        """The configured model, ``None`` when the analyser is off."""
        if not current.llm_enabled:
            return None
        assert current.llm_base_url is not None and current.llm_model is not None
        return cls(
            base_url=current.llm_base_url,
            model=current.llm_model,
            api_key=current.llm_api_key,
            timeout_seconds=current.llm_timeout_seconds,
            reply_tokens=current.llm_reply_tokens,
        )


class ChatClient:
    """An OpenAI-compatible ``/chat/completions`` client that accepts replies of one schema only.

    Args:
        config: the server, model and key.
        deadline: ``time.monotonic()`` by which every request must have ended.
        transport: an httpx transport (a proxy or TLS set-up of its own).
    """

    def __init__(
        self, config: LLMConfig, *, deadline: float | None = None, transport: httpx.BaseTransport | None = None
    ):
        headers = {}
        if config.api_key is not None and config.api_key.get_secret_value():
            key = config.api_key.get_secret_value()
            register_secret(key)  # masked wherever it might show up: results, logs, audit records
            headers["Authorization"] = f"Bearer {key}"
        self.config = config
        self.deadline = deadline
        self.requests = 0
        # True until the server refuses ``response_format``; then the schema goes into the prompt.
        self.structured = True
        self._http = httpx.Client(base_url=config.base_url.rstrip("/") + "/", headers=headers, transport=transport)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ChatClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def ask(self, messages: Sequence[ChatMessage], schema: Mapping[str, Any]) -> tuple[LLMReply, str]:
        """The parsed reply and its text; a malformed reply is answered with the problem once.

        Raises:
            LLMUnavailable: no answer (connection, timeout, HTTP error status, out of time).
            LLMReplyInvalid: the reply was malformed twice.
        """
        content = ""
        try:
            content = self._complete(messages, schema)
            return parse_reply(content), content
        except MalformedReply as first:
            log.warning("the LLM's reply was malformed, asking once more: %s", first)
            retry = [*messages, ChatMessage(role="assistant", content=content[:4000]), correction_message(first)]
            try:
                content = self._complete(retry, schema)
                return parse_reply(content), content
            except MalformedReply as second:
                raise LLMReplyInvalid(f"the reply was malformed twice: {first}; then {second}") from second

    def _complete(self, messages: Sequence[ChatMessage], schema: Mapping[str, Any]) -> str:
        response = self._post(self._body(messages, schema))
        if self.structured and response.status_code in (400, 415, 422):
            # A server without structured outputs says so with a 4xx: ask again, schema in the prompt.
            log.info("the LLM server refused response_format (%s); asking for JSON in the prompt", response.status_code)
            self.structured = False
            response = self._post(self._body(messages, schema))
        if response.status_code >= 400:
            raise LLMUnavailable(
                f"the LLM server answered HTTP {response.status_code}: {redact_text(response.text[:_QUOTED])}"
            )
        try:
            content = response.json()["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise MalformedReply("the answer is not a chat completion (no choices[0].message.content)") from exc
        if isinstance(content, list):  # content parts, as some servers send them
            content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
        if not isinstance(content, str):
            raise MalformedReply("the answer's message has no text content")
        return content

    def _body(self, messages: Sequence[ChatMessage], schema: Mapping[str, Any]) -> dict[str, Any]:
        sent = [m.model_dump() for m in messages]
        body: dict[str, Any] = {
            "model": self.config.model,
            "messages": sent,
            "temperature": 0,
            "max_tokens": self.config.reply_tokens,
        }
        if self.structured:
            # strict=false: the free-form ``params`` object is outside OpenAI's strict subset; the
            # reply is validated here anyway.
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "rca_hypotheses", "schema": dict(schema), "strict": False},
            }
        elif sent and sent[0]["role"] == "system":
            sent[0] = {**sent[0], "content": sent[0]["content"] + "\n\n" + schema_instruction(schema)}
        # The last net: whatever slipped past the masker, no registered secret leaves.
        body["messages"] = [{**m, "content": redact_text(m["content"])} for m in sent]
        return body

    def _post(self, body: dict[str, Any]) -> httpx.Response:
        timeout = self.config.timeout_seconds
        if self.deadline is not None:
            left = self.deadline - time.monotonic()
            if left <= 0.5:
                raise LLMUnavailable("out of time for the LLM analyser")
            timeout = min(timeout, left)
        self.requests += 1
        try:
            return self._http.post(
                "chat/completions", json=body, timeout=httpx.Timeout(timeout, connect=min(CONNECT_SECONDS, timeout))
            )
        except httpx.TimeoutException as exc:
            raise LLMUnavailable(f"no answer from the LLM server within {timeout:.0f} s") from exc
        except httpx.HTTPError as exc:
            where = redact_text(self.config.base_url)
            raise LLMUnavailable(f"cannot reach the LLM server at {where}: {type(exc).__name__}: {exc}") from exc


def incident_facts(ctx: IncidentContext, telemetry: Telemetry, observations: Observations) -> IncidentFacts:
    """What the summary for the model is made of, from the cycle's context and evidence."""
    return IncidentFacts(
        alertname=ctx.alert.alertname,
        service=ctx.alert.service,
        summary=ctx.alert.summary,
        started_at=ctx.alert.starts_at,
        logs=telemetry.logs,
        traces=telemetry.traces,
        observations=observations,
        target=ctx.target,
    )


def second_opinion(
    ctx: IncidentContext,
    analysis: Analysis,
    facts: IncidentFacts,
    report: CycleReport,
    *,
    name: str = "analyze",
    options: FlowSettings | None = None,
    run: Runner = run_batches,
) -> Analysis:
    """``analysis`` with the model's view merged in; ``analysis`` itself when there is none.

    The model's view lands in ``report.other_views`` and what happened (agreements,
    disagreements, tasks run or refused, why there is no view) in ``report.other_view_notes``.

    Args:
        ctx: the incident: environment (its ``redact`` list and agent), topology, targets.
        analysis: the ranker's.
        facts: the evidence to summarise.
        report: the cycle's report.
        name: the analysis step (``analyze`` or ``analyze-again``).
        options: settings (the process's by default).
        run: runs planned tasks (``run_batches``).
    """
    current = options or settings()
    config = LLMConfig.from_settings(current)
    if config is None:
        return analysis
    key = "llm" if name == "analyze" else f"llm ({name})"
    step = report.begin(f"{name}-llm")
    notes: list[str] = []
    report.other_views[key] = []
    report.other_view_notes[key] = notes
    try:
        merged, view = _consult(ctx, analysis, facts, current, config, notes, name, run)
    except (LLMError, InvalidRedaction) as exc:
        notes.append(f"no opinion: {exc}")
        log.warning("the LLM analyser has no opinion: %s", exc)
        report.end(step, f"no opinion: {exc}")
        return analysis
    except Exception as exc:  # optional and never trusted: a bug here must not cost the cycle its diagnosis
        log.exception("the LLM analyser failed")
        notes.append(f"no opinion: the analyser failed ({type(exc).__name__}: {redact_text(str(exc))[:_QUOTED]})")
        report.end(step, "no opinion: the analyser failed")
        return analysis
    report.other_views[key] = view.hypotheses
    notes += _merge_notes(merged, view, current.llm_weight)
    top = view.hypotheses[0] if view.hypotheses else None
    report.end(
        step,
        (f"top: {top.component}/{top.fault} {top.confidence:.2f}" if top else "no hypothesis kept")
        + f"; {len(merged.agreements)} agreed, {len(merged.disagreements)} disagreements",
    )
    return analysis.model_copy(update={"hypotheses": merged.hypotheses})


def _consult(
    ctx: IncidentContext,
    analysis: Analysis,
    facts: IncidentFacts,
    current: FlowSettings,
    config: LLMConfig,
    notes: list[str],
    name: str,
    run: Runner,
) -> tuple[MergedRanking, LLMView]:
    deadline = time.monotonic() + current.llm_total_seconds
    masker = Masker(ctx.environment.redact, scrub=redact_text)
    space = CandidateSpace.of(analysis, ctx.services())
    summary = summarize_evidence(analysis, facts, space=space, masker=masker, budget_tokens=current.llm_prompt_tokens)
    task_types = list(executor_types())
    schema = reply_schema(space, masker, task_types=task_types, max_tasks=current.llm_max_tasks)
    messages = analysis_messages(summary, task_types=task_types, max_tasks=current.llm_max_tasks)
    notes.append(f"asked {config.model}: {summary.describe()}")
    with ChatClient(config, deadline=deadline) as client:
        reply, content = client.ask(messages, schema)
        view = read_reply(reply, space, masker)
        notes.append(f"answered {len(reply.hypotheses)} hypotheses, kept {len(view.hypotheses)}")
        notes += [f"dropped {line}" for line in view.dropped]
        tasks = view.tasks[: current.llm_max_tasks]
        if len(view.tasks) > len(tasks):
            notes.append(f"{len(view.tasks) - len(tasks)} more proposed tasks not run (limit {current.llm_max_tasks})")
        left = deadline - time.monotonic()
        if tasks and left > 2 * CONNECT_SECONDS:
            results = _run_tasks(ctx, tasks, name, run, timeout=min(MAX_TASK_SECONDS, left / 2))
            notes += [_task_note(task, result) for task, result in zip(tasks, results, strict=True)]
            fed_back = summarize_results(
                tasks,
                [redact_value(result) for result in results],
                masker,
                budget_tokens=current.llm_prompt_tokens // 2,
            )
            try:
                refined, _ = client.ask(refinement_messages(messages, content, fed_back), schema)
            except LLMError as exc:
                notes.append(f"refinement failed, the first answer stands: {exc}")
            else:
                view = read_reply(refined, space, masker)
                notes.append(f"refined after {len(tasks)} task results: kept {len(view.hypotheses)} hypotheses")
                notes += [f"dropped (refinement) {line}" for line in view.dropped]
                if view.tasks:
                    notes.append(f"{len(view.tasks)} tasks proposed in the refinement were not run (one round only)")
        elif tasks:
            notes.append(f"{len(tasks)} proposed tasks not run: out of time")
    merged = merge_rankings(
        analysis.hypotheses,
        view.hypotheses,
        weight=current.llm_weight,
        target=ctx.target,
        history=outcome_store().fix_history(),
    )
    return merged, view


def _run_tasks(
    ctx: IncidentContext, tasks: Sequence[ProposedTask], name: str, run: Runner, *, timeout: float
) -> list[dict[str, Any]]:
    """The model's tasks on the environment's agent, as any other task: policy, limits, audit.

    The spec is rebuilt from the four fields a model may set; in particular no approval is ever
    attached, so a task that would change anything ends ``approval_required`` or ``denied``.
    """
    planned = [
        PlannedTask(
            label=f"llm: {task.describe()}"[:80],
            purpose="verification",
            task={
                "type": task.type,
                "command": task.command,
                "params": dict(task.params),
                "timeout": min(task.timeout, timeout),
                "agent_id": ctx.agent_id,
            },
        )
        for task in tasks
    ]
    step = f"{name}-llm-verify"
    return run({ctx.environment.name: planned}, step=step, actor=LLM_ACTOR).get(ctx.environment.name, [])


def _task_note(task: ProposedTask, result: Mapping[str, Any]) -> str:
    status = str(result.get("status", "unknown"))
    error = result.get("error") if isinstance(result.get("error"), Mapping) else None
    reason = f": {error.get('message', '')}" if error and status != "succeeded" else ""
    refused = " (refused by policy)" if status in ("denied", "approval_required") else ""
    return redact_text(f"verification `{task.describe()}` → {status}{refused}{reason}")[:300]


def _merge_notes(merged: MergedRanking, view: LLMView, weight: float) -> list[str]:
    lines = [
        f"agrees on {a.component}/{a.fault.value}: ranker {a.ranker:.2f}, llm {a.llm:.2f} → {a.merged:.2f} "
        f"(noisy-OR with the llm weighted {weight:.2f})"
        for a in merged.agreements
    ]
    lines += [f"disagrees: {line}" for line in merged.disagreements]
    for hypothesis in view.hypotheses:
        label = f"{hypothesis.component}/{hypothesis.fault.value}"
        reasoning = view.reasoning.get(label, "")
        if reasoning:
            lines.append(f"why {label} ({hypothesis.confidence:.2f}): {reasoning[:400]}")
        for fix in hypothesis.fixes[:2]:
            command = fix.command.get("command") or fix.command.get("params") or ""
            lines.append(f"fix idea for {label} ({fix.risk} risk, not run): {fix.action} `{str(command)[:120]}`")
    return lines
