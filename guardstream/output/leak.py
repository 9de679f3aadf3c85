"""System-prompt leaks: the request's canary token, and long verbatim copies of the prompt.

The llm stage plants a random canary in the system prompt; it can only reach the answer
if the model repeated its instructions. Without a canary (or when the model paraphrases
around it) a long verbatim overlap with the system prompt is the other tell.

Overlap: both texts are normalized (whitespace runs -> one space, lower case), the
system prompt is cut into all windows of `k` characters (shingles) whose hashes go into
a set, and every window of the answer is looked up: O(len(prompt) + len(answer)) window
hashes. A window that also occurs in the user's own messages is not a leak (the user
already had that text). Candidate regions are confirmed by a real substring search, so a
hash collision cannot block an answer.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from guardstream.output.spans import Span

__all__ = ["MIN_SHORT_PROMPT", "find_canary", "find_prompt_overlap", "normalize_with_map"]

#: A system prompt shorter than the overlap length is matched whole, if it has at least
#: this many normalized characters (shorter prompts are too generic to call a copy a leak).
MIN_SHORT_PROMPT = 24

_NON_ALNUM = re.compile(r"[\W_]+")


def normalize_with_map(text: str) -> tuple[str, list[int]]:
    """Whitespace-collapsed, lower-cased text and, per output char, its index in `text`."""
    chars: list[str] = []
    index: list[int] = []
    pending_space = False
    for i, char in enumerate(text):
        if char.isspace():
            pending_space = bool(chars)
            continue
        if pending_space:
            chars.append(" ")
            index.append(i - 1)
            pending_space = False
        lower = char.lower()
        chars.append(lower if len(lower) == 1 else char)
        index.append(i)
    return "".join(chars), index


def find_canary(text: str, canary: str | None) -> list[Span]:
    """The canary in the answer: verbatim, or spelled out with separators between."""
    if not canary:
        return []
    spans: list[Span] = []
    start = text.find(canary)
    while start >= 0:
        spans.append(Span("system_prompt_leak", "SYSTEM_PROMPT_LEAK", start,
                          start + len(canary), 1.0, "canary"))
        start = text.find(canary, start + len(canary))
    if spans:
        return spans
    compact = _NON_ALNUM.sub("", canary).lower()
    if len(compact) >= 8 and compact in _NON_ALNUM.sub("", text).lower():
        spans.append(Span("system_prompt_leak", "SYSTEM_PROMPT_LEAK", 0, len(text), 1.0,
                          "canary"))
    return spans


def _windows(text: str, k: int) -> set[int]:
    return {hash(text[i:i + k]) for i in range(len(text) - k + 1)}


def find_prompt_overlap(text: str, system_prompts: Sequence[str], min_chars: int,
                        user_texts: Sequence[str] = ()) -> list[Span]:
    """Regions of `text` that copy >= `min_chars` normalized characters of a system prompt."""
    prompts = [p for p in (normalize_with_map(s)[0] for s in system_prompts) if p]
    if not prompts or not text:
        return []
    norm, index = normalize_with_map(text)
    spans: list[Span] = []
    # A prompt shorter than the window is looked for whole (if not trivially short).
    by_k: dict[int, list[str]] = {}
    for prompt in prompts:
        k = min_chars if len(prompt) >= min_chars else len(prompt)
        if k >= MIN_SHORT_PROMPT:
            by_k.setdefault(k, []).append(prompt)
    users = [normalize_with_map(u)[0] for u in user_texts]
    for k, group in by_k.items():
        if len(norm) < k:
            continue
        shingles: set[int] = set()
        for prompt in group:
            shingles |= _windows(prompt, k)
        known = set().union(*(_windows(u, k) for u in users if len(u) >= k)) if users else set()
        region_start = -1
        region_end = -1
        regions: list[tuple[int, int]] = []
        for i in range(len(norm) - k + 1):
            h = hash(norm[i:i + k])
            if h in shingles and h not in known:
                if region_start >= 0 and i <= region_end:
                    region_end = i + k
                else:
                    if region_start >= 0:
                        regions.append((region_start, region_end))
                    region_start, region_end = i, i + k
        if region_start >= 0:
            regions.append((region_start, region_end))
        for start, end in regions:
            first = norm[start:start + k]
            if any(first in prompt for prompt in group):  # confirm: no hash collisions
                spans.append(Span("system_prompt_leak", "SYSTEM_PROMPT_LEAK", index[start],
                                  index[end - 1] + 1, 1.0, "overlap"))
    return spans
