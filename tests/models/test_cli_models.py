import json
from pathlib import Path

import pytest
import typer
import yaml
from typer.testing import CliRunner

from gateway import cli_models
from models import FaultType, HypothesisRanker, ModelStore, simulate_incident


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    app = typer.Typer()
    app.command("analyze")(cli_models.analyze)
    app.command("eval")(cli_models.evaluate)
    return app


@pytest.fixture
def model_dir(tmp_path: Path, small_ranker: HypothesisRanker) -> Path:
    store = ModelStore(tmp_path / "models")
    store.promote(store.save(small_ranker, data_hash="test"))
    return store.root


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    incident = simulate_incident(21, FaultType.DEPENDENCY_DOWN, 12)
    paths = {
        "metrics": tmp_path / "metrics.csv",
        "topology": tmp_path / "topology.yaml",
        "logs": tmp_path / "logs.parquet",
    }
    incident.telemetry.metrics.to_csv(paths["metrics"], index=False)
    assert incident.telemetry.logs is not None
    incident.telemetry.logs.to_parquet(paths["logs"])
    paths["topology"].write_text(yaml.safe_dump(incident.topology.to_dict()))
    paths["alert"] = Path(str(incident.alert_time))
    paths["root"] = Path(incident.root_cause[0])
    return paths


def test_analyze_prints_ranked_hypotheses(app: typer.Typer, files: dict[str, Path], model_dir: Path) -> None:
    args = [
        "analyze",
        "--telemetry",
        str(files["metrics"]),
        "--logs",
        str(files["logs"]),
        "--topology",
        str(files["topology"]),
    ]
    result = CliRunner().invoke(app, [*args, "--alert-time", str(files["alert"]), "--model-dir", str(model_dir)])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("anomaly: yes")
    first = next(line for line in lines if line.strip().startswith("1 "))
    assert str(files["root"]) in first and "dependency_down" in first


def test_analyze_json(app: typer.Typer, files: dict[str, Path], model_dir: Path) -> None:
    args = ["analyze", "--telemetry", str(files["metrics"]), "--json", "--model-dir", str(model_dir), "--top", "3"]
    result = CliRunner().invoke(app, [*args, "--alert-time", "2026-01-01T00:00:00Z"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert len(data["hypotheses"]) == 3
    assert {"component", "fault", "confidence", "evidence", "verification", "fixes"} <= set(data["hypotheses"][0])


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--telemetry", "/nonexistent/metrics.csv"], "error: metrics: no such file"),
        (["--alert-time", "yesterday"], "error: --alert-time 'yesterday' is neither"),
        (["--topology", "/nonexistent/t.yaml"], "error: topology: no such file"),
    ],
)
def test_analyze_errors_are_one_line(
    app: typer.Typer, files: dict[str, Path], model_dir: Path, extra: list[str], message: str
) -> None:
    args = ["analyze", "--telemetry", str(files["metrics"]), "--model-dir", str(model_dir), *extra]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert result.stderr.strip().startswith(message)
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output


def test_bad_telemetry_content_is_one_line(app: typer.Typer, tmp_path: Path, model_dir: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("when,cart_cpu\n1,2\n")
    result = CliRunner().invoke(app, ["analyze", "--telemetry", str(path), "--model-dir", str(model_dir)])
    assert result.exit_code == 2
    assert result.stderr.strip() == "error: metrics: no 'time' column (epoch seconds) in ['when', 'cart_cpu']"


def test_eval_prints_ranker_and_baseline(app: typer.Typer, model_dir: Path) -> None:
    result = CliRunner().invoke(app, ["eval", "--cases", "10", "--seed", "5", "--model-dir", str(model_dir)])
    assert result.exit_code == 0, result.output
    header, overall = result.stdout.splitlines()[:2]
    assert "ranker AC@1" in header and "baseline AC@1" in header and "Avg@5" in header
    assert overall.split()[:2] == ["all", "10"]
    json_result = CliRunner().invoke(
        app, ["eval", "--cases", "10", "--seed", "5", "--model-dir", str(model_dir), "--json"]
    )
    report = json.loads(json_result.stdout)
    assert report["n_cases"] == 10 and 0 <= report["ranker"]["ac1"] <= 1
