"""`guardstream bench` against a running gateway: a tiny run, real numbers in the report."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from tests.support import GatewayProcess

pytestmark = pytest.mark.integration


def test_bench_smoke(gateway: GatewayProcess, tmp_path: Path) -> None:
    assert gateway.proc is not None
    env = {**gateway.env, "PYTHONUNBUFFERED": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "guardstream.cli", "bench", "--requests", "30", "--rate", "15",
         "--throughput-requests", "30", "--warmup", "5", "--no-local", "--no-chains",
         "--no-progress", "--up-pid", str(gateway.proc.pid), "--out", str(tmp_path),
         "--timeout", "120"],
        env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    reports = list(tmp_path.glob("bench-*.json"))
    assert len(reports) == 1
    report = orjson.loads(reports[0].read_bytes())
    fixed = report["pipeline"]["fixed_rate"]
    assert fixed["results"] == 30 and fixed["missing"] == 0
    assert 0 < fixed["latency_ms"]["p50"] <= fixed["latency_ms"]["p99"]
    assert sum(fixed["statuses"].values()) == 30
    assert "ratelimit" in fixed["stages"] and fixed["stages"]["ratelimit"]["count"] > 0
    cpu = report["pipeline"]["throughput"]["cpu_ms_per_request"]
    assert set(report["config"]["workers"]) >= {"ratelimit", "redact", "output"}
    assert cpu["total"] > 0
    rss = report["pipeline"]["memory"]["worker_rss_mb"]
    assert all(v > 10 for v in rss.values())
    assert report["targets"]["p99_over_p50"]["value"] is not None
    assert os.path.exists(report["chart"]) or "matplotlib" in report["chart"]
