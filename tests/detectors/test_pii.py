"""Tests for the Presidio-based PII / secrets engine (guardstream.detectors.pii).

All secrets below are made up (or AWS's documented examples) and are assembled from pieces
so that repository secret scanners do not flag this file.
"""

from __future__ import annotations

import base64
import json
import socket
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from faker import Faker
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from guardstream.detectors.pii import (
    OperatorSpec,
    PiiConfig,
    PiiEngine,
    PlaceholderState,
    decrypt_token,
)
from guardstream.detectors.pii.recognizers import iban_valid, luhn_valid


@pytest.fixture(scope="module")
def engine() -> PiiEngine:
    return PiiEngine()


def _jwt() -> str:
    def b64(obj: Any) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    sig = "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
    return f"{b64({'alg': 'HS256', 'typ': 'JWT'})}.{b64({'sub': '12345'})}.{sig}"


PEM = (
    "-----BEGIN RSA PRIVATE KEY-----\n"
    "MIIEowIBAAKCAQEA0Z3VS5JJcds3xfn/ygWyF8PbnGy0AHB7MhgwMbRvI0MBZhpF\n"
    "Ck9bXy5hSWx4c2hHbWlSa1ZqT3pNeFNVZ0pQbWd0Q0p2UkRiQm5YV3FXa3p6cGl\n"
    "-----END RSA PRIVATE KEY-----"
)

