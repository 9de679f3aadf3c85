"""The redact stage: values never pass, placeholders are stable per request, vault opt-in."""

from __future__ import annotations

import pytest

from guardstream.agents.base import Decision
from guardstream.agents.redact import RedactStage, vault_key
from guardstream.models import ChatMessage
from guardstream.policy import RedactPolicy
from guardstream.resources import Resources
from guardstream.settings import Settings
from tests.agents_support import envelope_of, run_stage

CASES = [
    ("EMAIL_ADDRESS", "write to jane.doe@acme-mail.com today", "jane.doe@acme-mail.com"),
    ("CREDIT_CARD", "card 4111-1111-1111-1111 was charged", "4111-1111-1111-1111"),
    ("US_SSN", "my SSN is 536-22-8761", "536-22-8761"),
    ("OPENAI_API_KEY", "key sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcd",
     "sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcd"),
    ("AWS_ACCESS_KEY", "AKIAIOSFODNN7EXAMPLQ is our access key", "AKIAIOSFODNN7EXAMPLQ"),
    ("PASSWORD", "my password is Tr0ub4dor&3xyz", "Tr0ub4dor&3xyz"),
    ("PHONE_NUMBER", "call me on +44 20 7946 0958", "7946 0958"),
]

BENIGN = [
    "Upgrade from version 3.11.7 to 3.12.1 before Friday.",
    "Order #100234 shipped on 2024-05-03 for $19.99.",
    "See https://docs.python.org/3/library/asyncio.html for details.",
]


@pytest.mark.parametrize(("entity", "text", "value"), CASES, ids=[c[0] for c in CASES])
async def test_values_are_replaced_and_findings_carry_no_value(entity: str, text: str,
                                                               value: str) -> None:
    verdict = await run_stage("redact", envelope_of(text))
    assert verdict.decision is Decision.PASS
    content = verdict.envelope.request.messages[0].content
    assert value not in content
    assert f"<{entity}_1>" in content
    assert any(f.type == entity and f.action == "redacted" for f in verdict.findings)
    assert all(value not in repr(f) for f in verdict.findings)


@pytest.mark.parametrize("text", BENIGN)
async def test_benign_look_alikes_are_untouched(text: str) -> None:
    verdict = await run_stage("redact", envelope_of(text))
    assert verdict.envelope.request.messages[0].content == text
    assert verdict.findings == ()


async def test_same_value_same_placeholder_across_messages_and_system_left_alone() -> None:
    envelope = envelope_of("again: bob@example.org", system="Support for bob@example.org")
    envelope = envelope.with_messages((
        *envelope.request.messages,
        ChatMessage("assistant", "I emailed bob@example.org and amy@example.org")))
    verdict = await run_stage("redact", envelope)
    system, user, assistant = (m.content for m in verdict.envelope.request.messages)
    assert system == "Support for bob@example.org"  # roles come from the policy
    assert user == "again: <EMAIL_ADDRESS_1>"
    assert assistant == "I emailed <EMAIL_ADDRESS_1> and <EMAIL_ADDRESS_2>"


async def test_reversible_mode_keeps_the_map_in_redis_with_a_ttl(redis_url: str) -> None:
    settings = Settings.from_env({"REDIS_URL": redis_url})
    policy = settings.policy
    redact = RedactPolicy(**{**policy.stages.redact.model_dump(), "reversible": True,
                             "vault_ttl_seconds": 60})
    stages = policy.stages.model_copy(update={"redact": redact})
    settings.__dict__["policy"] = policy.model_copy(update={"stages": stages})
    resources = Resources(settings)
    stage = RedactStage(resources)
    await stage.start()
    envelope = envelope_of("mail carol@example.net", request_id="vault-test-1")
    try:
        verdict = await stage.process(envelope)
        assert verdict.envelope.vault is True
        redis = resources.redis()
        stored = await redis.hgetall(vault_key("vault-test-1"))
        assert stored == {b"<EMAIL_ADDRESS_1>": b"carol@example.net"}
        assert 0 < await redis.ttl(vault_key("vault-test-1")) <= 60
        await redis.delete(vault_key("vault-test-1"))
    finally:
        await resources.close()


async def test_vault_unavailable_still_redacts() -> None:
    settings = Settings.from_env({"REDIS_URL": "redis://127.0.0.1:1/0"})
    policy = settings.policy
    redact = RedactPolicy(**{**policy.stages.redact.model_dump(), "reversible": True})
    settings.__dict__["policy"] = policy.model_copy(
        update={"stages": policy.stages.model_copy(update={"redact": redact})})
    resources = Resources(settings)
    stage = RedactStage(resources)
    await stage.start()
    try:
        verdict = await stage.process(envelope_of("mail carol@example.net"))
    finally:
        await resources.close()
    assert verdict.decision is Decision.PASS
    assert "carol@example.net" not in verdict.envelope.request.messages[0].content
    assert verdict.envelope.vault is False
    assert any(f.type == "vault_unavailable" for f in verdict.findings)


async def test_concurrent_requests_share_ner_batches_and_keep_their_own_placeholders() -> None:
    import asyncio

    from tests.agents_support import _STAGES

    texts = [f"Hi, I'm Maria Garcia, write to maria{i}@example.com or bob{i}@example.org"
             for i in range(6)] + BENIGN
    alone = [await run_stage("redact", envelope_of(t)) for t in texts]
    stage = _STAGES["redact"]
    assert isinstance(stage, RedactStage)
    before = stage._finder.batches
    together = await asyncio.gather(*(stage.process(envelope_of(t)) for t in texts))
    assert stage._finder.batches - before < len(texts)
    for one, other in zip(alone, together, strict=True):
        assert other.envelope.request.messages == one.envelope.request.messages
        assert other.findings == one.findings
    assert together[0].envelope.request.messages[0].content == (
        "Hi, I'm <PERSON_1>, write to <EMAIL_ADDRESS_1> or <EMAIL_ADDRESS_2>")
