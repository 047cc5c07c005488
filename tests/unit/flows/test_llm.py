"""The LLM analyser against a local OpenAI-compatible test server started here: scripted replies
(good, malformed, hostile, slow, refusing ``response_format``), every request body recorded.

What leaves the process is checked on the recorded bodies; what the model's tasks did is checked
in the audit log."""

from __future__ import annotations

import json
import logging
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from prefect import flow

from contract import PlannedTask
from executors import AuditQuery, CloudAgent, EnvironmentCatalog, Policy, TaskSpec, Verdict, open_audit_log
from flows.alerts import AlertGroup
from flows.analyze import analyze_step
from flows.collect import CollectedEvidence
from flows.context import IncidentContext
from flows.llm import LLM_ACTOR, ChatClient, LLMConfig, LLMReplyInvalid, incident_facts, second_opinion
from flows.report import CycleReport, hypotheses_table, render_markdown
from flows.settings import FlowSettings
from models import (
    Analysis,
    CaseFeatures,
    DbSnapshot,
    Detection,
    Evidence,
    FaultType,
    Hypothesis,
    Observations,
    TargetContext,
    Telemetry,
    TopQuery,
)
from models.domain._types import ServiceKind
from models.llm import ChatMessage
from models.playbook.collection import TelemetrySources, Window
from tests.environments import LOCAL_CONNECTIONS, write_environment

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
API_KEY = "sk-test-Zq8mW3rT5yU7"
DB_PASSWORD = "pg-S3cret-pw-42"
BEARER = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZGEifQ.c2lnbmF0dXJl"
HOST, IP, USER = "db-7.corp.example", "10.20.30.40", "user-4711"
KINDS = {
    "frontend": ServiceKind.SERVICE,
    "checkout": ServiceKind.SERVICE,
    "orders-db": ServiceKind.DATABASE,
    "cart-cache": ServiceKind.CACHE,
}


# -- the test server --------------------------------------------------------------------------------


@dataclass
class Http:
    """An HTTP error answer."""

    status: int
    body: str = '{"error": {"message": "bad request"}}'


@dataclass
class Slow:
    """A reply after a delay."""

    seconds: float
    reply: Any


Reply = dict[str, Any] | str | Http | Slow | Callable[[dict[str, Any]], Any]


@dataclass
class ScriptedLLM:
    """``POST /v1/chat/completions`` answers the next scripted reply: a dict (sent as the message's
    JSON content), a string (sent as is), ``Http``, ``Slow``, or a function of the request body."""

    replies: list[Reply] = field(default_factory=list)
    bodies: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._closing = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="scripted-llm", daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def script(self, *replies: Reply) -> None:
        self.replies[:] = list(replies)

    def sent_text(self) -> str:
        """Everything the analyser sent, as one string."""
        return "\n".join(json.dumps(body, ensure_ascii=False) for body in self.bodies)

    def close(self) -> None:
        self._closing.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _answer(self, body: dict[str, Any]) -> tuple[int, str]:
        if not self.replies:
            return 500, '{"error": "no scripted reply left"}'
        reply = self.replies.pop(0)
        if callable(reply):
            reply = reply(body)
        if isinstance(reply, Slow):
            self._closing.wait(reply.seconds)
            reply = reply.reply
        if isinstance(reply, Http):
            return reply.status, reply.body
        content = reply if isinstance(reply, str) else json.dumps(reply)
        completion = {
            "id": "chatcmpl-test",
            "object": "chat.completion",
            "model": body.get("model"),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        }
        return 200, json.dumps(completion)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        llm = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                if self.path != "/v1/chat/completions":
                    status, text = 404, '{"error": "not found"}'
                else:
                    llm.bodies.append(body)
                    llm.headers.append(dict(self.headers.items()))
                    status, text = llm._answer(body)
                data = text.encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass  # the client gave up (a slow reply past its timeout)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


@pytest.fixture
def llm_server() -> Iterator[ScriptedLLM]:
    server = ScriptedLLM()
    yield server
    server.close()


