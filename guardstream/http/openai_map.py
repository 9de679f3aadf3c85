"""OpenAI chat-completions shapes <-> the gateway's request and result JSON.

The door checks only the request's *shape* (what OpenAI itself rejects with 400 before any
model runs); content rules stay in the pipeline's `validate` stage, so a request is judged
the same way whether it came over HTTP or straight onto the ingress topic.
Error bodies use OpenAI's `{"error": {message, type, code, param}}` so SDKs raise their own
exception classes; they carry the stage's `detail` (text for people, never content).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

from guardstream.models import Result, Status

__all__ = [
    "RATE_LIMIT_REASONS",
    "ApiError",
    "ChatCall",
    "completion_body",
    "completion_chunks",
    "error_for_result",
    "parse_chat_body",
]

RATE_LIMIT_REASONS = frozenset({"rate_limited", "token_limit", "budget_exceeded"})
_UNSUPPORTED_LISTS = ("tools", "functions")


class ApiError(Exception):
    """An HTTP error answer in OpenAI's shape (raised inside the app, never escapes it)."""

    def __init__(self, status: int, code: str, message: str, *,
                 type: str = "invalid_request_error", param: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.type = type
        self.param = param
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "code": self.code,
                          "param": self.param}}


@dataclass(frozen=True, slots=True)
class ChatCall:
    """The parts of an OpenAI chat request the gateway forwards."""

    messages: list[Any]
    model: str | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    response_format: dict[str, Any] | None = None
    user: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    stream: bool = False
    include_usage: bool = False

    def gateway_request(self, *, request_id: str, user_id: str, tier: str,
                        client_ip: str | None) -> dict[str, Any]:
        """The request JSON for the ingress topic (see CONTRACT.md)."""
        body: dict[str, Any] = {"request_id": request_id, "user_id": user_id, "tier": tier,
                                "messages": self.messages}
        for key in ("model", "max_tokens", "temperature", "response_format"):
            value = getattr(self, key)
            if value is not None:
                body[key] = value
        metadata = dict(self.metadata)
        if self.user is not None:
            metadata["end_user"] = self.user
        if metadata:
            body["metadata"] = metadata
        if client_ip is not None:
            body["client_ip"] = client_ip
        return body


def _bad(param: str, message: str, code: str = "invalid_parameter") -> ApiError:
    return ApiError(400, code, message, param=param)


def parse_chat_body(data: Any) -> ChatCall:
    """Check an OpenAI chat request's shape; raises ApiError (400) naming the parameter."""
    if not isinstance(data, dict):
        raise ApiError(400, "invalid_body", "the request body must be a JSON object")
    messages = data.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _bad("messages", "messages must be a non-empty array")
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise _bad(f"messages[{index}]", "each message must be an object")
    model = data.get("model")
    if model is not None and not isinstance(model, str):
        raise _bad("model", "model must be a string")
    legacy_max = _optional_int(data, "max_tokens")
    max_tokens = _optional_int(data, "max_completion_tokens")
    if max_tokens is None:
        max_tokens = legacy_max
    temperature = data.get("temperature")
    if temperature is not None:
        if isinstance(temperature, bool) or not isinstance(temperature, int | float) or not (
                0 <= temperature <= 2):
            raise _bad("temperature", "temperature must be a number between 0 and 2")
        temperature = float(temperature)
    response_format = data.get("response_format")
    if response_format is not None and not isinstance(response_format, dict):
        raise _bad("response_format", "response_format must be an object")
    user = data.get("user")
    if user is not None and not isinstance(user, str):
        raise _bad("user", "user must be a string")
    metadata = data.get("metadata")
    if metadata is None:
        metadata = {}
    elif not isinstance(metadata, dict) or not all(
            isinstance(v, str) for v in metadata.values()):
        raise _bad("metadata", "metadata must be an object of string values")
    stream = data.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise _bad("stream", "stream must be a boolean")
    options = data.get("stream_options")
    if options is not None and (not isinstance(options, dict) or not isinstance(
            options.get("include_usage", False), bool)):
        raise _bad("stream_options", "stream_options must be an object with a boolean "
                                     "include_usage")
    n = data.get("n")
    if n is not None and (isinstance(n, bool) or n != 1):
        raise _bad("n", "only n=1 is supported", code="unsupported")
    for name in _UNSUPPORTED_LISTS:
        if data.get(name):
            raise _bad(name, f"{name} are not supported by this gateway", code="unsupported")
    return ChatCall(
        messages=messages,
        model=model,
        max_tokens=max_tokens,
        temperature=temperature,
        response_format=response_format,
        user=user,
        metadata=metadata,
        stream=bool(stream),
        include_usage=bool(options and options.get("include_usage") is True),
    )


