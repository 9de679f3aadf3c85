"""Stage llm: send the sanitized messages to the model and record its answer and cost.

What reaches the model is the envelope's messages as the earlier stages left them
(validated, redacted), plus a per-request canary sentence in the system prompt when the
policy asks for it. The canary goes into `envelope.canary` for the output stage, never
into `envelope.request.messages`: the result shows the messages as the user sent them,
sanitized.

Every call goes through `guardstream.llm`: keys from the configured provider, retries
with jittered backoff, a circuit breaker per upstream, a concurrency bound per worker,
and an idempotency record in Redis so a redelivered message reuses the first answer
instead of paying again. When the call gives up, the request ends with an `error` result
(`upstream_error`, `upstream_timeout`, `upstream_unavailable`), never silently.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import TYPE_CHECKING

from guardstream.agents.base import Stage, Verdict
from guardstream.errors import ConfigError
from guardstream.llm.breaker import BreakerRegistry
from guardstream.llm.canary import new_canary, with_canary
from guardstream.llm.client import ChatCall, LlmClient, RetryPolicy, UpstreamFailure
from guardstream.llm.idempotency import (
    Claim,
    ClaimState,
    IdempotencyStore,
    StoredAnswer,
    fingerprint,
)
from guardstream.llm.keys import KeyUnavailable, key_provider_from_settings
from guardstream.llm.pricing import Price, cost_usd
from guardstream.models import Envelope, Usage

if TYPE_CHECKING:
    from guardstream.devmodel import DevModelServer
    from guardstream.policy import LlmPolicy
    from guardstream.resources import Resources

__all__ = ["OPENAI_DEFAULT_UPSTREAM", "LlmStage"]

log = logging.getLogger("guardstream.agents.llm")

OPENAI_DEFAULT_UPSTREAM = "https://api.openai.com/v1"


class LlmStage(Stage):
    name = "llm"

    def __init__(self, resources: Resources) -> None:
        super().__init__(resources)
        self.cfg: LlmPolicy = self.policy.stages.llm
        self.client: LlmClient | None = None
        self.idempotency: IdempotencyStore | None = None
        self._dev: DevModelServer | None = None
        self._prices = {name: Price(p.input_per_million, p.output_per_million)
                        for name, p in self.cfg.prices.items()}

    async def start(self) -> None:
        if not self.cfg.enabled:
            return
        settings = self.settings
        if not settings.provider_configured:
            # `up` starts the dev model itself; this covers `scan` and embedding.
            if settings.environment == "production":
                raise ConfigError("no model provider configured: set OPENAI_API_KEY or "
                                  "OPENAI_BASE_URL (or GUARDSTREAM_KEY_PROVIDER)")
            from guardstream.devmodel import DevModelServer

            self._dev = DevModelServer()
            await asyncio.to_thread(self._dev.start)
            settings = dataclasses.replace(settings, openai_base_url=self._dev.base_url)
            log.warning("no model provider configured: using the local dev model (echo)",
                        extra={"stage": self.name})
        keys = key_provider_from_settings(settings, refresh_seconds=self.cfg.key_refresh_seconds)
        retry = RetryPolicy(timeout_seconds=self.cfg.timeout_seconds,
                            max_retries=self.cfg.max_retries,
                            backoff_base_seconds=self.cfg.backoff_base_seconds,
                            backoff_max_seconds=self.cfg.backoff_max_seconds,
                            max_retry_after_seconds=self.cfg.max_retry_after_seconds)
        breakers = self.resources.shared("llm.breakers", lambda: BreakerRegistry(
            failure_threshold=self.cfg.breaker_failures,
            reset_seconds=self.cfg.breaker_reset_seconds))
        base_url = settings.openai_base_url
        self.client = LlmClient(base_url=base_url, keys=keys,
                                breaker=breakers.get(base_url or OPENAI_DEFAULT_UPSTREAM),
                                retry=retry, max_concurrency=self.cfg.max_concurrency,
                                http_client=self.cfg.http_client)
        self.idempotency = IdempotencyStore(self.resources.redis(),
                                            prefix=settings.topic_prefix,
                                            ttl_seconds=self.cfg.idempotency_ttl_seconds,
                                            pending_seconds=retry.budget_seconds())
        try:
            # Fails early and loudly (by type only) on a broken key setup.
            await self.client.prepare()
        except KeyUnavailable as exc:
            log.warning("%s; model calls fail until it is available", exc,
                        extra={"stage": self.name})

    async def close(self) -> None:
        if self.client is not None:
            await self.client.close()
            self.client = None
        if self._dev is not None:
            await asyncio.to_thread(self._dev.stop)
            self._dev = None

    async def process(self, envelope: Envelope) -> Verdict:
        cfg = self.cfg
        if not cfg.enabled:
            return Verdict.passed(envelope)
        if self.client is None or self.idempotency is None:
            await self.start()
        assert self.client is not None and self.idempotency is not None  # noqa: S101
        request = envelope.request
        model = request.model or cfg.default_model
        if cfg.allowed_models is not None and model not in cfg.allowed_models:
            return Verdict.blocked(envelope, "model_not_allowed",
                                   "the requested model is not allowed; allowed: "
                                   + ", ".join(cfg.allowed_models))
        _, limits = self.policy.limits_for(request.user_id, request.tier)
        wanted = [limits.max_output_tokens, cfg.max_tokens_cap]
        if request.max_tokens is not None:
            wanted.append(request.max_tokens)
        max_tokens = max(1, min(wanted))
        digest = fingerprint([request.user_id, model, max_tokens, request.temperature,
                              request.response_format,
                              [m.to_dict() for m in request.messages]])
        # The model that answered goes into the audit events; the messages stay as they were.
        shaped = envelope.replace(request=dataclasses.replace(request, model=model))

        claim = await self._claim(envelope.request_id, digest)
        if claim is None:
            return Verdict.error(envelope, "idempotency_unavailable",
                                 "the idempotency store (Redis) is unreachable",
                                 retry_after_seconds=1.0)
        if claim.state is ClaimState.DONE and claim.answer is not None:
            log.info("redelivered request: reusing the stored answer",
                     extra={"request_id": envelope.request_id, "stage": self.name})
            return self._verdict(shaped, claim.answer)

        canary = new_canary() if cfg.canary else None
        messages = with_canary(request.messages, canary) if canary else request.messages
        call = ChatCall(request_id=envelope.request_id, model=model, messages=messages,
                        max_tokens=max_tokens, temperature=request.temperature,
                        response_format=request.response_format,
                        max_tokens_param=cfg.max_tokens_param)
        try:
            answer = await self.client.complete(call)
        except UpstreamFailure as exc:
            await self._release(envelope.request_id, claim)
            log.warning("model call gave up: %s", exc.reason,
                        extra={"request_id": envelope.request_id, "stage": self.name})
            return Verdict.error(envelope, exc.reason, exc.detail,
                                 retry_after_seconds=exc.retry_after_seconds)
        except BaseException:
            await self._release(envelope.request_id, claim)
            raise
        stored = StoredAnswer(
            output=answer.text, input_tokens=answer.input_tokens,
            output_tokens=answer.output_tokens,
            cost_usd=cost_usd(answer.model, answer.input_tokens, answer.output_tokens,
                              self._prices),
            model=answer.model, canary=canary)
        if claim.state is ClaimState.OWNER:
            try:
                await self.idempotency.complete(envelope.request_id, digest, stored)
            except Exception as exc:
                log.warning("could not store the answer for redeliveries (%s)",
                            type(exc).__name__,
                            extra={"request_id": envelope.request_id, "stage": self.name})
        await self._charge(envelope, stored)
        if answer.finish_reason == "content_filter":
            return Verdict.blocked(shaped.replace(usage=_usage(stored), canary=canary),
                                   "content_policy",
                                   "the provider's content filter stopped the answer")
        return self._verdict(shaped, stored)

    def _verdict(self, envelope: Envelope, answer: StoredAnswer) -> Verdict:
        return Verdict.passed(envelope.replace(output=answer.output, usage=_usage(answer),
                                               canary=answer.canary))

    async def _claim(self, request_id: str, digest: str) -> Claim | None:
        """The idempotency claim; on Redis trouble an unguarded call or None (fail closed)."""
        assert self.idempotency is not None  # noqa: S101
        try:
            return await self.idempotency.claim(request_id, digest)
        except Exception as exc:
            log.warning("idempotency store unavailable (%s)", type(exc).__name__,
                        extra={"request_id": request_id, "stage": self.name})
            if self.cfg.idempotency_on_redis_error == "fail_closed":
                return None
            return Claim(ClaimState.UNGUARDED)

    async def _release(self, request_id: str, claim: Claim) -> None:
        if claim.state is not ClaimState.OWNER or claim.token is None:
            return
        assert self.idempotency is not None  # noqa: S101
        try:
            await self.idempotency.release(request_id, claim.token)
        except Exception as exc:
            log.warning("could not release the idempotency marker (%s)", type(exc).__name__,
                        extra={"request_id": request_id, "stage": self.name})

    async def _charge(self, envelope: Envelope, answer: StoredAnswer) -> None:
        """Charge the user's token window and daily budget with what the call really used."""
        try:
            from guardstream.limiter import charge_usage
        except ImportError:
            log.warning("guardstream.limiter is missing: usage not charged",
                        extra={"request_id": envelope.request_id, "stage": self.name})
            return
        counted = envelope.input_tokens
        used = answer.input_tokens + answer.output_tokens
        extra = used - counted if counted is not None else used
        request = envelope.request
        try:
            await charge_usage(self.resources.redis(), user_id=request.user_id,
                               tokens=max(0, extra), cost_usd=answer.cost_usd,
                               policy=self.policy, tier=request.tier,
                               client_ip=request.client_ip)
        except Exception as exc:  # charge_usage should not raise; a bug must not lose answers
            log.warning("usage charge failed (%s)", type(exc).__name__,
                        extra={"request_id": envelope.request_id, "stage": self.name})


def _usage(answer: StoredAnswer) -> Usage:
    return Usage(input_tokens=answer.input_tokens, output_tokens=answer.output_tokens,
                 cost_usd=answer.cost_usd)
