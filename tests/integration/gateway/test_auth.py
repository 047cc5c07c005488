"""Tokens and roles: who may read, run and approve; tokens never stored; every request audited."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from executors import AuditEvent, AuditQuery, ConfigurationError, open_audit_log
from gateway.auth import Role, TokenRegistry, load_token_file, parse_token_list, token_digest
from gateway.settings import GatewaySettings
from tests.gateway_fixtures import Gateway, GatewayFactory
from tests.identities import APPROVER, OPERATOR, VIEWER

pytestmark = pytest.mark.integration


def test_a_viewer_reads_but_cannot_run(gateway: Gateway) -> None:
    with gateway.client() as client:
        task = client.execute_shell(None, "echo hi")
    with gateway.http(VIEWER) as http:
        assert http.get(f"/api/v1/tasks/{task['id']}").status_code == 200
        assert http.get("/api/v1/tasks").status_code == 200
        refused = http.post("/api/v1/tasks", json={"type": "shell", "command": "echo hi"})
        approve = http.post(f"/api/v1/tasks/{task['id']}/approve", json={})
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
    assert approve.status_code == 403


def test_an_operators_write_task_waits_for_an_approver(gateway: Gateway, tmp_path: Path) -> None:
    marker = tmp_path / "restarted"
    with gateway.http(OPERATOR) as http:
        waiting = http.post("/api/v1/tasks", json={"type": "shell", "command": f"touch {marker}"}).json()
        assert waiting["status"] == "approval_required" and not marker.exists()
        assert waiting["result"]["error"]["code"] == "approval_required"
        not_allowed = http.post(f"/api/v1/tasks/{waiting['id']}/approve", json={"reason": "me"})
        assert not_allowed.status_code == 403
        self_approved = http.post(
            "/api/v1/tasks", json={"type": "shell", "command": f"touch {marker}", "approval": {"reason": "trust me"}}
        )
        assert self_approved.status_code == 403
    with gateway.http(APPROVER) as http:
        approved = http.post(f"/api/v1/tasks/{waiting['id']}/approve", json={"reason": "change 42"}).json()
        twice = http.post(f"/api/v1/tasks/{waiting['id']}/approve", json={})
    assert approved["id"] == waiting["id"] and approved["status"] == "succeeded"
    assert approved["approved_by"] == "boss" and approved["result"]["approved_by"] == "boss"
    assert approved["submitted_by"] == "ops"
    assert marker.exists()
    assert twice.status_code == 409 and twice.json()["error"]["code"] == "not_awaiting_approval"

    audit = open_audit_log(f"sqlite:///{gateway.state_dir / 'audit.sqlite3'}")
    finished = audit.query(AuditQuery(task_id=waiting["id"], event=AuditEvent.FINISHED.value))
    assert [(r.actor, r.approved_by, r.status) for r in finished] == [("ops", "boss", "succeeded")]
    audit.close()


def test_an_approver_runs_write_tasks_itself_and_may_reject(gateway: Gateway, tmp_path: Path) -> None:
    marker = tmp_path / "written"
    with gateway.http(APPROVER) as http:
        done = http.post("/api/v1/tasks", json={"type": "shell", "command": f"touch {marker}"}).json()
    assert done["status"] == "succeeded" and done["approved_by"] == "boss" and marker.exists()

    with gateway.http(OPERATOR) as http:
        waiting = http.post("/api/v1/tasks", json={"type": "shell", "command": f"rm -f {marker}"}).json()
    with gateway.http(APPROVER) as http:
        rejected = http.post(f"/api/v1/tasks/{waiting['id']}/reject", json={"reason": "not now"}).json()
        late = http.post(f"/api/v1/tasks/{waiting['id']}/approve", json={})
    assert rejected["status"] == "denied" and rejected["error"]["code"] == "rejected"
    assert "boss" in rejected["error"]["message"] and marker.exists()
    assert late.status_code == 409


def test_tokens_are_never_stored_and_every_request_is_audited(gateway: Gateway) -> None:
    with gateway.http(OPERATOR) as http:
        task = http.post("/api/v1/tasks", json={"type": "shell", "command": "echo audited"}).json()
    with gateway.http(VIEWER) as http:
        http.get(f"/api/v1/tasks/{task['id']}")
    with gateway.http("a-wrong-token-123") as http:
        http.get("/api/v1/tasks")
    with gateway.http(APPROVER) as http:
        http.get("/api/v1/tasks?limit=1")

    audit = open_audit_log(f"sqlite:///{gateway.state_dir / 'audit.sqlite3'}")
    requests = audit.query(AuditQuery(event=AuditEvent.API_REQUEST.value))
    audit.close()
    seen = {(r.actor, r.command.split("?")[0], r.status) for r in requests}
    assert ("ops", "POST /api/v1/tasks", "200") in seen
    assert ("ada", f"GET /api/v1/tasks/{task['id']}", "200") in seen
    assert ("-", "GET /api/v1/tasks", "401") in seen
    assert ("boss", "GET /api/v1/tasks", "200") in seen
    assert any(r.task_id == task["id"] and r.actor == "ops" for r in requests)

    stored = b"".join(path.read_bytes() for path in gateway.state_dir.glob("*.sqlite3*"))
    assert b"audited" in stored  # the files are readable as they are...
    for secret in (OPERATOR, VIEWER, APPROVER, "a-wrong-token-123"):
        assert secret.encode() not in stored  # ...and no token is in them


def test_anonymous_callers_need_an_explicit_role(gateway_factory: GatewayFactory) -> None:
    closed = gateway_factory()
    with closed.http() as http:
        assert http.post("/api/v1/tasks", json={"type": "shell", "command": "echo x"}).status_code == 401
    opened = gateway_factory(anonymous_role="operator")
    with opened.client(token=None) as client:
        task = client.execute_shell("agent-local-001", "echo anonymous")
    assert task["status"] == "succeeded" and task["submitted_by"] == "anonymous"


def test_the_tokens_file_holds_digests(tmp_path: Path) -> None:
    path = tmp_path / "tokens.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "tokens": [
                    {"name": "rca-system", "role": "operator", "sha256": token_digest("s3cret-one")},
                    {"name": "oncall", "role": "approver", "sha256": token_digest("s3cret-two").upper()},
                ]
            }
        )
    )
    registry = TokenRegistry.from_settings(GatewaySettings(tokens_file=path, tokens="bot:viewer:s3cret-three"))
    assert registry.authenticate("s3cret-one") == registry.authenticate("s3cret-one")
    assert (registry.authenticate("s3cret-one").name, registry.authenticate("s3cret-one").role) == (  # type: ignore[union-attr]
        "rca-system",
        Role.OPERATOR,
    )
    assert registry.authenticate("s3cret-two").role is Role.APPROVER  # type: ignore[union-attr]
    assert registry.authenticate("s3cret-three").name == "bot"  # type: ignore[union-attr]
    assert registry.authenticate("s3cret-one ") is None
    assert registry.authenticate(None) is None
    assert "s3cret" not in path.read_text()


@pytest.mark.parametrize(
    "content",
    [
        {"tokens": [{"name": "x", "role": "root", "sha256": "0" * 64}]},
        {"tokens": [{"name": "x", "role": "viewer", "sha256": "not-hex"}]},
        {"tokens": [{"name": "x", "role": "viewer", "token": "plain"}]},
        {
            "tokens": [
                {"name": "x", "role": "viewer", "sha256": "0" * 64},
                {"name": "x", "role": "operator", "sha256": "1" * 64},
            ]
        },
    ],
)
def test_a_bad_tokens_file_is_a_configuration_error(tmp_path: Path, content: object) -> None:
    path = tmp_path / "tokens.yaml"
    path.write_text(yaml.safe_dump(content))
    with pytest.raises(ConfigurationError):
        TokenRegistry(load_token_file(path))


@pytest.mark.parametrize("value", ["just-a-token", "name:boss:tok", "name::tok", ":viewer:tok"])
def test_a_bad_tokens_variable_is_a_configuration_error(value: str) -> None:
    with pytest.raises(ConfigurationError):
        parse_token_list(value)
