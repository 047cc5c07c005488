from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from models import Telemetry, TelemetryError, load_telemetry, split_metric_column


def metrics(rows: int = 10) -> pd.DataFrame:
    return pd.DataFrame(
        {"time": 1_700_000_000 + np.arange(rows), "cart_cpu": np.arange(rows) * 1.0, "cart_latency-50": 5.0}
    )


def test_valid_metrics_are_sorted_and_float() -> None:
    frame = metrics().iloc[::-1]
    frame["cart_cpu"] = frame["cart_cpu"].astype(int)
    telemetry = Telemetry(metrics=frame)
    assert telemetry.metrics["time"].is_monotonic_increasing
    assert telemetry.metrics["cart_cpu"].dtype == float
    assert telemetry.metric_columns() == ["cart_cpu", "cart_latency-50"]


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (metrics().drop(columns=["time"]), "no 'time' column"),
        (metrics().iloc[:0], "no rows"),
        (metrics()[["time"]], "no metric column"),
        (metrics().assign(cart_cpu="high"), "non-numeric metric columns ['cart_cpu']"),
        (metrics().assign(cpu=1.0), "<service>_<metric>"),
        (metrics().rename(columns={"cart_cpu": "_cart_cpu"}), "<service>_<metric>, not ['_cart_cpu']"),
        (metrics().assign(cart_cpu=np.nan, **{"cart_latency-50": np.nan}), "no metric column has a value"),
    ],
)
def test_invalid_metrics_raise_one_clear_line(frame: pd.DataFrame, message: str) -> None:
    with pytest.raises(TelemetryError, match=message.replace("[", r"\[").replace("]", r"\]")) as raised:
        Telemetry(metrics=frame)
    assert "\n" not in str(raised.value)


def test_numbers_written_as_text_are_accepted() -> None:
    telemetry = Telemetry(metrics=metrics().assign(cart_cpu=lambda f: f["cart_cpu"].astype(str)))
    assert telemetry.metrics["cart_cpu"].iloc[3] == 3.0


def test_millisecond_epochs_become_seconds() -> None:
    frame = metrics()
    frame["time"] = frame["time"] * 1000
    assert Telemetry(metrics=frame).start == 1_700_000_000


@pytest.mark.parametrize("factor", [1e6, 1e9])
def test_microsecond_and_nanosecond_epochs_become_seconds(factor: float) -> None:
    frame = metrics()
    frame["time"] = frame["time"] * factor
    assert Telemetry(metrics=frame).start == pytest.approx(1_700_000_000)


def test_spaces_around_column_names_are_not_part_of_them() -> None:
    # A header written as "time, cart_cpu, cart_latency-50".
    frame = metrics().rename(columns=lambda name: f" {name}")
    assert Telemetry(metrics=frame).metric_columns() == ["cart_cpu", "cart_latency-50"]


def test_logs_need_their_columns() -> None:
    logs = pd.DataFrame({"time": [1.0], "service": ["a"], "message": ["boom"]})
    with pytest.raises(TelemetryError, match="logs: missing columns \\['level'\\]"):
        Telemetry(metrics=metrics(), logs=logs)


def test_traces_need_numeric_durations() -> None:
    traces = pd.DataFrame(
        {"trace_id": ["t"], "span_id": ["s"], "parent": [""], "service": ["a"], "duration": ["slow"], "status": ["ok"]}
    )
    with pytest.raises(TelemetryError, match="duration"):
        Telemetry(metrics=metrics(), traces=traces)


def test_a_span_start_under_another_usual_name_is_its_time() -> None:
    traces = pd.DataFrame(
        {"trace_id": ["t"], "span_id": ["s"], "parent": [""], "service": ["a"], "duration": [1.0], "status": ["ok"]}
    )
    telemetry = Telemetry(metrics=metrics(), traces=traces.assign(start_time=1_700_000_000_000))
    assert telemetry.traces is not None and telemetry.traces["time"].iloc[0] == 1_700_000_000


def test_split_prefers_known_service_names() -> None:
    assert split_metric_column("checkout_latency-50") == ("checkout", "latency-50")
    assert split_metric_column("cart_service_cpu") == ("cart", "service_cpu")
    assert split_metric_column("cart_service_cpu", ["cart_service"]) == ("cart_service", "cpu")


def test_load_csv_and_parquet(tmp_path: Path) -> None:
    frame = metrics()
    frame.to_csv(tmp_path / "m.csv", index=False)
    frame.to_parquet(tmp_path / "m.parquet")
    logs = pd.DataFrame({"time": [1.0], "service": ["cart"], "level": ["ERROR"], "message": ["boom"]})
    logs.to_csv(tmp_path / "logs.csv", index=False)
    from_csv = load_telemetry(tmp_path / "m.csv", logs_path=tmp_path / "logs.csv")
    from_parquet = load_telemetry(tmp_path / "m.parquet")
    pd.testing.assert_frame_equal(from_csv.metrics, from_parquet.metrics)
    assert from_csv.logs is not None and from_csv.logs["message"].iloc[0] == "boom"


def test_load_missing_file_is_a_telemetry_error(tmp_path: Path) -> None:
    with pytest.raises(TelemetryError, match="no such file"):
        load_telemetry(tmp_path / "absent.csv")
    with pytest.raises(TelemetryError, match="is a folder, not a file"):
        load_telemetry(tmp_path)
