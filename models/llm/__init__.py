"""The LLM analyser's pure side: what a language model is told about an incident, and what is
accepted back from it. No network here: ``flows.llm`` sends the messages and calls these.

    masker = Masker(environment.redact, scrub=redact_text)   # secrets out, names → <HOST_1>
    space = CandidateSpace.of(analysis)                        # what the model may name
    summary = summarize_evidence(analysis, facts, space=space, masker=masker, budget_tokens=3000)
    messages = analysis_messages(summary, task_types=[...], max_tasks=5)
    reply = parse_reply(content)                               # MalformedReply unless the schema
    view = read_reply(reply, space, masker)                    # unmasked; unknown names dropped
    merged = merge_rankings(analysis.hypotheses, view.hypotheses)

One idea per private module: ``_llm_masking`` (what must not leave), ``_llm_prompt`` (what the
model is told, within a token budget), ``_llm_reply`` (what is accepted back), ``_llm_merge``
(the two views as one ranking).

Errors (beside the tree of ``models.domain._errors``)::

    ModelsError
    ├── MalformedReply     the reply is not the JSON object the schema asks for
    └── InvalidRedaction   an environment's ``redact`` entry is not a regular expression

The model's view is a second opinion, never trusted blindly: names it uses must be candidates of
the ranker, its confidences are discounted before they are combined, and the fixes it proposes
are shown to a person, never run.
"""

from models.llm._masking import PLACEHOLDER, InvalidRedaction, Masker
from models.llm._merge import AGREEMENT_CAP, LLM_WEIGHT, Agreement, MergedRanking, agreement_confidence, merge_rankings
from models.llm._prompt import (
    MAX_LINE_CHARS,
    ChatMessage,
    EvidenceSummary,
    IncidentFacts,
    analysis_messages,
    correction_message,
    estimate_tokens,
    log_template,
    refinement_messages,
    schema_instruction,
    summarize_evidence,
    summarize_results,
)
from models.llm._reply import (
    MAX_REPLY_HYPOTHESES,
    CandidateSpace,
    LLMReply,
    LLMView,
    MalformedReply,
    ProposedFix,
    ProposedHypothesis,
    ProposedTask,
    parse_reply,
    read_reply,
    reply_schema,
)

__all__ = [
    "AGREEMENT_CAP",
    "LLM_WEIGHT",
    "MAX_LINE_CHARS",
    "MAX_REPLY_HYPOTHESES",
    "PLACEHOLDER",
    "Agreement",
    "CandidateSpace",
    "ChatMessage",
    "EvidenceSummary",
    "IncidentFacts",
    "InvalidRedaction",
    "LLMReply",
    "LLMView",
    "MalformedReply",
    "Masker",
    "MergedRanking",
    "ProposedFix",
    "ProposedHypothesis",
    "ProposedTask",
    "agreement_confidence",
    "analysis_messages",
    "correction_message",
    "estimate_tokens",
    "log_template",
    "merge_rankings",
    "parse_reply",
    "read_reply",
    "refinement_messages",
    "reply_schema",
    "schema_instruction",
    "summarize_evidence",
    "summarize_results",
]
