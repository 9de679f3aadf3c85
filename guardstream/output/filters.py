"""All output filters together, and the policy's verdict on what they found.

`OutputFilter.run(answer, ...)` is plain CPU work (the stage calls it on the thread pool):
it collects spans from every enabled detector, drops the classes the policy turns `off`,
merges overlapping spans (a connection string to `db.internal` is one region, typed by its
most serious class), and either blocks (any region of a `block` class, or any system-prompt
leak) or replaces each region with a typed placeholder such as `[INTERNAL_URL]`.

Output placeholders use square brackets on purpose: the redact stage's `<EMAIL_ADDRESS_1>`
placeholders are the ones the vault restores, and a value the model made up must never be
"restored" into someone's real address.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from guardstream.output.leak import find_canary, find_prompt_overlap
from guardstream.output.patterns import (
    find_connection_strings,
    find_file_paths,
    find_internal_urls,
    find_private_ips,
)
from guardstream.output.pii import classify_pii_spans
from guardstream.output.spans import CATEGORIES, CATEGORY_REASONS, Category, Span

if TYPE_CHECKING:
    from guardstream.detectors.pii import PiiEngine, PiiSpan
    from guardstream.policy import OutputPolicy

__all__ = ["Action", "FilterOutcome", "Flagged", "OutputFilter", "placeholder"]

Action = Literal["redact", "block", "off"]
_PII_CLASSES: tuple[Category, ...] = ("pii", "secrets", "private_ips")


def placeholder(span_type: str) -> str:
    """The typed text that replaces a redacted region."""
    return f"[{span_type}]"


@dataclass(frozen=True, slots=True)
class Flagged:
    """A merged region of the answer and what the policy does with it."""

    span: Span
    action: Literal["redacted", "blocked"]


@dataclass(frozen=True, slots=True)
class FilterOutcome:
    """The filtered text (unchanged when blocked), the regions, and the blocking classes
    (most serious first; empty when the answer may go out)."""

    text: str
    flagged: tuple[Flagged, ...]
    blocking: tuple[Category, ...]

    @property
    def blocked(self) -> bool:
        return bool(self.blocking)

    @property
    def reason(self) -> str | None:
        return CATEGORY_REASONS[self.blocking[0]] if self.blocking else None


class OutputFilter:
    """The configured detectors; build once per stage, call `run` from any thread."""

    def __init__(self, policy: OutputPolicy, pii_engine: PiiEngine | None = None) -> None:
        self.policy = policy
        self.actions: dict[Category, Action] = {
            "pii": policy.pii,
            "secrets": policy.secrets,
            "internal_urls": policy.internal_urls,
            "private_ips": policy.private_ips,
            "file_paths": policy.file_paths,
            "connection_strings": policy.connection_strings,
            "system_prompt_leak": policy.system_prompt_leak,
        }
        self.pii_engine = pii_engine

    @property
    def needs_pii_engine(self) -> bool:
        return any(self.actions[c] != "off" for c in _PII_CLASSES)

    def _on(self, category: Category) -> bool:
        return self.actions[category] != "off"

    def scan(self, text: str, *, canary: str | None = None,
             system_prompts: Sequence[str] = (), user_texts: Sequence[str] = (),
             pii: Sequence[PiiSpan] | None = None) -> list[Span]:
        """Every span the enabled detectors find (overlapping, unmerged).

        `pii`: the PII engine's findings for `text` when the caller already has them
        (the output stage batches them across requests); found here otherwise.
        """
        spans: list[Span] = []
        hosts = self.policy.allowed_hosts
        if self.pii_engine is not None and self.needs_pii_engine:
            found = self.pii_engine.analyze(text) if pii is None else pii
            spans += classify_pii_spans(text, found)
        if self._on("internal_urls"):
            spans += find_internal_urls(text, hosts)
        if self._on("private_ips"):
            spans += find_private_ips(text, hosts)
        if self._on("file_paths"):
            spans += find_file_paths(text)
        if self._on("connection_strings"):
            spans += find_connection_strings(text)
        if self._on("system_prompt_leak"):
            spans += find_canary(text, canary)
            spans += find_prompt_overlap(text, system_prompts,
                                         self.policy.system_prompt_overlap_chars, user_texts)
        return [s for s in spans if self._on(s.category)]

    def apply(self, text: str, spans: Sequence[Span]) -> FilterOutcome:
        """Merge `spans`, decide per the policy, and redact when nothing blocks."""
        leaks = [s for s in spans if s.category == "system_prompt_leak"]
        regions = _merge([s for s in spans if s.category != "system_prompt_leak"],
                         self.actions)
        flagged = [Flagged(s, "blocked") for s in leaks]
        flagged += [Flagged(s, "blocked" if self.actions[s.category] == "block" else "redacted")
                    for s in regions]
        blocking = tuple(c for c in CATEGORIES
                         if any(f.action == "blocked" and f.span.category == c
                                for f in flagged))
        if blocking:
            return FilterOutcome(text, tuple(flagged), blocking)
        pieces: list[str] = []
        cursor = 0
        for region in regions:
            pieces.append(text[cursor:region.start])
            pieces.append(placeholder(region.type))
            cursor = region.end
        pieces.append(text[cursor:])
        return FilterOutcome("".join(pieces), tuple(flagged), ())

    def run(self, text: str, *, canary: str | None = None,
            system_prompts: Sequence[str] = (), user_texts: Sequence[str] = (),
            pii: Sequence[PiiSpan] | None = None) -> FilterOutcome:
        return self.apply(text, self.scan(text, canary=canary, system_prompts=system_prompts,
                                          user_texts=user_texts, pii=pii))


def _merge(spans: list[Span], actions: dict[Category, Action]) -> list[Span]:
    """Union of overlapping spans; a region takes its type from a blocking member first,
    then from the most serious class (`CATEGORIES` order)."""
    spans = sorted(spans, key=lambda s: (s.start, -s.end))
    groups: list[list[Span]] = []
    end = -1
    for span in spans:
        if groups and span.start < end:
            groups[-1].append(span)
            end = max(end, span.end)
        else:
            groups.append([span])
            end = span.end
    merged: list[Span] = []
    for group in groups:
        best = min(group, key=lambda s: (actions[s.category] != "block",
                                         CATEGORIES.index(s.category), -(s.end - s.start)))
        merged.append(Span(best.category, best.type, min(s.start for s in group),
                           max(s.end for s in group), max(s.score for s in group),
                           best.layer))
    return merged