# -- an incident ------------------------------------------------------------------------------------


@pytest.fixture
def shop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Environment ``shop``: its redact list names a host, an IP and user ids; its PostgreSQL
    password comes from a variable (a secret); its Redis points at a closed port."""
    monkeypatch.setenv("SHOP_DB_PASSWORD", DB_PASSWORD)
    connections = {
        **LOCAL_CONNECTIONS,
        "postgres": {"default": {**LOCAL_CONNECTIONS["postgres"]["default"], "password": "${SHOP_DB_PASSWORD}"}},
        "redis": {"default": {"url": "redis://127.0.0.1:9/0"}},
    }
    root = tmp_path / "deployments"
    write_environment(
        root, "shop", agents=["agent-shop-001"], connections=connections, redact=[HOST, IP, r"re:user-\d+"]
    )
    state = tmp_path / "state"
    monkeypatch.setenv("CLOUD_AGENT_CONFIG_DIR", str(root))
    monkeypatch.setenv("CLOUD_AGENT_STATE_DIR", str(state))
    return root


@pytest.fixture
def catalog(shop: Path) -> EnvironmentCatalog:
    return EnvironmentCatalog.load(shop)


@pytest.fixture
def audited(catalog: EnvironmentCatalog, tmp_path: Path) -> Iterator[CloudAgent]:
    with CloudAgent(catalog, open_audit_log(f"sqlite:///{tmp_path / 'state' / 'audit.sqlite3'}")) as agent:
        yield agent


@dataclass
class DirectRunner:
    """``run_batches`` without Prefect: the same engine (policy, limits, audit), in this thread."""

    agent: CloudAgent
    planned: list[PlannedTask] = field(default_factory=list)

    def __call__(self, batches: dict[str, list[PlannedTask]], *, step: str, actor: str) -> dict[str, list[dict]]:
        out = {}
        for environment, items in batches.items():
            self.planned += items
            out[environment] = [self.agent.run(item.task, actor=actor).model_dump(mode="json") for item in items]
        return out


def _context(catalog: EnvironmentCatalog) -> IncidentContext:
    alert = AlertGroup.model_validate(
        {
            "version": "4",
            "groupKey": '{}:{alertname="HighLatency"}',
            "status": "firing",
            "commonLabels": {"alertname": "HighLatency", "service": "checkout"},
            "commonAnnotations": {"summary": "checkout p99 above 2 s"},
            "alerts": [{"status": "firing", "labels": {}, "startsAt": T0.isoformat()}],
        }
    )
    start = T0.timestamp()
    return IncidentContext(
        alert=alert,
        environment=catalog.environment("shop"),
        agent_id="agent-shop-001",
        sources=TelemetrySources(),
        topology=None,
        window=Window(start - 600, start + 300),
        target=TargetContext(agent_id="agent-shop-001"),
    )


def _analysis() -> Analysis:
    return Analysis(
        detection=Detection(
            is_anomaly=True,
            change_point=T0.timestamp(),
            score=31.5,
            involved_services=["checkout", "orders-db"],
            anomalous_metrics=["checkout_latency", "orders-db_connections"],
        ),
        hypotheses=[
            Hypothesis(
                component="checkout",
                fault=FaultType.CPU,
                confidence=0.55,
                evidence=[Evidence(kind="metric", source="checkout_cpu", summary="checkout cpu x3", score=0.8)],
            ),
            Hypothesis(component="orders-db", fault=FaultType.DB_POOL_EXHAUSTED, confidence=0.3, rank=2),
        ],
        candidates=CaseFeatures(
            components=list(KINDS),
            component_features=[f"kind_{kind.value}" for kind in ServiceKind],
            component_values=[[float(kind is other) for other in ServiceKind] for kind in KINDS.values()],
        ),
    )


def _evidence() -> tuple[Telemetry, Observations]:
    """Collected evidence with secrets and redact-list values planted in logs and query text."""
    start = T0.timestamp()
    logs = pd.DataFrame(
        [
            (start + 1, "checkout", "ERROR", f"connection to {HOST} ({IP}:5432) timed out after 3000 ms"),
            (start + 2, "checkout", "ERROR", f"connection to {HOST} ({IP}:5432) timed out after 3100 ms"),
            (start + 3, "checkout", "ERROR", f"login failed: postgres://app:{DB_PASSWORD}@{HOST}:5432/orders"),
            (start + 4, "frontend", "WARN", f"upstream 401 for {USER}, sent Authorization: Bearer {BEARER}"),
            (start + 5, "frontend", "WARN", f"retrying with password={DB_PASSWORD}"),
        ],
        columns=["time", "service", "level", "message"],
    )
    metrics = pd.DataFrame({"time": [start + i for i in range(30)], "checkout_latency": [1.0] * 30})
    db = DbSnapshot(
        service="orders-db",
        engine="postgres",
        connections=98,
        max_connections=100,
        active=95,
        long_running=60,
        longest_seconds=420,
        top_queries=[
            TopQuery(id="81", seconds=420, state="active", query=f"SELECT * FROM orders WHERE owner = '{USER}'"),
            TopQuery(
                id="82", seconds=400, state="active", query=f"ALTER ROLE app PASSWORD '{DB_PASSWORD}' -- from {IP}"
            ),
        ],
    )
    return Telemetry(metrics=metrics, logs=logs), Observations(db=[db])


def _options(server: ScriptedLLM, **overrides: Any) -> FlowSettings:
    values: dict[str, Any] = {
        "llm_base_url": server.url,
        "llm_model": "test-model",
        "llm_api_key": API_KEY,
        "llm_timeout_seconds": 5,
        "llm_total_seconds": 30,
        "llm_max_tasks": 3,
    }
    values.update(overrides)
    return FlowSettings(**values)


def _consult(
    catalog: EnvironmentCatalog, server: ScriptedLLM, run: Any = None, **overrides: Any
) -> tuple[Analysis, Analysis, CycleReport]:
    ctx = _context(catalog)
    analysis = _analysis()
    telemetry, observations = _evidence()
    report = CycleReport(incident_id="inc-1", alertname="HighLatency", environment="shop", starts_at=T0)
    kwargs: dict[str, Any] = {"options": _options(server, **overrides)}
    if run is not None:
        kwargs["run"] = run
    merged = second_opinion(ctx, analysis, incident_facts(ctx, telemetry, observations), report, **kwargs)
    return analysis, merged, report


def _hypothesis(component: str, fault: str, confidence: float, tasks: list[dict] | None = None, **extra: Any) -> dict:
    return {
        "component": component,
        "type": fault,
        "confidence": confidence,
        "reasoning": extra.pop("reasoning", "because"),
        "verification": tasks or [],
        "fixes": extra.pop("fixes", []),
        **extra,
    }


def _task(kind: str, command: str, **params: Any) -> dict[str, Any]:
    return {"type": kind, "command": command, "params": params, "timeout": 10}


# -- the client -------------------------------------------------------------------------------------


def test_the_client_asks_for_the_schema_and_sends_the_key_only_as_a_header(llm_server: ScriptedLLM) -> None:
    llm_server.script({"hypotheses": [_hypothesis("checkout", "cpu", 0.5)]})
    config = LLMConfig(base_url=llm_server.url, model="m1", api_key=API_KEY)
    with ChatClient(config) as client:
        reply, _ = client.ask([ChatMessage(role="user", content="hello")], {"type": "object"})
    assert reply.hypotheses[0].component == "checkout"
    (body,) = llm_server.bodies
    assert body["model"] == "m1" and body["temperature"] == 0
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["schema"] == {"type": "object"}
    assert llm_server.headers[0]["Authorization"] == f"Bearer {API_KEY}"
    assert API_KEY not in llm_server.sent_text()
    assert API_KEY not in repr(config)


def test_a_server_that_refuses_response_format_gets_the_schema_in_the_prompt(llm_server: ScriptedLLM) -> None:
    llm_server.script(Http(400, '{"error": "response_format is not supported"}'), {"hypotheses": []})
    with ChatClient(LLMConfig(base_url=llm_server.url, model="m1")) as client:
        reply, _ = client.ask(
            [ChatMessage(role="system", content="be brief"), ChatMessage(role="user", content="hi")],
            {"type": "object", "required": ["hypotheses"]},
        )
        assert reply.hypotheses == [] and not client.structured
    first, second = llm_server.bodies
    assert "response_format" in first and "response_format" not in second
    assert second["messages"][0]["content"].startswith("be brief\n\nYour reply must be one JSON object")
    assert '"required": ["hypotheses"]' in second["messages"][0]["content"]
    assert "Authorization" not in llm_server.headers[0]  # no key configured, none sent


def test_a_malformed_reply_is_retried_once_with_the_reason(llm_server: ScriptedLLM) -> None:
    llm_server.script("the database, surely", {"hypotheses": [_hypothesis("orders-db", "cpu", 0.4)]})
    with ChatClient(LLMConfig(base_url=llm_server.url, model="m1")) as client:
        reply, _ = client.ask([ChatMessage(role="user", content="hi")], {})
    assert reply.hypotheses[0].component == "orders-db"
    retry = llm_server.bodies[1]["messages"]
    assert retry[-2] == {"role": "assistant", "content": "the database, surely"}
    assert retry[-1]["role"] == "user" and "not JSON" in retry[-1]["content"]


def test_two_malformed_replies_give_up_with_both_reasons(llm_server: ScriptedLLM) -> None:
    llm_server.script("{not json", {"answer": "orders-db"})
    with ChatClient(LLMConfig(base_url=llm_server.url, model="m1")) as client, pytest.raises(LLMReplyInvalid) as caught:
        client.ask([ChatMessage(role="user", content="hi")], {})
    assert "not JSON" in str(caught.value) and "hypotheses: Field required" in str(caught.value)
    assert len(llm_server.bodies) == 2


# -- the analyser in the analyze step ----------------------------------------------------------------


def test_no_secret_and_no_redacted_value_reaches_the_server_and_the_reply_is_unmasked(
    llm_server: ScriptedLLM, catalog: EnvironmentCatalog, audited: CloudAgent
) -> None:
    def first(body: dict[str, Any]) -> dict[str, Any]:
        prompt = body["messages"][1]["content"]
        # The planted values became placeholders the model can use.
        assert {"<HOST_1>", "<IP_1>", "<USER_1>"} <= set(re.findall(r"<[A-Z]+_\d+>", prompt))
        task = _task("shell", "echo checking <HOST_1> at <IP_1>")
        return {
            "hypotheses": [
                _hypothesis(
                    "orders-db",
                    "db_pool_exhausted",
                    0.8,
                    [task],
                    reasoning="statements of <USER_1> hold the pool of <HOST_1>",
                    fixes=[{"action": "terminate the sessions of <USER_1>", "command": task, "risk": "medium"}],
                )
            ]
        }

    def refined(body: dict[str, Any]) -> dict[str, Any]:
        results = body["messages"][-1]["content"]
        assert "checking <HOST_1> at <IP_1>" in results  # the task's output, masked again
        fix = {
            "action": "terminate the sessions of <USER_1>",
            "command": _task("postgres", "SELECT 1"),
            "risk": "medium",
        }
        return {
            "hypotheses": [
                _hypothesis("orders-db", "db_pool_exhausted", 0.85, reasoning="<HOST_1> answers", fixes=[fix])
            ]
        }

    llm_server.script(first, refined)
    runner = DirectRunner(audited)
    analysis, merged, report = _consult(catalog, llm_server, run=runner)

    sent = llm_server.sent_text()
    assert len(llm_server.bodies) == 2
    for planted in (DB_PASSWORD, BEARER, HOST, IP, USER, API_KEY, "4711", "20.30.40"):
        assert planted not in sent, planted
    assert "***" in sent  # the secrets were there, and were scrubbed
    # Locally the reply is unmasked: the task ran with the real values, the report names them.
    (planned,) = runner.planned
    assert planned.task["command"] == f"echo checking {HOST} at {IP}"
    assert planned.task["agent_id"] == "agent-shop-001" and "approval" not in planned.task
    notes = "\n".join(report.other_view_notes["llm"])
    assert f"why orders-db/db_pool_exhausted (0.85): {HOST} answers" in notes
    assert f"terminate the sessions of {USER}" in notes
    (record,) = [r for r in audited.audit.query(AuditQuery(actor=LLM_ACTOR, event="finished"))]
    assert record.status == "succeeded" and HOST in record.command
    # Merged: agreement raised the ranker's confidence; the model's number is kept beside it.
    top = next(h for h in merged.hypotheses if h.component == "orders-db")
    assert top.proposed_by == ["ranker", "llm"] and top.confidence == pytest.approx(1 - 0.7 * (1 - 0.5 * 0.85))
    assert "agrees on orders-db/db_pool_exhausted: ranker 0.30, llm 0.85 → 0.60" in notes
    assert report.other_views["llm"][0].confidence == 0.85
    assert analysis.hypotheses[0].confidence == 0.55  # the ranker's own analysis is untouched


def test_the_report_shows_both_views_and_each_disagreement(
    llm_server: ScriptedLLM, catalog: EnvironmentCatalog, audited: CloudAgent
) -> None:
    llm_server.script(
        {
            "hypotheses": [
                _hypothesis("frontend", "bad_deploy", 0.9, reasoning="a deploy at 09:59"),
                _hypothesis("payments", "cpu", 0.6),
                _hypothesis("checkout", "cpu", 0.4),
            ]
        }
    )
    _, merged, report = _consult(catalog, llm_server, run=DirectRunner(audited))
    report.hypotheses = merged.hypotheses
    markdown = render_markdown(report)
    assert "**llm:** frontend/bad_deploy (0.90); checkout/cpu (0.40)" in markdown
    assert (
        "- disagrees: top cause differs: the ranker says checkout/cpu (0.55), the llm says frontend/bad_deploy (0.90)"
        in markdown
    )
    assert (
        "- disagrees: only the llm proposes frontend/bad_deploy (0.90); it is not among the ranker's top 2" in markdown
    )
    assert "- dropped payments/cpu: unknown component 'payments'" in markdown
    assert "- agrees on checkout/cpu: ranker 0.55, llm 0.40 → 0.64" in markdown
    assert "- why frontend/bad_deploy (0.90): a deploy at 09:59" in markdown
    rows = {(row["component"], row["fault"]): row["proposed_by"] for row in hypotheses_table(report)}
    assert rows == {
        ("checkout", "cpu"): "ranker, llm",
        ("frontend", "bad_deploy"): "llm",
        ("orders-db", "db_pool_exhausted"): "ranker",
    }
    assert "| 1 | checkout | cpu | 0.64 |" in markdown


def test_malformed_twice_leaves_the_rankers_analysis_and_says_why(
    llm_server: ScriptedLLM, catalog: EnvironmentCatalog
) -> None:
    llm_server.script("I think it is the database.", {"hypotheses": [{"component": "orders-db"}]})
    analysis, merged, report = _consult(catalog, llm_server)
    assert merged is analysis
    assert report.other_views == {"llm": []}
    (note,) = [n for n in report.other_view_notes["llm"] if n.startswith("no opinion")]
    assert "malformed twice" in note and "not JSON" in note and "Field required" in note
    assert "**llm:** no opinion" in render_markdown(report)
    assert report.timeline[-1].name == "analyze-llm" and report.timeline[-1].summary.startswith("no opinion")


def test_an_unreachable_server_leaves_the_rankers_analysis(catalog: EnvironmentCatalog) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = time.monotonic()
    analysis, merged, report = _consult_with_url(catalog, f"http://127.0.0.1:{port}/v1")
    assert merged is analysis and time.monotonic() - started < 5
    assert "cannot reach the LLM server" in report.other_view_notes["llm"][-1]


def _consult_with_url(
    catalog: EnvironmentCatalog, url: str, **overrides: Any
) -> tuple[Analysis, Analysis, CycleReport]:
    ctx = _context(catalog)
    analysis = _analysis()
    telemetry, observations = _evidence()
    report = CycleReport(incident_id="inc-1", alertname="HighLatency", environment="shop", starts_at=T0)
    options = FlowSettings(llm_base_url=url, llm_model="m", llm_timeout_seconds=5, **overrides)
    return (
        analysis,
        second_opinion(ctx, analysis, incident_facts(ctx, telemetry, observations), report, options=options),
        report,
    )


def test_a_slow_server_is_given_up_on_at_the_timeout(llm_server: ScriptedLLM, catalog: EnvironmentCatalog) -> None:
    llm_server.script(Slow(10, {"hypotheses": []}))
    started = time.monotonic()
    analysis, merged, report = _consult(catalog, llm_server, llm_timeout_seconds=0.5)
    assert merged is analysis and time.monotonic() - started < 3
    assert "no answer from the LLM server within" in report.other_view_notes["llm"][-1]
    assert len(llm_server.bodies) == 1


def test_an_invalid_redact_list_sends_nothing(llm_server: ScriptedLLM, catalog: EnvironmentCatalog) -> None:
    ctx = _context(catalog)
    ctx.environment = ctx.environment.model_copy(update={"redact": ["re:(unclosed"]})
    telemetry, observations = _evidence()
    report = CycleReport(incident_id="inc-1", alertname="HighLatency", environment="shop", starts_at=T0)
    analysis = _analysis()
    merged = second_opinion(
        ctx, analysis, incident_facts(ctx, telemetry, observations), report, options=_options(llm_server)
    )
    assert merged is analysis and llm_server.bodies == []
    assert "not a regular expression" in report.other_view_notes["llm"][-1]


def test_the_key_is_never_logged_or_stored(
    llm_server: ScriptedLLM, catalog: EnvironmentCatalog, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    llm_server.script("nonsense", "more nonsense")
    _, _, report = _consult(catalog, llm_server)
    assert API_KEY not in caplog.text and API_KEY not in report.model_dump_json()
    assert "malformed" in caplog.text  # the reason is logged
    assert API_KEY not in repr(_options(llm_server)) and API_KEY not in _options(llm_server).model_dump_json()


# -- through analyze_step -----------------------------------------------------------------------------


def _step(ctx: IncidentContext, monkeypatch: pytest.MonkeyPatch) -> tuple[Analysis, CycleReport]:
    """``analyze_step`` with the ranker's task replaced by the fixed analysis (no Prefect, no model)."""
    monkeypatch.setattr("flows.analyze.rank_hypotheses", lambda *args: _analysis())
    telemetry, observations = _evidence()
    evidence = CollectedEvidence(logs=telemetry.logs, observations=observations)
    report = CycleReport(incident_id="inc-1", alertname="HighLatency", environment="shop", starts_at=T0)
    analysis = analyze_step(ctx, telemetry.metrics, evidence, report)
    assert analysis is not None
    return analysis, report


