"""The client against the dev model over real HTTP: success, 429 + Retry-After, 5xx then
success, 4xx not retried, timeouts, connection errors, the breaker opening and closing,
key rotation (by refresh interval and after a 401) and the concurrency bound."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Literal

import pytest

from guardstream.devmodel import key_fingerprint
from guardstream.embedded.ports import free_port
from guardstream.llm.breaker import BreakerState, CircuitBreaker
from guardstream.llm.client import (
    ChatCall,
    LlmClient,
    RetryPolicy,
    UpstreamFailure,
    UpstreamTimedOut,
    _answer,
)
from guardstream.llm.keys import FileKeyProvider, KeyProvider, StaticKeyProvider
from guardstream.models import ChatMessage
from tests.llm.devcontrol import DevControl

KEY_A = "sk-test-AAAA-" + "a" * 24
KEY_B = "sk-test-BBBB-" + "b" * 24
FAST = RetryPolicy(timeout_seconds=3.0, max_retries=3, backoff_base_seconds=0.01,
                   backoff_max_seconds=0.05, max_retry_after_seconds=2.0)


def client(base_url: str, *, keys: KeyProvider | None = None, retry: RetryPolicy = FAST,
           breaker: CircuitBreaker | None = None, concurrency: int = 8,
           http_client: Literal["aiohttp", "httpx"] = "aiohttp") -> LlmClient:
    return LlmClient(base_url=base_url, keys=keys or StaticKeyProvider(KEY_A),
                     breaker=breaker or CircuitBreaker(base_url, failure_threshold=50),
                     retry=retry, max_concurrency=concurrency, http_client=http_client)


def call(text: str = "hello dev model", **kw: object) -> ChatCall:
    params: dict[str, object] = {"request_id": f"c-{uuid.uuid4().hex[:8]}",
                                 "model": "gpt-4o-mini",
                                 "messages": (ChatMessage("user", text),), "max_tokens": 64}
    params.update(kw)
    return ChatCall(**params)  # type: ignore[arg-type]


async def test_success_sends_key_request_id_and_parameters(dev: DevControl) -> None:
    llm = client(dev.base_url)
    c = call("four words right here", max_tokens=3, temperature=0.2,
             response_format={"type": "text"})
    answer = await llm.complete(c)
    await llm.close()
    stats = dev.stats()
    assert answer.text == "four words right"  # the dev model stops at max_tokens words
    assert answer.finish_reason == "length"
    assert answer.input_tokens > 0 and answer.output_tokens == 3
    assert stats["calls"] == {c.request_id: 1}
    assert stats["last_bearer"] == key_fingerprint(KEY_A)
    assert stats["last_params"] == {"model": "gpt-4o-mini", "max_tokens": 3,
                                    "temperature": 0.2, "response_format": {"type": "text"}}


async def test_max_completion_tokens_parameter(dev: DevControl) -> None:
    llm = client(dev.base_url)
    answer = await llm.complete(call("a b c d e", max_tokens=2,
                                     max_tokens_param="max_completion_tokens"))
    await llm.close()
    assert answer.text == "a b"


async def test_429_waits_for_retry_after_then_succeeds(dev: DevControl) -> None:
    dev.steer(fail_status=429, fail_times=1, retry_after=0.5)
    llm = client(dev.base_url)
    started = time.monotonic()
    answer = await llm.complete(call("after the wait"))
    elapsed = time.monotonic() - started
    await llm.close()
    assert answer.text == "after the wait"
    assert dev.stats()["total_calls"] == 2
    assert elapsed >= 0.5  # backoff alone would be <= 0.05 s


async def test_429_with_a_long_retry_after_gives_up_at_once(dev: DevControl) -> None:
    dev.steer(fail_status=429, fail_times=-1, retry_after=30)
    llm = client(dev.base_url)
    with pytest.raises(UpstreamFailure) as info:
        await llm.complete(call())
    await llm.close()
    assert info.value.reason == "upstream_error"
    assert info.value.retry_after_seconds == 30
    assert info.value.status == 429
    assert dev.stats()["total_calls"] == 1


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_5xx_then_success(dev: DevControl, status: int) -> None:
    dev.steer(fail_status=status, fail_times=2)
    llm = client(dev.base_url)
    answer = await llm.complete(call("third time lucky"))
    await llm.close()
    assert answer.text == "third time lucky"
    assert answer.attempts == 3
    assert dev.stats()["total_calls"] == 3


async def test_5xx_forever_gives_up_after_max_retries(dev: DevControl) -> None:
    dev.steer(fail_status=500, fail_times=-1)
    llm = client(dev.base_url)
    with pytest.raises(UpstreamFailure) as info:
        await llm.complete(call())
    await llm.close()
    assert info.value.reason == "upstream_error"
    assert "500" in info.value.detail
    assert dev.stats()["total_calls"] == FAST.max_retries + 1


@pytest.mark.parametrize("status", [400, 403, 404, 422])
async def test_other_4xx_are_not_retried(dev: DevControl, status: int) -> None:
    dev.steer(fail_status=status, fail_times=-1)
    llm = client(dev.base_url)
    with pytest.raises(UpstreamFailure) as info:
        await llm.complete(call())
    await llm.close()
    assert info.value.reason == "upstream_error" and info.value.status == status
    assert dev.stats()["total_calls"] == 1


@pytest.mark.parametrize("http_client", ["aiohttp", "httpx"])
async def test_timeout(dev: DevControl, http_client: Literal["aiohttp", "httpx"]) -> None:
    dev.steer(delay_seconds=1.5)
    retry = RetryPolicy(timeout_seconds=0.3, max_retries=1, backoff_base_seconds=0.01,
                        backoff_max_seconds=0.02)
    llm = client(dev.base_url, retry=retry, http_client=http_client)
    started = time.monotonic()
    with pytest.raises(UpstreamTimedOut) as info:
        await llm.complete(call())
    elapsed = time.monotonic() - started
    await llm.close()
    assert info.value.reason == "upstream_timeout"
    assert elapsed < 1.5  # gave up on our timeout, not the server's delay
    assert dev.stats()["total_calls"] == 2


@pytest.mark.parametrize("http_client", ["aiohttp", "httpx"])
async def test_connection_refused_is_retried_then_reported(
        http_client: Literal["aiohttp", "httpx"]) -> None:
    # The SDK's aiohttp transport reports a refused connection as a timeout; it is not one.
    base = f"http://127.0.0.1:{free_port()}/v1"
    breaker = CircuitBreaker(base, failure_threshold=50)
    llm = client(base, breaker=breaker, http_client=http_client)
    with pytest.raises(UpstreamFailure) as info:
        await llm.complete(call())
    await llm.close()
    assert info.value.reason == "upstream_error"
    assert "could not reach" in info.value.detail


async def test_breaker_opens_fails_fast_and_closes_again(dev: DevControl) -> None:
    dev.steer(fail_status=500, fail_times=-1)
    breaker = CircuitBreaker(dev.base_url, failure_threshold=3, reset_seconds=0.5)
    llm = client(dev.base_url, retry=RetryPolicy(timeout_seconds=3, max_retries=0),
                 breaker=breaker)
    for _ in range(3):
        with pytest.raises(UpstreamFailure) as info:
            await llm.complete(call())
        assert info.value.reason == "upstream_error"
    assert breaker.state is BreakerState.OPEN
    with pytest.raises(UpstreamFailure) as info:
        await llm.complete(call())
    assert info.value.reason == "upstream_unavailable"
    assert info.value.retry_after_seconds is not None
    assert 0 < info.value.retry_after_seconds <= 0.5
    assert dev.stats()["total_calls"] == 3  # the open breaker sent nothing

    await asyncio.sleep(0.6)  # half-open: the trial fails, the breaker opens again
    with pytest.raises(UpstreamFailure):
        await llm.complete(call())
    assert breaker.state is BreakerState.OPEN
    assert dev.stats()["total_calls"] == 4

    dev.steer(fail_times=0)  # the provider recovers
    await asyncio.sleep(0.6)
    answer = await llm.complete(call("back again"))
    assert answer.text == "back again"
    assert breaker.state is BreakerState.CLOSED
    await llm.complete(call())
    await llm.close()
    assert dev.stats()["total_calls"] == 6


async def test_breaker_counts_attempts_within_one_call(dev: DevControl) -> None:
    dev.steer(fail_status=503, fail_times=-1)
    breaker = CircuitBreaker(dev.base_url, failure_threshold=2, reset_seconds=30)
    llm = client(dev.base_url, breaker=breaker)  # 3 retries allowed, but the breaker opens
    with pytest.raises(UpstreamFailure) as info:
        await llm.complete(call())
    await llm.close()
    assert info.value.reason == "upstream_unavailable"
    assert dev.stats()["total_calls"] == 2


async def test_rotated_file_key_is_picked_up_on_refresh(dev: DevControl, tmp_path: Path) -> None:
    path = tmp_path / "openai.key"
    path.write_text(KEY_A + "\n")
    llm = client(dev.base_url, keys=FileKeyProvider(path, refresh_seconds=0.3))
    await llm.complete(call())
    assert dev.stats()["last_bearer"] == key_fingerprint(KEY_A)
    path.write_text(KEY_B + "\n")  # rotated mid-run
    await asyncio.sleep(0.4)
    await llm.complete(call())
    await llm.close()
    stats = dev.stats()
    assert stats["last_bearer"] == key_fingerprint(KEY_B)
    assert stats["bearers"] == {key_fingerprint(KEY_A): 1, key_fingerprint(KEY_B): 1}


async def test_a_401_refetches_the_key_once(dev: DevControl, tmp_path: Path) -> None:
    path = tmp_path / "openai.key"
    path.write_text(KEY_A)
    keys = FileKeyProvider(path, refresh_seconds=3600)  # only the 401 can trigger a re-read
    dev.steer(accept_bearers=[key_fingerprint(KEY_A)])
    llm = client(dev.base_url, keys=keys)
    await llm.complete(call())
    path.write_text(KEY_B)  # the old key is revoked at the provider
    dev.steer(accept_bearers=[key_fingerprint(KEY_B)])
    answer = await llm.complete(call("still works"))
    assert answer.text == "still works"
    assert keys.fetches == 2
    stats = dev.stats()
    assert stats["bearers"] == {key_fingerprint(KEY_A): 2, key_fingerprint(KEY_B): 1}

    dev.steer(accept_bearers=[key_fingerprint("sk-something-else")])
    with pytest.raises(UpstreamFailure) as info:  # re-fetched once, still refused: give up
        await llm.complete(call())
    await llm.close()
    assert info.value.status == 401 and "rejected the API key" in info.value.detail
    assert dev.stats()["total_calls"] == 5
    assert KEY_B not in info.value.detail


async def test_concurrent_calls_are_bounded_per_worker(dev: DevControl) -> None:
    dev.steer(delay_seconds=0.3)
    llm = client(dev.base_url, concurrency=2)
    peak = 0

    async def watch() -> None:
        nonlocal peak
        while True:
            peak = max(peak, llm.in_flight)
            await asyncio.sleep(0.01)

    watcher = asyncio.create_task(watch())
    started = time.monotonic()
    answers = await asyncio.gather(*(llm.complete(call(f"n{i}")) for i in range(6)))
    elapsed = time.monotonic() - started
    watcher.cancel()
    await llm.close()
    assert [a.text for a in answers] == [f"n{i}" for i in range(6)]
    assert peak == 2
    assert elapsed >= 0.85  # three waves of 0.3 s, not one


class _Garbage(BaseHTTPRequestHandler):
    body = b""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        json_like = self.body.startswith(b"{")
        self.send_response(200)
        self.send_header("Content-Type", "application/json" if json_like else "text/html")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.parametrize("body", [
    b"<html>proxy says hi</html>",
    b'{"choices": [], "usage": null}',
    b'{"weird": true}',
    b'[1, 2]',
    b'{"choices": [{"message": "hi"}]}',
    b'{"choices": [{"message": {"content": ["a", "part"]}}]}',
    b'{"choices": [{"message": {"content": "x"}, "finish_reason": 3}]}',
    b'{"choices": [{"message": {"content": "x"}}], "usage": {"prompt_tokens": "many"}}',
])
async def test_an_unusable_200_answer_is_an_upstream_error(body: bytes) -> None:
    _Garbage.body = body
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Garbage)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        llm = client(f"http://127.0.0.1:{server.server_address[1]}/v1")
        with pytest.raises(UpstreamFailure) as info:
            await llm.complete(call())
        await llm.close()
    finally:
        server.shutdown()
        server.server_close()
    assert info.value.reason == "upstream_error" and "unusable" in info.value.detail


@pytest.mark.parametrize(("body", "expected"), [
    (b'{"id": "c1", "model": "m-2024", "choices": [{"index": 0, "finish_reason": "stop", '
     b'"message": {"role": "assistant", "content": "hello"}}], '
     b'"usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}}',
     ("hello", 12, 3, "m-2024", "stop")),
    # content null (a refusal or a tool call), no usage, no model: defaults, not errors
    (b'{"choices": [{"message": {"role": "assistant", "content": null}, '
     b'"finish_reason": "content_filter"}]}',
     ("", 0, 0, "asked-model", "content_filter")),
    (b'{"choices": [{"message": {"content": "a"}}], "usage": null, "model": null}',
     ("a", 0, 0, "asked-model", None)),
])
def test_a_chat_completion_is_read_from_its_json(body: bytes,
                                                 expected: tuple[object, ...]) -> None:
    answer = _answer(body, "asked-model", 2)
    assert (answer.text, answer.input_tokens, answer.output_tokens, answer.model,
            answer.finish_reason) == expected
    assert answer.attempts == 2
