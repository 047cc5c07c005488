"""The shell executor: output, exit codes, timeouts that leave nothing running, size limits, streaming."""

from __future__ import annotations

import itertools
import os
import random
import re
import time
import tracemalloc
import uuid
from pathlib import Path

import pytest

from executors import Approval, CloudAgent, EnvironmentCatalog, TaskStatus, open_audit_log
from tests.environments import write_environment

APPROVED = {"approved_by": "test-approver"}


def _unique_seconds(base: int) -> str:
    """A sleep duration no other process on the machine is likely to use (e.g. ``300.48213``)."""
    return f"{base}.{random.randrange(10_000, 99_999)}"


@pytest.fixture
def mark(monkeypatch: pytest.MonkeyPatch) -> str:
    """A variable every process this test's tasks start inherits, to find them in /proc later."""
    value = uuid.uuid4().hex
    monkeypatch.setenv("CA_TEST_TASK_MARK", value)
    return value


def _marked_processes(mark: str) -> dict[int, str]:
    """Live (non-zombie) processes carrying ``mark`` in their environment: ``{pid: command line}``."""
    needle = f"CA_TEST_TASK_MARK={mark}".encode()
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            environ = Path(f"/proc/{entry}/environ").read_bytes().split(b"\0")
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if needle in environ and stat[stat.rfind(")") + 2] != "Z":
            found[int(entry)] = cmdline.strip()
    return found


def _left_behind(mark: str) -> dict[int, str]:
    """What the task started that is still alive, once the kernel has had a moment to reap."""
    for _ in range(20):
        left = _marked_processes(mark)
        if not left:
            return {}
        time.sleep(0.05)
    return left


def test_stdout_stderr_and_exit_code(agent: CloudAgent) -> None:
    result = agent.run({"type": "shell", "command": "echo out; echo err >&2; exit 3"})

    assert result.status is TaskStatus.FAILED
    assert result.exit_code == 3
    assert result.output == "out\n"
    assert result.stderr == "err\n"
    assert result.error is not None
    assert result.error.code == "exit_status"
    assert result.error.message == "exited with status 3: err"


def test_success(agent: CloudAgent) -> None:
    result = agent.run({"type": "shell", "command": "printf 'a b\\nc d\\n' | awk '{print $2}'"})

    assert result.status is TaskStatus.SUCCEEDED
    assert result.exit_code == 0
    assert result.output == "b\nd\n"
    assert result.stderr == ""
    assert result.error is None
    assert result.output_digest and result.output_digest.startswith("sha256:")
    assert result.duration_ms is not None and result.duration_ms > 0


def test_spec_pipeline_df_free_loadavg(agent: CloudAgent) -> None:
    result = agent.run({"type": "shell", "command": "df -h && free -m && cat /proc/loadavg"})

    assert result.status is TaskStatus.SUCCEEDED, result.error
    assert "Filesystem" in result.output
    assert re.search(r"^Mem:\s+\d+", result.output, re.MULTILINE)
    assert re.search(r"^\d+\.\d+ \d+\.\d+ \d+\.\d+ \d+/\d+ \d+$", result.output, re.MULTILINE)


def test_spec_pipeline_top_head(agent: CloudAgent) -> None:
    result = agent.run({"agent_id": "agent-prod-001", "type": "shell", "command": "top -bn1 | head -20", "timeout": 30})

    assert result.status is TaskStatus.SUCCEEDED, result.error
    assert result.output.startswith("top - ")
    assert len(result.output.splitlines()) == 20


def test_spec_pipeline_netstat_grep_sees_postgres_listening(agent: CloudAgent) -> None:
    result = agent.run({"type": "shell", "command": "netstat -tuln | grep LISTEN"})

    assert result.status is TaskStatus.SUCCEEDED, result.error
    assert all("LISTEN" in line for line in result.output.splitlines())
    assert re.search(r":5432\s", result.output)


def test_a_pipeline_fails_like_bash_says(agent: CloudAgent) -> None:
    result = agent.run({"type": "shell", "command": "tail -n 1000 /var/log/app/error.log"})

    assert result.status is TaskStatus.FAILED
    assert result.exit_code == 1
    assert result.error is not None and "No such file or directory" in result.error.message


def test_sleep_30_with_timeout_1_is_killed_within_2_seconds(agent: CloudAgent, mark: str) -> None:
    started = time.monotonic()

    result = agent.run({"type": "shell", "command": "sleep 30", "timeout": 1})

    elapsed = time.monotonic() - started
    assert result.status is TaskStatus.TIMED_OUT
    assert elapsed < 2.0
    assert 0.9 < result.duration_ms / 1000 < 2.0
    assert result.exit_code is None
    assert result.error is not None and result.error.code == "timed_out"
    assert _left_behind(mark) == {}


