"""The model call: the openai SDK with our own retries, breaker, concurrency bound and keys.

Why our own retry loop instead of the SDK's (`max_retries=0`): the SDK cannot consult a
circuit breaker between attempts, cap how long a Retry-After may hold a consumer slot, or
re-fetch a rotated key after a 401. Every call carries the header
`X-Guardstream-Request-Id`, so a provider's logs (and the dev model's stats) can be joined
with ours.

Errors come out as `UpstreamFailure` with a stable `reason` (`upstream_error`,
`upstream_timeout`, `upstream_unavailable`) and, when known, `retry_after_seconds`. Their
texts carry status codes and exception types only: a provider's error body may quote the
prompt or a (partially masked) key.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import aiohttp
import openai
import orjson

from guardstream.errors import UpstreamError, UpstreamTimeout
from guardstream.llm.breaker import CircuitBreaker
from guardstream.llm.keys import KeyProvider
from guardstream.llm.retry import backoff_delay, retry_after_seconds
from guardstream.models import ChatMessage

__all__ = [
    "REQUEST_ID_HEADER",
    "ChatAnswer",
    "ChatCall",
    "LlmClient",
    "RetryPolicy",
    "UpstreamFailure",
    "UpstreamTimedOut",
]

log = logging.getLogger("guardstream.llm.client")

REQUEST_ID_HEADER = "X-Guardstream-Request-Id"


class UpstreamFailure(UpstreamError):
    """The model call gave up. `reason` is the result's stable reason code."""

    def __init__(self, reason: str, detail: str, *, retry_after_seconds: float | None = None,
                 status: int | None = None) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
        self.retry_after_seconds = retry_after_seconds
        self.status = status