# (entity type, text with {v}, value)
POSITIVE = [
    ("EMAIL_ADDRESS", "write to {v} please", "jane.doe+test@example.co.uk"),
    ("PHONE_NUMBER", "call me at {v}", "(415) 555-2671"),
    ("PHONE_NUMBER", "my number: {v}", "+44 20 7946 0958"),
    ("PHONE_NUMBER", "mobile {v}", "+49 (0)30 1234 5678"),
    ("PHONE_NUMBER", "ring me on {v} tonight", "415.555.2671x123"),
    ("PHONE_NUMBER", "tel: {v}", "+33 (0)1 23 45 67 89"),
    ("CREDIT_CARD", "card {v} exp 09/28", "4111 1111 1111 1111"),
    ("CREDIT_CARD", "amex {v}", "3782 822463 10005"),
    ("CREDIT_CARD", "pay with {v}", "5555-5555-5555-4444"),
    ("CREDIT_CARD", "{v} cvv 123", "6011111111111117"),
    ("US_SSN", "SSN {v}", "123-45-6788"),
    ("US_SSN", "my social security number is {v}", "219099999"),
    ("IBAN_CODE", "IBAN {v}", "DE89 3704 0044 0532 0130 00"),
    ("IBAN_CODE", "send to {v}.", "GB82WEST12345698765432"),
    ("IP_ADDRESS", "from {v} we see errors", "192.168.10.42"),
    ("IP_ADDRESS", "gateway {v}", "2001:db8:85a3::8a2e:370:7334"),
    ("OPENAI_API_KEY", "key {v}", "sk-proj-" + "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5bC7dE9" * 2),
    (
        "OPENAI_API_KEY",
        "OPENAI_API_KEY={v}",
        "sk-" + "Xy12Ab34Cd56Ef78Gh90" + "T3BlbkFJ" + "Ij12Kl34Mn56Op78Qr90",
    ),
    (
        "ANTHROPIC_API_KEY",
        "anthropic: {v}",
        "sk-" + "ant-api03-" + "Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg0Fe" * 3 + "AA",
    ),
    ("AWS_ACCESS_KEY", "aws_access_key_id = {v}", "AKIAIOSFODNN7EXAMPLE"),
    ("AWS_ACCESS_KEY", "temporary {v}", "ASIAY34FZKBOKMUTVV7A"),
    ("AWS_SECRET_KEY", "aws_secret_access_key = {v}", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
    ("GITHUB_TOKEN", "token {v} expired", "gh" + "p_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"),
    ("GITHUB_TOKEN", "{v}", "github" + "_pat_11ABCDEFG0123456789abc_" + "Zy98Xw76Vu54Ts32Rq10" * 3),
    ("SLACK_TOKEN", "bot {v}", "xox" + "b-12345678901-1234567890123-" + "AbCdEfGhIjKlMnOpQrStUvWx"),
    ("STRIPE_KEY", "stripe {v}", "sk_" + "live_" + "4eC39HqLyjWDarjtT1zdp7dc"),
    ("STRIPE_KEY", "publishable {v}", "pk_" + "live_" + "TYooMQauvdEDq54NiTphI7jx"),
    ("JWT", "Authorization: Bearer {v}", _jwt()),
    ("PRIVATE_KEY", "here:\n{v}\nthanks", PEM),
    ("PASSWORD", "my password is {v} and it fails", "Tr0ub4dor&3"),
    ("PASSWORD", "pwd: {v}", "s3cr3t#Pw"),
    ("PASSWORD", '{{"password": "{v}"}}', "hunter2!XY"),
    ("PASSWORD", "postgres://admin:{v}@db.internal:5432/app", "p@ss:W0rd!"),
    ("PERSON", "Hi, my name is {v} and I need help.", "John Smith"),
    ("PERSON", "Regards,\n{v}", "Siegmund Baum"),
    ("STREET_ADDRESS", "ship it to {v}, Springfield", "742 Evergreen Terrace"),
    ("STREET_ADDRESS", "I moved to {v}.", "Hauptstraße 5"),
    ("STREET_ADDRESS", "adresse: {v}", "12, rue de la Paix"),
]


@pytest.mark.parametrize(("etype", "template", "value"), POSITIVE)
def test_each_entity_type_is_found_and_removed(
    engine: PiiEngine, etype: str, template: str, value: str
) -> None:
    text = template.replace("{v}", value).replace("{{", "{").replace("}}", "}")
    red = engine.redact(text)
    assert value not in red.text
    covering = [
        s
        for s in red.spans
        if s.start <= text.index(value) and s.end >= text.index(value) + len(value)
    ]
    assert covering, f"no span covers the {etype} value"
    assert covering[0].entity_type == etype
    assert f"<{etype}_1>" in red.text


BENIGN = [
    "We upgraded from version 2.3.1 to 2.4.0 and the build broke.",
    "Firmware v1.2.3.4567 is available.",
    "The meeting is on 2024-03-15 at 14:30.",
    "Delivery scheduled for 03/15/2024.",
    "My order #1234567890 hasn't arrived yet.",
    "Order number 4111111111 was charged $12.99.",
    "See the docs at https://docs.python.org/3/library/re.html for details.",
    "The total was $1,299.99 including tax.",
    "Tracking number 1234567890123456 shows no movement.",  # fails Luhn
    "def add(a, b):\n    return a + b  # returns 42",
    "If x = 12 and y = 34 then x * y = 408.",
    "My password is not working, can you help me reset it?",
    "I forgot my password, where is the reset link?",
    "Commit 3f2a9c1d4e5b6a7f8091a2b3c4d5e6f708192a3b introduced the regression.",
    "The request id was 2f1c9a4e-8b7d-4c3a-9e2f-1a2b3c4d5e6f.",
    "pip install requests==2.31.0 fails on Python 3.11.",
    "Apple Pay did not work on my iPhone 15 Pro.",
    "Is the Berlin office open on Easter Monday?",
    "Run docker run -p 8080:80 nginx:1.25 and open localhost:8080.",
    "Chapter 3.2.1 explains the theorem.",
]


@pytest.mark.parametrize("text", BENIGN)
def test_benign_look_alikes_are_untouched(engine: PiiEngine, text: str) -> None:
    red = engine.redact(text)
    assert red.text == text
    assert red.spans == ()


def test_checksums() -> None:
    assert luhn_valid("4111111111111111")
    assert not luhn_valid("4111111111111112")
    assert iban_valid("DE89 3704 0044 0532 0130 00")
    assert not iban_valid("DE89 3704 0044 0532 0130 01")


def test_card_failing_luhn_is_not_a_card(engine: PiiEngine) -> None:
    assert not [
        s for s in engine.analyze("card 4111 1111 1111 1112") if s.entity_type == "CREDIT_CARD"
    ]


def test_spans_refer_to_original_text(engine: PiiEngine) -> None:
    text = "Mail jane@example.com or call (415) 555-2671, card 4111-1111-1111-1111."
    red = engine.redact(text)
    values = {text[s.start : s.end] for s in red.spans}
    assert values == {"jane@example.com", "(415) 555-2671", "4111-1111-1111-1111"}


def test_placeholders_are_stable_within_a_request(engine: PiiEngine) -> None:
    state = PlaceholderState()
    a = engine.redact("I am John Smith, mail john@example.com", state)
    b = engine.redact("again: john@example.com and bob@example.org", state)
    assert "<EMAIL_ADDRESS_1>" in a.text
    assert "<EMAIL_ADDRESS_1>" in b.text and "<EMAIL_ADDRESS_2>" in b.text
    mapping = state.mapping()
    assert mapping["<EMAIL_ADDRESS_1>"] == "john@example.com"
    assert mapping["<EMAIL_ADDRESS_2>"] == "bob@example.org"
    assert state.restore(b.text) == "again: john@example.com and bob@example.org"
    assert "john" not in repr(state)
    # a fresh state restarts the numbering: state is per request
    c = engine.redact("bob@example.org", PlaceholderState())
    assert c.text == "<EMAIL_ADDRESS_1>"


def test_state_can_be_restored_from_a_mapping() -> None:
    old = PlaceholderState()
    old.placeholder_for("EMAIL_ADDRESS", "a@example.com")
    new = PlaceholderState(old.mapping())
    assert new.placeholder_for("EMAIL_ADDRESS", "a@example.com") == "<EMAIL_ADDRESS_1>"
    assert new.placeholder_for("EMAIL_ADDRESS", "b@example.com") == "<EMAIL_ADDRESS_2>"


def test_redact_many_matches_redact(engine: PiiEngine) -> None:
    texts = ["I'm Megan Little, call 415-555-2671", "email megan@example.com", "nothing here"]
    s1, s2 = PlaceholderState(), PlaceholderState()
    batch = engine.redact_many(texts, s1)
    single = [engine.redact(t, s2) for t in texts]
    assert [r.text for r in batch] == [r.text for r in single]
    assert s1.mapping() == s2.mapping()


def test_mask_hash_encrypt_operators() -> None:
    text = "mail jane@example.com, card 4111 1111 1111 1111"
    masked = PiiEngine(PiiConfig(operators={"DEFAULT": OperatorSpec("mask")})).redact(text)
    assert masked.text == "mail " + "*" * 16 + ", card " + "*" * 19

    hashing = PiiEngine(PiiConfig(operators={"EMAIL_ADDRESS": OperatorSpec("hash")}))
    h1 = hashing.redact(text, hmac_key=b"k1").text
    assert h1 == hashing.redact(text, hmac_key=b"k1").text
    assert h1 != hashing.redact(text, hmac_key=b"k2").text
    assert "jane" not in h1 and "<EMAIL_ADDRESS:hmac:" in h1 and "<CREDIT_CARD_1>" in h1
    with pytest.raises(ValueError, match="hmac_key"):
        hashing.redact(text)

    key = "WmZq4t7w!z%C&F)J"
    enc = PiiEngine(PiiConfig(operators={"DEFAULT": OperatorSpec("encrypt")}))
    out = enc.redact("mail jane@example.com", encrypt_key=key)
    token = out.text.removeprefix("mail ")
    assert "jane" not in token and decrypt_token(token, key) == "jane@example.com"


def test_config_entities_allow_and_deny_lists() -> None:
    eng = PiiEngine(
        PiiConfig(
            entities=("EMAIL_ADDRESS",),
            allow_list=("support@example.com",),
            deny_list={"PROJECT": ("Bluebird",)},
            use_ner=False,
        )
    )
    red = eng.redact("support@example.com, me@example.com, call 415-555-2671, Bluebird")
    assert red.text == "support@example.com, <EMAIL_ADDRESS_1>, call 415-555-2671, <PROJECT_1>"


def test_thread_safe_under_a_pool(engine: PiiEngine) -> None:
    texts = [
        f"I am Anna Weber, mail anna{i}@example.com, phone +49 30 1234 56{i:02d}" for i in range(24)
    ]
    expected = [engine.redact(t).text for t in texts]
    with ThreadPoolExecutor(max_workers=8) as pool:
        got = list(pool.map(lambda t: engine.redact(t).text, texts * 3))
    assert got == expected * 3


def test_findings_carry_no_values(engine: PiiEngine) -> None:
    red = engine.redact("my password is Tr0ub4dor&3")
    assert "Tr0ub4dor" not in repr(red.spans)


# --------------------------------------------------------------------------- properties

_FAKERS = {loc: Faker(loc) for loc in ("en_US", "en_GB", "de_DE", "fr_FR")}
_TEMPLATES = [
    ("email", "Please reply to {v} today."),
    ("phone", "You can call me at {v}."),
    ("card", "My card number is {v}."),
    ("ssn", "SSN: {v}"),
    ("iban", "IBAN {v}"),
    ("ipv4", "Blocked IP {v}"),
    ("password", "my password is {v}"),
    ("name", "Hello, my name is {v}."),
]


def _value(kind: str, loc: str, seed: int) -> str:
    f = _FAKERS[loc]
    f.seed_instance(seed)
    return str(
        {
            "email": f.email,
            "phone": f.phone_number,
            "card": f.credit_card_number,
            "ssn": _FAKERS["en_US"].ssn,
            "iban": f.iban,
            "ipv4": f.ipv4,
            "password": f.password,
            "name": lambda: f"{f.first_name()} {f.last_name()}",
        }[kind]()
    )


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    picks=st.lists(
        st.tuples(
            st.sampled_from(_TEMPLATES),
            st.sampled_from(sorted(_FAKERS)),
            st.integers(0, 10**6),
        ),
        min_size=1,
        max_size=3,
    )
)
def test_generated_values_never_survive_and_redaction_is_idempotent(
    engine: PiiEngine, picks: list[tuple[tuple[str, str], str, int]]
) -> None:
    values = []
    parts = []
    for (kind, tpl), loc, seed in picks:
        v = _value(kind, loc, seed)
        values.append(v)
        parts.append(tpl.replace("{v}", v))
    text = " ".join(parts)
    state = PlaceholderState()
    once = engine.redact(text, state)
    for v in values:
        assert v not in once.text
    twice = engine.redact(once.text, state)
    assert twice.text == once.text
    assert twice.spans == ()


