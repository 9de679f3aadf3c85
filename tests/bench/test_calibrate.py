"""The machine-speed calibration recorded in every bench report."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

from guardstream.bench.calibrate import calibrate


def test_calibrate_reports_both_workloads_in_cpu_ms() -> None:
    speed = calibrate(rounds=1)
    assert set(speed) == {"python_ms", "matmul_ms"}
    assert all(math.isfinite(v) and 0 < v < 60_000 for v in speed.values())


def test_bench_report_prints_the_speed_range_over_runs() -> None:
    path = Path(__file__).parents[2] / "scripts" / "bench_report.py"
    spec = importlib.util.spec_from_file_location("bench_report", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    meta = {"cpu": "x", "cores": 2, "python": "3.11", "faust": "0", "aiokafka": "0",
            "load_before": [1.0], "load_after": [1.0]}
    reports = [{"meta": {**meta, "speed_before": {"python_ms": 70.0, "matmul_ms": 18.0},
                         "speed_after": {"python_ms": 90.5, "matmul_ms": 20.0}}},
               {"meta": {**meta, "speed_before": {"python_ms": 60.0, "matmul_ms": 25.0}}}]
    text = "\n".join(module.render(reports))
    assert "Python 60-90.5, float32 matmul 18-25" in text
