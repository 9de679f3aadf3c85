"""`sanitize`: fold compatibility forms and padding, keep real languages, idempotent."""

from __future__ import annotations

import time
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from guardstream.text import inspect_text, sanitize

FOLDS = [
    # (id, input, expected output, change key)
    ("full-width", "ｉｇｎｏｒｅ ａｌｌ", "ignore all", "nfkc"),
    ("math-bold", "𝐢𝐠𝐧𝐨𝐫𝐞", "ignore", "nfkc"),
    ("math-script-and-fraktur", "𝓈𝓎𝓈𝓉ℯ𝓂 𝔭𝔯𝔬𝔪𝔭𝔱", "system prompt", "nfkc"),
    ("roman-numeral", "Chapter Ⅻ", "Chapter XII", "nfkc"),
    ("ligature", "ﬁnance ﬂow", "finance flow", "nfkc"),
    ("circled", "ⓐⓑⓒ", "abc", "nfkc"),
    ("nbsp-and-ideographic-space", "a\u00a0b\u3000c", "a b c", "nfkc"),
    ("half-width-katakana", "ｶﾀｶﾅ", "カタカナ", "nfkc"),
    ("arabic-presentation-forms", "ﻣﺮﺣﺒﺎ", "مرحبا", "nfkc"),
    ("decomposed-accent", "cafe\u0301", "café", "nfkc"),
    ("nul", "ab\x00c\x00", "abc", "nul"),
    ("soft-hyphen", "ig\u00adnore", "ignore", "soft_hyphen"),
]

KEPT = [
    ("ascii", "Hello, world!"),
    ("code-tabs-crlf", "def f(x):\r\n\tif x:\r\n\t\treturn 1\r\n"),
    ("superscripts-and-fractions", "E=mc² and x₁ + x₂, ½ cup, 10⁻³"),
    ("math-symbols", "∀x∈ℕ ∑ ∫ √ ≤ ≥ ≠ ∞ → ⊂"),
    ("emoji-sequences", "👨\u200d👩\u200d👧 🏳️\u200d🌈 ℹ️ 🇯🇵 1️⃣ 👍🏽"),
    ("persian-zwnj", "می\u200cخواهم"),
    ("hindi-zwj", "क्\u200dष"),
    ("arabic-rlm", "مرحبا\u200f بالعالم"),
    ("hebrew-lrm", "שלום \u200eJohn\u200e"),
    ("cjk", "日本語のテキスト、中文、한국어"),
    ("composed-accents", "Ça va, naïve, Straße, Ångström"),
    ("indentation-within-limit", "x\n" + " " * 64 + "y"),
    ("blank-lines-within-limit", "a\n\n\n\nb"),
]


@pytest.mark.parametrize(("text", "expected", "key"),
                         [pytest.param(t, e, k, id=i) for i, t, e, k in FOLDS])
def test_folds(text: str, expected: str, key: str) -> None:
    result = sanitize(text)
    assert result.text == expected
    assert result.changes.get(key, 0) >= 1
    assert all(isinstance(v, int) for v in result.changes.values())


@pytest.mark.parametrize("text", [pytest.param(t, id=i) for i, t in KEPT])
def test_real_text_is_kept(text: str) -> None:
    result = sanitize(text)
    assert result.text == text
    assert not result.changed


@pytest.mark.parametrize(("text", "limit", "expected"), [
    ("a" + " " * 100 + "b", 64, "a" + " " * 64 + "b"),
    ("a" + "\t" * 10 + "b", 4, "a" + "\t" * 4 + "b"),
    ("a" + " " * 5 + "b", 4, "a" + " " * 4 + "b"),
    ("a" + " " * 4 + "b", 4, "a" + " " * 4 + "b"),
])
def test_whitespace_runs_are_cut(text: str, limit: int, expected: str) -> None:
    result = sanitize(text, max_whitespace_run=limit)
    assert result.text == expected
    assert result.changes.get("whitespace", 0) == len(text) - len(expected)


