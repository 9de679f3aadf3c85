"""Canaries in content, system prompt and API key never reach audit, logs or spans; and a
request's spans from seven worker processes share one trace id."""

from __future__ import annotations

import uuid
from collections import defaultdict
from pathlib import Path

import orjson
import pytest

from guardstream.devmodel import DevModelServer
from guardstream.embedded.broker import EmbeddedBroker
from tests.support import GatewayProcess, consume, produce, request, results_by_id

pytestmark = pytest.mark.integration

STAGES = {"ratelimit", "validate", "redact", "moderate", "injection", "llm", "output"}


async def test_canaries_never_leave_the_content_path(
        broker: EmbeddedBroker, redis_url: str, dev_model: DevModelServer,
        topic_prefix: str, tmp_path: Path) -> None:
    content_canary = f"CANARYCONTENT{uuid.uuid4().hex}"
    system_canary = f"CANARYSYSTEM{uuid.uuid4().hex}"
    key_canary = f"sk-CANARYKEY{uuid.uuid4().hex}"
    spans_path = tmp_path / "spans.jsonl"
    logs_path = tmp_path / "stderr.log"
    env = {"OPENAI_API_KEY": key_canary, "GUARDSTREAM_TRACE_FILE": str(spans_path),
           "GUARDSTREAM_LOG_LEVEL": "DEBUG"}
    with GatewayProcess(broker=broker.url, redis_url=redis_url,
                        openai_base_url=dev_model.base_url, topic_prefix=topic_prefix,
                        extra_env=env, stderr_path=str(logs_path)) as gateway:
        bodies = []
        for i in range(5):
            body = request(f"c-{i}", f"please summarise {content_canary} for me",
                           user_id=f"user-{i}-{uuid.uuid4().hex[:8]}")
            body["messages"].insert(0, {"role": "system",
                                        "content": f"You are helpful. {system_canary}"})
            bodies.append(body)
        bodies.append(request("c-bad", f"{content_canary}",
                              messages=[{"role": "nobody", "content": content_canary}]))
        await produce(gateway.bootstrap, gateway.topic("requests"),
                      [(b["request_id"].encode(), orjson.dumps(b)) for b in bodies])
        results = results_by_id(await consume(gateway.bootstrap, gateway.topic("results"),
                                              until=len(bodies), timeout=90))
        audit = await consume(gateway.bootstrap, gateway.topic("audit"),
                              until=len(bodies) * 2, timeout=30, settle=2.0)

    assert set(results) == {b["request_id"] for b in bodies}
    assert results["c-0"][0]["status"] == "ok"
    audit_bytes = b"".join(value for _, value in audit)
    assert len(audit) >= len(bodies) * 2
    spans = spans_path.read_bytes()
    logs = logs_path.read_bytes()
    assert spans, "the workers exported no spans"
    for canary in (content_canary, system_canary, key_canary):
        needle = canary.encode()
        assert needle not in audit_bytes
        assert needle not in spans
        assert needle not in logs
    assert bodies[0]["user_id"].encode() not in audit_bytes  # user ids only as keyed hashes

    traces: dict[str, set[str]] = defaultdict(set)
    trace_ids: dict[str, set[str]] = defaultdict(set)
    for line in spans.splitlines():
        span = orjson.loads(line)
        request_id = span["attributes"].get("guardstream.request_id")
        if request_id and request_id.startswith("c-") and request_id != "c-bad":
            traces[request_id].add(span["attributes"]["guardstream.stage"])
            trace_ids[request_id].add(span["trace_id"])
    for body in bodies[:-1]:
        assert traces[body["request_id"]] == STAGES
        assert len(trace_ids[body["request_id"]]) == 1
