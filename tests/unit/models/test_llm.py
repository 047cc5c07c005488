"""The LLM analyser's pure side: masking, the evidence summary and its budget, the reply schema
and its parsing, reading a reply against the candidates, merging, and results fed back."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import jsonschema
import pandas as pd
import pytest

from models import (
    Analysis,
    CaseFeatures,
    DbSnapshot,
    Detection,
    Evidence,
    FaultType,
    HealthCheck,
    Hypothesis,
    Observations,
    TargetContext,
    TopQuery,
)
from models.domain._types import ServiceKind
from models.llm import (
    AGREEMENT_CAP,
    CandidateSpace,
    EvidenceSummary,
    IncidentFacts,
    InvalidRedaction,
    LLMReply,
    MalformedReply,
    Masker,
    ProposedTask,
    agreement_confidence,
    analysis_messages,
    estimate_tokens,
    log_template,
    merge_rankings,
    parse_reply,
    read_reply,
    reply_schema,
    summarize_evidence,
    summarize_results,
)

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC).timestamp()
KINDS = {"frontend": ServiceKind.SERVICE, "checkout": ServiceKind.SERVICE, "orders-db": ServiceKind.DATABASE}
KINDS["cart-cache"] = ServiceKind.CACHE


def _analysis(hypotheses: list[Hypothesis] | None = None) -> Analysis:
    hypotheses = hypotheses or [
        Hypothesis(
            component="orders-db",
            fault=FaultType.DB_POOL_EXHAUSTED,
            confidence=0.6,
            evidence=[
                Evidence(kind="db", source="orders-db", summary="orders-db: 98/100 connections", score=0.9),
                Evidence(kind="metric", source="checkout_latency", summary="checkout latency x8", score=0.7),
            ],
        ),
        Hypothesis(component="checkout", fault=FaultType.CPU, confidence=0.2, rank=2),
    ]
    return Analysis(
        detection=Detection(
            is_anomaly=True,
            change_point=T0,
            score=31.5,
            involved_services=["checkout", "orders-db"],
            anomalous_metrics=["checkout_latency", "orders-db_connections"],
        ),
        hypotheses=hypotheses,
        candidates=CaseFeatures(
            components=list(KINDS),
            component_features=[f"kind_{kind.value}" for kind in ServiceKind],
            component_values=[[float(kind is other) for other in ServiceKind] for kind in KINDS.values()],
        ),
    )


def _facts(**overrides: object) -> IncidentFacts:
    values: dict[str, object] = {
        "alertname": "HighLatency",
        "service": "checkout",
        "summary": "p99 latency above 2 s",
        "started_at": datetime.fromtimestamp(T0, UTC),
    }
    values.update(overrides)
    return IncidentFacts.model_validate(values)


def _logs(rows: list[tuple[float, str, str, str]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["time", "service", "level", "message"])


# -- masking ------------------------------------------------------------------------------------


def test_masker_replaces_redacted_values_with_stable_placeholders_and_unmasks_them() -> None:
    masker = Masker(["db-7.corp.example", r"re:10\.1\.\d+\.\d+", "re:user-\\d+"])
    text = "user-4711 on DB-7.corp.example via 10.1.2.3; db-7.corp.example again from 10.1.9.9"
    masked = masker.mask(text)
    assert masked == "<USER_1> on <HOST_1> via <IP_1>; <HOST_1> again from <IP_2>"
    assert masker.unmask(masked) == "user-4711 on DB-7.corp.example via 10.1.2.3; DB-7.corp.example again from 10.1.9.9"
    assert masker.mask(masked) == masked  # idempotent
    assert "corp" not in repr(masker)


def test_masker_scrubs_secrets_irreversibly_before_masking_names() -> None:
    masker = Masker(["db-7.corp.example"], scrub=lambda text: text.replace("s3cr3t-pw", "***"))
    masked = masker.mask("postgres://app:s3cr3t-pw@db-7.corp.example/orders")
    assert masked == "postgres://app:***@<HOST_1>/orders"
    assert "s3cr3t-pw" not in json.dumps(masker.placeholders)


def test_masker_defuses_placeholders_it_did_not_issue() -> None:
    masker = Masker(["db-7.corp.example"])
    assert masker.mask("<HOST_1> says hi") == "‹HOST_1› says hi"
    assert masker.mask("db-7.corp.example") == "<HOST_1>"
    assert masker.unmask("‹HOST_1› and <HOST_1> and <HOST_2>") == "‹HOST_1› and db-7.corp.example and <HOST_2>"


def test_masker_masks_nested_values_and_ignores_empty_matches() -> None:
    masker = Masker(["re:x*", "10.0.0.1"])
    value = {"hosts": ["10.0.0.1", 5], "10.0.0.1": {"note": "abc"}}
    assert masker.mask_value(value) == {"hosts": ["<IP_1>", 5], "<IP_1>": {"note": "abc"}}
    assert masker.unmask_value(masker.mask_value(value)) == value


def test_masker_refuses_a_redact_entry_that_is_not_a_regular_expression() -> None:
    with pytest.raises(InvalidRedaction, match="not a regular expression"):
        Masker(["re:([unclosed"])


# -- the summary and its budget -----------------------------------------------------------------


def test_estimate_tokens_errs_high_on_symbols_and_cjk() -> None:
    assert estimate_tokens("") == 0
    assert estimate_tokens("abcdef") == 2
    assert estimate_tokens("根因分析") == 4
    assert estimate_tokens("ab根") == 2


def test_log_template_keeps_placeholders_and_words_with_digits() -> None:
    assert log_template("timeout after 1500ms talking to <HOST_2> over http2 (attempt 3)") == (
        "timeout after <*> talking to <HOST_2> over http2 (attempt <*>)"
    )
    assert log_template("trace 4bf92f3577b34da6a3ce929d0e0e4736 failed") == "trace <*> failed"
    assert (
        log_template("upstream returned 503 after 250ms on port 8080") == "upstream returned 503 after <*> on port <*>"
    )


def test_summary_counts_log_patterns_and_masks_before_templating() -> None:
    logs = _logs(
        [(T0 + i, "checkout", "ERROR", f"connection to 10.1.2.3:5432 timed out after {100 + i} ms") for i in range(7)]
        + [(T0 + 9, "checkout", "WARN", "slow response from orders-db")]
    )
    masker = Masker(["10.1.2.3"])
    analysis = _analysis()
    summary = summarize_evidence(
        analysis, _facts(logs=logs), space=CandidateSpace.of(analysis), masker=masker, budget_tokens=3000
    )
    assert "7x checkout ERROR: connection to <IP_1>:<*> timed out after <*> ms (first at 10:00:00)" in summary.text
    assert "1x checkout WARN: slow response from orders-db" in summary.text
    assert "10.1.2.3" not in summary.text
    assert summary.omitted == {}


def test_summary_stays_within_budget_dropping_deep_lines_first_and_never_cutting_a_line() -> None:
    logs = _logs(
        [
            (T0 + i, "checkout", "ERROR", f"failure kind {chr(65 + i % 26)}{chr(65 + i // 26)} in module m")
            for i in range(300)
        ]
    )
    db = DbSnapshot(
        service="orders-db",
        engine="postgres",
        connections=98,
        max_connections=100,
        active=90,
        long_running=40,
        longest_seconds=300,
        top_queries=[TopQuery(id="1", seconds=300, state="active", query="SELECT * FROM orders WHERE id = $1")],
    )
    facts = _facts(logs=logs, observations=Observations(db=[db]))
    analysis = _analysis()
    space = CandidateSpace.of(analysis)
    full = summarize_evidence(analysis, facts, space=space, masker=Masker(), budget_tokens=100_000)
    small = summarize_evidence(analysis, facts, space=space, masker=Masker(), budget_tokens=600)
    assert full.omitted == {} and full.tokens > 600
    assert small.tokens <= 600
    # The database's headline (depth 1) is kept; the 4th and later log patterns (deeper) go first.
    assert "orders-db (postgres): 98/100 connections" in small.text
    assert small.omitted["logs"] > 250
    assert f"({small.omitted['logs']} more not shown)" in small.text
    # Whole lines only: every line of the small summary is a line of the full one (or a note).
    full_lines = set(full.text.splitlines())
    for line in small.text.splitlines():
        assert line in full_lines or line.endswith("more not shown)")


def test_summary_shortens_an_overlong_value_only_after_masking() -> None:
    query = "SELECT " + ", ".join(f"col{i}" for i in range(200)) + " FROM t WHERE host = 'db-7.corp.example'"
    db = DbSnapshot(
        service="orders-db",
        engine="postgres",
        connections=1,
        top_queries=[
            TopQuery(seconds=9, state="active", query="SELECT 1 FROM t WHERE host = 'db-7.corp.example' AND " + query)
        ],
    )
    analysis = _analysis()
    summary = summarize_evidence(
        analysis,
        _facts(observations=Observations(db=[db])),
        space=CandidateSpace.of(analysis),
        masker=Masker(["db-7.corp.example"]),
        budget_tokens=3000,
    )
    line = next(line for line in summary.text.splitlines() if "statement running" in line)
    assert "<HOST_1>" in line and "chars)" in line and len(line) < 450


def test_summary_lists_components_with_kinds_and_health() -> None:
    analysis = _analysis()
    facts = _facts(
        observations=Observations(
            health=[
                HealthCheck(service="checkout", status_code=503, ok=False, latency_ms=12, error="upstream"),
                HealthCheck(service="frontend", status_code=200, ok=True, latency_ms=3),
            ]
        ),
        target=TargetContext.model_validate(
            {"services": {"orders-db": {"kind": "database", "engine": "postgres", "connection": "orders"}}}
        ),
    )
    summary = summarize_evidence(
        analysis, facts, space=CandidateSpace.of(analysis), masker=Masker(), budget_tokens=3000
    )
    assert "orders-db: database, postgres, connection orders" in summary.text
    assert "cart-cache: cache, connection default" in summary.text
    assert "checkout: HTTP 503 after 12 ms (upstream)" in summary.text
    assert "healthy: frontend (3 ms)" in summary.text
    # The ranker's own conclusions are not given: the model's opinion should be a second one.
    assert "0.60" not in summary.text and "db_pool_exhausted" not in summary.text.split("## Detection")[1]


# -- messages and the schema ------------------------------------------------------------------------


def test_reply_schema_is_a_valid_json_schema_that_a_good_reply_satisfies() -> None:
    analysis = _analysis()
    space = CandidateSpace.of(analysis)
    masker = Masker(["orders-db"])
    schema = reply_schema(space, masker, task_types=["shell", "postgres"], max_tasks=3)
    jsonschema.Draft202012Validator.check_schema(schema)
    reply = {
        "hypotheses": [
            {
                "component": masker.mask("orders-db"),
                "type": "db_pool_exhausted",
                "confidence": 0.8,
                "reasoning": "98 of 100 connections",
                "verification": [{"type": "postgres", "command": "SELECT 1", "params": {}, "timeout": 10}],
                "fixes": [],
            }
        ]
    }
    jsonschema.validate(reply, schema)
    assert "orders-db" not in json.dumps(schema)  # component names are masked in the enum too


def test_messages_name_the_rules_and_carry_the_summary() -> None:
    summary = EvidenceSummary(text="## Alert\nsomething\n", tokens=5, budget=100, lines=1)
    system, user = analysis_messages(summary, task_types=["shell"], max_tasks=2)
    assert system.role == "system" and "at most 2" in system.content and "db_pool_exhausted" in system.content
    assert user.content == summary.text
    system, _ = analysis_messages(summary, task_types=["shell"], max_tasks=0)
    assert "no tasks will be run" in system.content


# -- parsing ----------------------------------------------------------------------------------------

GOOD = {
    "hypotheses": [
        {
            "component": "orders-db",
            "type": "db_pool_exhausted",
            "confidence": 0.8,
            "reasoning": "pool is full",
            "verification": [
                {"type": "postgres", "command": "SELECT count(*) FROM pg_stat_activity", "params": {}, "timeout": 10}
            ],
            "fixes": [{"action": "restart app", "command": "kubectl rollout restart", "risk": "Medium"}],
        }
    ]
}


def test_parse_reply_accepts_the_schema_in_a_fence_or_after_thinking() -> None:
    assert parse_reply(json.dumps(GOOD)).hypotheses[0].component == "orders-db"
    assert parse_reply(f"```json\n{json.dumps(GOOD)}\n```").hypotheses[0].confidence == 0.8
    assert parse_reply(f"<think>hmm</think>\n{json.dumps(GOOD)}").hypotheses[0].fixes[0].risk == "medium"


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (None, "empty"),
        ("   ", "empty"),
        ("the database, I think", "not JSON"),
        ("[1, 2]", "JSON list, not an object"),
        ('{"answer": "orders-db"}', "hypotheses: Field required"),
        ('{"hypotheses": [{"component": "x", "type": "cpu", "confidence": 1.7}]}', "less than or equal to 1"),
    ],
)
def test_parse_reply_refuses_malformed_replies_with_a_reason(content: str | None, reason: str) -> None:
    with pytest.raises(MalformedReply, match=reason):
        parse_reply(content)


def test_a_proposed_task_cannot_carry_an_approval_or_pick_its_agent() -> None:
    task = ProposedTask.model_validate(
        {"type": "shell", "command": "reboot", "approval": {"approved_by": "llm"}, "agent_id": "agent-prod-001"}
    )
    assert task.model_dump() == {"type": "shell", "command": "reboot", "params": {}, "timeout": 30.0}


# -- reading a reply --------------------------------------------------------------------------------


def test_read_reply_unmasks_and_drops_what_is_not_a_candidate_with_a_reason() -> None:
    masker = Masker(["orders-db", "10.1.2.3"])
    masker.mask("orders-db on 10.1.2.3")  # issues <HOST_1>, <IP_1> as the prompt did
    reply = LLMReply.model_validate(
        {
            "hypotheses": [
                {
                    "component": "<HOST_1>",
                    "type": "DB-Pool-Exhausted",
                    "confidence": 0.8,
                    "reasoning": "<HOST_1> at <IP_1> is full",
                    "verification": [{"type": "shell", "command": "ping -c1 <IP_1>", "params": {}, "timeout": 5}],
                    "fixes": [{"action": "raise the pool of <HOST_1>", "risk": "low"}],
                },
                {"component": "payments", "type": "cpu", "confidence": 0.5},
                {"component": "checkout", "type": "gremlins", "confidence": 0.5},
                {"component": "cart-cache", "type": "db_slow_query", "confidence": 0.5},
                {"component": "Checkout", "type": "cpu", "confidence": 0.4},
                {"component": "checkout", "type": "cpu", "confidence": 0.3},
            ]
        }
    )
    view = read_reply(reply, CandidateSpace.of(_analysis()), masker)
    assert [(h.component, h.fault) for h in view.hypotheses] == [
        ("orders-db", FaultType.DB_POOL_EXHAUSTED),
        ("checkout", FaultType.CPU),
    ]
    assert view.reasoning["orders-db/db_pool_exhausted"] == "orders-db at 10.1.2.3 is full"
    assert view.tasks[0].command == "ping -c1 10.1.2.3"
    assert view.hypotheses[0].proposed_by == ["llm"]
    fix = view.hypotheses[0].fixes[0]
    assert fix.action == "raise the pool of orders-db" and not fix.runnable
    assert view.dropped == [
        "payments/cpu: unknown component 'payments'",
        "checkout/gremlins: unknown fault type 'gremlins' (known: " + ", ".join(f.value for f in FaultType) + ")",
        "cart-cache/db_slow_query: cart-cache is a cache that cannot have db_slow_query",
        "checkout/cpu: proposed twice (the first one is kept)",
    ]


# -- merging ----------------------------------------------------------------------------------------


def test_agreement_is_a_capped_noisy_or_that_never_lowers_the_ranker() -> None:
    assert agreement_confidence(0.6, 0.8, weight=0.5) == pytest.approx(1 - 0.4 * 0.6)
    assert agreement_confidence(0.9, 1.0, weight=1.0) == AGREEMENT_CAP
    assert agreement_confidence(0.97, 0.9) == 0.97
    assert agreement_confidence(0.6, 0.0) == 0.6


def _llm(component: str, fault: FaultType, confidence: float) -> Hypothesis:
    return Hypothesis(component=component, fault=fault, confidence=confidence, proposed_by=["llm"])


def test_merge_records_who_proposed_what_and_reranks() -> None:
    ranker = _analysis().hypotheses
    llm = [_llm("checkout", FaultType.CPU, 0.9), _llm("frontend", FaultType.BAD_DEPLOY, 0.7)]
    merged = merge_rankings(ranker, llm, weight=0.5)
    table = [(h.component, h.fault, h.confidence, h.proposed_by, h.rank) for h in merged.hypotheses]
    assert table == [
        ("orders-db", FaultType.DB_POOL_EXHAUSTED, 0.6, ["ranker"], 1),
        ("checkout", FaultType.CPU, round(1 - 0.8 * 0.55, 4), ["ranker", "llm"], 2),
        ("frontend", FaultType.BAD_DEPLOY, 0.35, ["llm"], 3),
    ]
    (agreement,) = merged.agreements
    assert (agreement.ranker, agreement.llm, agreement.merged) == (0.2, 0.9, 0.56)
    # A model-only hypothesis is verified and fixed by the catalog, never by what the model wrote.
    frontend = merged.hypotheses[2]
    assert frontend.verification and all(task.get("type") for task in frontend.verification)
    assert frontend.fixes and frontend.evidence == []
    assert merged.disagreements == [
        "top cause differs: the ranker says orders-db/db_pool_exhausted (0.60), the llm says checkout/cpu (0.90)",
        "the llm does not name the ranker's top cause orders-db/db_pool_exhausted (0.60)",
        "only the llm proposes frontend/bad_deploy (0.70); it is not among the ranker's top 2",
    ]


def test_merge_without_a_view_is_the_rankers_ranking() -> None:
    ranker = _analysis().hypotheses
    merged = merge_rankings(ranker, [])
    assert merged.hypotheses == ranker and merged.disagreements == [] and merged.agreements == []


def test_agreement_on_the_top_is_no_disagreement() -> None:
    ranker = _analysis().hypotheses
    merged = merge_rankings(ranker, [_llm("orders-db", FaultType.DB_POOL_EXHAUSTED, 0.8)])
    assert merged.disagreements == []
    assert merged.hypotheses[0].proposed_by == ["ranker", "llm"]
    assert merged.hypotheses[0].evidence == ranker[0].evidence


# -- results fed back -------------------------------------------------------------------------------


def test_results_are_summarised_masked_and_within_budget() -> None:
    masker = Masker(["db-7.corp.example"])
    tasks = [
        ProposedTask(type="shell", command="rm -rf /"),
        ProposedTask(type="shell", command="ping -c1 db-7.corp.example"),
    ]
    results = [
        {"status": "denied", "error": {"code": "policy_denied", "message": "deletes the root filesystem"}},
        {"status": "succeeded", "output": "\n".join(f"64 bytes from db-7.corp.example: seq={i}" for i in range(400))},
    ]
    text = summarize_results(tasks, results, masker, budget_tokens=300)
    assert "[1] shell: rm -rf / -> denied (refused by policy, not run): policy_denied" in text
    assert "[2] shell: ping -c1 <HOST_1> -> succeeded" in text
    assert "db-7" not in text
    assert "more lines not shown" in text
    assert estimate_tokens(text) <= 300 + 20