def _optional_int(data: dict[str, Any], name: str) -> int | None:
    value = data.get(name)
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # JSON Schema's "integer" admits 2.0
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _bad(name, f"{name} must be a positive integer")
    return value


def error_for_result(result: Result) -> ApiError | None:
    """The HTTP error for a blocked or failed result; None when the result is `ok`.

    429 rate and budget limits (with Retry-After), 400 what `validate` rejected, 403 any
    other policy block; 504 an upstream timeout, 503 one of our own dependencies
    unavailable (`limiter_unavailable`, `moderation_unavailable`, ...), 502 any other
    failure behind the door (`upstream_error`, `stage_error`, ...).
    """
    if result.status is Status.OK:
        return None
    reason = result.reason or "unknown"
    detail = result.detail or f"request {reason.replace('_', ' ')}"
    retry = _retry_after(result.retry_after_seconds)
    if result.status is Status.BLOCKED:
        if reason in RATE_LIMIT_REASONS or retry is not None:
            return ApiError(429, reason, detail, type="rate_limit_error",
                            headers={"Retry-After": retry or "1"})
        if result.blocked_by == "validate":
            return ApiError(400, reason, detail, type="invalid_request_error")
        return ApiError(403, reason, detail, type="policy_violation")
    headers = {"Retry-After": retry} if retry is not None else {}
    if reason == "upstream_timeout":
        return ApiError(504, reason, detail, type="server_error", headers=headers)
    if reason.endswith("_unavailable") and not reason.startswith("upstream"):
        # One of our own dependencies (Redis, a moderation backend) is down: retryable.
        return ApiError(503, reason, detail, type="server_error",
                        headers=headers or {"Retry-After": "1"})
    return ApiError(502, reason, detail, type="server_error", headers=headers)


def _retry_after(seconds: float | None) -> str | None:
    """Retry-After in whole seconds (at least 1), or None when the result gives none."""
    if seconds is None or not math.isfinite(seconds):
        return None
    return str(max(1, math.ceil(seconds)))


def _usage(result: Result) -> dict[str, int]:
    used_in = result.usage.input_tokens if result.usage else 0
    used_out = result.usage.output_tokens if result.usage else 0
    return {"prompt_tokens": used_in, "completion_tokens": used_out,
            "total_tokens": used_in + used_out}


def completion_body(result: Result, *, model: str, created: int | None = None) -> dict[str, Any]:
    """OpenAI's `chat.completion` object for an `ok` result."""
    return {
        "id": f"chatcmpl-{result.request_id}",
        "object": "chat.completion",
        "created": int(time.time()) if created is None else created,
        "model": model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": result.output or "", "refusal": None},
            "finish_reason": "stop",
            "logprobs": None,
        }],
        "usage": _usage(result),
        "system_fingerprint": None,
    }


def completion_chunks(result: Result, *, model: str, include_usage: bool = False,
                      created: int | None = None) -> list[dict[str, Any]]:
    """The `chat.completion.chunk` objects of a stream built from the final result.

    The pipeline answers only once its output filter has seen the whole text, so the stream
    carries the answer in one content chunk, then the finish chunk (and usage if asked).
    """
    base = {"id": f"chatcmpl-{result.request_id}", "object": "chat.completion.chunk",
            "created": int(time.time()) if created is None else created, "model": model,
            "system_fingerprint": None}
    chunks = [
        {**base, "choices": [{"index": 0, "delta": {"role": "assistant",
                                                    "content": result.output or ""},
                              "finish_reason": None, "logprobs": None}]},
        {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop",
                              "logprobs": None}]},
    ]
    if include_usage:
        chunks.append({**base, "choices": [], "usage": _usage(result)})
    return chunks
