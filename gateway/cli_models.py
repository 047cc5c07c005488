"""``cloud-agent analyze`` and ``cloud-agent eval``: the diagnosis models from the command line.

Two plain typer command functions; ``gateway.cli`` registers them. Errors are one line on
stderr with exit code 2.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, NoReturn

import typer

import models
from models import Analysis, EvaluationReport, HypothesisRanker, ModelsError

EXIT_USAGE = 2

_MODEL_DIR_HELP = (
    "Model store folder: its promoted model is used (the cold-start model is trained and saved "
    "there on first use). Without it the cold-start model is trained in memory (about 15 s)."
)


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(EXIT_USAGE)


def _ranker(model_dir: Path | None) -> HypothesisRanker:
    if model_dir is not None:
        return models.default_ranker(models.ModelStore(model_dir))
    typer.echo("training the cold-start model from the simulator (pass --model-dir to keep it)...", err=True)
    return models.cold_start_ranker()


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


def _clock(epoch: float | None) -> str:
    if epoch is None:
        return "-"
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def analyze(
    telemetry: Annotated[Path, typer.Option("--telemetry", help="Metrics: CSV or Parquet, RCAEval layout.")],
    logs: Annotated[Path | None, typer.Option("--logs", help="Logs: time, service, level, message.")] = None,
    traces: Annotated[
        Path | None, typer.Option("--traces", help="Spans: trace_id, span_id, parent, service, duration, status.")
    ] = None,
    topology: Annotated[Path | None, typer.Option("--topology", help="Call graph: JSON or YAML.")] = None,
    alert_time: Annotated[
        str | None, typer.Option("--alert-time", help="When the alert fired: epoch seconds or ISO 8601.")
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the analysis as JSON.")] = False,
    model_dir: Annotated[Path | None, typer.Option("--model-dir", help=_MODEL_DIR_HELP)] = None,
    top: Annotated[int, typer.Option("--top", min=1, max=50, help="How many hypotheses to show.")] = 5,
) -> None:
    """Rank the likely root causes of an incident from its telemetry."""
    try:
        data = models.load_telemetry(telemetry, logs, traces)
        graph = models.Topology.load(topology) if topology is not None else None
        when = _epoch(alert_time) if alert_time is not None else None
        ranker = _ranker(model_dir)
        analysis = models.analyze(data, topology=graph, alert_time=when, ranker=ranker, top_k=top)
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
    detection = analysis.detection
    lines = [
        f"anomaly: {'yes' if detection.is_anomaly else 'no'} (score {detection.score:.1f}), "
        f"change point {_clock(detection.change_point)}",
        f"involved: {', '.join(detection.involved_services[:8]) or '-'}",
        "",
        f"{'#':>2}  {'component':<24} {'fault':<18} {'confidence':>10}  evidence",
    ]
    for hypothesis in analysis.hypotheses:
        evidence = [item.summary for item in hypothesis.evidence[:3]] or ["-"]
        lines.append(
            f"{hypothesis.rank:>2}  {hypothesis.component:<24} {hypothesis.fault.value:<18} "
            f"{hypothesis.confidence:>10.3f}  {evidence[0]}"
        )
        lines += [f"{'':>59}{item}" for item in evidence[1:]]
    if analysis.baseline:
        top = analysis.baseline[0]
        lines += ["", f"baseline (BARO) top: {top.service} {top.fault.value} via {top.metric} (score {top.score:.1f})"]
    lines.append(f"analysed in {analysis.timings.get('total', 0.0):.3f} s")
    return "\n".join(lines)


def evaluate(
    cases: Annotated[int, typer.Option("--cases", min=1, help="Simulated incidents to evaluate on.")] = 100,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the simulated incidents.")] = 1,
    json_output: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    model_dir: Annotated[Path | None, typer.Option("--model-dir", help=_MODEL_DIR_HELP)] = None,
) -> None:
    """AC@1, AC@3 and Avg@5 of the ranker and of the BARO baseline on simulated incidents."""
    if seed == models.COLD_START_SEED:
        typer.echo(f"warning: seed {seed} is the cold-start training seed", err=True)
    try:
        ranker = _ranker(model_dir)
        incidents = models.simulate_cases(cases, seed, faults=list(models.FaultType))
        report = models.evaluate(incidents, ranker)
    except ModelsError as exc:
        _fail(str(exc))
    if json_output:
        typer.echo(json.dumps(report.model_dump(mode="json"), indent=2))
    else:
        typer.echo(render_evaluation(report))


def render_evaluation(report: EvaluationReport) -> str:
    """Ranker and baseline side by side, overall and per fault type."""
    header = (
        f"{'':<20} {'n':>4}  {'ranker AC@1':>11} {'AC@3':>6} {'Avg@5':>6}   "
        f"{'baseline AC@1':>13} {'AC@3':>6} {'Avg@5':>6}"
    )
    lines = [header]
    for name, (ranker, baseline) in [("all", (report.ranker, report.baseline)), *report.per_fault.items()]:
        lines.append(
            f"{name:<20} {ranker.n:>4}  {ranker.ac1:>11.3f} {ranker.ac3:>6.3f} {ranker.avg5:>6.3f}   "
            f"{baseline.ac1:>13.3f} {baseline.ac3:>6.3f} {baseline.avg5:>6.3f}"
        )
    lines += [
        "",
        f"service level: ranker AC@1 {report.ranker.service_ac1:.3f}, AC@3 {report.ranker.service_ac3:.3f}, "
        f"Avg@5 {report.ranker.service_avg5:.3f}; baseline AC@1 {report.baseline.service_ac1:.3f}, "
        f"AC@3 {report.baseline.service_ac3:.3f}, Avg@5 {report.baseline.service_avg5:.3f}",
        f"calibration (top-5 hypotheses): ECE {report.ece:.3f}, Brier {report.brier:.3f}; "
        f"top-1 ECE {report.top1_ece:.3f}",
        f"{report.seconds_per_case:.3f} s per case",
    ]
    return "\n".join(lines)