class UpstreamTimedOut(UpstreamFailure, UpstreamTimeout):
    """Every attempt timed out (or the last one did)."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    timeout_seconds: float = 30.0
    max_retries: int = 3
    backoff_base_seconds: float = 0.5
    backoff_max_seconds: float = 8.0
    # A Retry-After longer than this is not slept on: we give up at once and hand the
    # wait to the client in `retry_after_seconds` instead of holding a consumer slot.
    max_retry_after_seconds: float = 8.0

    def budget_seconds(self) -> float:
        """The longest one `complete()` can take (a redelivery waits at most this long)."""
        waits = max(self.backoff_max_seconds, self.max_retry_after_seconds)
        return (self.timeout_seconds * (self.max_retries + 2)  # +1: the 401 re-fetch
                + waits * self.max_retries + 1.0)


@dataclass(frozen=True, slots=True)
class ChatCall:
    request_id: str
    model: str
    messages: Sequence[ChatMessage]
    max_tokens: int
    temperature: float | None = None
    response_format: dict[str, Any] | None = None
    max_tokens_param: str = "max_tokens"


@dataclass(frozen=True, slots=True)
class ChatAnswer:
    text: str
    input_tokens: int
    output_tokens: int
    model: str
    finish_reason: str | None
    attempts: int


class LlmClient:
    """One per worker process: the SDK client, a semaphore and the upstream's breaker."""

    def __init__(self, *, base_url: str | None, keys: KeyProvider, breaker: CircuitBreaker,
                 retry: RetryPolicy, max_concurrency: int = 32,
                 http_client: Literal["aiohttp", "httpx"] = "aiohttp",
                 sleep: Callable[[float], Any] = asyncio.sleep) -> None:
        self.base_url = base_url
        self.keys = keys
        self.breaker = breaker
        self.retry = retry
        self._semaphore = asyncio.Semaphore(max_concurrency)
        self._sleep = sleep
        self.http_client = http_client
        self._client: openai.AsyncOpenAI | None = None
        self._client_key: str | None = None
        self.in_flight = 0

    def _sdk(self, key: str) -> openai.AsyncOpenAI:
        """The SDK client for `key`; a rotated key gets a copy sharing the HTTP pool."""
        if self._client is None:
            transport = (openai.DefaultAioHttpClient() if self.http_client == "aiohttp"
                         else openai.DefaultAsyncHttpxClient())
            self._client = openai.AsyncOpenAI(base_url=self.base_url, api_key=key,
                                              max_retries=0,
                                              timeout=self.retry.timeout_seconds,
                                              http_client=transport)
            self._client_key = key
        elif key != self._client_key:
            self._client = self._client.with_options(api_key=key)
            self._client_key = key
        return self._client

    async def prepare(self) -> None:
        """Fetch the key and build the SDK client now, not on the first call.

        Building it takes tens of milliseconds (the TLS context, the HTTP pool), which the
        first request would otherwise wait for. Nothing is sent to the provider. Raises
        what the key provider raises (`KeyUnavailable`).
        """
        self._sdk(await self.keys.get())

    @property
    def prepared(self) -> bool:
        """Whether the SDK client exists (after `prepare` or a first call)."""
        return self._client is not None

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None
        await self.keys.close()

    async def complete(self, call: ChatCall) -> ChatAnswer:
        """Call the model, retrying what is worth retrying; raises `UpstreamFailure`."""
        attempt = 0          # attempts that count against max_retries
        sent = 0             # requests actually sent
        refetched_key = False
        while True:
            if not self.breaker.allow():
                raise UpstreamFailure(
                    "upstream_unavailable",
                    "the model provider is failing; calls are paused (circuit open)",
                    retry_after_seconds=_seconds(self.breaker.retry_after()))
            try:
                key = await self.keys.get()
            except Exception as exc:  # KeyUnavailable, or a provider's own failure
                self.breaker.release()
                log.error("no API key for the model call (%s)", type(exc).__name__)
                raise UpstreamFailure("upstream_error",
                                      "no API key is available for the model provider") from None
            sent += 1
            try:
                answer = await self._send(key, call, sent)
            except openai.AuthenticationError:
                self.breaker.record_success()  # the upstream answered: it is up
                if not refetched_key:
                    refetched_key = True
                    self.keys.invalidate(key)
                    log.warning("the provider rejected the API key (401); fetching it again")
                    continue
                raise UpstreamFailure("upstream_error",
                                      "the provider rejected the API key (401)",
                                      status=401) from None
            except openai.APIStatusError as exc:
                status = exc.status_code
                wait = retry_after_seconds(dict(exc.response.headers))
                if status >= 500:
                    self.breaker.record_failure()
                else:
                    self.breaker.record_success()
                if not _retryable_status(status):
                    raise UpstreamFailure("upstream_error",
                                          f"the provider refused the request ({status})",
                                          status=status) from None
                failure: UpstreamFailure = UpstreamFailure(
                    "upstream_error",
                    f"the provider failed ({status}) after {sent} attempt(s)",
                    retry_after_seconds=_seconds(wait) if wait is not None else None,
                    status=status)
            except openai.APITimeoutError as exc:
                self.breaker.record_failure()
                wait = None
                failure = (UpstreamTimedOut(
                    "upstream_timeout",
                    f"the provider did not answer within {self.retry.timeout_seconds:g} s")
                    if _timed_out(exc) else _unreachable(exc))
            except openai.APIConnectionError as exc:
                self.breaker.record_failure()
                wait = None
                failure = _unreachable(exc)
            except (openai.APIError, _UnusableAnswer) as exc:  # an answer that does not parse
                self.breaker.record_success()
                raise UpstreamFailure("upstream_error", "the provider's answer was unusable "
                                      f"({type(exc).__name__})") from None
            except BaseException:
                self.breaker.release()
                raise
            else:
                self.breaker.record_success()
                return answer
            # A retryable failure: back off and go again, or give up.
            if attempt >= self.retry.max_retries:
                raise failure
            if wait is not None and wait > self.retry.max_retry_after_seconds:
                raise failure  # retry_after_seconds tells the client when to come back
            delay = wait if wait is not None else backoff_delay(
                attempt, base=self.retry.backoff_base_seconds,
                cap=self.retry.backoff_max_seconds)
            attempt += 1
            log.info("model call failed (%s); retry %d/%d in %.2f s", failure.reason,
                     attempt, self.retry.max_retries, delay)
            await self._sleep(delay)

    async def _send(self, key: str, call: ChatCall, sent: int) -> ChatAnswer:
        # `client.post` is what `chat.completions.create` calls after running its params
        # through the SDK's TypedDict transform; our body is plain JSON already, and the
        # transform walked it at ~0.35 ms per call (10% of the llm worker's CPU).
        body: dict[str, Any] = {
            "model": call.model,
            "messages": [m.to_dict() for m in call.messages],
            call.max_tokens_param: call.max_tokens,
        }
        if call.temperature is not None:
            body["temperature"] = call.temperature
        if call.response_format is not None:
            body["response_format"] = call.response_format
        options: openai.RequestOptions = {
            "headers": {REQUEST_ID_HEADER: call.request_id},
            "timeout": self.retry.timeout_seconds,
            "security": {"bearer_auth": True},
        }
        async with self._semaphore:
            self.in_flight += 1
            try:
                raw = await self._sdk(key).post(
                    "/chat/completions", body=body, options=options, cast_to=bytes)
            finally:
                self.in_flight -= 1
        return _answer(raw, call.model, sent)