@pytest.mark.parametrize(("text", "limit", "expected"), [
    ("a" + "\n" * 50 + "b", 4, "a\n\n\n\nb"),
    ("a" + "\r\n" * 9 + "b", 2, "a\r\n\r\nb"),
    ("a" + "\n  \n \n\t\n\n\n" + "b", 3, "a\n\n\nb"),
    ("a\n\n\nb", 3, "a\n\n\nb"),
    ("a" + "\u2028" * 9 + "b", 1, "a\u2028b"),
])
def test_newline_runs_are_cut_keeping_their_style(text: str, limit: int,
                                                  expected: str) -> None:
    result = sanitize(text, max_newline_run=limit)
    assert result.text == expected
    assert result.changes.get("newlines", 0) == len(text) - len(expected)


def test_nfkc_of_sanitized_text_is_stable_outside_kept_characters() -> None:
    text = sanitize("ｈｅｌｌｏ 𝐰𝐨𝐫𝐥𝐝 ﬁ Ⅳ").text
    assert unicodedata.is_normalized("NFKC", text)


def test_padding_is_linear_time() -> None:
    # A quadratic scan would take minutes on these; linear ones take milliseconds.
    nasty = ("\n" + " " * 100_000 + "x") * 3 + " \t" * 100_000
    started = time.perf_counter()
    sanitize(nasty)
    assert time.perf_counter() - started < 5.0


_ANY_TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=300)
_SPICY = st.lists(st.sampled_from(
    ["\n", "\r", "\r\n", " ", "\t", "\x00", "\u00ad", "ｉ", "𝐠", "²", "½", "ℹ", "\ufe0f",
     "\u200d", "👨", "🏳", "🌈", "#", "\u20e3", "e", "\u0301", "ﬁ", "\u2028", "\u3000",
     "\U0001f3fb", "™", "ﾀ", "ﾞ", "가", "\u1100", "\u1161", "ℝ", "𝕚", "\u0303", "ℕ", "㎏",
     "x", "ᵢ", "ⁿ", "ᵃ"]),
    max_size=200).map("".join)


@settings(max_examples=400, deadline=None)
@given(st.one_of(_ANY_TEXT, _SPICY), st.integers(2, 8), st.integers(1, 4))
def test_sanitize_is_idempotent(text: str, spaces: int, newlines: int) -> None:
    once = sanitize(text, max_whitespace_run=spaces, max_newline_run=newlines)
    twice = sanitize(once.text, max_whitespace_run=spaces, max_newline_run=newlines)
    assert twice.text == once.text
    assert not twice.changed
    assert "\x00" not in once.text


@settings(max_examples=200, deadline=None)
@given(_SPICY)
def test_sanitizing_never_creates_blocked_text_from_clean_text(text: str) -> None:
    if inspect_text(text) is None:
        after = sanitize(text).text
        issue = inspect_text(after)
        # NFKC can only bring letters next to a zero-width character (the stage re-checks).
        assert issue is None or issue.reason == "invisible_text"


@pytest.mark.parametrize(("text", "expected"), [
    ("x∈ℝ, ℕ ⊂ ℤ", "x∈ℝ, ℕ ⊂ ℤ"),          # number sets stay
    ("𝕚𝕘𝕟𝕠𝕣𝕖 ℝules", "ignore Rules"),      # double-struck words fold
    ("∑ αᵢ xⁿ aᵢⱼ", "∑ αᵢ xⁿ aᵢⱼ"),          # indexes stay
    ("ⁱᵍⁿᵒʳᵉ ᵃˡˡ", "ignore all"),             # superscript words fold
])
def test_math_letters_stay_and_styled_words_fold(text: str, expected: str) -> None:
    assert sanitize(text).text == expected


@pytest.mark.parametrize(("text", "limit"), [("a\r\nb", 1), ("a\r\n\r\nb", 2), ("\r\n", 1)])
def test_crlf_is_one_line_break(text: str, limit: int) -> None:
    result = sanitize(text, max_newline_run=limit)
    assert result.text == text and not result.changed
