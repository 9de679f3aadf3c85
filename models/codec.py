"""The one place where bytes become models and models become bytes (orjson).

Ingress values are plain JSON from producers in any language: no Faust `__faust` metadata
is expected or written. Anything that cannot be decoded raises `DecodeError`, which the
agents turn into a dead letter.
"""

from __future__ import annotations

from typing import Any, Protocol

import orjson

from guardstream.errors import DecodeError
from guardstream.models.audit import AuditEvent
from guardstream.models.envelope import Envelope
from guardstream.models.request import ChatRequest, usable_request_id
from guardstream.models.result import Result

__all__ = [
    "decode_audit",
    "decode_envelope",
    "decode_json_object",
    "decode_request",
    "decode_result",
    "dumps",
    "encode",
]


class _Encodable(Protocol):
    def to_dict(self) -> dict[str, Any]: ...


def encode(model: _Encodable) -> bytes:
    return orjson.dumps(model.to_dict())


def dumps(data: Any) -> bytes:
    return orjson.dumps(data)


def decode_json_object(raw: bytes | str) -> dict[str, Any]:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise DecodeError(f"not valid UTF-8 JSON: {exc.msg}") from None
    if not isinstance(data, dict):
        raise DecodeError(f"expected a JSON object, got {type(data).__name__}")
    return data


def decode_request(raw: bytes | str, *, received_ms: float) -> Envelope:
    """Ingress bytes -> a fresh envelope. Raises DecodeError when no usable request_id."""
    data = decode_json_object(raw)
    if usable_request_id(data) is None:
        raise DecodeError("no usable request_id (a non-empty printable string of at most "
                          "200 characters)")
    data.pop("problems", None)  # only the pipeline itself may carry parse problems
    return Envelope(request=ChatRequest.from_dict(data), received_ms=received_ms)


def decode_envelope(raw: bytes | str) -> Envelope:
    data = decode_json_object(raw)
    try:
        return Envelope.from_dict(data)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise DecodeError(f"malformed envelope: {type(exc).__name__}") from None


def decode_result(raw: bytes | str) -> Result:
    data = decode_json_object(raw)
    try:
        return Result.from_dict(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise DecodeError(f"malformed result: {type(exc).__name__}") from None


def decode_audit(raw: bytes | str) -> AuditEvent:
    return AuditEvent.from_dict(decode_json_object(raw))
