"""``cloud-agent analyze``, ``cloud-agent eval`` and ``cloud-agent model train``: the diagnosis models
from the command line.

Plain typer command functions; ``gateway.cli`` registers them. ``analyze`` loads no Prefect and no
scikit-learn: the model is numpy arrays (the state folder's promoted one, else the shipped one).
Errors are one line on stderr with exit code 2.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

if TYPE_CHECKING:
    from models import Analysis, Fold

EXIT_USAGE = 2

_MODEL_DIR_HELP = (
    "Model store folder: its promoted model is used. Default: the state folder's models "
    "(CLOUD_AGENT_STATE_DIR/models), else the model shipped with cloud-agent."
)


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(EXIT_USAGE)


def _model_dir(given: Path | None) -> Path:
    if given is not None:
        return given
    state = os.environ.get("CLOUD_AGENT_STATE_DIR")
    return (Path(state) if state else Path.home() / ".local" / "state" / "cloud-agent") / "models"


def _epoch(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            _fail(f"--alert-time {text!r} is neither epoch seconds nor an ISO 8601 time")
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.timestamp()
    if not math.isfinite(value):
        _fail(f"--alert-time {text!r} is not a finite number")
    return value


def _names(names: Iterable[str], shown: int = 5) -> str:
    ordered = sorted(names)
    return ", ".join(ordered[:shown]) + (f" and {len(ordered) - shown} more" if len(ordered) > shown else "")


def _clock(epoch: float | None) -> str:
    if epoch is None:
        return "-"
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def analyze(
    telemetry: Annotated[Path, typer.Option("--telemetry", help="Metrics: CSV or Parquet, RCAEval layout.")],
    logs: Annotated[Path | None, typer.Option("--logs", help="Logs: time, service, level, message.")] = None,
    traces: Annotated[
        Path | None,
        typer.Option("--traces", help="Spans: trace_id, span_id, parent, service, duration, status, time (start)."),
    ] = None,
    topology: Annotated[Path | None, typer.Option("--topology", help="Call graph: JSON or YAML.")] = None,
    alert_time: Annotated[
        str | None, typer.Option("--alert-time", help="When the alert began: epoch seconds or ISO 8601.")
    ] = None,
    alert_service: Annotated[
        str | None, typer.Option("--alert-service", help="The component that paged (the alert's service label).")
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the analysis as JSON.")] = False,
    model_dir: Annotated[Path | None, typer.Option("--model-dir", help=_MODEL_DIR_HELP)] = None,
    top: Annotated[int, typer.Option("--top", min=1, max=50, help="How many hypotheses to show.")] = 5,
) -> None:
    """Rank the likely root causes of an incident from its telemetry."""
    from models import ModelsError, ModelStore, active_model, known_components, metric_services
    from models import analyze as run_analysis
    from models.store import load_telemetry, read_topology

    try:
        data = load_telemetry(telemetry, logs, traces)
        graph = read_topology(topology) if topology is not None else None
        known = known_components(data, graph.names if graph is not None else None)
        # The component that paged says where its own columns split (``cart_service_cpu``).
        services = set(metric_services(data, [*known, alert_service] if alert_service else known))
        if graph is not None and not services & set(known):
            _fail(f"--topology names none of the metrics' services ({_names(services)}), only {_names(known)}")
        if alert_service is not None and alert_service not in services | set(known):
            _fail(f"--alert-service {alert_service!r} is none of the metrics' services ({_names(services)})")
        when = _epoch(alert_time) if alert_time is not None else None
        folder = _model_dir(model_dir)
        if model_dir is not None and not folder.is_dir():
            _fail(f"--model-dir {str(folder)!r} is not a folder")
        model, _ = active_model(ModelStore(folder))
        # stdout is the result and stderr the errors: numpy's overflow warnings on absurd values
        # (a float-max sentinel) are neither, and the statistics read what overflows as missing.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            analysis = run_analysis(
                data, topology=graph, alert_time=when, model=model, alert_service=alert_service, top_k=top
            )
    except ModelsError as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc))
    if json_output:
        typer.echo(json.dumps(analysis.model_dump(mode="json"), indent=2))
    else:
        typer.echo(render_analysis(analysis))


def render_analysis(analysis: Analysis) -> str:
    """The analysis as plain text: the detection, then one block per hypothesis."""
    from models import calibration_note

    detection = analysis.detection
    lines = [
        f"anomaly: {'yes' if detection.is_anomaly else 'no'} (score {detection.score:.1f}), "
        f"change point {_clock(detection.change_point)}",
        f"involved: {', '.join(detection.involved_services[:8]) or '-'}",
    ]
    if not detection.is_anomaly and analysis.hypotheses:
        # The confidences say which component it would be if this is an incident; nothing here
        # says it is one, and a reader of 0.8 should not take it for a finding.
        lines.append("no sustained change found: the ranking below assumes an incident the metrics do not show")
    lines += [
        "",
        f"{'#':>2}  {'component':<24} {'fault':<18} {'confidence':>10}  evidence",
    ]
    for hypothesis in analysis.hypotheses:
        fault = hypothesis.fault.value + (f" ({hypothesis.metric})" if hypothesis.metric else "")
        evidence = [item.summary for item in hypothesis.evidence[:3]] or ["-"]
        head = f"{hypothesis.rank:>2}  {hypothesis.component:<24} {fault:<18} {hypothesis.confidence:>10.3f}"
        lines.append(f"{head}  {evidence[0]}")
        lines += [f"{'':>59}{item}" for item in evidence[1:]]
        if hypothesis.rank == 1 and hypothesis.missing_evidence:
            lines.append(f"{'':>4}not claimed, for want of evidence: {'; '.join(hypothesis.missing_evidence[:3])}")
    if analysis.hypotheses:
        lines.append(calibration_note(analysis.calibrated_on))
    if analysis.baseline:
        top = analysis.baseline[0]
        lines += ["", f"baseline (BARO) top: {top.service} {top.fault.value} via {top.metric} (score {top.score:.1f})"]
    lines.append(f"analysed in {analysis.timings.get('total', 0.0):.3f} s")
    return "\n".join(lines)


def evaluate(
    generator: Annotated[
        str, typer.Option("--generator", help="The generator to score on: simulator, queueing, pyrca-linear, ...")
    ] = "simulator",
    cases: Annotated[int, typer.Option("--cases", min=1, help="Incidents to score on.")] = 60,
    train_cases: Annotated[int, typer.Option("--train-cases", min=10, help="Training incidents per generator.")] = 120,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the incidents.")] = 1,
    deployed: Annotated[
        bool,
        typer.Option(
            "--deployed",
            help="Score the deployed model as it is, instead of one trained without the generator's family.",
        ),
    ] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    model_dir: Annotated[Path | None, typer.Option("--model-dir", help=_MODEL_DIR_HELP)] = None,
) -> None:
    """Accuracy and calibration on one generator, by default as one fold of leave-one-generator-out:
    a model trained on every other family of generators, scored on this one."""
    import models
    from models.generators import generator as find_generator
    from models.learning import SCORED_VIEWS

    try:
        family = find_generator(generator).family
        if deployed:
            model, metadata = models.active_model(models.ModelStore(_model_dir(model_dir)))
            incidents = models.generate(generator, cases, seed)
            reports = [models.evaluate(model, incidents, view=view) for view in SCORED_VIEWS]
            folds = [models.Fold(left_out=generator, trained_on=[f"deployed {metadata.version}"], reports=reports)]
        else:
            trained_on = [name for name in models.TRAINING_GENERATORS if find_generator(name).family != family]
            typer.echo(f"training on {', '.join(trained_on)} ({train_cases} incidents each)...", err=True)
            folds = models.leave_one_generator_out([generator], train_cases=train_cases, test_cases=cases, seed=seed)
    except models.ModelsError as exc:
        _fail(str(exc))
    if json_output:
        typer.echo(json.dumps([fold.model_dump(mode="json") for fold in folds], indent=2))
    else:
        typer.echo(render_folds(folds))


def render_folds(folds: list[Fold]) -> str:
    """One line per fold and view: accuracy, fault typing and calibration."""
    lines = [
        f"{'left out':<16} {'view':<15} {'n':>4} {'AC@1':>6} {'AC@3':>6} {'AC@5':>6} {'Avg@5':>6} "
        f"{'fault':>6} {'ECE@1':>6} {'ECE@5':>6} {'s/case':>7}"
    ]
    for fold in folds:
        for report in fold.reports:
            lines.append(
                f"{fold.left_out:<16} {report.view:<15} {report.n:>4} {report.ac1:>6.3f} {report.ac3:>6.3f} "
                f"{report.ac5:>6.3f} {report.avg5:>6.3f} {_value(report.fault_ac1)} {report.top1_ece:>6.3f} "
                f"{report.top5_ece:>6.3f} {report.seconds_per_case:>7.3f}"
            )
        lines.append(f"{'':<16} trained on: {', '.join(fold.trained_on)}")
    return "\n".join(lines)


def _value(number: float) -> str:
    return f"{number:>6.3f}" if math.isfinite(number) else f"{'-':>6}"


def train_model(
    out: Annotated[Path, typer.Option("--out", help="Folder to write the model to (compiled.npz, metadata.json).")],
    cases: Annotated[int, typer.Option("--cases", min=10, help="Incidents per generator.")] = 240,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the incidents.")] = 20_261_125,
    gate_cases: Annotated[int, typer.Option("--gate-cases", min=0, help="Incidents per left-out fold (0: none).")] = 60,
    jobs: Annotated[int, typer.Option("--jobs", min=1, help="Processes drawing incidents.")] = 2,
) -> None:
    """Train the model on every generator and write it where ``analyze`` finds it (``make model``
    writes the shipped one), with its leave-one-generator-out scores in its metadata."""
    import models
    from models.learning import ship_model

    try:
        metadata = ship_model(out, cases=cases, seed=seed, gate_cases=gate_cases, n_jobs=jobs)
    except models.ModelsError as exc:
        _fail(str(exc))
    typer.echo(json.dumps(metadata.model_dump(mode="json"), indent=2))
