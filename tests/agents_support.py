"""Building envelopes and running one stage without Kafka, for the stage tests."""

from __future__ import annotations

import time
from typing import Any

from guardstream.agents import build_stage
from guardstream.agents.base import Stage, Verdict
from guardstream.models import ChatMessage, ChatRequest, Envelope
from guardstream.resources import Resources
from guardstream.settings import Settings

_STAGES: dict[str, Stage] = {}
_RESOURCES: Resources | None = None


def envelope_of(content: str, *, role: str = "user", system: str | None = None,
                request_id: str = "r-1", user_id: str = "u-1", **fields: Any) -> Envelope:
    messages = [ChatMessage(role, content)]
    if system is not None:
        messages.insert(0, ChatMessage("system", system))
    request = ChatRequest(request_id=request_id, user_id=user_id, messages=tuple(messages),
                          **fields)
    return Envelope(request=request, received_ms=time.time() * 1000)


async def run_stage(name: str, envelope: Envelope) -> Verdict:
    """Run a stage with the packaged policy; heavy stages are started once per test session."""
    global _RESOURCES
    if _RESOURCES is None:
        _RESOURCES = Resources(Settings.from_env({}))
    stage = _STAGES.get(name)
    if stage is None:
        stage = build_stage(name, _RESOURCES)
        await stage.start()
        _STAGES[name] = stage
    return await stage.process(envelope)