# --------------------------------------------------------------------------- offline


def test_no_network_during_build_and_analyze(monkeypatch: pytest.MonkeyPatch) -> None:
    import tldextract
    from presidio_analyzer.predefined_recognizers.generic import email_recognizer

    from guardstream.detectors.pii import engine as engine_mod
    from guardstream.detectors.pii import offline

    attempts: list[Any] = []

    def refuse(*args: Any, **kwargs: Any) -> None:
        attempts.append(args)
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    # Start from Presidio's own (network-fetching) tldextract and a cold cache, so the
    # test proves that building the engine installs the offline extractor.
    monkeypatch.setattr(email_recognizer, "tldextract", tldextract)
    offline.offline_tld_extractor.cache_clear()
    engine_mod._shared_nlp_engine.cache_clear()
    try:
        eng = PiiEngine()
        red = eng.redact("Mail anna.weber@mail.example.co.uk or visit https://example.com")
    finally:
        engine_mod._shared_nlp_engine.cache_clear()
    assert "<EMAIL_ADDRESS_1>" in red.text
    assert attempts == []


def test_warm_up_builds_the_suffix_trie_a_first_email_would(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker's first email must not wait ~0.2 s for the public-suffix trie."""
    import types

    import tldextract
    from presidio_analyzer.predefined_recognizers.generic import email_recognizer

    from guardstream.detectors.pii.policy import build_pii_engine
    from guardstream.policy import RedactPolicy

    cold = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None, fallback_to_snapshot=True)
    monkeypatch.setattr(email_recognizer, "tldextract", types.SimpleNamespace(extract=cold))
    build_pii_engine(RedactPolicy())
    assert cold._extractor is not None


def test_the_warm_up_text_reaches_ner_and_the_main_recognizers(engine: PiiEngine) -> None:
    from guardstream.detectors.pii.engine import _WARM_UP_TEXT

    found = {span.entity_type for span in engine.analyze(_WARM_UP_TEXT)}
    assert {"PERSON", "EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD"} <= found
