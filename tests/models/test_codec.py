"""Decoding plain-JSON requests: every problem is collected, never raised, once an id exists."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from guardstream.errors import DecodeError
from guardstream.models import Envelope, Finding, Result, Status, Usage
from guardstream.models.codec import decode_envelope, decode_request, decode_result, encode


@pytest.mark.parametrize("raw", [
    b"", b"{", b"\xff\xfe", b"[]", b'"r-1"', b"null",
    b'{"user_id": "u", "messages": []}',
    b'{"request_id": "", "user_id": "u"}',
    b'{"request_id": "  ", "user_id": "u"}',
    b'{"request_id": true, "user_id": "u"}',
    b'{"request_id": ["r"], "user_id": "u"}',
    orjson.dumps({"request_id": "x" * 201}),
    orjson.dumps({"request_id": "line\nbreak"}),
])
def test_no_usable_request_id_is_a_decode_error(raw: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_request(raw, received_ms=0)


@pytest.mark.parametrize(("body", "reason"), [
    ({"user_id": "u"}, "empty_messages"),
    ({"user_id": "u", "messages": []}, "empty_messages"),
    ({"user_id": "u", "messages": "hi"}, "invalid_messages"),
    ({"user_id": "u", "messages": ["hi"]}, "invalid_messages"),
    ({"user_id": "u", "messages": [{"role": 1, "content": "x"}]}, "invalid_role"),
    ({"user_id": "u", "messages": [{"role": "user", "content": 5}]}, "invalid_content"),
    ({"user_id": "u", "messages": [{"role": "user"}]}, "invalid_content"),
    ({"messages": [{"role": "user", "content": "x"}]}, "invalid_user_id"),
    ({"user_id": 7, "messages": [{"role": "user", "content": "x"}]}, "invalid_user_id"),
    ({"user_id": "u", "messages": [{"role": "user", "content": "x"}], "max_tokens": "9"},
     "invalid_parameter"),
    ({"user_id": "u", "messages": [{"role": "user", "content": "x"}], "max_tokens": True},
     "invalid_parameter"),
    ({"user_id": "u", "messages": [{"role": "user", "content": "x"}], "tier": 3},
     "invalid_tier"),
])
def test_shape_problems_are_collected_with_stable_reasons(body: dict[str, object],
                                                          reason: str) -> None:
    envelope = decode_request(orjson.dumps({"request_id": "r-1", **body}), received_ms=0)
    assert envelope.request_id == "r-1"
    assert envelope.request.problems[0].reason == reason


def test_a_full_request_round_trips_through_the_envelope() -> None:
    body = {"request_id": "r-42", "user_id": "alice", "tier": "pro",
            "messages": [{"role": "system", "content": "be brief"},
                         {"role": "user", "content": [{"type": "text", "text": "part one"},
                                                      {"type": "text", "text": "part two"}]}],
            "model": "gpt-4o-mini", "max_tokens": 256, "temperature": 0.2,
            "response_format": {"type": "json_object"}, "metadata": {"app": "bot"},
            "client_ip": "203.0.113.7", "unknown_field": 1}
    envelope = decode_request(orjson.dumps(body), received_ms=12.5)
    assert envelope.request.problems == ()
    assert envelope.request.messages[1].content == "part one\npart two"
    envelope = envelope.replace(findings=(Finding("redact", "EMAIL_ADDRESS", "redacted"),),
                                usage=Usage(3, 4, 0.5), stages={"validate": 0.2})
    again = decode_envelope(encode(envelope))
    assert again == envelope
    assert isinstance(again, Envelope)


def test_producers_cannot_smuggle_parse_problems_in() -> None:
    body = {"request_id": "r", "user_id": "u", "problems": [["x", "y"]],
            "messages": [{"role": "user", "content": "x"}]}
    assert decode_request(orjson.dumps(body), received_ms=0).request.problems == ()


def test_result_json_has_every_contract_field() -> None:
    result = Result(request_id="r", status=Status.BLOCKED, blocked_by="ratelimit",
                    reason="rate_limited", detail="slow down", retry_after_seconds=3.0)
    data = orjson.loads(encode(result))
    assert set(data) == {"request_id", "status", "blocked_by", "reason", "detail",
                         "retry_after_seconds", "messages", "output", "findings", "usage",
                         "stages"}
    assert decode_result(encode(result)) == result


JSON_SCALARS = (st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1)
                | st.floats(allow_nan=False) | st.text())


@given(st.recursive(JSON_SCALARS, lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=20))
def test_any_json_with_an_id_decodes_without_raising(body: object) -> None:
    data = {"request_id": "r-1", "user_id": "u", "messages": body}
    envelope = decode_request(orjson.dumps(data), received_ms=0)
    assert envelope.request_id == "r-1"
