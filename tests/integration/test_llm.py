"""The llm stage inside `guardstream up`: a file-mounted key rotated mid-run, a provider
that fails (error results, none lost), a redelivered request that does not call the model
again, and no key material in results, the audit topic or the workers' logs."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from guardstream.devmodel import DevModelServer, key_fingerprint
from guardstream.embedded.broker import EmbeddedBroker
from guardstream.policy import load_policy
from tests.llm.devcontrol import DevControl
from tests.support import GatewayProcess, consume, produce, request, results_by_id

pytestmark = pytest.mark.integration


async def _send(gateway: GatewayProcess, bodies: list[dict[str, Any]]) -> None:
    await produce(gateway.bootstrap, gateway.topic("requests"),
                  [(b["request_id"].encode(), orjson.dumps(b)) for b in bodies])


async def _results(gateway: GatewayProcess, total: int) -> dict[str, list[dict[str, Any]]]:
    return results_by_id(await consume(gateway.bootstrap, gateway.topic("results"),
                                       until=total, timeout=90))


async def test_key_rotation_failures_and_redelivery_through_the_gateway(
        broker: EmbeddedBroker, redis_url: str, topic_prefix: str, tmp_path: Path) -> None:
    key_a = f"sk-test-INTEGRATION-A-{uuid.uuid4().hex}"
    key_b = f"sk-test-INTEGRATION-B-{uuid.uuid4().hex}"
    key_file = tmp_path / "openai.key"
    key_file.write_text(key_a + "\n")
    policy = yaml.safe_load(load_policy().model_dump_json(by_alias=True))
    policy["stages"]["llm"].update({"key_refresh_seconds": 600, "max_retries": 1,
                                    "backoff_base_seconds": 0.05, "backoff_max_seconds": 0.1})
    policy_path = tmp_path / "policy.yaml"
    policy_path.write_text(yaml.safe_dump(policy))
    logs_path = tmp_path / "stderr.log"
    env = {"OPENAI_API_KEY": "", "GUARDSTREAM_KEY_PROVIDER": "file",
           "GUARDSTREAM_KEY_FILE": str(key_file), "GUARDSTREAM_POLICY": str(policy_path),
           "GUARDSTREAM_LOG_LEVEL": "DEBUG"}
    first = [request(f"a-{i}", f"First question {i}", user_id=f"ua-{i}") for i in range(3)]
    second = [request(f"b-{i}", f"Second question {i}", user_id=f"ub-{i}") for i in range(3)]
    failing = [request(f"f-{i}", "Doomed question", user_id=f"uf-{i}") for i in range(2)]

    with DevModelServer() as server:
        dev = DevControl(server)
        dev.steer(accept_bearers=[key_fingerprint(key_a)])
        with GatewayProcess(broker=broker.url, redis_url=redis_url,
                            openai_base_url=server.base_url, topic_prefix=topic_prefix,
                            extra_env=env, stderr_path=str(logs_path)) as gateway:
            await _send(gateway, first)
            await _results(gateway, 3)

            # The key is rotated: the file changes and the provider revokes the old key.
            # The next call gets a 401, re-reads the file and succeeds.
            key_file.write_text(key_b + "\n")
            dev.steer(accept_bearers=[key_fingerprint(key_b)])
            await _send(gateway, second)
            await _results(gateway, 6)

            dev.steer(fail_status=500, fail_times=-1)
            await _send(gateway, failing)
            await _results(gateway, 8)

            dev.steer(fail_times=0)
            await _send(gateway, [first[0]])  # the same request delivered again
            results = await _results(gateway, 9)
            audit = await consume(gateway.bootstrap, gateway.topic("audit"), until=9 * 2,
                                  timeout=30, settle=1.0)
        stats = dev.stats()

    for body in first + second:
        (result,) = results[body["request_id"]][:1]
        assert result["status"] == "ok", result
        assert result["output"] == body["messages"][0]["content"]
        assert result["usage"]["output_tokens"] > 0 and result["usage"]["cost_usd"] > 0
    for body in failing:
        assert [(r["status"], r["blocked_by"], r["reason"])
                for r in results[body["request_id"]]] == [("error", "llm", "upstream_error")]
    again = results[first[0]["request_id"]]
    assert len(again) == 2 and again[0]["output"] == again[1]["output"]
    assert again[1]["usage"] == again[0]["usage"]
    # One upstream call per request (two for each failing one: max_retries=1), the
    # redelivery included. A "second" request in flight with the old key got a 401 and
    # one more call with the re-read key (they run concurrently: one to three of them).
    assert stats["calls"]["a-0"] == 1
    assert all(stats["calls"][b["request_id"]] == 1 for b in first)
    assert all(stats["calls"][b["request_id"]] in (1, 2) for b in second)
    assert all(stats["calls"][b["request_id"]] == 2 for b in failing)
    rejected = sum(stats["calls"][b["request_id"]] for b in second) - len(second)
    assert 1 <= rejected <= len(second)
    assert stats["bearers"] == {key_fingerprint(key_a): len(first) + rejected,
                                key_fingerprint(key_b): len(second) + 2 * len(failing)}

    haystacks = [b"".join(v for _, v in audit), logs_path.read_bytes(),
                 orjson.dumps(results)]
    assert haystacks[0] and haystacks[1]
    for haystack in haystacks:
        for key in (key_a, key_b):
            assert key.encode() not in haystack
            assert key[-16:].encode() not in haystack