def test_analyze_step_without_an_llm_is_the_rankers_step(
    catalog: EnvironmentCatalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    analysis, report = _step(_context(catalog), monkeypatch)
    assert analysis == _analysis()
    assert [step.name for step in report.timeline] == ["analyze"]
    assert report.other_views == {} and report.other_view_notes == {}


def test_analyze_step_merges_the_llm_view_when_configured(
    llm_server: ScriptedLLM, catalog: EnvironmentCatalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLOUD_AGENT_LLM_BASE_URL", llm_server.url)
    monkeypatch.setenv("CLOUD_AGENT_LLM_MODEL", "test-model")
    monkeypatch.setenv("CLOUD_AGENT_LLM_API_KEY", API_KEY)
    llm_server.script({"hypotheses": [_hypothesis("orders-db", "db_pool_exhausted", 0.9)]})
    analysis, report = _step(_context(catalog), monkeypatch)
    assert [step.name for step in report.timeline] == ["analyze", "analyze-llm"]
    assert analysis.hypotheses[0].component == "orders-db"
    assert analysis.hypotheses[0].proposed_by == ["ranker", "llm"]
    assert [h.proposed_by for h in analysis.hypotheses] == [["ranker", "llm"], ["ranker"]]
    assert llm_server.bodies[0]["model"] == "test-model"


# -- hostile replies, through Prefect ------------------------------------------------------------------


@pytest.mark.prefect
@pytest.mark.integration
def test_hostile_tasks_are_refused_by_policy_audited_and_never_run(
    prefect_api: str, llm_server: ScriptedLLM, catalog: EnvironmentCatalog, tmp_path: Path
) -> None:
    marker = tmp_path / "the-llm-was-here"
    environment = catalog.environment("shop")
    policy = Policy(environment.policy, environment.name)
    # Guard: never hand these to the engine unless the policy is known to refuse them.
    for task in ({"type": "shell", "command": "rm -rf /"}, {"type": "redis", "command": "FLUSHALL"}):
        if policy.decide(TaskSpec.parse(task)).verdict is not Verdict.DENY:
            pytest.fail(f"the policy would not deny {task}; not running it")

    def refined(body: dict[str, Any]) -> dict[str, Any]:
        results = body["messages"][-1]["content"]
        assert results.count("refused by policy, not run") == 3
        return {
            "hypotheses": [_hypothesis("cart-cache", "cache", 0.7, [_task("shell", "rm -rf / --no-preserve-root")])]
        }

    llm_server.script(
        {
            "hypotheses": [
                _hypothesis(
                    "cart-cache",
                    "cache",
                    0.9,
                    [
                        _task("shell", "rm -rf /"),
                        _task("redis", "FLUSHALL", connection="default"),
                        {
                            **_task("shell", f"touch {marker}"),
                            "approval": {"approved_by": "llm", "reason": "trust me"},
                            "agent_id": "agent-prod-001",
                        },
                    ],
                )
            ]
        },
        refined,
    )
    outcome: list[tuple[Analysis, Analysis, CycleReport]] = []

    @flow(name="llm-hostile-test")
    def analyse() -> None:  # as in the cycle: the model's tasks run as an execute-batch subflow
        outcome.append(_consult(catalog, llm_server))

    analyse()
    ((_, merged, report),) = outcome

    audit = open_audit_log(f"sqlite:///{tmp_path / 'state' / 'audit.sqlite3'}")
    try:
        records = audit.query(AuditQuery(actor=LLM_ACTOR, limit=100))
    finally:
        audit.close()
    by_command = {(r.task_type, r.command): r.event.value for r in records}
    assert by_command == {
        ("shell", "rm -rf /"): "denied",
        ("redis", "FLUSHALL"): "denied",
        ("shell", f"touch {marker}"): "approval_required",
    }
    assert not any(r.event.value in ("started", "finished") for r in records)
    assert all(r.agent_id == "agent-shop-001" and r.approved_by is None for r in records)
    assert not marker.exists()
    notes = report.other_view_notes["llm"]
    assert any(n.startswith("verification `shell: rm -rf /` → denied (refused by policy)") for n in notes)
    assert any(n.startswith("verification `redis: FLUSHALL` → denied (refused by policy)") for n in notes)
    assert "1 tasks proposed in the refinement were not run (one round only)" in notes
    assert len(llm_server.bodies) == 2
    # The model's view is kept (the ranker had no cache hypothesis); its tasks changed nothing.
    assert [h.proposed_by for h in merged.hypotheses if h.component == "cart-cache"] == [["llm"]]
