"""``cloud-agent incident``, ``approve``, ``reject``, ``demo``, ``worker`` and ``retrain``: the cycle
from the command line.

Plain typer command functions; ``gateway.cli`` registers them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

stdout = Console(soft_wrap=True)
stderr = Console(stderr=True, soft_wrap=True)
EXIT_FAILED, EXIT_USAGE, EXIT_REFUSED = 1, 2, 3


def _fail(message: str) -> None:
    stderr.print(f"[red]error:[/red] {message}", highlight=False)
    raise typer.Exit(EXIT_USAGE)


def _quiet_prefect() -> None:
    """Prefect's own INFO lines drown the cycle's progress in a terminal; keep its warnings."""
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")


def _show_progress() -> None:
    from gateway.cli_progress import CycleProgress  # rich's logging handler: only for the cycle's commands

    handler = CycleProgress(console=stderr, show_path=False, show_level=False, markup=False)
    handler.setFormatter(logging.Formatter("%(message)s"))
    progress = logging.getLogger("cloud_agent.cycle")
    progress.handlers[:] = [handler]
    progress.setLevel(logging.INFO)
    progress.propagate = False


def incident(
    alert: Annotated[Path, typer.Option("--alert", "-a", help="An Alertmanager webhook JSON file (version 4).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Run the seven-step cycle for one alert group now and print the RCA report."""
    _quiet_prefect()
    from flows.alerts import InvalidAlert, parse_alert_group

    try:
        payload = json.loads(alert.read_text())
    except OSError as exc:
        _fail(f"cannot read {alert}: {exc.strerror or exc}")
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        _fail(f"{alert} is not valid JSON: {exc}")
    try:
        group = parse_alert_group(payload)
    except InvalidAlert as exc:
        _fail(str(exc))
    _show_progress()
    with _prefect_for_the_cycle():
        report = _run_cycle(group)
    _print_report(report, as_json)


@contextlib.contextmanager
def _prefect_for_the_cycle() -> Iterator[None]:
    """The Prefect API the cycle runs against: the configured one, else the installation's local
    server — the gateway's if it runs one (its task API can then answer the approval), else one
    started for this command with its UI (Prefect's own fallback has no UI: nobody could approve)."""
    from flows.prefect_internals import configured_api_url, use_api

    if configured_api_url() is not None:
        yield
        return
    from flows.runs import settle_orphaned_runs
    from flows.runtime import settings
    from gateway.local_prefect import LocalPrefectServer, LocalPrefectUnavailable

    server = LocalPrefectServer(settings().local_prefect_home, on_ready=settle_orphaned_runs)
    url = server.start()
    if server.owned:
        stderr.print(
            f"no Prefect server configured (PREFECT_API_URL): starting a local one, UI at {server.ui_url} "
            f"(its data in {server.home}); a `cloud-agent serve` started meanwhile shares it",
            highlight=False,
        )
    try:
        server.wait_ready(server.startup_seconds)
    except LocalPrefectUnavailable as exc:
        server.stop()
        _fail(str(exc))
    use_api(url)
    try:
        yield
    finally:
        server.stop()


def _run_cycle(group: Any) -> dict[str, Any]:
    from flows.cycle import rca_incident

    return rca_incident(group)


_SERVER_OPTION = typer.Option(
    "--server", envvar="CLOUD_AGENT_URL", help="The task API (cloud-agent serve) that holds the incident."
)
_TOKEN_OPTION = typer.Option("--token", envvar="CLOUD_AGENT_TOKEN", help="An approver's bearer token.")


def approve(
    flow_run_id: Annotated[str, typer.Argument(help="The incident's flow run id (the cycle prints it).")],
    reason: Annotated[str, typer.Option(help="Why (recorded with the approval).")] = "",
    server: Annotated[str, _SERVER_OPTION] = "http://127.0.0.1:8080",
    token: Annotated[str | None, _TOKEN_OPTION] = None,
) -> None:
    """Approve the fix an incident waits on, through the task API (you are recorded by your token's name)."""
    _decide(flow_run_id, approve=True, reason=reason, server=server, token=token)


