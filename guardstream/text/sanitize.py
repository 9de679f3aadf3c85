"""Sanitize text that passed inspection: what later stages and the model will see.

Why each step:
- NUL is stripped, not blocked: it renders as nothing, breaks C-string consumers
  downstream, and some clients pad with it by accident; stripping loses no meaning.
- Soft hyphens (U+00AD) are stripped: they are only a line-breaking hint, and inside a
  word ("ig<SHY>nore") they dodge keyword filters.
- NFKC folds full-width, mathematical and other compatibility letters to plain ones, so
  "ｉｇｎｏｒｅ" and "𝐢𝐠𝐧𝐨𝐫𝐞" reach the detectors as "ignore". Two exceptions keep real text
  intact: emoji sequences are left as they are ("ℹ️" would otherwise become "i" plus a
  stray selector), and superscript/subscript digits and signs and vulgar fractions are
  kept, because NFKC would turn "E=mc²" into "E=mc2" and "½" into "1⁄2"; so are
  double-struck letters that stand alone ("x∈ℝ") and superscript/subscript letters in
  runs shorter than three ("xⁿ", "aᵢⱼ"; "ⁱᵍⁿᵒʳᵉ" is folded).
- Runs of horizontal whitespace and of blank lines longer than the policy limits are cut
  to the limit: padding pushes instructions out of a reviewer's view and wastes tokens.
  Line breaks keep their style (CRLF stays CRLF).

The result is idempotent: sanitizing sanitized text changes nothing.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache

import regex

from guardstream.text.chars import EMOJI_SEQUENCE

__all__ = ["Sanitized", "sanitize"]

_STRIP = re.compile("[\x00\u00ad]")
# A CRLF is one break, never a CR and an LF.
_BREAK = r"(?:\r\n|\r(?!\n)|[\n\u2028\u2029])"
#: Double-struck letters name number sets in mathematics (ℕ, ℝ, 𝔽): kept when they stand
#: alone, folded when they spell a word ("𝕚𝕘𝕟𝕠𝕣𝕖").
#: Superscript/subscript letters are indexes ("xⁿ", "aᵢⱼ") in short runs and a styled word
#: ("ⁱᵍⁿᵒʳᵉ") in long ones.
_MAX_SCRIPT_RUN = 3
_DOUBLE_STRUCK = regex.compile("[\u2102\u210d\u2115\u2119\u211a\u211d\u2124"
                               "\U0001d538-\U0001d56b]")


@dataclass(frozen=True, slots=True)
class Sanitized:
    """The sanitized text and how many characters each step changed (counts, never text)."""

    text: str
    changes: dict[str, int] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return bool(self.changes)


@lru_cache(maxsize=16)
def _runs(max_whitespace_run: int, max_newline_run: int) -> tuple[re.Pattern[str],
                                                                   re.Pattern[str]]:
    spaces = re.compile(f"[ \t]{{{max_whitespace_run + 1},}}")
    # Starts at a break so the scan is linear even on long space-only stretches.
    breaks = re.compile(f"{_BREAK}(?:[ \t]*{_BREAK}){{{max_newline_run},}}")
    return spaces, breaks


def _keep_compat(ch: str) -> bool:
    """Compatibility characters whose NFKC form would change what the text means."""
    decomposition = unicodedata.decomposition(ch)
    if decomposition.startswith("<fraction>"):
        return True
    if decomposition.startswith(("<super>", "<sub>")):
        return not unicodedata.normalize("NFKC", ch).isalpha()
    return False


def _script_letter(ch: str) -> bool:
    """A superscript or subscript letter (ⁿ, ᵢ): an index in maths, or a styled word."""
    return unicodedata.decomposition(ch).startswith(("<super>", "<sub>")) and (
        unicodedata.normalize("NFKC", ch).isalpha())


@lru_cache(maxsize=4096)
def _special(ch: str) -> str:
    """'keep' (always kept), 'alone' (kept when not inside a word), 'script' (kept in
    short runs) or '' (normalized)."""
    if ch.isascii():
        return ""
    if _keep_compat(ch):
        return "keep"
    if _DOUBLE_STRUCK.match(ch):
        return "alone"
    if _script_letter(ch):
        return "script"
    return ""


def _nfkc_segment(segment: str) -> str:
    if unicodedata.is_normalized("NFKC", segment):
        return segment
    if not any(_special(ch) for ch in segment):
        return unicodedata.normalize("NFKC", segment)
    # Rare: kept characters present. Normalize around them, not through them; a
    # double-struck letter stays when its (normalized) neighbours are not letters.
    parts: list[str] = []
    kinds: list[str] = []
    start = 0
    for index, ch in enumerate(segment):
        kind = _special(ch)
        if kind:
            parts.append(unicodedata.normalize("NFKC", segment[start:index]))
            kinds.append("")
            parts.append(ch)
            kinds.append(kind)
            start = index + 1
    parts.append(unicodedata.normalize("NFKC", segment[start:]))
    kinds.append("")
    for index, kind in enumerate(kinds):
        if kind == "alone" and (_letter_at(parts, index, -1) or _letter_at(parts, index, 1)):
            parts[index] = unicodedata.normalize("NFKC", parts[index])
    for run in _script_runs(parts, kinds):
        if len(run) >= _MAX_SCRIPT_RUN:
            for index in run:
                parts[index] = unicodedata.normalize("NFKC", parts[index])
    return "".join(parts)


def _script_runs(parts: list[str], kinds: list[str]) -> list[list[int]]:
    """Indexes of 'script' parts, grouped into runs with nothing between them."""
    runs: list[list[int]] = []
    current: list[int] = []
    for index, kind in enumerate(kinds):
        if kind == "script":
            current.append(index)
        elif kind or parts[index]:
            if current:
                runs.append(current)
            current = []
    if current:
        runs.append(current)
    return runs


def _letter_at(parts: list[str], index: int, step: int) -> bool:
    """Whether the nearest character on one side of parts[index] is a letter."""
    index += step
    while 0 <= index < len(parts):
        if parts[index]:
            return parts[index][-1 if step < 0 else 0].isalpha()
        index += step
    return False


def _nfkc_once(text: str) -> str:
    out: list[str] = []
    last = 0
    for match in EMOJI_SEQUENCE.finditer(text):
        out.append(_nfkc_segment(text[last:match.start()]))
        out.append(match.group(0))
        last = match.end()
    out.append(_nfkc_segment(text[last:]))
    return "".join(out)


def _nfkc(text: str) -> str:
    """NFKC outside emoji sequences, keeping meaningful super/subscripts and fractions.

    Normalizing piecewise can leave a seam that normalizes further on a second pass (a
    folded letter before a combining mark); repeating to a fixed point keeps `sanitize`
    idempotent. Two rounds are the norm, the cap is a safety net.
    """
    if unicodedata.is_normalized("NFKC", text):
        return text
    current = text
    for _ in range(4):
        following = _nfkc_once(current)
        if following == current:
            break
        current = following
    return current


def sanitize(text: str, *, max_whitespace_run: int = 64, max_newline_run: int = 4) -> Sanitized:
    """Strip NUL and soft hyphens, NFKC-normalize, cut absurd whitespace and newline runs.

    Call it on text that passed `inspect_text`; all-ASCII text skips normalization.
    """
    changes: dict[str, int] = {}
    current = text
    if "\x00" in current or "\u00ad" in current:
        nul = current.count("\x00")
        shy = current.count("\u00ad")
        current = _STRIP.sub("", current)
        if nul:
            changes["nul"] = nul
        if shy:
            changes["soft_hyphen"] = shy
    if not current.isascii():
        normalized = _nfkc(current)
        if normalized != current:
            changes["nfkc"] = _count_differences(current, normalized)
            current = normalized
    spaces, breaks = _runs(max_whitespace_run, max_newline_run)
    # Substring tests first: C-speed, and they rule out the common case without a regex.
    if (" " * (max_whitespace_run + 1) in current or "\t" in current) and (
            spaces.search(current)):
        before = len(current)
        current = spaces.sub(lambda m: m.group(0)[:max_whitespace_run], current)
        if len(current) != before:
            changes["whitespace"] = before - len(current)
    if _break_count(current) > max_newline_run and breaks.search(current):
        before = len(current)
        current = breaks.sub(lambda m: _first_break(m.group(0)) * max_newline_run, current)
        if len(current) != before:
            changes["newlines"] = before - len(current)
    return Sanitized(current, changes)


def _break_count(text: str) -> int:
    count = text.count("\n") + text.count("\r")
    if not text.isascii():
        count += text.count("\u2028") + text.count("\u2029")
    return count


def _first_break(run: str) -> str:
    return "\r\n" if run.startswith("\r\n") else run[0]


def _count_differences(before: str, after: str) -> int:
    """How many characters NFKC rewrote, approximately: code points not already NFKC-stable."""
    if before == after:
        return 0
    return max(1, sum(1 for ch in before if _folds(ch)))


@lru_cache(maxsize=4096)
def _folds(ch: str) -> bool:
    return not ch.isascii() and _special(ch) != "keep" and (
        unicodedata.normalize("NFKC", ch) != ch)
