"""Who decided on a paused fix, and whether anyone checked who that is.

The fix step waits with ``pause_flow_run(wait_for_input=FixDecision)``; the answer arrives as the
pause's run input, in one of two ways:

- **through the task API** (``POST /api/v1/incidents/{flow_run_id}/approve`` or ``/reject``, or
  ``cloud-agent approve``): the gateway checked an approver's token, puts the token's name in
  ``approver`` and signs the answer (HMAC-SHA256 over the flow run, the pause, the verdict, the name
  and the comment) with the approval key. The fix step checks the signature: the name is verified.
- **in the Prefect UI's form**: the name is whatever was typed. It is recorded as typed and marked
  unverified, unless ``CLOUD_AGENT_PREFECT_UI_AUTHENTICATED=true`` says the Prefect server sits
  behind a login.

Everyone who can reach the Prefect API can read a run's inputs, so a signature binds the run and
the pause it was made for: copied to another run, or to the same run's next pause, it verifies no
more. The key is ``CLOUD_AGENT_APPROVAL_KEY`` or, unset, a random key kept in
``<state_dir>/approval.key`` (mode 0600, created on first use) — shared by every process that uses
the same state folder, out of reach of anyone who only has the Prefect UI.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import secrets
import shlex
from pathlib import Path
from typing import Any, Literal

from prefect.input import RunInput
from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema

from flows.runtime import settings

#: How a decision reached the fix step.
DecidedThrough = Literal["policy", "task-api", "prefect-ui"]


class FixDecision(RunInput):
    """The form a person fills in the Prefect UI to let a fix run, or not (the task API fills it too)."""

    # Unknown fields are ignored rather than refused: the form's schema cannot list ``signature``
    # without showing it, so it allows any field, and a stray one must not crash the waiting run.
    model_config = ConfigDict(extra="ignore")

    approve: bool = Field(default=False, description="Run this fix now")
    approver: str = Field(default="", description="Your name (recorded as you type it)")
    comment: str = Field(default="", description="Why (recorded in the audit log)")
    #: Set by the task API only, and not part of the form: nothing for a person to type.
    signature: SkipJsonSchema[Any] = None


class Decided(BaseModel):
    """A decision as the fix step records it."""

    approve: bool
    decided_by: str
    through: DecidedThrough
    #: The system checked ``decided_by`` (a token, or a Prefect UI behind a login).
    verified: bool
    comment: str = ""
    #: Why a decision that claims to come from the task API is not taken as such.
    note: str = ""


def approval_key() -> bytes:
    """The key approvals are signed with (see the module docstring)."""
    current = settings()
    if current.approval_key is not None:
        value = current.approval_key.get_secret_value()
        if value:
            return value.encode("utf-8")
    return _key_file(current.approval_key_path)


def _key_file(path: Path) -> bytes:
    try:
        return _read_key(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written whole under a private name, then linked into place: two processes starting at once
    # both end up reading the one that won, never half a key.
    staging = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    descriptor = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_hex(32) + "\n")
        with contextlib.suppress(FileExistsError):  # another process won: read its key
            os.link(staging, path)
    finally:
        staging.unlink(missing_ok=True)
    return _read_key(path)


def _read_key(path: Path) -> bytes:
    key = path.read_text(encoding="utf-8").strip()
    if len(key) < 32:
        raise ValueError(f"the approval key in {path} is shorter than 32 characters; delete the file to renew it")
    return key.encode("utf-8")


def _signature(flow_run_id: str, pause_key: str, approve: bool, approver: str, comment: str) -> str:
    message = json.dumps([str(flow_run_id), pause_key, bool(approve), approver, comment], separators=(",", ":"))
    return hmac.new(approval_key(), message.encode("utf-8"), hashlib.sha256).hexdigest()


def signed_decision(flow_run_id: str, pause_key: str, *, approve: bool, approver: str, comment: str) -> dict[str, Any]:
    """The run input that answers a paused fix on behalf of ``approver`` (a checked identity)."""
    return {
        "approve": approve,
        "approver": approver,
        "comment": comment,
        "signature": _signature(flow_run_id, pause_key, approve, approver, comment),
    }


def read_decision(decision: FixDecision, flow_run_id: str, pause_key: str) -> Decided:
    """Who decided, how, and whether that name was checked."""
    typed = decision.approver.strip()
    if isinstance(decision.signature, str) and decision.signature:
        expected = _signature(flow_run_id, pause_key, decision.approve, decision.approver, decision.comment)
        if typed and hmac.compare_digest(decision.signature, expected):
            return Decided(
                approve=decision.approve, decided_by=typed, through="task-api", verified=True, comment=decision.comment
            )
        note = "the answer carried a signature that does not verify (another key, or made for another run)"
    elif decision.signature is not None:
        note = "the answer carried a signature that is not text"
    else:
        note = ""
    return Decided(
        approve=decision.approve,
        decided_by=typed or "prefect-ui",
        through="prefect-ui",
        verified=settings().prefect_ui_authenticated,
        comment=decision.comment,
        note=note,
    )


def approval_instructions(flow_run_id: str, ui_url: str | None) -> list[str]:
    """Where and how a person approves (or rejects) the fix a run waits on: one line each."""
    url = settings().url.rstrip("/")
    run = shlex.quote(str(flow_run_id))
    server = shlex.quote(url)
    lines = []
    if ui_url:
        where = "" if settings().prefect_ui_authenticated else " (the name typed there is recorded as unverified)"
        lines.append(f"in the Prefect UI: {ui_url}{where}")
    lines += [
        f"with the CLI: CLOUD_AGENT_TOKEN=<an approver's token> cloud-agent approve {run} --server {server} "
        f'--reason "..."  (or: cloud-agent reject {run} ...)',
        f"with curl: curl -X POST {url}/api/v1/incidents/{flow_run_id}/approve "
        '-H "Authorization: Bearer $CLOUD_AGENT_TOKEN" -H "Content-Type: application/json" '
        '-d \'{"reason": "..."}\'  (or .../reject)',
    ]
    return lines
