"""``cloud-agent``: the command line.

Exit codes: 0 succeeded; 1 failed; 2 bad input or configuration; 3 denied or waiting for an
approval; 4 timed out. Errors are one line on stderr; ``CLOUD_AGENT_DEBUG=1`` shows tracebacks.
"""

from __future__ import annotations

import json
import os
import pwd
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console

# The executors (and the shell analyser's grammar) load only in the commands that run or read
# tasks: `--help` and the commands of other rooms start without them.
from contract import Approval, CloudAgentError, TaskResult, TaskSpec, TaskStatus
from gateway import cli_flows, cli_models
from gateway.render import print_audit, print_result

if TYPE_CHECKING:
    from executors import CloudAgent

app = typer.Typer(
    name="cloud-agent",
    help="Cloud Agent RCA: run diagnostic tasks safely, diagnose incidents, fix them with approval.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
task_app = typer.Typer(help="Run executor tasks (shell, postgres, mysql, redis, api, ...).", no_args_is_help=True)
audit_app = typer.Typer(help="Read and check the append-only audit log.", no_args_is_help=True)
app.add_typer(task_app, name="task")
app.add_typer(audit_app, name="audit")

stdout = Console(soft_wrap=True)
stderr = Console(stderr=True, soft_wrap=True)


def _warnings_to_stderr() -> None:
    """Warnings of the executors (a connection without a read-only credential...) go to stderr:
    stdout is the result, which `--json` promises is one JSON document. The CLI owns its process's
    logging, so this holds whatever configured structlog before (``is_configured`` is no guide:
    ``structlog.testing.capture_logs`` sets it too). sys.stderr is looked up per logger, so a
    redirected stderr (tests, wrappers) receives them."""
    import structlog

    structlog.configure(logger_factory=lambda *args: structlog.PrintLogger(sys.stderr))


#: Commands that run no executor and so log nothing through structlog: they skip importing it
#: (~60 ms of `analyze`'s one-second budget from process start to JSON).
_COMMANDS_WITHOUT_EXECUTORS = frozenset({"analyze", "eval", "model"})


@app.callback()
def _every_command(context: typer.Context) -> None:
    # Before any command (not before --help, which needs no logging): the cycle, the demo and the
    # workers log through the executors too.
    if context.invoked_subcommand not in _COMMANDS_WITHOUT_EXECUTORS:
        _warnings_to_stderr()


EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_REFUSED, EXIT_TIMED_OUT = 0, 1, 2, 3, 4
_EXIT_BY_STATUS = {
    TaskStatus.SUCCEEDED: EXIT_OK,
    TaskStatus.DENIED: EXIT_REFUSED,
    TaskStatus.APPROVAL_REQUIRED: EXIT_REFUSED,
    TaskStatus.TIMED_OUT: EXIT_TIMED_OUT,
}


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    """Print one clear line on stderr and exit."""
    stderr.print(f"[red]error:[/red] {message}", highlight=False)
    raise typer.Exit(code)


def current_user() -> str:
    """The OS user running this command, from the process's real uid: ``USER``/``LOGNAME`` are the
    caller's to set, so they cannot name an approver."""
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return f"uid:{os.getuid()}"


@task_app.command("run")
def task_run(
    type_: Annotated[
        str | None, typer.Option("--type", "-t", help="Task type: shell, postgres, mysql, redis, api, ...")
    ] = None,
    command: Annotated[
        str | None, typer.Option("--command", "-c", help="The command, SQL or Redis command line.")
    ] = None,
    agent_id: Annotated[
        str | None, typer.Option("--agent-id", "-a", help="Agent to run on (default: the local agent).")
    ] = None,
    timeout: Annotated[float | None, typer.Option(help="Seconds before the task is stopped (default 30).")] = None,
    params: Annotated[str | None, typer.Option(help='Task params as JSON, e.g. \'{"connection": "default"}\'.')] = None,
    file: Annotated[Path | None, typer.Option("--file", "-f", help="A task JSON file, as in the spec.")] = None,
    approve: Annotated[str | None, typer.Option(help="Approve a write/destructive task, giving the reason.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    server: Annotated[
        str | None, typer.Option(help="Run through a Cloud Agent API server at this URL instead of locally.")
    ] = None,
    token: Annotated[str | None, typer.Option(envvar="CLOUD_AGENT_TOKEN", help="Bearer token for --server.")] = None,
) -> None:
    """Run one task and print its result."""
    task = _task_from_options(type_, command, agent_id, timeout, params, file)
    # An approval is this command's to give, never the task file's: whoever wrote the file could
    # name anyone. ``--approve`` records the OS user who ran the command.
    if task.pop("approval", None) is not None and approve is None:
        stderr.print(
            "note: the task file's 'approval' is ignored; approve with --approve REASON "
            "(you are recorded as the approver)",
            highlight=False,
        )
    if server:
        from gateway.client import run_through_server

        if approve is not None:  # the server records the approver its token names
            task["approval"] = {"reason": approve}
        result = run_through_server(server, task, token=token)
    else:
        spec = _parse_task(task)
        approval = Approval(approved_by=current_user(), reason=approve) if approve is not None else None
        with _local_agent() as agent:
            result = agent.run(spec, actor=f"cli:{current_user()}", approval=approval)
    _show(result, as_json)
    raise typer.Exit(_EXIT_BY_STATUS.get(result.status, EXIT_FAILED))


def _task_from_options(
    type_: str | None,
    command: str | None,
    agent_id: str | None,
    timeout: float | None,
    params: str | None,
    file: Path | None,
) -> dict[str, Any]:
    if file is not None:
        if type_ or command or params:
            fail("--file already holds the task; do not combine it with --type, --command or --params")
        task = _read_json_file(file)
        if not isinstance(task, dict):
            fail(f"{file}: a task is a JSON object, not {type(task).__name__}")
    else:
        if not type_:
            fail("give the task with --type (and --command / --params), or with --file task.json")
        task = {"type": type_, "command": command or ""}
        if params:
            try:
                task["params"] = json.loads(params)
            except json.JSONDecodeError as exc:
                fail(f"--params is not valid JSON: {exc}")
    if agent_id:
        task["agent_id"] = agent_id
    if timeout is not None:
        task["timeout"] = timeout
    return task


def _read_json_file(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror or exc}")
    except UnicodeDecodeError:
        fail(f"{path} is not UTF-8 text")
    except json.JSONDecodeError as exc:
        fail(f"{path} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")


def _parse_task(task: dict[str, Any]) -> TaskSpec:
    try:
        return TaskSpec.parse(task)
    except CloudAgentError as exc:
        fail(f"invalid task: {exc}")


def _local_agent() -> CloudAgent:
    from executors import CloudAgent

    try:
        return CloudAgent.from_settings()
    except CloudAgentError as exc:
        fail(str(exc))


def _show(result: TaskResult, as_json: bool) -> None:
    if as_json:
        print(result.model_dump_json(indent=2))
    else:
        print_result(stdout, result)


@audit_app.command("list")
def audit_list(
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="How many records, newest first.")] = 50,
    task_id: Annotated[str | None, typer.Option(help="Only this task's records.")] = None,
    agent_id: Annotated[str | None, typer.Option(help="Only this agent's records.")] = None,
    event: Annotated[str | None, typer.Option(help="started, finished, denied, approval_required or rejected.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines.")] = False,
) -> None:
    """Show the audit log, newest first."""
    from executors import AuditQuery

    with _local_agent() as agent:
        records = agent.audit.query(AuditQuery(task_id=task_id, agent_id=agent_id, event=event, limit=limit))
    if as_json:
        for record in records:
            print(record.model_dump_json())
    else:
        print_audit(stdout, records)


