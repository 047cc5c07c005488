"""What is accepted back from a language model: the reply schema, its parsing, and reading a reply
against the ranker's candidates (unknown components and faults dropped, placeholders unmasked)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from models.domain._errors import ModelsError
from models.domain._hypothesis import FixSuggestion, Hypothesis
from models.domain._types import FAULTS_BY_KIND, FaultType, Risk, ServiceKind
from models.llm._masking import Masker
from models.ranking._analysis import Analysis


class MalformedReply(ModelsError):
    """The model's reply is not one JSON object of the reply schema (one line saying why)."""


class CandidateSpace(BaseModel):
    """The components the model may name and the faults each can have: the ranker's candidates."""

    model_config = ConfigDict(frozen=True)

    faults: dict[str, list[FaultType]]

    @classmethod
    def of(cls, analysis: Analysis, components: Iterable[str] = ()) -> CandidateSpace:
        """The candidates ``analysis`` scored; ``components`` (known from elsewhere) may have any fault."""
        faults: dict[str, list[FaultType]] = {}
        if analysis.candidates is not None:
            for component, fault in analysis.candidates.candidates():
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
