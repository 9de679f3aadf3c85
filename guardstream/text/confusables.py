"""Mixed-script look-alike words: "раypal" (Cyrillic р, а), "Ⅰgnore" (Roman numeral one).

Why words and not characters: a whole word in another script ("Привет мир", "Γειά σου")
is a language, not a trick. A word that mixes Latin letters with letters of another
script that *look* Latin is what phishing domains and filter-dodging prompts use
(UTS #39 calls it mixed-script confusable). Compatibility letters that NFKC folds to ASCII
(Roman numerals, full-width, mathematical and circled letters) count too, when they sit
inside an otherwise plain Latin word: styled whole words are left to NFKC.

This runs on the text as received: NFKC would erase the evidence for compatibility letters.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection
from dataclasses import dataclass
from functools import cache, lru_cache

import regex

from guardstream.text.chars import format_code_points

__all__ = ["LOOKALIKES", "ConfusableWord", "find_confusables", "warm"]

#: Letters of other scripts that render (nearly) like a Latin letter in common fonts.
#: Hand-curated from Unicode's confusables.txt, keeping only close look-alikes: a letter
#: that merely resembles one (Cyrillic "в", Greek "ε") would flag real mixed text.
LOOKALIKES: dict[str, str] = {
    # Cyrillic
    "а": "a", "с": "c", "ԁ": "d", "е": "e", "һ": "h", "і": "i", "ј": "j", "к": "k",
    "ӏ": "l", "о": "o", "р": "p", "ԛ": "q", "ѕ": "s", "ԝ": "w", "х": "x", "у": "y",
    "ү": "y", "А": "A", "В": "B", "С": "C", "Е": "E", "Н": "H", "І": "I", "Ј": "J",
    "К": "K", "Ӏ": "I", "М": "M", "О": "O", "Р": "P", "Ԛ": "Q", "Ѕ": "S", "Т": "T",
    "Ԝ": "W", "Х": "X", "У": "Y", "Ү": "Y",
    # Greek
    "α": "a", "ι": "i", "ϳ": "j", "κ": "k", "ν": "v", "ο": "o", "ρ": "p", "ϲ": "c",
    "υ": "u", "χ": "x", "γ": "y", "Α": "A", "Β": "B", "Ϲ": "C", "Ε": "E", "Η": "H",
    "Ι": "I", "Ϳ": "J", "Κ": "K", "Μ": "M", "Ν": "N", "Ο": "O", "Ρ": "P", "Τ": "T",
    "Υ": "Y", "Χ": "X", "Ζ": "Z",
    # Armenian
    "հ": "h", "ո": "n", "օ": "o", "զ": "q", "ս": "u", "Լ": "L", "Օ": "O", "Ս": "U",
    # Cherokee
    "Ꭺ": "A", "Ᏼ": "B", "Ꮯ": "C", "Ꭰ": "D", "Ꭼ": "E", "Ꮐ": "G", "Ꮋ": "H", "Ꭻ": "J",
    "Ꮶ": "K", "Ꮮ": "L", "Ꮇ": "M", "Ꮲ": "P", "Ꮪ": "S", "Ꭲ": "T", "Ꮩ": "V", "Ꮃ": "W",
    "Ꮓ": "Z",
}

_WORD = regex.compile(r"[\p{L}\p{M}\p{Nl}\p{Nd}\p{No}]+")
_LATIN = regex.compile(r"\p{Script=Latin}")
_SCRIPTS = {
    "Cyrillic": regex.compile(r"\p{Script=Cyrillic}"),
    "Greek": regex.compile(r"\p{Script=Greek}"),
    "Armenian": regex.compile(r"\p{Script=Armenian}"),
    "Cherokee": regex.compile(r"\p{Script=Cherokee}"),
}


#: Where compatibility letters live (letterlike symbols, Roman numerals, enclosed and
#: full-width letters, mathematical alphanumerics, squared units, modifier letters).
_COMPAT_RANGES = ((0x80, 0x3400), (0xFB00, 0xFB50), (0xFF00, 0xFFF0), (0x1D400, 0x1D800),
                  (0x1F100, 0x1F200))
def _compat_letter(ch: str) -> bool:
    """A non-ASCII character that NFKC folds to ASCII letters, not a ligature or an index."""
    decomposition = unicodedata.decomposition(ch)
    if not decomposition.startswith("<") or decomposition.startswith(("<super>", "<sub>")):
        return False
    folded = unicodedata.normalize("NFKC", ch)
    return (folded.isascii() and folded.isalpha()
            and "LIGATURE" not in unicodedata.name(ch, ""))


@cache
def _suspects() -> tuple[frozenset[str], re.Pattern[str], re.Pattern[str]]:
    """Compatibility letters; a class matching them or any look-alike; a class matching
    any Latin-script letter. Built once per process (~0.1 s), as plain `re` classes that
    scan prose several times faster than `regex` property classes."""
    compat = frozenset(chr(cp) for low, high in _COMPAT_RANGES for cp in range(low, high)
                       if _compat_letter(chr(cp)))
    suspect = _char_class([ord(ch) for ch in compat | set(LOOKALIKES)])
    latin = _char_class([*range(0x41, 0x5B), *range(0x61, 0x7B),
                         *(cp for cp in range(0x80, 0x20000) if _LATIN.match(chr(cp)))])
    return compat, suspect, latin


def _char_class(code_points: Collection[int]) -> re.Pattern[str]:
    """A fast `re` class: ranges, with BMP and astral characters in separate classes (`re`
    checks a BMP-only class with a bitmap, a mixed one range by range)."""
    bodies = []
    for low, high in ((0, 0x10000), (0x10000, 0x110000)):
        ranges: list[tuple[int, int]] = []
        for cp in sorted(cp for cp in set(code_points) if low <= cp < high):
            if ranges and ranges[-1][1] == cp - 1:
                ranges[-1] = (ranges[-1][0], cp)
            else:
                ranges.append((cp, cp))
        if ranges:
            bodies.append("[" + "".join(
                re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}"
                for a, b in ranges) + "]")
    return re.compile("|".join(bodies))


def warm() -> None:
    """Build the lookup tables now (e.g. in a stage's `start`), not on the first request."""
    _suspects()


@dataclass(frozen=True, slots=True)
class ConfusableWord:
    """Where a look-alike word is (code point offsets) and which scripts it mixes."""

    start: int
    end: int
    scripts: tuple[str, ...]
    code_points: str


@lru_cache(maxsize=8192)
def _classify(ch: str) -> str:
    """'ascii', 'latin', 'compat' (folds to ASCII letters), a script name, or 'other'."""
    if ch.isascii():
        return "ascii" if ch.isalpha() else "other"
    if ch in LOOKALIKES:
        return next(name for name, pattern in _SCRIPTS.items() if pattern.match(ch))
    if ch in _suspects()[0]:
        return "compat"
    if _LATIN.match(ch):
        return "latin"
    for name, pattern in _SCRIPTS.items():
        if pattern.match(ch):
            return name.lower()  # a letter of that script that does not look Latin
    return "other"


def _word_verdict(word: str, min_letters: int) -> tuple[tuple[str, ...], str] | None:
    kinds = [_classify(ch) for ch in word]
    latin = sum(k in ("ascii", "latin") for k in kinds)
    suspects = [ch for ch, k in zip(word, kinds, strict=True)
                if k == "compat" or k in _SCRIPTS]
    if not latin or not suspects:
        return None
    letters = sum(k != "other" for k in kinds)
    if letters < min_letters:
        return None
    if all(k == "compat" for k in kinds if k not in ("ascii", "latin", "other")):
        # Compatibility letters count only among plain ASCII letters ("Ⅰgnore").
        if not any(k == "ascii" for k in kinds):
            return None
        scripts: tuple[str, ...] = ("Latin", "compatibility")
    else:
        others = sorted({k if k in _SCRIPTS else k.capitalize() for k in kinds
                         if k not in ("ascii", "latin", "other", "compat")})
        scripts = ("Latin", *others)
    return scripts, format_code_points("".join(suspects))


def find_confusables(text: str, *, min_letters: int = 3,
                     limit: int = 16) -> tuple[ConfusableWord, ...]:
    """Words of `text` that mix Latin letters with look-alikes from another script.

    All-ASCII text returns at once, and so does text without both a Latin letter and a
    look-alike (two C-speed searches: Russian or French prose costs microseconds).
    `min_letters` keeps short formulas ("αx") out;
    at most `limit` words are returned.
    """
    if text.isascii():
        return ()
    _, suspect, any_latin = _suspects()
    if suspect.search(text) is None or any_latin.search(text) is None:
        return ()
    found: list[ConfusableWord] = []
    for match in _WORD.finditer(text):
        word = match.group(0)
        if word.isascii() or suspect.search(word) is None or any_latin.search(word) is None:
            continue
        verdict = _word_verdict(word, min_letters)
        if verdict is not None:
            scripts, code_points = verdict
            found.append(ConfusableWord(match.start(), match.end(), scripts, code_points))
            if len(found) >= limit:
                break
    return tuple(found)
