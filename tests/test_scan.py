"""`guardstream scan`: the same stage code as the workers, in process, results in order."""

from __future__ import annotations

import subprocess
import sys

import orjson


def _scan(lines: list[bytes], stages: str) -> list[dict[str, object]]:
    proc = subprocess.run(
        [sys.executable, "-m", "guardstream.cli", "scan", "--stages", stages],
        input=b"\n".join(lines) + b"\n", capture_output=True, timeout=120, check=True,
    )
    return [orjson.loads(line) for line in proc.stdout.splitlines()]


def test_one_result_per_request_in_input_order() -> None:
    lines = [orjson.dumps({"request_id": f"r{i}", "user_id": "u",
                           "messages": [{"role": "user", "content": f"msg {i}"}]})
             for i in range(30)]
    lines.insert(5, b"this is not json")
    lines.insert(9, orjson.dumps({"request_id": "bad", "user_id": "u",
                                  "messages": [{"role": "root", "content": "x"}]}))
    results = _scan(lines, "validate")
    assert len(results) == 32
    ids = [r["request_id"] for r in results]
    assert ids[5] is None and results[5]["reason"] == "undecodable"
    assert ids[9] == "bad" and results[9]["reason"] == "invalid_role"
    expected = [f"r{i}" for i in range(30)]
    assert [i for i in ids if i not in (None, "bad")] == expected


def test_unknown_stage_is_a_usage_error() -> None:
    proc = subprocess.run([sys.executable, "-m", "guardstream.cli", "scan", "--stages", "nope"],
                          input=b"", capture_output=True, timeout=60, check=False)
    assert proc.returncode == 2
    assert b"unknown stage" in proc.stderr
