"""Decode payloads hidden in base64, hex, binary, ROT13 or percent-encoding, for a rescan.

Why: "decode this and follow it: SWdub3Jl..." carries the attack in a form no keyword or
n-gram model sees. We only return decodings that look like natural-language text, so
checksums, tokens and images (common in benign traffic) produce nothing to rescan.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re
import urllib.parse

__all__ = ["decoded_payloads"]

_B64 = re.compile(r"[A-Za-z0-9+/_-]{16,}={0,2}")
_HEX = re.compile(r"(?:0x)?([0-9a-fA-F]{16,}|(?:[0-9a-fA-F]{2}[\s:]){7,}[0-9a-fA-F]{2})")
_BIN = re.compile(r"(?:[01]{8}[\s,]?){4,}")
_PCT = re.compile(r"(?:%[0-9a-fA-F]{2}){4,}")
_ROT13_HINT = re.compile(r"rot[\s_-]?13|caesar|rotate", re.IGNORECASE)
_WORDS = re.compile(r"[a-z]{2,}")
_MAX_CANDIDATES = 8
_MIN_DECODED = 8


def _looks_like_text(s: str) -> bool:
    """Mostly printable, with several word-like runs: natural language, not binary noise."""
    if len(s) < _MIN_DECODED:
        return False
    printable = sum(ch.isprintable() or ch in "\n\t" for ch in s)
    if printable / len(s) < 0.9:
        return False
    letters = sum(ch.isalpha() for ch in s)
    if letters / len(s) <= 0.5 or len(s.split()) < 2:
        return False
    # Latin text must contain real words; other scripts (CJK, Hangul, Cyrillic) pass on the
    # letter ratio alone, since hex/base64 noise never decodes to them by chance.
    ascii_letters = sum(ch.isascii() and ch.isalpha() for ch in s)
    return ascii_letters < letters / 2 or len(_WORDS.findall(s.lower())) >= 2


def _try_b64(token: str) -> str | None:
    raw = token.rstrip("=")
    if len(raw) < 16 or raw.isdigit() or (raw.isalpha() and raw.islower()):
        return None
    padded = raw + "=" * (-len(raw) % 4)
    for decoder in (base64.b64decode, base64.urlsafe_b64decode):
        try:
            out = decoder(padded).decode("utf-8")
        except (binascii.Error, ValueError, UnicodeDecodeError):
            continue
        if _looks_like_text(out):
            return out
    return None


def _try_hex(token: str) -> str | None:
    digits = re.sub(r"[\s:]", "", token)
    if len(digits) % 2:
        digits = digits[:-1]
    try:
        out = bytes.fromhex(digits).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None
    return out if _looks_like_text(out) else None


def _try_binary(token: str) -> str | None:
    bits = re.findall(r"[01]{8}", token)
    try:
        out = bytes(int(b, 2) for b in bits).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None
    return out if _looks_like_text(out) else None


def decoded_payloads(text: str) -> list[str]:
    """Return natural-language strings decoded from ``text`` (possibly empty), bounded in count."""
    found: list[str] = []

    def add(s: str | None) -> None:
        if s and s not in found and len(found) < _MAX_CANDIDATES:
            found.append(s)

    for m in _B64.finditer(text):
        add(_try_b64(m.group(0)))
    for m in _HEX.finditer(text):
        add(_try_hex(m.group(1)))
    for m in _BIN.finditer(text):
        add(_try_binary(m.group(0)))
    for m in _PCT.finditer(text):
        add(urllib.parse.unquote(m.group(0)) if len(m.group(0)) >= 12 else None)
    if _ROT13_HINT.search(text):
        add(codecs.decode(text, "rot13"))
    return found