def reject(
    flow_run_id: Annotated[str, typer.Argument(help="The incident's flow run id (the cycle prints it).")],
    reason: Annotated[str, typer.Option(help="Why (recorded with the rejection).")] = "",
    server: Annotated[str, _SERVER_OPTION] = "http://127.0.0.1:8080",
    token: Annotated[str | None, _TOKEN_OPTION] = None,
) -> None:
    """Reject the fix an incident waits on, through the task API (it is not applied)."""
    _decide(flow_run_id, approve=False, reason=reason, server=server, token=token)


def _decide(flow_run_id: str, *, approve: bool, reason: str, server: str, token: str | None) -> None:
    from gateway.client import ApiRequestFailed, CloudAgentClient

    if not token:
        _fail("an approver's token is needed: set CLOUD_AGENT_TOKEN or pass --token")
    try:
        with CloudAgentClient(server, token) as client:
            answer = (client.approve_incident if approve else client.reject_incident)(flow_run_id, reason)
    except ApiRequestFailed as exc:
        stderr.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(EXIT_REFUSED if exc.status in (401, 403) else EXIT_FAILED) from None
    where = f" ({answer['flow_run_url']})" if answer.get("flow_run_url") else ""
    stdout.print(
        f"{answer['decision']} by {answer['decided_by']}: incident {answer['flow_run_id']} resumes{where}",
        highlight=False,
    )


def _print_report(report: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(report, indent=2, default=str))
        return
    from rich.markdown import Markdown

    from flows.report import CycleReport, render_markdown

    stdout.print(Markdown(render_markdown(CycleReport.model_validate(report))))


