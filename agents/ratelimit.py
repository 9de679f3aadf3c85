"""Stage ratelimit: token-aware per-user (or per-IP) limits in Redis, and daily budgets.

It runs first and protects the wallet: one 100K-token prompt costs more than a thousand
short ones, so the window limits tokens as well as requests. Per request:

1. count the prompt's tokens with tiktoken (`envelope.input_tokens`); long prompts are
   tokenized in the CPU pool so the event loop (and the consumer's heartbeat) keeps going;
2. a prompt over the tier's `max_input_tokens` is refused (`token_limit`) without touching
   any counter: it could never be sent;
3. one atomic script call decides requests, tokens and the daily budget together and
   records the request if admitted (`rate_limited` / `budget_exceeded` otherwise, with the
   precise `retry_after_seconds` the script computed);
4. Redis unreachable or slow (bounded by `redis_timeout_seconds`): `fail_closed` ends the
   request with an `error` result, reason `limiter_unavailable`; `fail_open` lets it pass
   with a finding. Never an exception.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from redis.exceptions import RedisError

from guardstream.agents.base import Stage, Verdict
from guardstream.limiter import Limiter, TokenCounter, load_token_counter, quota_for
from guardstream.limiter.quota import Quota
from guardstream.models import Envelope, Finding

if TYPE_CHECKING:
    from guardstream.resources import Resources

__all__ = ["RateLimitStage"]

log = logging.getLogger("guardstream.agents.ratelimit")

_LIMIT_FINDING = {"requests": "requests_per_window", "tokens": "tokens_per_window",
                  "budget": "daily_budget"}


class RateLimitStage(Stage):
    name = "ratelimit"

    def __init__(self, resources: Resources) -> None:
        super().__init__(resources)
        self.section = self.policy.stages.ratelimit
        self.counter: TokenCounter | None = None
        self.limiter: Limiter | None = None

    async def start(self) -> None:
        llm = self.policy.stages.llm
        models = [llm.default_model, *(llm.allowed_models or ())]
        section = self.section

        def build() -> TokenCounter:
            return load_token_counter(models, default_model=llm.default_model,
                                      forced=section.encoding,
                                      timeout=section.encoding_load_timeout_seconds)

        # One counter per process (the llm stage may share it), built off the event loop.
        self.counter = await self.resources.run_cpu(
            self.resources.shared, "limiter.token_counter", build)
        log.info("ratelimit token encodings: %s", self.counter.describe())
        self.limiter = Limiter(self.resources.redis(), window_seconds=section.window_seconds,
                               max_batch=section.max_batch,
                               timeout=section.redis_timeout_seconds)

    async def close(self) -> None:
        if self.limiter is not None:
            await self.limiter.close()

    async def count_tokens(self, envelope: Envelope) -> int:
        if self.counter is None:
            await self.start()
        counter = self.counter
        assert counter is not None  # noqa: S101 - set by start()
        request = envelope.request
        chars = sum(len(m.content) for m in request.messages)
        if chars <= self.section.tokenize_inline_chars:
            return counter.count_messages(request.messages, request.model)
        return await self.resources.run_cpu(counter.count_messages, request.messages,
                                            request.model)

    async def process(self, envelope: Envelope) -> Verdict:
        tokens = await self.count_tokens(envelope)
        envelope = envelope.replace(input_tokens=tokens)
        if not self.section.enabled:
            return Verdict.passed(envelope)
        request = envelope.request
        quota = quota_for(self.policy, user_id=request.user_id, tier=request.tier,
                          client_ip=request.client_ip)
        most = min(quota.max_input_tokens, quota.max_tokens)
        if tokens > most:
            # It could never be admitted: refuse it before any counter moves.
            scope = f"the {quota.tier} tier" if quota.identity.kind == "u" else "this client IP"
            return Verdict.blocked(
                envelope, "token_limit",
                f"the prompt has {tokens} tokens; {scope} allows {most} per request "
                "(shorten it: retrying as is will not help)",
                findings=(Finding(self.name, "max_input_tokens", "blocked"),),
                retry_after_seconds=float(self.section.window_seconds))
        assert self.limiter is not None  # noqa: S101 - set by start()
        try:
            async with asyncio.timeout(self.section.redis_timeout_seconds):
                decision = await self.limiter.decide(
                    quota.identity.keys(self.section.key_prefix),
                    max_requests=quota.max_requests, max_tokens=quota.max_tokens,
                    cost_tokens=tokens, budget_usd=quota.budget_usd)
        except (RedisError, OSError, TimeoutError) as exc:
            return self._unavailable(envelope, exc)
        if decision.allowed:
            return Verdict.passed(envelope)
        retry = decision.retry_after_seconds
        limit = decision.limit or "requests"
        finding = (Finding(self.name, _LIMIT_FINDING[limit], "blocked"),)
        if limit == "budget":
            return Verdict.blocked(
                envelope, "budget_exceeded",
                f"the daily cost budget of {quota.budget_usd} USD is spent; it resets at "
                "00:00 UTC", findings=finding, retry_after_seconds=retry)
        detail = _rate_detail(quota, limit, self.section.window_seconds)
        return Verdict.blocked(envelope, "rate_limited", detail, findings=finding,
                               retry_after_seconds=retry)

    def _unavailable(self, envelope: Envelope, exc: BaseException) -> Verdict:
        log.warning("ratelimit: Redis unavailable (%s); %s", type(exc).__name__,
                    self.section.on_redis_error)
        if self.section.on_redis_error == "fail_open":
            return Verdict.passed(
                envelope, (Finding(self.name, "limiter_unavailable", "allowed", 0.0),))
        return Verdict.error(envelope, "limiter_unavailable",
                             "the rate limiter cannot reach Redis; the request was not "
                             "admitted (policy on_redis_error: fail_closed)")


def _rate_detail(quota: Quota, limit: str, window: int) -> str:
    scope = "this client IP" if quota.identity.kind == "ip" else f"the {quota.tier} tier"
    if limit == "tokens":
        return f"{scope} allows {quota.max_tokens} prompt and answer tokens per {window}s"
    return f"{scope} allows {quota.max_requests} requests per {window}s"
