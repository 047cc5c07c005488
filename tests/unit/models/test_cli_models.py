import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer
import yaml
from typer.testing import CliRunner

from gateway import cli_models
from models import FaultType, ModelStore, TrainedModels, calibration_note, simulate_incident


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    app = typer.Typer()
    app.command("analyze")(cli_models.analyze)
    app.command("eval")(cli_models.evaluate)
    app.command("train")(cli_models.train_model)
    return app


@pytest.fixture
def model_dir(tmp_path: Path, small_trained: TrainedModels) -> Path:
    store = ModelStore(tmp_path / "models")
    store.promote(store.save(small_trained, data_hash="test"))
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
    ranked = [line.split()[1] for line in lines if line[:2].strip().isdigit()]
    assert len(ranked) == 5 and str(files["root"]) in ranked
    # A model trained on the generators alone says its confidences are not yet this system's.
    assert calibration_note(0) in lines


def test_a_model_calibrated_on_confirmed_outcomes_says_on_how_many(
    app: typer.Typer, files: dict[str, Path], tmp_path: Path, small_trained: TrainedModels
) -> None:
    store = ModelStore(tmp_path / "calibrated")
    store.promote(store.save(small_trained, data_hash="test", training={"real_incidents": 37}))
    args = ["analyze", "--telemetry", str(files["metrics"]), "--alert-time", str(files["alert"])]
    text = CliRunner().invoke(app, [*args, "--model-dir", str(store.root)])
    assert text.exit_code == 0, text.output
    assert "confidences: calibrated on 37 confirmed outcomes of this system, beside generated ones" in (
        text.stdout.splitlines()
    )
    data = json.loads(CliRunner().invoke(app, [*args, "--model-dir", str(store.root), "--json"]).stdout)
    assert data["calibrated_on"] == 37


def test_analyze_says_when_the_metrics_show_no_incident(app: typer.Typer, tmp_path: Path, model_dir: Path) -> None:
    rng = np.random.default_rng(1)
    times = np.arange(1_700_000_000, 1_700_000_900, 15)
    noise = {
        f"{s}_{m}": 1 + 0.05 * rng.standard_normal(len(times)) for s in ("web", "api", "db") for m in ("cpu", "latency")
    }
    pd.DataFrame({"time": times, **noise}).to_csv(tmp_path / "flat.csv", index=False)
    args = ["analyze", "--telemetry", str(tmp_path / "flat.csv"), "--alert-time", "1700000600"]
    result = CliRunner().invoke(app, [*args, "--model-dir", str(model_dir)])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("anomaly: no")
    assert lines[2] == "no sustained change found: the ranking below assumes an incident the metrics do not show"


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


def test_a_topology_or_alert_service_that_names_nothing_in_the_metrics_is_an_error(
    app: typer.Typer, files: dict[str, Path], tmp_path: Path, model_dir: Path
) -> None:
    strangers = tmp_path / "strangers.yaml"
    strangers.write_text("services: [alpha, beta]\ncalls: [[alpha, beta]]\n")
    base = ["analyze", "--telemetry", str(files["metrics"]), "--model-dir", str(model_dir)]
    result = CliRunner().invoke(app, [*base, "--topology", str(strangers)])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: --topology names none of the metrics' services (")
    result = CliRunner().invoke(app, [*base, "--alert-service", "nobody"])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: --alert-service 'nobody' is none of the metrics' services (")


def test_the_service_that_paged_says_where_its_underscore_name_ends(
    app: typer.Typer, tmp_path: Path, model_dir: Path
) -> None:
    times = 1_767_225_600 + np.arange(300.0)
    latency = 0.2 + np.random.default_rng(4).normal(0, 0.01, 300)
    latency[200:] += 0.5
    frame = pd.DataFrame({"time": times, "payment_api_latency": latency, "payment_api_cpu": 0.3, "web_cpu": 0.2})
    path = tmp_path / "metrics.csv"
    frame.to_csv(path, index=False)
    base = ["analyze", "--telemetry", str(path), "--model-dir", str(model_dir), "--alert-time", str(times[210])]
    result = CliRunner().invoke(app, [*base, "--alert-service", "payment_api", "--json"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["hypotheses"][0]["component"] == "payment_api"
    # A name that ends inside a word of the columns is still nobody.
    result = CliRunner().invoke(app, [*base, "--alert-service", "payment_ap"])
    assert result.exit_code == 2 and "--alert-service 'payment_ap' is none" in result.stderr


def test_bad_telemetry_content_is_one_line(app: typer.Typer, tmp_path: Path, model_dir: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("when,cart_cpu\n1,2\n")
    result = CliRunner().invoke(app, ["analyze", "--telemetry", str(path), "--model-dir", str(model_dir)])
    assert result.exit_code == 2
    assert result.stderr.strip() == "error: metrics: no 'time' column (epoch seconds) in ['when', 'cart_cpu']"


def test_a_float_max_sentinel_spills_no_numpy_warning(app: typer.Typer, tmp_path: Path, model_dir: Path) -> None:
    # An exporter's "no limit" written as the largest double overflows squares and variances.
    rows = "".join(f"{t},{0.2 + (t >= 150)},{1.7e308 if t == 10 else 1.0}\n" for t in range(200))
    path = tmp_path / "metrics.csv"
    path.write_text("time,cart_cpu,cart_memory_limit\n" + rows)
    result = CliRunner().invoke(app, ["analyze", "--telemetry", str(path), "--json", "--model-dir", str(model_dir)])
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    assert json.loads(result.stdout)["hypotheses"][0]["component"] == "cart"


def test_analyze_without_a_model_folder_uses_the_state_folders_or_the_shipped_one(
    app: typer.Typer, files: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLOUD_AGENT_STATE_DIR", str(tmp_path / "empty-state"))
    result = CliRunner().invoke(app, ["analyze", "--telemetry", str(files["metrics"]), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["model_version"].startswith("shipped-")
    assert data["calibrated_on"] == 0  # trained by ``make model`` on the generators alone
    assert "training" not in result.stderr


def test_eval_scores_the_deployed_model_on_a_generator(app: typer.Typer, model_dir: Path) -> None:
    args = ["eval", "--generator", "simulator", "--cases", "6", "--seed", "5", "--deployed", "--model-dir"]
    result = CliRunner().invoke(app, [*args, str(model_dir)])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert "AC@1" in lines[0] and "ECE@5" in lines[0]
    assert [line.split()[:3] for line in lines[1:4]] == [
        ["simulator", "full", "6"],
        ["simulator", "metrics_only", "6"],
        ["simulator", "unnamed_metrics", "6"],
    ]
    bad = CliRunner().invoke(app, ["eval", "--generator", "nope", "--deployed", "--model-dir", str(model_dir)])
    assert bad.exit_code == 2 and bad.stderr.startswith("error: unknown generator 'nope'; known: simulator")