def _answer(raw: bytes, model: str, sent: int) -> ChatAnswer:
    """The five fields the gateway uses of a chat completion, read from its JSON.

    Why not the SDK's `ChatCompletion`: building it makes a few dozen model objects per
    answer (~1/6 of the llm worker's CPU here) of which these fields are read once.
    Raises `_UnusableAnswer` for anything that is not a chat completion (a proxy's HTML
    page, an empty `choices`, a non-text `content`).
    """
    try:
        data = orjson.loads(raw)
        choice = data["choices"][0]
        text = choice["message"].get("content")
        finish_reason = choice.get("finish_reason")
        usage = data.get("usage") or {}
        if not (isinstance(text, str | None) and isinstance(finish_reason, str | None)):
            raise _UnusableAnswer
        return ChatAnswer(
            text=text or "",
            input_tokens=int(usage.get("prompt_tokens") or 0),
            output_tokens=int(usage.get("completion_tokens") or 0),
            model=str(data.get("model") or model),
            finish_reason=finish_reason,
            attempts=sent,
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, IndexError, ValueError,
            AttributeError):
        raise _UnusableAnswer from None


def _unreachable(exc: BaseException) -> UpstreamFailure:
    root = _chain(exc)[-1]
    return UpstreamFailure("upstream_error",
                           f"could not reach the provider ({type(root).__name__})")


def _chain(exc: BaseException) -> list[BaseException]:
    out = [exc]
    while (nxt := exc.__cause__ or exc.__context__) is not None and nxt not in out:
        out.append(nxt)
        exc = nxt
    return out


def _timed_out(exc: openai.APITimeoutError) -> bool:
    """Whether a timeout error really is one.

    The SDK's aiohttp transport maps every `aiohttp.ClientConnectionError` (a refused
    connection, a dropped one) to httpx's `ConnectTimeout`, which the SDK reports as
    `APITimeoutError`. Behind aiohttp, only a `TimeoutError` in the chain is a timeout.
    """
    chain = _chain(exc)
    return (not any(isinstance(e, aiohttp.ClientError) for e in chain)
            or any(isinstance(e, TimeoutError) for e in chain))


class _UnusableAnswer(Exception):
    """A 200 answer that is not a usable chat completion."""


def _retryable_status(status: int) -> bool:
    return status in (408, 409, 429) or status >= 500


def _seconds(seconds: float) -> float:
    return round(max(0.0, seconds), 3)
