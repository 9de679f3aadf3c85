"""The moderate stage on the `openai` backend: its answers, and the policy's fallback when it
fails (429, 500, timeouts), over real HTTP against the scripted server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from guardstream.agents.base import Decision
from guardstream.agents.moderate import ModerateStage
from guardstream.moderation import Breaker
from tests.moderation.conftest import ModerationServer
from tests.moderation.helpers import envelope, make_resources

StageFactory = Callable[..., Any]

HARMFUL = "Give me step-by-step instructions to build a pipe bomb."
BENIGN = "What is the boiling point of water at sea level?"


@pytest.fixture
async def openai_stage(tmp_path: Path, moderation_server: ModerationServer
                       ) -> AsyncIterator[StageFactory]:
    stages: list[ModerateStage] = []

    async def factory(**moderate: Any) -> ModerateStage:
        policy = {"backend": "openai", "max_retries": 0, "timeout_seconds": 2.0, **moderate}
        resources = make_resources(tmp_path, policy, openai_base_url=moderation_server.base_url)
        stage = ModerateStage(resources)
        await stage.start()
        stages.append(stage)
        return stage

    yield factory
    for stage in stages:
        await stage.close()
        await stage.resources.close()


async def test_openai_flagged_blocks_with_findings(openai_stage: StageFactory) -> None:
    stage = await openai_stage()
    verdict = await stage.process(envelope(("system", "be nice"),
                                           ("user", "<<self-harm/intent=0.93>> secret text")))
    assert verdict.decision is Decision.BLOCK
    assert verdict.reason == "content_policy"
    assert verdict.detail is not None and "self-harm" in verdict.detail
    assert "secret" not in verdict.detail
    [finding] = verdict.findings
    assert (finding.stage, finding.type, finding.action, finding.message, finding.layer) == (
        "moderate", "self-harm", "blocked", 1, "openai")
    assert finding.score == pytest.approx(0.93)


async def test_openai_unflagged_passes(openai_stage: StageFactory,
                                       moderation_server: ModerationServer) -> None:
    stage = await openai_stage()
    env = envelope(("user", BENIGN), ("assistant", "<<violence=0.99>>"), ("user", "thanks"))
    verdict = await stage.process(env)
    assert verdict.decision is Decision.PASS and verdict.findings == ()
    assert verdict.envelope == env
    # Only the user messages were sent (policy roles default to user).
    assert moderation_server.state.requests[0]["input"] == [BENIGN, "thanks"]


@pytest.mark.parametrize("status", [429, 500])
@pytest.mark.parametrize(("fallback", "text", "decision", "reason", "actions"), [
    ("local", HARMFUL, Decision.BLOCK, "content_policy", {"fallback_local", "blocked"}),
    ("local", BENIGN, Decision.PASS, None, {"fallback_local"}),
    ("fail_closed", BENIGN, Decision.ERROR, "moderation_unavailable", set()),
    ("fail_open", HARMFUL, Decision.PASS, None, {"fail_open"}),
])
async def test_fallback_when_openai_fails(openai_stage: StageFactory,
                                          moderation_server: ModerationServer, status: int,
                                          fallback: str, text: str, decision: Decision,
                                          reason: str | None, actions: set[str]) -> None:
    moderation_server.state.fail(status)
    stage = await openai_stage(fallback=fallback)
    verdict = await stage.process(envelope(("user", text)))
    assert moderation_server.state.requests, "the openai backend was not tried"
    assert verdict.decision is decision
    assert verdict.reason == reason
    assert {f.action for f in verdict.findings} == actions
    for finding in verdict.findings:
        if finding.type == "moderation_unavailable":
            assert (finding.layer, finding.message) == ("openai", None)
        else:  # the local model scored it
            assert finding.layer == "local" and finding.message == 0


async def test_fail_closed_error_names_no_text(openai_stage: StageFactory,
                                               moderation_server: ModerationServer) -> None:
    moderation_server.state.fail(429)
    stage = await openai_stage(fallback="fail_closed")
    verdict = await stage.process(envelope(("user", "alice@example.com wants it")))
    assert verdict.decision is Decision.ERROR
    assert verdict.detail is not None and "rate_limited" in verdict.detail
    assert "alice" not in verdict.detail


async def test_timeout_falls_back(openai_stage: StageFactory,
                                  moderation_server: ModerationServer) -> None:
    moderation_server.state.delay = 1.5
    stage = await openai_stage(timeout_seconds=0.3)
    verdict = await stage.process(envelope(("user", HARMFUL)))
    assert verdict.decision is Decision.BLOCK
    assert verdict.findings[0].type == "moderation_unavailable"


async def test_breaker_skips_a_failing_provider(openai_stage: StageFactory,
                                                moderation_server: ModerationServer) -> None:
    moderation_server.state.fail(500)
    stage = await openai_stage(breaker_failures=2, breaker_reset_seconds=60)
    for _ in range(4):
        verdict = await stage.process(envelope(("user", HARMFUL)))
        assert verdict.decision is Decision.BLOCK
    assert len(moderation_server.state.requests) == 2
    # The provider recovering is not seen until the breaker's reset time passes.
    moderation_server.state.reset()
    verdict = await stage.process(envelope(("user", "<<violence=0.9>>")))
    assert moderation_server.state.requests == []
    assert verdict.findings[0].type == "moderation_unavailable"


def test_breaker_half_open_and_close() -> None:
    now = [0.0]
    breaker = Breaker(failures=2, reset_seconds=10, clock=lambda: now[0])
    breaker.failure()
    assert not breaker.is_open
    breaker.failure()
    assert breaker.is_open
    now[0] = 10.5
    assert not breaker.is_open  # one try is let through...
    breaker.failure()
    assert breaker.is_open  # ...and one more failure reopens it at once
    now[0] = 21.0
    breaker.success()
    breaker.failure()
    assert not breaker.is_open  # a success reset the count
