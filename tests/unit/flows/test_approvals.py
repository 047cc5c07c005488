"""Who answered a paused fix: a task API answer is signed for its run and pause and verifies as
the token's name; a name typed in the Prefect UI is kept as typed and marked unverified, unless the
UI is declared to sit behind a login; the form shows no field for the signature."""

from __future__ import annotations

import json
import stat
import threading
from pathlib import Path

import pytest
from prefect._internal.pydantic.v2_schema import create_v2_schema

from flows.approvals import FixDecision, approval_instructions, approval_key, read_decision, signed_decision

RUN, OTHER_RUN, PAUSE = "7d0a4b1e-0000-4000-8000-000000000001", "7d0a4b1e-0000-4000-8000-000000000002", "fix-restart"


@pytest.fixture(autouse=True)
def _settings(state_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLOUD_AGENT_APPROVAL_KEY", raising=False)
    monkeypatch.delenv("CLOUD_AGENT_PREFECT_UI_AUTHENTICATED", raising=False)


def _answer(**run_input: object) -> FixDecision:
    return FixDecision.model_validate(run_input)


def test_an_answer_signed_by_the_task_api_is_the_tokens_name_verified() -> None:
    decided = read_decision(
        _answer(**signed_decision(RUN, PAUSE, approve=True, approver="boss", comment="go")), RUN, PAUSE
    )
    assert (decided.approve, decided.decided_by, decided.through, decided.verified) == (True, "boss", "task-api", True)
    assert decided.comment == "go" and decided.note == ""


@pytest.mark.parametrize(
    ("run", "pause", "change"),
    [
        (OTHER_RUN, PAUSE, {}),  # copied onto another run
        (RUN, "fix-other", {}),  # or onto another pause of the same run
        (RUN, PAUSE, {"approve": True}),  # a rejection turned into an approval
        (RUN, PAUSE, {"approver": "someone-else"}),
        (RUN, PAUSE, {"comment": "a different reason"}),
    ],
    ids=["other-run", "other-pause", "verdict", "name", "comment"],
)
def test_a_signature_made_for_something_else_does_not_verify(run: str, pause: str, change: dict[str, object]) -> None:
    signed = signed_decision(RUN, PAUSE, approve=False, approver="boss", comment="no")

    decided = read_decision(_answer(**{**signed, **change}), run, pause)

    assert decided.through == "prefect-ui" and decided.verified is False
    assert "does not verify" in decided.note


def test_a_name_typed_in_the_prefect_ui_is_kept_as_typed_and_unverified() -> None:
    typed = read_decision(_answer(approve=True, approver="  alice  ", comment="lgtm"), RUN, PAUSE)
    nameless = read_decision(_answer(approve=False), RUN, PAUSE)
    odd = read_decision(_answer(approve=True, approver="alice", signature=42), RUN, PAUSE)

    assert (typed.decided_by, typed.through, typed.verified, typed.note) == ("alice", "prefect-ui", False, "")
    assert (nameless.decided_by, nameless.verified) == ("prefect-ui", False)
    assert odd.verified is False and "not text" in odd.note


def test_a_prefect_ui_declared_behind_a_login_makes_the_typed_name_verified(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLOUD_AGENT_PREFECT_UI_AUTHENTICATED", "true")

    decided = read_decision(_answer(approve=True, approver="alice"), RUN, PAUSE)

    assert (decided.through, decided.verified) == ("prefect-ui", True)
    assert not any("unverified" in line for line in approval_instructions(RUN, "http://ui/runs/flow-run/x"))


def test_the_form_has_no_signature_field_and_ignores_stray_fields() -> None:
    form = FixDecision.with_initial_data(description="approve?", approve=False)
    schema = create_v2_schema(form.__name__, model_base=form)  # what Prefect stores for the UI

    assert set(schema["properties"]) == {"approve", "approver", "comment"}
    assert schema.get("additionalProperties", True) is not False  # the task API's signature is accepted
    assert form.model_validate({"approve": True, "colour": "red"}).approve is True


def test_the_key_file_is_created_once_private_and_shared(state_dir: Path) -> None:
    keys: list[bytes] = []
    threads = [threading.Thread(target=lambda: keys.append(approval_key())) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    path = state_dir / "approval.key"
    assert len(set(keys)) == 1 and len(keys[0]) == 64
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in state_dir.iterdir() if p.name.startswith(".approval")] == []


def test_a_configured_key_is_used_instead_of_the_file(state_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    signed = signed_decision(RUN, PAUSE, approve=True, approver="boss", comment="")
    monkeypatch.setenv("CLOUD_AGENT_APPROVAL_KEY", "a-shared-key-of-the-gateway-and-the-control-workers")

    # The gateway signed with the file's key, the worker holds another: not taken as the token's.
    assert read_decision(_answer(**signed), RUN, PAUSE).verified is False
    resigned = signed_decision(RUN, PAUSE, approve=True, approver="boss", comment="")
    assert read_decision(_answer(**resigned), RUN, PAUSE).verified is True


def test_the_instructions_name_the_ui_the_cli_and_the_exact_curl_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLOUD_AGENT_URL", "http://gateway.internal:8080/")

    ui, cli, curl = approval_instructions(RUN, f"http://prefect:4200/runs/flow-run/{RUN}")

    assert ui == (
        f"in the Prefect UI: http://prefect:4200/runs/flow-run/{RUN} (the name typed there is recorded as unverified)"
    )
    assert f"cloud-agent approve {RUN} --server http://gateway.internal:8080" in cli
    assert curl.startswith(f"with curl: curl -X POST http://gateway.internal:8080/api/v1/incidents/{RUN}/approve ")
    body = curl.split("-d '", 1)[1].split("'", 1)[0]
    assert json.loads(body) == {"reason": "..."}
    assert approval_instructions(RUN, None)[0].startswith("with the CLI")
