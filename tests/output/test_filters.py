"""The combined filter with the real PII engine: classes, policy actions, merging."""

from __future__ import annotations

from typing import Any

import pytest

from guardstream.detectors.pii import PiiEngine
from guardstream.detectors.pii.policy import pii_config_from_policy
from guardstream.output import OutputFilter, restore_placeholders
from guardstream.policy import OutputPolicy, RedactPolicy


@pytest.fixture(scope="module")
def engine() -> PiiEngine:
    return PiiEngine(pii_config_from_policy(RedactPolicy()))


def make(engine: PiiEngine, **policy: Any) -> OutputFilter:
    return OutputFilter(OutputPolicy(**policy), engine)


@pytest.mark.parametrize(("answer", "expected"), [
    ("Write to jane.roe@acme-mail.com today.", "Write to [EMAIL_ADDRESS] today."),
    ("Her SSN is 078-05-1120.", "Her SSN is [US_SSN]."),
    ("Use key sk-proj-Ab3dE5gH7jK9mN1pQ3sT5vX7zA9cE1gH3 for it.",
     "Use key [OPENAI_API_KEY] for it."),
    ("AWS id AKIAIOSFODNN7EXAMPLE is set.", "AWS id [AWS_ACCESS_KEY] is set."),
    ("DB: postgres://app:Xk29_pQ@db.prod.internal:5432/app",
     "DB: [CONNECTION_STRING]"),
    ("Metrics at http://10.0.4.12:3000/d/x, host 10.0.4.13.",
     "Metrics at [INTERNAL_URL], host [PRIVATE_IP]."),
    ("Keys live in /home/deploy/.aws/credentials.", "Keys live in [FILE_PATH]."),
])
def test_redacted_with_typed_placeholders(engine: PiiEngine, answer: str, expected: str) -> None:
    outcome = make(engine).run(answer)
    assert not outcome.blocked
    assert outcome.text == expected
    assert all(f.action == "redacted" for f in outcome.flagged)


CLEAN = [
    "```python\ndef area(r: float) -> float:\n    return 3.14159 * r ** 2\n```",
    "See https://docs.python.org/3/library/json.html and https://peps.python.org/pep-0008/.",
    "In 2023 revenue grew 12.5% to $4,210,000 across 37 countries.",
    "Send a test mail to alice@example.com; docs use 203.0.113.7 as the client IP.",
    "| col | value |\n|-----|-------|\n| a   | 1     |\n\n**Bold** and _italic_ markdown.",
    "Set DATABASE_URL=postgres://user:password@db.example.com:5432/app in your .env file.",
    "Edit /etc/nginx/nginx.conf, then run `sudo systemctl reload nginx`.",
    "Order #123-45-6789 ships on 2024-05-01.",
]


@pytest.mark.parametrize("answer", CLEAN)
def test_clean_answers_untouched(engine: PiiEngine, answer: str) -> None:
    outcome = make(engine).run(answer)
    assert outcome.text == answer
    assert outcome.flagged == ()


@pytest.mark.parametrize(("policy", "answer", "reason"), [
    ({"pii": "block"}, "Mail jane.roe@acme-mail.com now", "output_pii"),
    ({"secrets": "block"}, "token ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789", "output_secret"),
    ({"internal_urls": "block"}, "go to https://admin.internal/", "internal_url"),
    ({"private_ips": "block"}, "ssh 192.168.10.4", "private_ip"),
    ({"file_paths": "block"}, "open /home/deploy/app.py", "file_path"),
    ({"connection_strings": "block"}, "redis://:s3cretRedis@cache.internal:6379/0",
     "connection_string"),
])
def test_block_policy_blocks_with_a_stable_reason(engine: PiiEngine, policy: dict[str, str],
                                                  answer: str, reason: str) -> None:
    outcome = make(engine, **policy).run(answer)
    assert outcome.blocked and outcome.reason == reason
    assert outcome.text == answer  # withheld, not rewritten
    assert any(f.action == "blocked" for f in outcome.flagged)


@pytest.mark.parametrize(("category", "answer"), [
    ("pii", "Mail jane.roe@acme-mail.com now"),
    ("internal_urls", "go to https://admin.internal/"),
    ("private_ips", "ssh 192.168.10.4"),
    ("file_paths", "open /home/deploy/app.py"),
    ("secrets", "token ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789"),
])
def test_off_lets_a_class_through(engine: PiiEngine, category: str, answer: str) -> None:
    assert make(engine).run(answer).text != answer
    outcome = make(engine, **{category: "off"}).run(answer)
    assert outcome.text == answer and outcome.flagged == ()


def test_system_prompt_leak_blocks_and_can_be_turned_off(engine: PiiEngine) -> None:
    answer = "Sure, my token is gs-canary-1234abcd."
    outcome = make(engine).run(answer, canary="gs-canary-1234abcd")
    assert outcome.reason == "system_prompt_leak"
    off = make(engine, system_prompt_leak="off").run(answer, canary="gs-canary-1234abcd")
    assert not off.blocked
    assert all(f.span.type != "SYSTEM_PROMPT_LEAK" for f in off.flagged)


def test_most_serious_blocking_class_names_the_reason(engine: PiiEngine) -> None:
    answer = "token ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789 from /home/deploy/x"
    outcome = make(engine, secrets="block", file_paths="block").run(answer)
    assert outcome.blocking == ("secrets", "file_paths")
    assert outcome.reason == "output_secret"


def test_overlapping_findings_become_one_region(engine: PiiEngine) -> None:
    answer = "use mysql://root:Tr0ub4dor@10.2.3.4:3306/app"
    outcome = make(engine).run(answer)
    assert outcome.text == "use [CONNECTION_STRING]"
    assert [f.span.type for f in outcome.flagged] == ["CONNECTION_STRING"]


def test_findings_carry_offsets_but_not_values(engine: PiiEngine) -> None:
    answer = "Write to jane.roe@acme-mail.com today."
    [flagged] = make(engine).run(answer).flagged
    assert answer[flagged.span.start:flagged.span.end] == "jane.roe@acme-mail.com"
    assert "jane" not in repr(flagged)


def test_redact_placeholders_survive_the_filter_for_restore(engine: PiiEngine) -> None:
    # The model echoes the redact stage's placeholders; they are not re-flagged, and only
    # they are restored (the filter's own [TYPE] placeholders never are).
    answer = "Hi <PERSON_1>, I sent it to <EMAIL_ADDRESS_1> and to bob@acme-mail.com."
    outcome = make(engine).run(answer)
    assert outcome.text == "Hi <PERSON_1>, I sent it to <EMAIL_ADDRESS_1> and to [EMAIL_ADDRESS]."
    restored, count = restore_placeholders(outcome.text, {
        "<PERSON_1>": "Jane Roe", "<EMAIL_ADDRESS_1>": "jane.roe@acme-mail.com",
        "<EMAIL_ADDRESS_2>": "never@used.com"})
    assert count == 2
    assert restored == "Hi Jane Roe, I sent it to jane.roe@acme-mail.com and to [EMAIL_ADDRESS]."
