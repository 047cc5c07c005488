"""``cloud-agent``: task run and audit list/verify, their exit codes and their error lines.

Exit codes (gateway/cli.py): 0 succeeded, 1 failed, 2 bad input or configuration, 3 denied or
waiting for an approval, 4 timed out.
"""

from __future__ import annotations

import io
import json
import logging
import os
import pwd
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from executors import AuditRecord, TaskResult, TaskStatus
from gateway.cli import app
from gateway.cli_progress import CycleProgress
from tests.spec_data import TASK_EXAMPLES

EXAMPLES: list[dict[str, object]] = json.loads(TASK_EXAMPLES.read_text())
CLOUD_AGENT = Path(sys.executable).parent / "cloud-agent"


@pytest.fixture
def cli(config_dir: Path, state_dir: Path) -> CliRunner:
    """A runner whose ``CLOUD_AGENT_CONFIG_DIR``/``_STATE_DIR`` point at the test environments."""
    return CliRunner()


def _run(cli: CliRunner, *args: str) -> tuple[int, str, str]:
    result = cli.invoke(app, list(args))
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


def test_a_succeeded_task_exits_0(cli: CliRunner) -> None:
    code, out, _ = _run(cli, "task", "run", "--type", "shell", "--command", "echo hello-cli")

    assert code == 0
    assert out.startswith("succeeded  shell: echo hello-cli @local  risk=read")
    assert "hello-cli" in out.splitlines()[1]


def test_a_failed_task_exits_1(cli: CliRunner) -> None:
    code, out, _ = _run(cli, "task", "run", "-t", "shell", "-c", "echo broken >&2; exit 3")

    assert code == 1
    assert out.startswith("failed")
    assert "exited with status 3: broken" in out


def test_a_denied_task_exits_3(cli: CliRunner) -> None:
    code, out, _ = _run(cli, "task", "run", "--type", "shell", "--command", "rm -rf /")

    assert code == 3
    assert out.startswith("denied")
    assert "[rule shell.rm-root]" in out


def test_a_task_waiting_for_an_approval_exits_3_and_runs_with_one(cli: CliRunner, tmp_path: Path) -> None:
    marker = tmp_path / "approved"

    code, out, _ = _run(cli, "task", "run", "--type", "shell", "--command", f"touch {marker}")
    assert code == 3 and out.startswith("approval_required") and not marker.exists()

    code, out, _ = _run(cli, "task", "run", "--type", "shell", "--command", f"touch {marker}", "--approve", "ticket 42")
    assert code == 0, out
    assert marker.exists()


