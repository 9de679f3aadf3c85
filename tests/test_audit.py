"""Audit events are metadata only, and user ids are keyed HMACs, not plain hashes."""

from __future__ import annotations

import hashlib
import hmac
import time

import orjson

from guardstream.audit import Auditor
from guardstream.models import ChatMessage, ChatRequest, Envelope, Finding
from guardstream.models.codec import encode
from guardstream.settings import Settings


def _envelope(content: str) -> Envelope:
    request = ChatRequest(request_id="r-1", user_id="alice@example.com",
                          messages=(ChatMessage("system", "SYSTEM-SECRET"),
                                    ChatMessage("user", content)), model="gpt-4o-mini")
    return Envelope(request=request, received_ms=time.time() * 1000, input_tokens=12)


def test_stage_event_carries_counts_not_content() -> None:
    auditor = Auditor(Settings.from_env({"GUARDSTREAM_AUDIT_KEY": "k1"}))
    findings = (Finding("redact", "EMAIL_ADDRESS", "redacted", message=1, start=3, end=20),
                Finding("redact", "EMAIL_ADDRESS", "redacted", message=1, start=30, end=40))
    event = auditor.stage_event("redact", _envelope("mail me at bob@example.com please"),
                                decision="pass", reason=None, latency_ms=1.5,
                                findings=findings)
    raw = encode(event)
    assert b"bob@example.com" not in raw and b"SYSTEM-SECRET" not in raw
    assert b"alice" not in raw
    data = orjson.loads(raw)
    assert data["finding_counts"] == {"EMAIL_ADDRESS": 2}
    assert data["message_count"] == 2 and data["input_tokens"] == 12


def test_user_hash_is_keyed() -> None:
    one = Auditor(Settings.from_env({"GUARDSTREAM_AUDIT_KEY": "key-one"}))
    two = Auditor(Settings.from_env({"GUARDSTREAM_AUDIT_KEY": "key-two"}))
    assert one.user_hash("alice") == one.user_hash("alice")
    assert one.user_hash("alice") != two.user_hash("alice")
    assert one.user_hash("alice") != one.user_hash("bob")
    plain = hashlib.sha256(b"alice").hexdigest()
    assert not plain.startswith(one.user_hash("alice"))


def test_user_hash_is_hmac_sha256_of_the_id_under_the_audit_key() -> None:
    # Pins the format: hashes in stored audit trails must stay comparable across releases.
    auditor = Auditor(Settings.from_env({"GUARDSTREAM_AUDIT_KEY": "key-one"}))
    for user in ("alice", "bob", "", "ünïcode-ユーザー"):
        expected = hmac.new(b"key-one", user.encode(), hashlib.sha256).hexdigest()[:24]
        assert auditor.user_hash(user) == expected
