"""The `openai` backend over real HTTP (the openai SDK) against the scripted server."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from guardstream.moderation import ModerationUnavailable, OpenAIBackend
from guardstream.policy import ModeratePolicy
from guardstream.settings import Settings
from tests.moderation.conftest import ModerationServer

Factory = Callable[..., OpenAIBackend]


@pytest.fixture
async def make_backend(moderation_server: ModerationServer) -> AsyncIterator[Factory]:
    built: list[OpenAIBackend] = []

    def factory(base_url: str | None = None, **policy: Any) -> OpenAIBackend:
        policy.setdefault("max_retries", 0)
        policy.setdefault("timeout_seconds", 2.0)
        backend = OpenAIBackend.from_policy(
            Settings(openai_base_url=base_url or moderation_server.base_url),
            ModeratePolicy(backend="openai", **policy))
        built.append(backend)
        return backend

    yield factory
    for backend in built:
        await backend.aclose()


@pytest.mark.parametrize(("text", "flagged", "score"), [
    ("<<self-harm/intent=0.93>> tonight", ("self-harm",), 0.93),
    ("<<harassment/threatening=0.81>>", ("harassment",), 0.81),
    ("<<illicit/violent=0.77>>", ("illicit",), 0.77),
    ("<<violence/graphic=0.66>> <<violence=0.55>>", ("violence",), 0.66),
    ("<<sexual/minors=0.9>>", ("sexual/minors",), 0.9),
    ("<<hate/threatening=0.7>> <<illicit=0.6>>", ("hate", "illicit"), 0.7),
])
async def test_flagged_answer_maps_subcategories_to_ours(
        make_backend: Factory, moderation_server: ModerationServer,
        text: str, flagged: tuple[str, ...], score: float) -> None:
    [outcome] = await make_backend().moderate([text])
    assert outcome.flagged == flagged
    assert outcome.backend == "openai" and outcome.degraded is None
    assert outcome.scores[flagged[0]] == pytest.approx(score)
    assert "profanity" not in outcome.scores  # OpenAI has no such category
    [sent] = moderation_server.state.requests
    assert sent == {"model": "omni-moderation-latest", "input": [text]}
    assert moderation_server.state.authorizations == ["Bearer sk-test-moderation"]


async def test_unflagged_answer(make_backend: Factory) -> None:
    outcomes = await make_backend().moderate(["what is the capital of France?", "hi"])
    assert [o.flagged for o in outcomes] == [(), ()]
    assert all(max(o.scores.values()) == pytest.approx(0.01) for o in outcomes)
    assert set(outcomes[0].scores) == {"harassment", "hate", "self-harm", "sexual",
                                       "sexual/minors", "violence", "illicit"}


@pytest.mark.parametrize(("thresholds", "text", "flagged"), [
    # A policy threshold above the score overrides OpenAI's own flag...
    ({"violence": 0.95}, "<<violence/graphic=0.9>>", ()),
    # ...and one below the score flags what OpenAI did not.
    ({"hate": 0.2}, "<<hate=0.3>>", ("hate",)),
    # Categories without a policy threshold keep OpenAI's flag.
    ({"hate": 0.2}, "<<violence=0.6>>", ("violence",)),
])
async def test_policy_thresholds(make_backend: Factory, thresholds: dict[str, float],
                                 text: str, flagged: tuple[str, ...]) -> None:
    [outcome] = await make_backend(openai_thresholds=thresholds).moderate([text])
    assert outcome.flagged == flagged


async def test_many_texts_are_batched_in_order(make_backend: Factory,
                                               moderation_server: ModerationServer) -> None:
    texts = [f"text {i} <<violence=0.9>>" if i % 7 == 0 else f"text {i}" for i in range(40)]
    outcomes = await make_backend().moderate(texts)
    assert [bool(o.flagged) for o in outcomes] == [i % 7 == 0 for i in range(40)]
    assert [len(r["input"]) for r in moderation_server.state.requests] == [32, 8]


@pytest.mark.parametrize(("status", "cause"), [
    (429, "rate_limited"), (500, "server_error"), (503, "server_error"),
    (401, "rejected"), (400, "rejected"),
])
async def test_error_statuses_become_unavailable(
        make_backend: Factory, moderation_server: ModerationServer,
        status: int, cause: str) -> None:
    moderation_server.state.fail(status)
    secret = "my card is 4111 1111 1111 1111"
    with pytest.raises(ModerationUnavailable) as caught:
        await make_backend().moderate([secret])
    assert caught.value.cause == cause
    assert secret not in str(caught.value) and caught.value.__cause__ is None
    assert len(moderation_server.state.requests) == 1  # max_retries=0


@pytest.mark.parametrize("status", [429, 500])
async def test_limited_retries_recover(make_backend: Factory,
                                       moderation_server: ModerationServer,
                                       status: int) -> None:
    moderation_server.state.fail(status, times=1, retry_after="0")
    [outcome] = await make_backend(max_retries=1).moderate(["<<violence=0.9>>"])
    assert outcome.flagged == ("violence",)
    assert len(moderation_server.state.requests) == 2


async def test_retries_are_limited(make_backend: Factory,
                                   moderation_server: ModerationServer) -> None:
    moderation_server.state.fail(500, retry_after="0")
    with pytest.raises(ModerationUnavailable):
        await make_backend(max_retries=2).moderate(["hello"])
    assert len(moderation_server.state.requests) == 3


async def test_timeout(make_backend: Factory, moderation_server: ModerationServer) -> None:
    moderation_server.state.delay = 1.5
    with pytest.raises(ModerationUnavailable) as caught:
        await make_backend(timeout_seconds=0.3).moderate(["hello"])
    assert caught.value.cause == "timeout"


async def test_connection_refused(make_backend: Factory) -> None:
    with socket.socket() as sock:  # a port nobody listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ModerationUnavailable) as caught:
        await make_backend(base_url=f"http://127.0.0.1:{port}/v1").moderate(["hello"])
    assert caught.value.cause == "connection"


@pytest.mark.parametrize("raw", [
    '{"id": "x", "results": []}',
    '{"id": "x", "results": [{"flagged": true, "categories": {}, '
    '"category_scores": {"violence": "high"}}]}',
    "not json at all",
])
async def test_malformed_answers_are_bad_response(
        make_backend: Factory, moderation_server: ModerationServer, raw: str) -> None:
    moderation_server.state.raw = raw
    with pytest.raises(ModerationUnavailable) as caught:
        await make_backend().moderate(["hello"])
    assert caught.value.cause == "bad_response"