def test_an_approval_inside_a_task_file_is_not_trusted(
    cli: CliRunner, tmp_path: Path, state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = tmp_path / "forged"
    task_file = tmp_path / "task.json"
    task = {"type": "shell", "command": f"touch {marker}", "approval": {"approved_by": "the-cto", "reason": "trust me"}}
    task_file.write_text(json.dumps(task))

    code, out, err = _run(cli, "task", "run", "--file", str(task_file))
    assert code == 3 and out.startswith("approval_required") and not marker.exists()
    assert "approval' is ignored" in err

    # --approve records the OS user of the process, not a name the caller's environment chose.
    monkeypatch.setenv("USER", "the-cto")
    monkeypatch.setenv("LOGNAME", "the-cto")
    code, out, _ = _run(cli, "task", "run", "--file", str(task_file), "--approve", "INC-7", "--json")
    assert code == 0, out
    assert marker.exists()
    result = TaskResult.model_validate_json(out)
    assert result.approved_by == pwd.getpwuid(os.getuid()).pw_name != "the-cto"
    audit = sqlite3.connect(state_dir / "audit.sqlite3")
    approvers = {row[0] for row in audit.execute("SELECT approved_by FROM audit_log WHERE approved_by IS NOT NULL")}
    audit.close()
    assert "the-cto" not in approvers and result.approved_by in approvers


def test_a_timed_out_task_exits_4(cli: CliRunner) -> None:
    code, out, _ = _run(cli, "task", "run", "--type", "shell", "--command", "sleep 5", "--timeout", "0.5")

    assert code == 4
    assert out.startswith("timed_out")


def test_a_spec_json_file_runs_as_is(cli: CliRunner, tmp_path: Path) -> None:
    (example,) = [e for e in EXAMPLES if e["type"] == "redis" and e.get("command") == "INFO stats"]
    task_file = tmp_path / "task.json"
    task_file.write_text(json.dumps(example))

    code, out, _ = _run(cli, "task", "run", "--file", str(task_file), "--json")

    assert code == 0
    result = TaskResult.model_validate_json(out)
    assert result.status is TaskStatus.SUCCEEDED and result.type == "redis"
    assert isinstance(result.data["total_commands_processed"], int)


def test_the_spec_top_example_with_its_agent(cli: CliRunner, tmp_path: Path) -> None:
    (example,) = [e for e in EXAMPLES if e.get("command") == "top -bn1 | head -20"]
    task_file = tmp_path / "task.json"
    task_file.write_text(json.dumps(example))

    code, out, _ = _run(cli, "task", "run", "-f", str(task_file), "--json")

    assert code == 0
    result = json.loads(out)
    assert result["agent_id"] == "agent-prod-001" and result["environment"] == "prod"
    assert result["output"].startswith("top - ")


def test_params_are_passed_as_json(cli: CliRunner) -> None:
    task = ["task", "run", "--type", "postgres", "--command", "SELECT 1 AS one", "--json"]
    code, out, _ = _run(cli, *task, "--params", '{"connection": "tracing-db"}')
    assert code == 0
    assert json.loads(out)["data"]["result_sets"][0]["rows"] == [[1]]

    code, out, _ = _run(cli, *task, "--params", '{"connection": "nope"}')
    assert code == 1
    assert json.loads(out)["error"]["code"] == "unknown_connection"


def test_the_agent_id_option_chooses_the_environment(cli: CliRunner) -> None:
    code, out, _ = _run(cli, "task", "run", "-t", "shell", "-c", "echo x", "--agent-id", "agent-staging-001", "--json")
    unknown, unknown_out, _ = _run(cli, "task", "run", "-t", "shell", "-c", "echo x", "--agent-id", "agent-mars")

    assert code == 0 and json.loads(out)["environment"] == "staging"
    assert unknown == 1 and "unknown agent 'agent-mars'" in unknown_out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["task", "run"], "error: give the task with --type (and --command / --params), or with --file task.json"),
        (
            ["task", "run", "--type", "shell", "--command", "uptime", "--params", "{oops"],
            "error: --params is not valid JSON",
        ),
        (
            ["task", "run", "--type", "shell", "--command", "uptime", "--timeout", "-1"],
            "error: invalid task: timeout: Input should be greater than 0",
        ),
        (["task", "run", "--type", "shell", "--command", "a\x00b"], "error: invalid task: command: Value error"),
        (["task", "run", "--file", "/nonexistent/task.json"], "error: cannot read /nonexistent/task.json"),
        (["task", "run", "--file", "/dev/null", "--type", "shell"], "error: --file already holds the task"),
    ],
    ids=["nothing", "bad-params", "bad-timeout", "nul-byte", "missing-file", "file-and-type"],
)
def test_bad_input_exits_2_with_one_line(cli: CliRunner, args: list[str], message: str) -> None:
    code, out, err = _run(cli, *args)

    assert code == 2
    assert err.startswith(message)
    assert len(err.strip().splitlines()) == 1
    assert out == ""


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"type": "shell", "command": "uptime"', "is not valid JSON: Expecting ',' delimiter at line 1 column 38"),
        ('["shell", "uptime"]', "a task is a JSON object, not list"),
        ('{"type": "shell", "command": "uptime", "when": "now"}', "invalid task: when: Extra inputs are not permitted"),
    ],
    ids=["truncated-json", "json-list", "unknown-field"],
)
def test_a_bad_task_file_is_one_clear_line_and_no_traceback(
    config_dir: Path, state_dir: Path, tmp_path: Path, content: str, message: str
) -> None:
    task_file = tmp_path / "task.json"
    task_file.write_text(content)

    completed = subprocess.run(
        [str(CLOUD_AGENT), "task", "run", "--file", str(task_file)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "200"},
    )

    assert completed.returncode == 2
    assert completed.stdout == ""
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1, completed.stderr
    assert lines[0].startswith("error: ") and message in lines[0]
    assert "Traceback" not in completed.stderr