def test_timeout_kills_children_and_background_jobs(agent: CloudAgent, mark: str) -> None:
    durations = [_unique_seconds(base) for base in (300, 301, 302, 303)]
    command = f"sh -c 'sleep {durations[0]} & sleep {durations[1]}' & sleep {durations[2]} & sleep {durations[3]}"
    started = time.monotonic()

    result = agent.run({"type": "shell", "command": command, "timeout": 1})

    assert result.status is TaskStatus.TIMED_OUT
    assert time.monotonic() - started < 2.0
    assert _left_behind(mark) == {}


def test_timeout_kills_what_ignores_sigterm(agent: CloudAgent, mark: str) -> None:
    duration = _unique_seconds(304)
    started = time.monotonic()

    result = agent.run({"type": "shell", "command": f"trap '' TERM; sleep {duration}; echo survived", "timeout": 1})

    assert result.status is TaskStatus.TIMED_OUT
    assert time.monotonic() - started < 2.0  # 1 s timeout + the TERM-to-KILL grace
    assert "survived" not in (result.output or "")
    assert _left_behind(mark) == {}


def test_timeout_kills_children_that_left_the_session(agent: CloudAgent, mark: str) -> None:
    durations = [_unique_seconds(305), _unique_seconds(306)]
    command = f"setsid sleep {durations[0]} & setsid sh -c 'sleep {durations[1]}' & sleep 30"

    result = agent.run({"type": "shell", "command": command, "timeout": 1}, approval=_approval(APPROVED))

    assert result.status is TaskStatus.TIMED_OUT
    assert _left_behind(mark) == {}


def test_background_job_left_after_success_is_killed(agent: CloudAgent, mark: str) -> None:
    durations = [_unique_seconds(307), _unique_seconds(308)]
    started = time.monotonic()

    result = agent.run(
        {"type": "shell", "command": f"sleep {durations[0]} & nohup sleep {durations[1]} & echo started", "timeout": 10}
    )

    assert result.status is TaskStatus.SUCCEEDED, result.error
    assert result.output == "started\n"
    assert time.monotonic() - started < 1.5  # it does not wait for the background jobs
    assert _left_behind(mark) == {}


def test_50_mb_of_output_is_truncated_with_its_original_size(agent: CloudAgent) -> None:
    size = 50 * 1024 * 1024
    tracemalloc.start()
    try:
        result = agent.run({"type": "shell", "command": f"yes 0123456789abcdefghijklmnopqrstuvwxy | head -c {size}"})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert result.status is TaskStatus.SUCCEEDED, result.error
    assert result.truncated is True
    assert result.original_bytes == size
    limit = 1024 * 1024  # the default max_output_bytes
    assert len(result.output.encode()) == limit
    assert result.output.startswith("0123456789abcdefghijklmnopqrstuvwxy\n0123")
    # The rest was counted as it streamed, never held: far less than 50 MB was ever allocated.
    assert peak < 12 * limit


def test_output_limit_of_the_environment(config_dir: Path, state_dir: Path) -> None:
    write_environment(config_dir, "tiny", agents=["agent-tiny-001"], limits={"max_output_bytes": 1000})
    expected = "".join(f"{n}\n" for n in range(1, 10_001))
    with CloudAgent(EnvironmentCatalog.load(config_dir), open_audit_log(f"sqlite:///{state_dir}/a.db")) as agent:
        result = agent.run({"agent_id": "agent-tiny-001", "type": "shell", "command": "seq 1 10000; seq 1 5000 >&2"})

    assert result.status is TaskStatus.SUCCEEDED
    assert result.truncated is True
    assert result.original_bytes == len(expected)
    assert result.output == expected[:1000]
    assert len(result.stderr) == 1000


