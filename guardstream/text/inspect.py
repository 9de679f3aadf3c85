"""Find what hides or reorders text: the Unicode checks of the validate stage.

Why block rather than strip: a request that carries a bidi override or an invisible tag
string was crafted, and silently cleaning it would hide the attempt from the audit trail.
What real languages need (single joiners, RLM/LRM marks, emoji sequences) is allowed.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import regex

from guardstream.text.chars import (
    ANY_SUSPECT,
    ASCII_CONTROL,
    BIDI_CONTROL,
    CONTROL,
    INVISIBLE,
    LONE_SURROGATE,
    SPLITTABLE_LETTER,
    TAG,
    format_code_points,
    mask_emoji,
)

__all__ = ["TextIssue", "inspect_text"]

_WHAT = {
    "lone_surrogate": "a lone surrogate",
    "control_chars": "a control character",
    "bidi_override": "a bidi override/isolate (Trojan Source)",
    "invisible_tag": "Unicode tag characters (invisible text)",
    "invisible_run": "a run of {n} zero-width characters",
    "invisible_split": "a zero-width character inside a word",
}


@dataclass(frozen=True, slots=True)
class TextIssue:
    """One blocking problem in one text: a stable reason and where, never the text itself.

    `start`/`end` are code point offsets; `code_points` is e.g. "U+202E" or "U+200B, U+200C".
    """

    reason: str
    start: int
    end: int
    code_points: str
    what: str

    def describe(self) -> str:
        return f"{self.what} ({self.code_points}) at offset {self.start}"


@lru_cache(maxsize=16)
def _pattern(max_zero_width_run: int) -> regex.Pattern[str]:
    return regex.compile(
        f"(?P<lone_surrogate>[{LONE_SURROGATE}]+)"
        f"|(?P<control_chars>[{CONTROL}]+)"
        f"|(?P<bidi_override>[{BIDI_CONTROL}]+)"
        f"|(?P<invisible_tag>[{TAG}]+)"
        f"|(?P<invisible_run>[{INVISIBLE}]{{{max_zero_width_run},}})"
        f"|(?P<invisible_split>(?<=[{SPLITTABLE_LETTER}])[{INVISIBLE}]+"
        f"(?=[{SPLITTABLE_LETTER}]))"
    )


def inspect_text(text: str, *, max_zero_width_run: int = 2) -> TextIssue | None:
    """The first blocking problem in `text`, or None.

    All-ASCII text (the common case) only needs the control character check, one C-speed
    regex search; other text without any suspect character needs one more. Otherwise emoji
    sequences are masked first, so the ZWJ and variation selectors inside "👩‍👩‍👧" or "🏳️‍🌈"
    and the tags of the subdivision flags pass.
    """
    if text.isascii():
        found = ASCII_CONTROL.search(text)
        if found is None:
            return None
        return TextIssue("control_chars", found.start(), found.end(),
                         format_code_points(found.group(0)), _WHAT["control_chars"])
    if ANY_SUSPECT.search(text) is None:
        return None
    masked = mask_emoji(text)
    match = _pattern(max_zero_width_run).search(masked)
    if match is None:
        return None
    kind = match.lastgroup or "control_chars"
    span = match.group(0)
    reason = "invisible_text" if kind.startswith("invisible") else kind
    what = _WHAT[kind].format(n=len(span))
    return TextIssue(reason, match.start(), match.end(), format_code_points(span), what)