def test_a_broken_configuration_exits_2_with_one_line(
    tmp_path: Path, state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLOUD_AGENT_CONFIG_DIR", str(tmp_path / "nowhere"))

    code, _, err = _run(CliRunner(), "task", "run", "--type", "shell", "--command", "uptime")

    assert code == 2
    assert err.strip() == f"error: configuration folder {tmp_path / 'nowhere'} does not exist"


def test_audit_list_shows_the_tasks(cli: CliRunner) -> None:
    _, out, _ = _run(cli, "task", "run", "-t", "shell", "-c", "echo listed", "--json")
    task_id = json.loads(out)["id"]
    _run(cli, "task", "run", "-t", "shell", "-c", "rm -rf /")

    code, table, _ = _run(cli, "audit", "list")
    assert code == 0
    newest, reason, finished, started = table.splitlines()
    assert "denied" in newest and newest.endswith("rm -rf /")
    assert reason.strip() == "→ recursive rm of / [rule shell.rm-root]"
    assert "finished" in finished and "succeeded" in finished and finished.endswith("echo listed")
    assert "started" in started and started.endswith("echo listed")

    code, lines, _ = _run(cli, "audit", "list", "--json", "--task-id", task_id)
    records = [AuditRecord.model_validate_json(line) for line in lines.splitlines()]
    assert code == 0
    assert [record.event.value for record in records] == ["finished", "started"]
    assert {record.actor for record in records} == {records[0].actor} and records[0].actor.startswith("cli:")

    code, lines, _ = _run(cli, "audit", "list", "--json", "--event", "denied", "--limit", "5")
    assert [json.loads(line)["command"] for line in lines.splitlines()] == ["rm -rf /"]


def test_audit_verify(cli: CliRunner, state_dir: Path) -> None:
    for command in ("echo one", "echo two"):
        _run(cli, "task", "run", "-t", "shell", "-c", command)

    code, out, _ = _run(cli, "audit", "verify")
    assert code == 0
    assert out.strip() == "ok: 4 records, hash chain intact"

    db = sqlite3.connect(state_dir / "audit.sqlite3")
    try:
        db.execute("DROP TRIGGER audit_log_no_update")
        db.execute("UPDATE audit_log SET command = 'echo three' WHERE seq = 3")
        db.commit()
    finally:
        db.close()

    code, _, err = _run(cli, "audit", "verify")
    assert code == 1
    assert err.strip() == "error: the audit log was altered at record 3: the record was changed after it was written"


def test_the_cycles_approval_instructions_are_printed_whole_for_copying() -> None:
    output = io.StringIO()
    handler = CycleProgress(console=Console(file=output, width=60), show_path=False, show_level=False, markup=False)
    curl = "with curl: curl -X POST http://127.0.0.1:8080/api/v1/incidents/" + "0" * 36 + "/approve -d '{}'"
    record = logging.LogRecord("cloud_agent.cycle", logging.INFO, __file__, 1, "fix: %s", ("waits:\n  - x",), None)
    record.instructions = ["in the Prefect UI: http://ui", curl]

    handler.emit(record)

    printed = output.getvalue()
    assert f"  - {curl}\n" in printed  # one line, however narrow the terminal
    assert "fix: waits:" in printed and "  - x" not in printed


def test_analyze_loads_no_executor_logging_no_prefect_and_no_scikit_learn(tmp_path: Path) -> None:
    """`analyze` has one second from process start to JSON: what it does not use, it does not import."""
    metrics = tmp_path / "metrics.csv"
    metrics.write_text("time,cart_cpu,cart_latency\n" + "".join(f"{t},{0.2 + (t > 50)},{0.1}\n" for t in range(100)))
    probe = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from gateway.cli import app\n"
        f"arguments = ['analyze', '--telemetry', {str(metrics)!r}, '--alert-time', '60', '--json']\n"
        "result = CliRunner().invoke(app, arguments)\n"
        "assert result.exit_code == 0, result.output\n"
        "print(sorted(name for name in ('structlog', 'prefect', 'sklearn', 'executors') if name in sys.modules))\n"
    )
    environment = {**os.environ, "CLOUD_AGENT_STATE_DIR": str(tmp_path / "state")}
    completed = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, env=environment, check=False
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert completed.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["analyze", "--telemetry", "m.csv", "--top", "0"], "error: Invalid value for '--top'"),
        (["analyze"], "error: Missing option '--telemetry'"),
        (["task", "run", "--no-such-option"], "error: No such option: --no-such-option"),
        (["no-such-command"], "error: No such command 'no-such-command'"),
    ],
)
def test_a_usage_error_is_one_line_with_exit_2(args: list[str], message: str) -> None:
    completed = subprocess.run([str(CLOUD_AGENT), *args], capture_output=True, text=True, timeout=60, check=False)
    assert completed.returncode == 2
    assert completed.stderr.startswith(message), completed.stderr
    assert len(completed.stderr.strip().splitlines()) == 1, completed.stderr
