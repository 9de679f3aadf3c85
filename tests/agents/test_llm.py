"""The llm stage against the dev model over real HTTP and real Redis: answers, usage and
cost, the canary, max_tokens, allowed models, redelivery without a second upstream call,
the error results when the provider gives up, and no key material anywhere."""

from __future__ import annotations

import asyncio
import logging
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from guardstream.agents.base import Decision
from guardstream.agents.llm import LlmStage
from guardstream.audit import Auditor
from guardstream.devmodel import DevModelServer, key_fingerprint
from guardstream.llm.keys import PLACEHOLDER_KEY
from guardstream.llm.pricing import DEFAULT_PRICES
from guardstream.models import Envelope, Result
from guardstream.models.codec import decode_request, encode
from guardstream.policy import load_policy
from guardstream.resources import Resources
from guardstream.runner import Outcome, step
from guardstream.settings import Settings
from tests.llm.devcontrol import DevControl

KEY = "sk-test-STAGEKEY-" + uuid.uuid4().hex


@pytest.fixture(scope="module")
def dev_server() -> Iterator[DevModelServer]:
    with DevModelServer() as server:
        yield server


@pytest.fixture
def dev(dev_server: DevModelServer) -> DevControl:
    control = DevControl(dev_server)
    control.steer(reset=True)
    return control


class Harness:
    """Builds LlmStages on the dev model, real Redis and a policy with llm overrides."""

    def __init__(self, dev: DevControl, redis_url: str, tmp_path: Path) -> None:
        self.dev = dev
        self.redis_url = redis_url
        self.tmp_path = tmp_path
        self.prefix = f"gst{uuid.uuid4().hex[:8]}"
        self.opened: list[tuple[LlmStage, Resources]] = []

    async def stage(self, env: dict[str, str] | None = None, **llm: Any) -> LlmStage:
        policy = yaml.safe_load(load_policy().model_dump_json(by_alias=True))
        policy["stages"]["llm"].update({"backoff_base_seconds": 0.01,
                                        "backoff_max_seconds": 0.05, **llm})
        path = self.tmp_path / f"policy-{uuid.uuid4().hex[:6]}.yaml"
        path.write_text(yaml.safe_dump(policy))
        settings = Settings.from_env({"OPENAI_BASE_URL": self.dev.base_url,
                                      "REDIS_URL": self.redis_url,
                                      "GUARDSTREAM_TOPIC_PREFIX": self.prefix,
                                      "GUARDSTREAM_POLICY": str(path), **(env or {})})
        resources = Resources(settings)
        stage = LlmStage(resources)
        await stage.start()
        self.opened.append((stage, resources))
        return stage

    async def close(self) -> None:
        for stage, resources in self.opened:
            await stage.close()
            await resources.close()


@pytest.fixture
async def harness(dev: DevControl, redis_url: str, tmp_path: Path,
                  monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Harness]:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    h = Harness(dev, redis_url, tmp_path)
    yield h
    await h.close()


def envelope(request_id: str | None = None, content: str = "What is a stream processor?",
             **fields: Any) -> Envelope:
    body: dict[str, Any] = {"request_id": request_id or f"r-{uuid.uuid4().hex[:10]}",
                            "user_id": fields.pop("user_id", "alice"),
                            "messages": [{"role": "user", "content": content}]}
    body.update(fields)
    return decode_request(orjson.dumps(body), received_ms=time.time() * 1000)


async def run(stage: LlmStage, env: Envelope) -> Outcome:
    return await step(stage, env, is_last=True, auditor=Auditor(stage.settings))