def demo(
    scenario: Annotated[
        str, typer.Option(help="pool (PostgreSQL), latency (MariaDB), errors (HTTP 500), cache (Redis).")
    ] = "pool",
    approve: Annotated[
        str,
        typer.Option(
            help="auto: the demo approves the fix after a few seconds; reject; wait: decide in the Prefect UI."
        ),
    ] = "auto",
    seed: Annotated[int, typer.Option(help="The simulated service graph and incident.")] = 7,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """A simulated incident with a real fault, diagnosed end to end on an embedded Prefect."""
    if approve not in ("auto", "reject", "wait"):
        _fail("--approve is auto, reject or wait")
    _quiet_prefect()
    _show_progress()
    started = time.monotonic()
    from gateway.demo.scenario import SCENARIOS, prepared_incident

    if scenario not in SCENARIOS:
        _fail(f"unknown scenario {scenario!r}; choose one of {', '.join(SCENARIOS)}")
    workdir = Path(tempfile.mkdtemp(prefix="cloud-agent-demo-"))
    stderr.print(f"[bold]scenario:[/bold] {SCENARIOS[scenario][1]}", highlight=False)
    from gateway.demo.prefect_server import local_prefect_server

    with (
        local_prefect_server(workdir / "prefect") as api_url,
        prepared_incident(scenario, workdir, seed=seed) as prepared,
    ):
        from flows.prefect_internals import use_api

        use_api(api_url)
        os.environ["CLOUD_AGENT_CONFIG_DIR"] = str(prepared.config_dir)
        os.environ.setdefault("CLOUD_AGENT_APPROVAL_TIMEOUT_SECONDS", "120")
        os.environ.setdefault("CLOUD_AGENT_FIX_SETTLE_SECONDS", "1")
        stderr.print(
            f"Prefect UI: {api_url.removesuffix('/api')}  —  injected the real fault on "
            f"[bold]{prepared.root_cause[0]}[/bold]; alert [bold]{prepared.alert['commonLabels'].get('alertname')}"
            "[/bold] fired; starting the cycle (the first run also trains the cold-start model)",
            highlight=False,
        )
        from flows.alerts import parse_alert_group
        from gateway.demo.approver import answer_in_background

        group = parse_alert_group(prepared.alert)
        if approve != "wait":
            answer_in_background(
                group.group_tag, approve=approve == "auto", say=lambda line: stderr.print(line, highlight=False)
            )
        report = _run_cycle(group)
    _print_report(report, as_json)
    top = (report.get("hypotheses") or [{}])[0]
    truth = prepared.root_cause
    found = top.get("component") == truth[0] and top.get("fault") == truth[1]
    stderr.print(
        f"{'[green]right' if found else '[red]wrong'} root cause on top[/]: {top.get('component')}/{top.get('fault')} "
        f"(injected: {truth[0]}/{truth[1]}); {time.monotonic() - started:.0f} s",
        highlight=False,
    )


def worker(
    env: Annotated[str | None, typer.Option("--env", "-e", help="The environment whose work pool to serve.")] = None,
    pool: Annotated[str | None, typer.Option(help="A work pool by name (e.g. the control pool of the cycle).")] = None,
    name: Annotated[str | None, typer.Option(help="Worker name shown in the Prefect UI.")] = None,
    poll_seconds: Annotated[
        float | None, typer.Option(help="How often to ask the pool for runs (default 1 s).")
    ] = None,
    limit: Annotated[int | None, typer.Option(help="Flow runs at once (default: unlimited).")] = None,
) -> None:
    """Serve an environment's work pool: run its collection and verification batches here."""
    if (env is None) == (pool is None):
        _fail("give --env ENV or --pool NAME")
    from executors import CloudAgentError, EnvironmentCatalog
    from flows.runtime import settings

    current = settings()
    if env is not None:
        try:
            catalog = EnvironmentCatalog.load(current.resolved_config_dir(), current.default_agent)
            environment = catalog.environment(env)
        except CloudAgentError as exc:
            _fail(str(exc))
        pool = environment.work_pool or f"rca-{env}"
    if not os.environ.get("PREFECT_API_URL"):
        _fail("a worker needs a Prefect server: set PREFECT_API_URL (e.g. http://127.0.0.1:4200/api)")
    import asyncio

    from flows.result_storage import ensure_shared_storage
    from flows.task_lane import serve_environment_tasks
    from flows.worker import serve_pool

    try:  # a store this host cannot use is a configuration error now, not a lost result later
        storage = ensure_shared_storage(current.result_storage)
    except CloudAgentError as exc:
        _fail(str(exc))
    assert pool is not None
    what = f"work pool [bold]{pool}[/bold]" + (
        f" and the single tasks of environment [bold]{env}[/bold]" if env else ""
    )
    where = f"results to {storage.url}" if storage else "results in this host's Prefect folder (one machine only)"
    stderr.print(f"serving {what}; {where}; Ctrl-C to stop", highlight=False)
    poll = poll_seconds or current.worker_poll_seconds

    async def serve() -> None:
        services = [serve_pool(pool, name=name, limit=limit, poll_seconds=poll)]
        if env is not None:
            services.append(serve_environment_tasks(env, limit=limit))
        await asyncio.gather(*services)

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        sys.exit(130)
    except asyncio.CancelledError:  # SIGTERM (systemd's stop): the task worker cancels the serving task
        stderr.print("stopped", highlight=False)


def retrain_command(
    cases: Annotated[int, typer.Option(help="Generated incidents per generator, mixed with stored outcomes.")] = 240,
    seed: Annotated[int, typer.Option()] = 20_261_125,
) -> None:
    """Retrain the models from stored outcomes now (what the scheduled deployment does)."""
    _quiet_prefect()
    from flows.retrain import retrain_model

    report = retrain_model(cases=cases, seed=seed)
    stdout.print(json.dumps(report, indent=2, default=str))
