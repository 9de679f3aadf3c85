"""The dev model through the openai SDK: moderations from the local backend (or steered
flag words), per-request-id counts and bearer fingerprints in its stats."""

from __future__ import annotations

import openai
import pytest

from guardstream.devmodel import key_fingerprint
from tests.llm.devcontrol import DevControl


@pytest.fixture
async def sdk(dev: DevControl) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=dev.base_url, api_key="sk-dev-test", max_retries=0)


async def test_moderations_use_the_local_backend(dev: DevControl, sdk: openai.AsyncOpenAI
                                                 ) -> None:
    response = await sdk.moderations.create(
        model="omni-moderation-latest",
        input=["What a lovely morning for a walk in the park.",
               "I am going to kill you and your whole family tonight."])
    benign, violent = response.results
    assert not benign.flagged
    assert violent.flagged
    scores = violent.category_scores.model_dump(by_alias=True)
    assert scores["violence"] > benign.category_scores.model_dump(by_alias=True)["violence"]
    assert dev.stats()["moderation_calls"] == 1


async def test_moderation_flag_words_still_steer(dev: DevControl, sdk: openai.AsyncOpenAI
                                                 ) -> None:
    dev.steer(moderation_flag_words=["pineapple"])
    response = await sdk.moderations.create(input=["I like pineapple", "I like apples"])
    assert [r.flagged for r in response.results] == [True, False]


async def test_stats_count_request_ids_and_fingerprint_bearers(
        dev: DevControl, sdk: openai.AsyncOpenAI) -> None:
    for rid in ("x", "x", "y"):
        await sdk.chat.completions.create(
            model="dev", messages=[{"role": "user", "content": "hi"}], max_tokens=5,
            extra_headers={"X-Guardstream-Request-Id": rid})
    stats = dev.stats()
    assert stats["calls"] == {"x": 2, "y": 1} and stats["total_calls"] == 3
    assert stats["bearers"] == {key_fingerprint("sk-dev-test"): 3}
    assert "sk-dev-test" not in str(stats)
    dev.steer(reset_stats=True)
    assert dev.stats()["total_calls"] == 0 and dev.stats()["bearers"] == {}
