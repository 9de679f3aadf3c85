"""Text normalisation shared by every injection layer.

Why: attackers dodge keyword rules with full-width letters, zero-width joiners, Cyrillic
look-alikes, leetspeak and s p a c e d letters. Folding all of these to one canonical form
first lets the heuristics stay simple and the classifier see the same tokens in training
and at run time.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["MAX_SCAN_CHARS", "despace", "fold_leet", "normalize", "views"]

#: Hard cap on how much of one message the layers look at; bounds worst-case latency.
#: Longer messages keep their head and tail, so padding cannot push an attack out of view.
MAX_SCAN_CHARS = 20_000
_TAIL_CHARS = 5_000

# Zero-width and bidi controls: invisible, used only to break up keywords.
_INVISIBLE = re.compile("[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180e\u200b-\u200f"
                        "\u202a-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0]")
_WS = re.compile(r"[ \t\f\v\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+")
_MANY_NL = re.compile(r"\n{3,}")

# Confusables: Cyrillic/Greek letters that render like Latin ones. Applied only to tokens
# that also contain Latin letters, so genuine Russian or Greek text stays intact.
_HOMOGLYPHS = str.maketrans({
    "а": "a", "е": "e", "о": "o", "р": "p", "с": "c", "у": "y", "х": "x", "і": "i",
    "ј": "j", "ѕ": "s", "һ": "h", "ԁ": "d", "ԛ": "q", "ԝ": "w", "к": "k", "м": "m",
    "т": "t", "в": "b", "н": "h", "ɡ": "g", "ı": "i",
    "α": "a", "ε": "e", "ο": "o", "ρ": "p", "τ": "t", "υ": "u", "ν": "v", "κ": "k",
    "ι": "i", "χ": "x", "ѵ": "v", "ℓ": "l",
})
_LATIN = re.compile(r"[a-z]")


def _latin_accent_table() -> dict[int, str]:
    """Latin letters with diacritics -> base letter ("règles" -> "regles"); other scripts kept."""
    table: dict[int, str] = {}
    for cp in range(0x00C0, 0x0250):
        base = "".join(c for c in unicodedata.normalize("NFKD", chr(cp))
                       if not unicodedata.combining(c))
        if base and base != chr(cp) and base.isascii():
            table[cp] = base
    return table


_ACCENTS = _latin_accent_table()
_NONASCII_LETTER = re.compile(r"[^\x00-\x7f]")
_TOKEN = re.compile(r"\S+")

_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a",
                       "$": "s", "!": "i", "|": "l", "+": "t"})
_LEET_TOKEN = re.compile(r"\b(?=[a-z0-9@$!|+]*[a-z])(?=[a-z0-9@$!|+]*[0-9@$|+])[a-z0-9@$!|+]{3,}")
# "i g n o r e  a l l": runs of single characters separated by single spaces.
_SPACED = re.compile(r"(?:\b\w[ .\-_*]){3,}\w\b")


def _fold_token(match: re.Match[str]) -> str:
    tok = match.group(0)
    if _NONASCII_LETTER.search(tok) and _LATIN.search(tok.translate(_HOMOGLYPHS)):
        folded = tok.translate(_HOMOGLYPHS)
        # Only fold when the result is (almost) plain ASCII: a real Cyrillic word stays.
        if sum(ord(c) > 127 for c in folded) <= len(folded) // 4:
            return folded
    return tok


def normalize(text: str) -> str:
    """NFKC, drop invisibles, casefold, strip Latin accents, fold mixed-script homoglyphs,
    collapse whitespace. Accents go because attackers (and hurried typists) drop them."""
    if len(text) > MAX_SCAN_CHARS:
        text = text[:MAX_SCAN_CHARS - _TAIL_CHARS] + "\n" + text[-_TAIL_CHARS:]
    text = unicodedata.normalize("NFKC", text)
    text = _INVISIBLE.sub("", text).casefold().translate(_ACCENTS)
    text = _TOKEN.sub(_fold_token, text)
    text = _WS.sub(" ", text)
    text = _MANY_NL.sub("\n\n", text)
    return text.strip()


def fold_leet(norm: str) -> str:
    """Map leetspeak digits/symbols back to letters, only inside mixed letter+digit tokens."""
    return _LEET_TOKEN.sub(lambda m: m.group(0).translate(_LEET), norm)


def despace(norm: str) -> str:
    """Join "i g n o r e" style letter runs back into words."""
    return _SPACED.sub(lambda m: re.sub(r"[ .\-_*]", "", m.group(0)), norm)


def views(norm: str) -> list[str]:
    """Distinct obfuscation-folded variants of an already normalised text (excluding itself)."""
    out: list[str] = []
    for candidate in (fold_leet(norm), despace(norm)):
        if candidate != norm and candidate not in out:
            out.append(candidate)
    return out