@audit_app.command("verify")
def audit_verify() -> None:
    """Walk the audit log's hash chain and report the first record that was altered, if any."""
    with _local_agent() as agent:
        report = agent.audit.verify()
    if report.ok:
        stdout.print(f"[green]ok[/green]: {report.records} records, hash chain intact")
        return
    fail(f"the audit log was altered at record {report.first_bad_seq}: {report.problem}", EXIT_FAILED)


@app.command("environments")
def environments(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List the configured environments, their work pools and agents."""
    from executors import AgentSettings, EnvironmentCatalog

    settings = AgentSettings()
    try:
        catalog = EnvironmentCatalog.load(settings.resolved_config_dir(), settings.default_agent)
    except CloudAgentError as exc:
        fail(str(exc))
    rows: list[dict[str, Any]] = [
        {
            "environment": env.name,
            "work_pool": env.work_pool,
            "agents": env.agents,
            "max_risk": env.policy.max_risk.value,
            "connections": {kind: sorted(names) for kind, names in env.connections.items()},
        }
        for env in catalog.environments.values()
    ]
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    for row in rows:
        stdout.print(
            f"[bold]{row['environment']}[/bold]  pool={row['work_pool']}  agents={', '.join(row['agents'])}  "
            f"max_risk={row['max_risk']}",
            highlight=False,
        )
        for kind, names in row["connections"].items():
            stdout.print(f"    {kind}: {', '.join(names)}", highlight=False)


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on (0.0.0.0 for every interface).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8080,
) -> None:
    """Serve the task API: REST under /api/v1, live logs on /ws, OpenAPI at /docs."""
    from gateway.app import serve as serve_api

    serve_api(host=host, port=port)


app.command("analyze")(cli_models.analyze)
app.command("eval")(cli_models.evaluate)
model_app = typer.Typer(help="The diagnosis model: train the one cloud-agent ships.", no_args_is_help=True)
model_app.command("train")(cli_models.train_model)
app.add_typer(model_app, name="model")
app.command("incident")(cli_flows.incident)
app.command("approve")(cli_flows.approve)
app.command("reject")(cli_flows.reject)
app.command("demo")(cli_flows.demo)
app.command("worker")(cli_flows.worker)
app.command("retrain")(cli_flows.retrain_command)


#: click's ``UsageError`` (a bad option, a missing one, an unknown command), wherever this typer
#: keeps its click: newer releases vendor it.
_USAGE_ERROR: type[Any] = typer.BadParameter.__mro__[1]


def main() -> None:
    """Entry point of the ``cloud-agent`` console script."""
    try:
        # Not standalone: click's usage errors come here, to be one line like every other error
        # (standalone, they print a usage block and a framed message).
        code = app(standalone_mode=False)
    except _USAGE_ERROR as exc:
        if message := exc.format_message():  # empty after a group's help, printed for want of a command
            command = exc.ctx.command_path if exc.ctx else "cloud-agent"
            stderr.print(f"[red]error:[/red] {message} (see {command} --help)", highlight=False)
        sys.exit(EXIT_USAGE)
    except CloudAgentError as exc:
        stderr.print(f"[red]error:[/red] {exc}", highlight=False)
        sys.exit(EXIT_USAGE)
    except (KeyboardInterrupt, typer.Abort):
        stderr.print("interrupted")
        sys.exit(130)
    except Exception as exc:
        if os.environ.get("CLOUD_AGENT_DEBUG"):
            raise
        stderr.print(
            f"[red]internal error:[/red] {type(exc).__name__}: {exc} (CLOUD_AGENT_DEBUG=1 shows the traceback)",
            highlight=False,
        )
        sys.exit(EXIT_FAILED)
    sys.exit(code if isinstance(code, int) else EXIT_OK)