async def test_answer_usage_cost_and_the_canary_kept_out_of_the_result(
        harness: Harness) -> None:
    stage = await harness.stage()
    env = envelope(content="Hello model", messages=[
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Hello model"}])
    outcome = await run(stage, env)
    result = outcome.result
    assert result is not None and result.status.value == "ok", result
    assert result.output == "Hello model"
    assert result.messages == env.request.messages  # as sent, sanitized; no canary
    assert result.usage is not None
    price = DEFAULT_PRICES["gpt-4o-mini"]
    assert result.usage.output_tokens == 2 and result.usage.input_tokens > 0
    assert result.usage.cost_usd == pytest.approx(
        (result.usage.input_tokens * price.input_per_million
         + result.usage.output_tokens * price.output_per_million) / 1e6)
    response = outcome.audit[-1].to_dict()
    assert response["cost_usd"] == result.usage.cost_usd
    assert response["output_tokens"] == 2 and response["model"] == "gpt-4o-mini"
    assert harness.dev.stats()["calls"] == {env.request_id: 1}
    assert harness.dev.stats()["last_bearer"] == key_fingerprint(PLACEHOLDER_KEY)


@pytest.mark.parametrize("with_system", [True, False])
async def test_the_model_sees_the_canary_in_its_system_prompt(
        harness: Harness, with_system: bool) -> None:
    harness.dev.steer(echo="system")
    stage = await harness.stage()
    messages = [{"role": "user", "content": "hi"}]
    if with_system:
        messages.insert(0, {"role": "system", "content": "You are terse."})
    verdict = await stage.process(envelope(messages=messages))
    canary = verdict.envelope.canary
    assert canary and canary in (verdict.envelope.output or "")
    assert (verdict.envelope.output or "").startswith("You are terse." if with_system
                                                      else "(Internal reference")
    assert all(canary not in m.content for m in verdict.envelope.request.messages)
    assert len(verdict.envelope.request.messages) == len(messages)


async def test_canary_off(harness: Harness) -> None:
    harness.dev.steer(echo="system")
    stage = await harness.stage(canary=False)
    verdict = await stage.process(envelope())
    assert verdict.envelope.canary is None and verdict.envelope.output == ""


@pytest.mark.parametrize(("requested", "tier", "cap", "expected"), [
    (None, "free", 1024, 512),        # the tier's max_output_tokens
    (100, "free", 1024, 100),         # the request's own, smaller
    (4000, "enterprise", 1024, 1024),  # the policy cap
    (None, "pro", 300, 300),
    (900, "pro", 2000, 900),
])
async def test_max_tokens_is_always_set_to_the_smallest_limit(
        harness: Harness, requested: int | None, tier: str, cap: int, expected: int) -> None:
    stage = await harness.stage(max_tokens_cap=cap)
    fields: dict[str, Any] = {"tier": tier}
    if requested is not None:
        fields["max_tokens"] = requested
    verdict = await stage.process(envelope(**fields))
    assert verdict.decision is Decision.PASS
    assert harness.dev.stats()["last_params"]["max_tokens"] == expected


async def test_model_and_parameters_pass_through(harness: Harness) -> None:
    stage = await harness.stage(allowed_models=["gpt-4o-mini", "gpt-4.1-nano"])
    verdict = await stage.process(envelope(model="gpt-4.1-nano", temperature=0.3,
                                           response_format={"type": "json_object"}))
    assert verdict.decision is Decision.PASS
    assert harness.dev.stats()["last_params"] == {
        "model": "gpt-4.1-nano", "max_tokens": 512, "temperature": 0.3,
        "response_format": {"type": "json_object"}}
    assert verdict.envelope.request.model == "gpt-4.1-nano"


async def test_a_model_outside_allowed_models_is_blocked(harness: Harness) -> None:
    stage = await harness.stage(allowed_models=["gpt-4o-mini"])
    outcome = await run(stage, envelope(model="gpt-4o"))
    assert outcome.result is not None
    assert outcome.result.status.value == "blocked"
    assert outcome.result.reason == "model_not_allowed"
    assert harness.dev.stats()["total_calls"] == 0


async def test_redelivery_never_calls_upstream_again(harness: Harness) -> None:
    env = envelope()
    first = await (await harness.stage()).process(env)
    again = await (await harness.stage()).process(env)  # another worker, after a rebalance
    assert harness.dev.stats()["calls"] == {env.request_id: 1}
    assert again.envelope.output == first.envelope.output
    assert again.envelope.usage == first.envelope.usage
    assert again.envelope.canary == first.envelope.canary  # output checks the one used


async def test_a_concurrent_duplicate_waits_for_the_first_answer(harness: Harness) -> None:
    harness.dev.steer(delay_seconds=0.5)
    stage = await harness.stage()
    env = envelope()
    a, b = await asyncio.gather(stage.process(env), stage.process(env))
    assert harness.dev.stats()["calls"] == {env.request_id: 1}
    assert a.envelope.output == b.envelope.output == env.request.messages[-1].content


async def test_a_reused_request_id_with_other_content_is_answered_afresh(
        harness: Harness) -> None:
    stage = await harness.stage()
    request_id = f"r-{uuid.uuid4().hex[:8]}"
    first = await stage.process(envelope(request_id, "first question"))
    second = await stage.process(envelope(request_id, "second question", user_id="bob"))
    assert (first.envelope.output, second.envelope.output) == ("first question",
                                                               "second question")
    assert harness.dev.stats()["calls"] == {request_id: 2}


@pytest.mark.parametrize(("behaviour", "llm", "reason", "retry_after"), [
    ({"fail_status": 500, "fail_times": -1}, {"max_retries": 1}, "upstream_error", None),
    ({"fail_status": 429, "fail_times": -1, "retry_after": 20}, {}, "upstream_error", 20.0),
    ({"delay_seconds": 1.0}, {"timeout_seconds": 0.2, "max_retries": 0},
     "upstream_timeout", None),
    ({"fail_status": 400, "fail_times": -1}, {}, "upstream_error", None),
])
async def test_giving_up_is_an_error_result(harness: Harness, behaviour: dict[str, Any],
                                            llm: dict[str, Any], reason: str,
                                            retry_after: float | None) -> None:
    harness.dev.steer(**behaviour)
    stage = await harness.stage(**llm)
    env = envelope()
    outcome = await run(stage, env)
    result = outcome.result
    assert result is not None
    assert (result.status.value, result.blocked_by, result.reason) == ("error", "llm", reason)
    assert result.retry_after_seconds == retry_after
    assert result.output is None and result.messages == ()
    # Nothing was paid: once the provider recovers, a redelivery calls again.
    harness.dev.steer(reset=True)
    retried = await stage.process(env)
    assert retried.decision is Decision.PASS
    assert harness.dev.stats()["calls"] == {env.request_id: 1}


async def test_an_open_breaker_is_upstream_unavailable(harness: Harness) -> None:
    harness.dev.steer(fail_status=503, fail_times=-1)
    stage = await harness.stage(max_retries=0, breaker_failures=2, breaker_reset_seconds=60)
    reasons = [(await run(stage, envelope())).result for _ in range(3)]
    assert [r.reason for r in reasons if r] == ["upstream_error", "upstream_error",
                                                "upstream_unavailable"]
    last = reasons[-1]
    assert last is not None and last.retry_after_seconds is not None
    assert 0 < last.retry_after_seconds <= 60
    assert harness.dev.stats()["total_calls"] == 2


async def test_provider_content_filter_blocks(harness: Harness) -> None:
    harness.dev.steer(finish_reason="content_filter", reply="")
    outcome = await run(await harness.stage(), envelope())
    assert outcome.result is not None
    assert (outcome.result.status.value, outcome.result.reason) == ("blocked",
                                                                   "content_policy")
    assert outcome.result.usage is not None  # the call was still paid for


async def test_disabled_stage_passes_without_calling(harness: Harness) -> None:
    stage = await harness.stage(enabled=False)
    verdict = await stage.process(envelope())
    assert verdict.decision is Decision.PASS and verdict.envelope.output is None
    assert harness.dev.stats()["total_calls"] == 0


async def test_start_builds_the_sdk_client_without_calling_the_provider(
        harness: Harness) -> None:
    """The first request must not wait for the SDK client (TLS context, HTTP pool)."""
    stage = await harness.stage()
    assert stage.client is not None and stage.client.prepared
    assert harness.dev.stats()["total_calls"] == 0


async def test_usage_is_charged_beyond_what_ratelimit_counted(
        harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    import guardstream.limiter as limiter

    charges: list[dict[str, Any]] = []

    async def record(redis: Any, **kwargs: Any) -> None:
        charges.append(kwargs)

    monkeypatch.setattr(limiter, "charge_usage", record)
    stage = await harness.stage()
    env = envelope(tier="pro", client_ip="203.0.113.7").replace(input_tokens=5)
    verdict = await stage.process(env)
    usage = verdict.envelope.usage
    assert usage is not None
    assert len(charges) == 1
    charge = charges[0]
    assert charge["tokens"] == usage.input_tokens + usage.output_tokens - 5
    assert charge["cost_usd"] == usage.cost_usd
    assert (charge["user_id"], charge["tier"], charge["client_ip"]) == ("alice", "pro",
                                                                        "203.0.113.7")
    assert charge["policy"] is stage.policy
    await stage.process(env)  # a redelivery reuses the answer and is not charged twice
    assert len(charges) == 1


async def test_missing_limiter_only_warns(harness: Harness, monkeypatch: pytest.MonkeyPatch,
                                          caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setitem(sys.modules, "guardstream.limiter", None)
    stage = await harness.stage()
    verdict = await stage.process(envelope())
    assert verdict.decision is Decision.PASS
    assert "usage not charged" in caplog.text


async def test_no_key_material_in_logs_results_audit_or_envelopes(
        harness: Harness, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    key_file = tmp_path / "openai.key"
    key_file.write_text(KEY)
    rotated = "sk-test-ROTATED-" + uuid.uuid4().hex
    env = {"GUARDSTREAM_KEY_PROVIDER": "file", "GUARDSTREAM_KEY_FILE": str(key_file)}
    stage = await harness.stage(env=env, max_retries=1)
    outcomes = [await run(stage, envelope())]
    key_file.write_text(rotated)  # rotated: the provider now rejects the old key (401)
    harness.dev.steer(accept_bearers=[key_fingerprint(rotated)])
    outcomes.append(await run(stage, envelope()))
    harness.dev.steer(accept_bearers=[key_fingerprint("sk-nobody")])  # 401 twice: error
    outcomes.append(await run(stage, envelope()))
    harness.dev.steer(reset=True, fail_status=500, fail_times=-1)
    outcomes.append(await run(stage, envelope()))
    key_file.unlink()
    outcomes.append(await run(stage, envelope()))  # cached key still used

    results = [o.result for o in outcomes]
    assert [r.status.value for r in results if r] == ["ok", "ok", "error", "error", "error"]
    stats = harness.dev.stats()
    assert stats["bearers"] == {key_fingerprint(rotated): 4}  # fingerprints, never keys
    keys = stage.client.keys if stage.client else None
    texts = [caplog.text, orjson.dumps(stats).decode(), repr(stage.client), repr(keys),
             repr(stage.settings)]
    texts += [encode(r).decode() for r in results if isinstance(r, Result)]
    texts += [orjson.dumps(e.to_dict()).decode() for o in outcomes for e in o.audit]
    texts += [str(r.detail) for r in results if r]
    assert "rejected the API key" in " ".join(texts)
    for text in texts:
        assert KEY not in text and rotated not in text
        assert KEY[-12:] not in text and rotated[-12:] not in text  # not even a suffix


async def test_without_a_configured_provider_the_stage_uses_an_in_process_dev_model(
        redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    settings = Settings.from_env({"REDIS_URL": redis_url,
                                  "GUARDSTREAM_TOPIC_PREFIX": f"gst{uuid.uuid4().hex[:8]}"})
    resources = Resources(settings)
    stage = LlmStage(resources)
    await stage.start()
    try:
        verdict = await stage.process(envelope(content="offline echo"))
        assert verdict.envelope.output == "offline echo"
    finally:
        await stage.close()
        await resources.close()
