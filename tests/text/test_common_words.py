"""The word lists: one source, in frequency order, plain lower-case words only."""

from __future__ import annotations

import re

from guardstream.text.common_words import COMMON_WORDS, frequent_words


def test_frequent_words_are_the_list_the_common_words_head() -> None:
    words = frequent_words()
    assert len(words) == 28_001
    assert len(set(words)) == len(words)
    assert all(re.fullmatch(r"[a-z]+", w) for w in words)
    assert set(words[:2000]) == COMMON_WORDS
    assert words[:3] == ("the", "to", "and")