def test_output_is_streamed_line_by_line_as_it_is_produced(agent: CloudAgent) -> None:
    received: list[tuple[float, str, str]] = []
    started = time.monotonic()

    result = agent.run(
        {"type": "shell", "command": "for i in 1 2 3 4; do echo line-$i; sleep 0.3; done; echo oops >&2"},
        on_output=lambda stream, line: received.append((time.monotonic() - started, stream, line)),
    )
    finished = time.monotonic() - started

    assert result.status is TaskStatus.SUCCEEDED
    assert [(stream, line) for _, stream, line in received] == [
        ("stdout", "line-1"),
        ("stdout", "line-2"),
        ("stdout", "line-3"),
        ("stdout", "line-4"),
        ("stderr", "oops"),
    ]
    times = [at for at, _, _ in received]
    assert times[0] < 0.3  # the first line came long before the command ended
    assert finished - times[0] > 0.8
    gaps = [later - earlier for earlier, later in itertools.pairwise(times[:4])]
    assert all(0.2 < gap < 0.6 for gap in gaps), gaps
    assert result.output == "line-1\nline-2\nline-3\nline-4\n"


def test_a_partial_last_line_is_streamed_too(agent: CloudAgent) -> None:
    received: list[str] = []

    agent.run({"type": "shell", "command": "printf 'one\\ntwo'"}, on_output=lambda stream, line: received.append(line))

    assert received == ["one", "two"]


def test_non_utf8_output_gives_a_note_and_no_exception(agent: CloudAgent) -> None:
    received: list[str] = []

    result = agent.run(
        {"type": "shell", "command": "printf 'ok \\xff\\xfe\\x80 \\x00end\\n'; printf '\\xc3' >&2"},
        on_output=lambda stream, line: received.append(line),
    )

    assert result.status is TaskStatus.SUCCEEDED
    assert result.output == "ok \ufffd\ufffd\ufffd \x00end\n"
    assert result.stderr == "\ufffd"
    assert any("not valid UTF-8" in note for note in result.notes)
    assert received == ["ok \ufffd\ufffd\ufffd \x00end", "\ufffd"]


def test_a_multibyte_character_cut_by_the_limit_is_not_called_binary(config_dir: Path, state_dir: Path) -> None:
    write_environment(config_dir, "tiny", agents=["agent-tiny-001"], limits={"max_output_bytes": 5})
    with CloudAgent(EnvironmentCatalog.load(config_dir), open_audit_log(f"sqlite:///{state_dir}/a.db")) as agent:
        result = agent.run({"agent_id": "agent-tiny-001", "type": "shell", "command": "echo ééééé"})

    assert result.truncated is True
    assert result.original_bytes == 11
    assert result.output.startswith("éé")
    assert not any("UTF-8" in note for note in result.notes)


@pytest.mark.parametrize(
    ("approval", "extra"), [(None, ""), (APPROVED, "; touch /tmp/ca-test-write")], ids=["read", "approved-write"]
)
def test_secret_looking_variables_of_the_agent_are_not_visible(
    agent: CloudAgent, monkeypatch: pytest.MonkeyPatch, approval: dict | None, extra: str
) -> None:
    monkeypatch.setenv("MY_API_TOKEN", "tok-visible-to-the-agent-only")
    monkeypatch.setenv("DB_PASSWORD", "pw-visible-to-the-agent-only")
    monkeypatch.setenv("CLOUD_AGENT_AUDIT_URL", "postgresql://agent-setting")
    monkeypatch.setenv("MY_PLAIN_SETTING", "plain-value")

    result = agent.run(
        {"type": "shell", "command": f"env; echo token=[$MY_API_TOKEN]{extra}"}, approval=_approval(approval)
    )

    assert result.status is TaskStatus.SUCCEEDED
    assert result.risk == ("write" if approval else "read")
    # A write runs with the agent's environment minus its secrets; a read gets a cleared one.
    assert ("MY_PLAIN_SETTING=plain-value" in result.output) is (approval is not None)
    for hidden in ("MY_API_TOKEN", "tok-visible", "DB_PASSWORD", "pw-visible", "CLOUD_AGENT_AUDIT_URL"):
        assert hidden not in result.output
    assert "token=[]" in result.output


def test_stdin_is_closed(agent: CloudAgent) -> None:
    started = time.monotonic()

    result = agent.run({"type": "shell", "command": "cat; echo read-done", "timeout": 5})

    assert result.status is TaskStatus.SUCCEEDED
    assert result.output == "read-done\n"
    assert time.monotonic() - started < 2


def test_a_missing_command_is_a_failure_not_an_exception(agent: CloudAgent) -> None:
    result = agent.run({"type": "shell", "command": "no-such-command-xyz --now"}, approval=_approval(APPROVED))

    assert result.status is TaskStatus.FAILED
    assert result.exit_code == 127
    assert result.error is not None and "command not found" in result.error.message


def _approval(given: dict | None) -> Approval | None:
    """An approval handed to the engine beside the task, as the CLI, the task API and the fix step do."""
    return Approval.model_validate(given) if given is not None else None
