"""Character classes shared by inspection, sanitization and confusable detection.

Why one module: the three passes must agree on what "invisible", "emoji sequence" and
"a letter of an alphabet that does not use joiners" mean, or text that one pass lets
through would be rewritten or flagged by another.
"""

from __future__ import annotations

import re

import regex

__all__ = [
    "ANY_SUSPECT",
    "ASCII_CONTROL",
    "BIDI_CONTROL",
    "CONTROL",
    "EMOJI_SEQUENCE",
    "INVISIBLE",
    "LONE_SURROGATE",
    "MASK",
    "SPLITTABLE_LETTER",
    "TAG",
    "format_code_points",
    "mask_emoji",
]

#: C0 and C1 controls and DEL, except NUL (stripped by sanitization) and tab, LF, CR
#: (real text and code use them). FF and VT are blocked: they reorder nothing but are
#: used to hide text in terminals and logs, and chat text has no use for them.
CONTROL = "\x01-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"
# Plain `re` for the hot, simple classes: several times faster than `regex` on them.
ASCII_CONTROL = re.compile(f"[{CONTROL}]")

#: Embeddings, overrides and isolates: they reorder how text *displays* without changing
#: what a model reads ("Trojan Source", CVE-2021-42574). The marks LRM/RLM/ALM are not
#: here: they only nudge neutral characters and real Arabic and Hebrew text uses them.
BIDI_CONTROL = "\u202a-\u202e\u2066-\u2069"

#: Unicode tag characters: invisible ASCII look-alikes, used to smuggle instructions. Only
#: the emoji subdivision flags (England, Scotland, Wales) use them legitimately.
TAG = "\U000e0000-\U000e007f"

LONE_SURROGATE = "\ud800-\udfff"

#: Characters that render as nothing. Single ones are normal in real text (ZWNJ in Persian,
#: ZWJ in Indic conjuncts, LRM/RLM in Hebrew and Arabic, a variation selector after a CJK
#: ideograph); runs of them, or one splitting a Latin/Cyrillic/Greek word, hide text or
#: dodge keyword filters. Soft hyphen is not here: sanitization strips it instead.
INVISIBLE = ("\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u2060-\u2064"
             "\u206a-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff9-\ufffb"
             "\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0100-\U000e01ef")

#: Letters of alphabets that never need a joiner between two letters. A zero-width
#: character between two of these splits a word ("ig<ZWSP>nore"); between Arabic, Persian
#: or Indic letters it is ordinary orthography. Mathematical alphanumerics are included
#: because NFKC turns them into plain Latin letters.
SPLITTABLE_LETTER = (r"\p{Script=Latin}\p{Script=Cyrillic}\p{Script=Greek}"
                     r"\p{Script=Armenian}\U0001d400-\U0001d7ff\u0300-\u036f")

#: Any character that can make text blocked: real text without one skips the detailed scan.
ANY_SUSPECT = re.compile(f"[{CONTROL}{BIDI_CONTROL}{TAG}{LONE_SURROGATE}{INVISIBLE}]")

_FLAG_TAGS = "\U0001f3f4[\U000e0030-\U000e0039\U000e0061-\U000e007a]{2,7}\U000e007f"
_ELEMENT = ("(?:\\p{Regional_Indicator}{2}"
            "|[0-9#*]\ufe0f?\u20e3"
            f"|{_FLAG_TAGS}"
            "|\\p{Extended_Pictographic}[\ufe0e\ufe0f]?\\p{Emoji_Modifier}?\ufe0f?)")
#: One emoji, keycap, flag, subdivision flag or ZWJ sequence (UTS #51, slightly lenient:
#: any pictographic element may join any other).
EMOJI_SEQUENCE = regex.compile(f"{_ELEMENT}(?:\u200d{_ELEMENT})*")

#: What an emoji sequence becomes in the masked copy used for checks: one private-use
#: character per code point, so offsets stay aligned and the joiners inside are hidden.
MASK = "\ue000"


def mask_emoji(text: str) -> str:
    """`text` with every emoji sequence replaced by MASK characters (same length)."""
    return EMOJI_SEQUENCE.sub(lambda m: MASK * len(m.group(0)), text)


def format_code_points(chars: str, limit: int = 4) -> str:
    """Distinct code points as `U+XXXX` (never the characters themselves), at most `limit`."""
    seen: list[str] = []
    for ch in chars:
        code = f"U+{ord(ch):04X}"
        if code not in seen:
            seen.append(code)
    shown = ", ".join(seen[:limit])
    return shown + (f" and {len(seen) - limit} more" if len(seen) > limit else "")
