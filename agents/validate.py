"""Stage validate: structure, sizes, and Unicode that hides or reorders text.

Why here, second in line: every later stage (PII patterns, moderation, injection
classifiers) and the model must see well-formed, bounded, normalized text, and a request
that smuggles invisible instructions must end before any of them spends work on it.

Decisions, in order (the first failure blocks; `detail` names the message index, the
problem and code points as U+XXXX, never the text):

1. Structure, from the parser's `problems` (`empty_messages`, `invalid_messages`,
   `invalid_role`, `invalid_content`, `invalid_user_id`, `invalid_parameter`,
   `invalid_tier`), then roles, then ids against `max_id_length` (`invalid_request_id`,
   `invalid_user_id`). These run even with `enabled: false`: later stages rely on them.
   An unknown but well-typed `tier` is not an error: the policy's default tier applies.
2. Sizes: `too_many_messages`, `too_long` (characters in one message), `too_large`
   (UTF-8 bytes of all contents).
3. Unicode (`guardstream.text.inspect_text`): `lone_surrogate`, `control_chars`,
   `bidi_override`, `invisible_text`.
4. Confusables: mixed-script look-alike words are findings `confusable_text` (offsets in
   the text as received: NFKC erases the evidence), and block with that reason when the
   policy says `confusables: block`.
5. What passes is sanitized (NUL and soft hyphens stripped, NFKC, absurd whitespace and
   newline runs cut) and re-inspected; the sanitized messages travel on, with one finding
   `sanitized` per changed message whose `layer` lists the counts (e.g. `nfkc:3,nul:1`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from guardstream.agents.base import Stage, Verdict
from guardstream.models import ChatMessage, ChatRequest, Envelope, Finding
from guardstream.policy import ValidatePolicy
from guardstream.text import TextIssue, find_confusables, inspect_text, sanitize, warm

if TYPE_CHECKING:
    from guardstream.resources import Resources

__all__ = ["ROLES", "ValidateStage"]

ROLES = frozenset({"system", "user", "assistant"})

#: Above this many characters the Unicode work goes to the CPU thread pool, so a large
#: request does not stall the consumer's event loop (heartbeats, other requests).
_OFFLOAD_CHARS = 50_000
_MAX_CONFUSABLE_FINDINGS = 16


@dataclass(frozen=True, slots=True)
class _Block:
    reason: str
    detail: str
    finding: Finding | None = None


@dataclass(frozen=True, slots=True)
class _TextOutcome:
    block: _Block | None
    findings: tuple[Finding, ...]
    messages: tuple[ChatMessage, ...]
    changed: bool


class ValidateStage(Stage):
    name = "validate"

    def __init__(self, resources: Resources) -> None:
        super().__init__(resources)
        self.config: ValidatePolicy = self.policy.stages.validate_

    async def start(self) -> None:
        """Build the confusable tables (~0.1 s) before the first request, off the loop."""
        await self.resources.run_cpu(warm)

    async def process(self, envelope: Envelope) -> Verdict:
        request = envelope.request
        block = _structure(request, self.config)
        if block is None and self.config.enabled:
            block = _sizes(request, self.config)
        if block is not None:
            return Verdict.blocked(envelope, block.reason, block.detail)
        if not self.config.enabled:
            return Verdict.passed(envelope)
        messages = request.messages
        if sum(len(m.content) for m in messages) > _OFFLOAD_CHARS:
            outcome = await self.resources.run_cpu(_check_text, messages, self.config)
        else:
            outcome = _check_text(messages, self.config)
        if outcome.block is not None:
            findings = outcome.findings
            if outcome.block.finding is not None:
                findings = (*findings, outcome.block.finding)
            return Verdict.blocked(envelope, outcome.block.reason, outcome.block.detail,
                                   findings=findings)
        updated = envelope.with_messages(outcome.messages) if outcome.changed else envelope
        return Verdict.passed(updated, outcome.findings)


def _structure(request: ChatRequest, config: ValidatePolicy) -> _Block | None:
    if request.problems:
        problem = request.problems[0]
        return _Block(problem.reason, problem.detail)
    for index, message in enumerate(request.messages):
        if message.role not in ROLES:
            return _Block("invalid_role",
                          f"messages[{index}].role must be one of system, user, assistant")
    if len(request.request_id) > config.max_id_length:
        return _Block("invalid_request_id",
                      f"request_id is longer than {config.max_id_length} characters")
    if len(request.user_id) > config.max_id_length:
        return _Block("invalid_user_id",
                      f"user_id is longer than {config.max_id_length} characters")
    if not request.user_id.isprintable():
        return _Block("invalid_user_id", "user_id must not contain control or invisible "
                      "characters")
    return None


def _utf8_size(text: str) -> int:
    if text.isascii():
        return len(text)
    return len(text.encode("utf-8", "surrogatepass"))


def _sizes(request: ChatRequest, config: ValidatePolicy) -> _Block | None:
    count = len(request.messages)
    if count > config.max_messages:
        return _Block("too_many_messages",
                      f"{count} messages; at most {config.max_messages} are allowed")
    total = 0
    for index, message in enumerate(request.messages):
        length = len(message.content)
        if length > config.max_chars_per_message:
            return _Block("too_long",
                          f"messages[{index}].content has {length} characters; at most "
                          f"{config.max_chars_per_message} are allowed")
        total += _utf8_size(message.content)
    if total > config.max_total_bytes:
        return _Block("too_large", f"the messages total {total} bytes of UTF-8; at most "
                      f"{config.max_total_bytes} are allowed")
    return None


def _issue_block(index: int, issue: TextIssue, *, after: str = "") -> _Block:
    detail = f"messages[{index}].content has {issue.describe()}{after}; remove it"
    finding = Finding(stage=ValidateStage.name, type=issue.reason, action="blocked",
                      message=index, start=issue.start, end=issue.end)
    return _Block(issue.reason, detail, finding)


def _check_text(messages: tuple[ChatMessage, ...], config: ValidatePolicy) -> _TextOutcome:
    """Inspect, look for confusables, sanitize and re-inspect every message. Pure CPU."""
    findings: list[Finding] = []
    for index, message in enumerate(messages):
        issue = inspect_text(message.content, max_zero_width_run=config.max_zero_width_run)
        if issue is not None:
            return _TextOutcome(_issue_block(index, issue), (), messages, False)
    if config.confusables != "off":
        block = _confusables(messages, config, findings)
        if block is not None:
            return _TextOutcome(block, tuple(findings), messages, False)
    sanitized: list[ChatMessage] = []
    changed = False
    for index, message in enumerate(messages):
        result = sanitize(message.content, max_whitespace_run=config.max_whitespace_run,
                          max_newline_run=config.max_newline_run)
        if not result.changed:
            sanitized.append(message)
            continue
        # NFKC can turn letters the first pass did not know into Latin ones around a
        # zero-width character; what later stages see must pass the same checks.
        issue = inspect_text(result.text, max_zero_width_run=config.max_zero_width_run)
        if issue is not None:
            return _TextOutcome(_issue_block(index, issue, after=" after normalization"),
                                tuple(findings), messages, False)
        changed = True
        sanitized.append(ChatMessage(role=message.role, content=result.text))
        counts = ",".join(f"{key}:{value}" for key, value in result.changes.items())
        findings.append(Finding(stage=ValidateStage.name, type="sanitized",
                                action="normalized", message=index, layer=counts))
    return _TextOutcome(None, tuple(findings), tuple(sanitized), changed)


def _confusables(messages: tuple[ChatMessage, ...], config: ValidatePolicy,
                 findings: list[Finding]) -> _Block | None:
    blocking = config.confusables == "block"
    first: tuple[int, str] | None = None
    for index, message in enumerate(messages):
        room = _MAX_CONFUSABLE_FINDINGS - len(findings)
        if room <= 0:
            break
        words = find_confusables(message.content, min_letters=config.min_confusable_letters,
                                 limit=room)
        for word in words:
            findings.append(Finding(stage=ValidateStage.name, type="confusable_text",
                                    action="blocked" if blocking else "reported",
                                    message=index, start=word.start, end=word.end))
            if first is None:
                first = (index, f"messages[{index}].content has a word mixing "
                                f"{' and '.join(word.scripts)} look-alike letters "
                                f"({word.code_points}) at offset {word.start}")
    if blocking and first is not None:
        return _Block("confusable_text", first[1] + "; write it in one script")
    return None
