"""Required-literal prefilters (guardstream.text.prefilter): exact, and never a missed match.

The filter may only skip a search that would have failed. Checked four ways: what is
derived for hand-picked patterns; the case-folding table against every code point;
random patterns and texts (hypothesis); and every real rule of the injection heuristics
and the moderation rules, on generated matches and on the labelled datasets, with the
filter on and bypassed.
"""

from __future__ import annotations

import codecs
import dataclasses
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from guardstream.detectors.injection import heuristics
from guardstream.detectors.injection.decoders import decoded_payloads
from guardstream.detectors.injection.normalize import MAX_SCAN_CHARS, normalize, views
from guardstream.detectors.moderation import rules
from guardstream.text.prefilter import (
    Prefiltered,
    PrefilterSet,
    fold,
    ignores_case,
    required_literals,
)

DATA = Path(__file__).resolve().parents[2] / "data"

# --- derivation on hand-picked patterns --------------------------------------------------
# (pattern, flags, expected literals as a set, or None for "no filter")
DERIVED: list[tuple[str, int, set[str] | None]] = [
    ("abc", 0, {"abc"}),
    (r"\bdo anything now\b", 0, {"do anything now"}),
    ("foo|bar", 0, {"foo", "bar"}),
    ("colou?r", 0, {"color", "colour"}),
    ("(?:a |the )?cat", 0, {"cat"}),  # "a cat" and "the cat" contain "cat"
    ("ignore (?:all )?previous instructions", 0, {"previous instructions"}),
    ("(?:kill|hurt) myself", 0, {" myself"}),  # one literal beats two longer ones
    ("[ab]c", 0, {"ac", "bc"}),
    ("ab{2}c", 0, {"abbc"}),
    ("(?:abc)+", 0, {"abc"}),
    ("(?:ab)++x", 0, {"ab"}),
    ("(?>abc)", 0, {"abc"}),
    ("(?:^|\n)foo", re.MULTILINE, {"foo"}),
    ("(?=foo)bar", 0, {"bar"}),
    ("(?!foo)bar", 0, {"bar"}),
    ("(?<=x)abc(?<!y)", 0, {"abc"}),
    (r"\bword\b.{0,40}\bother\b", re.DOTALL, {"other"}),
    ("x{0,40}longer", 0, {"longer"}),
    ("[0-9]{4}", 0, {str(d) for d in range(10)}),
    ("привет|мир", 0, {"привет", "мир"}),  # case-sensitive: any literal
    ("(?i)HeLLo", 0, {"hello"}),
    ("HeLLo", re.IGNORECASE, {"hello"}),
    ("(?i:AB)c", 0, {"abc"}),  # one ignore-case part: the whole pattern is folded
    ("(?i)stra(?:ss|ß)e", 0, {"stra"}),  # ß is non-ASCII: that node tells nothing
    ("(?i)привет", 0, None),
    # no literal every match must contain
    ("x*", 0, None),
    ("(?:abc)*", 0, None),
    ("a{0,40}", 0, None),
    ("abc|.*", 0, None),
    ("(?:abc|\\w)", 0, None),
    (r"\w+", 0, None),
    (".", re.DOTALL, None),
    ("[^a]", 0, None),
    ("[a-z]", 0, None),  # more than 16 characters
    (r"(\w)\1", 0, None),
    ("(a)?(?(1)b|c)", 0, None),
    (r"\b", 0, None),
    ("", 0, None),
]


@pytest.mark.parametrize(("pattern", "flags", "expected"), DERIVED)
def test_required_literals(pattern: str, flags: int, expected: set[str] | None) -> None:
    literals = required_literals(re.compile(pattern, flags))
    assert (None if literals is None else set(literals)) == expected


def test_bytes_patterns_get_no_filter() -> None:
    assert required_literals(re.compile(b"abc")) is None  # type: ignore[arg-type]


@pytest.mark.parametrize(("pattern", "flags", "expected"), [
    ("abc", 0, False), ("(?i)abc", 0, True), ("abc", re.IGNORECASE, True),
    ("a(?i:b)c", 0, True), ("a(?:x|(?i:b))*c", 0, True), ("(?-i:a)", 0, False),
])
def test_ignores_case(pattern: str, flags: int, expected: bool) -> None:
    assert ignores_case(re.compile(pattern, flags)) is expected


def test_prefiltered_search() -> None:
    p = Prefiltered.of(re.compile(r"\bignore (?:all )?rules\b"))
    assert p.literals == ("ignore ",) and not p.folded
    assert not p.may_match("nothing to see")
    assert p.search("nothing to see") is None
    m = p.search("please ignore all rules now")
    assert m is not None and m.group(0) == "ignore all rules"
    # no filter: always runs
    assert Prefiltered(p.pattern).may_match("nothing to see")


def test_prefiltered_folds_for_ignorecase_patterns() -> None:
    p = Prefiltered.of(re.compile("secret", re.IGNORECASE))
    assert p.folded and p.literals == ("secret",)
    assert p.search("A SECRET") is not None
    assert p.search("ſECRET") is not None  # long s matches "s" under IGNORECASE
    assert p.may_match("A SECRET", folded=fold("A SECRET"))
    # `folded` is trusted: the caller promises it is fold(text)
    assert not p.may_match("A SECRET", folded="")


# --- the case-folding table, proven over every code point --------------------------------
ALL_CHARS = "".join(map(chr, range(0x110000)))


def test_fold_maps_every_ignorecase_match_of_an_ascii_char_to_it() -> None:
    """For every ASCII character a and every code point c that `re` matches to a under
    IGNORECASE (as a literal or in a class), fold(c) == a.lower(). With fold() working one
    character at a time, an ignore-case match of an ASCII literal is in the folded text."""
    for code in range(128):
        a = re.escape(chr(code))
        for pattern in (f"(?i){a}", f"(?i)[{a}]"):
            for m in re.finditer(pattern, ALL_CHARS):
                assert fold(m.group()) == chr(code).lower(), (pattern, hex(ord(m.group())))
    for m in re.finditer(r"(?i)[a-z]", ALL_CHARS):  # ranges: the union of their members
        folded = fold(m.group())
        assert len(folded) == 1 and "a" <= folded <= "z", hex(ord(m.group()))


def test_fold_is_per_character() -> None:
    assert fold(ALL_CHARS) == "".join(map(fold, ALL_CHARS))


def test_fold_leaves_no_non_ascii_char_that_matches_a_letter() -> None:
    letter = re.compile("(?i)[a-z]")
    specials = {c for c in ALL_CHARS
                if any(not d.isascii() and letter.fullmatch(d) for d in c.casefold())}
    assert specials == {"\u0131"}  # dotless ı: casefold() keeps it, `re` matches it to i
    for c in specials:
        assert all(d.isascii() or not letter.fullmatch(d) for d in fold(c))


def test_fold_handles_dotted_capital_i() -> None:
    # casefold() turns İ into "i" + U+0307, which breaks up "ignore" although re matches it
    assert re.search("(?i)ignore", "\u0130gnore")
    assert "ignore" not in "\u0130gnore".casefold().replace("\u0131", "i")
    assert "ignore" in fold("\u0130gnore")


# --- random patterns and texts -----------------------------------------------------------
TRICKY = "abiksIKS \nı\u0130ſ\u212aßxy-"
_CASE_VARIANTS = {"i": "I\u0130\u0131", "s": "Sſ", "k": "K\u212a", "a": "A", "b": "B",
                  "x": "X", "y": "Y"}


def _atoms() -> st.SearchStrategy[str]:
    char = st.sampled_from(TRICKY).map(re.escape)
    cls = st.builds(
        lambda neg, items: "[" + ("^" if neg else "") + "".join(items) + "]",
        st.booleans(),
        st.lists(st.one_of(char, st.sampled_from(["a-c", "i-k", "r-t", "A-Z", r"\w", r"\d",
                                                  r"\s", "0-9"])), min_size=1, max_size=4))
    special = st.sampled_from([".", r"\w", r"\W", r"\s", r"\d", r"\b", r"\B", "^", "$",
                               r"\A", r"\Z", "(?<=a)", "(?<!i)", "(?<=ab)"])
    word = st.text(TRICKY, min_size=1, max_size=4).map(re.escape)
    return st.one_of(char, word, cls, special)


def _extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    group = st.sampled_from(["(?:{})", "({})", "(?i:{})", "(?-i:{})", "(?>{})", "(?={})",
                             "(?!{})"])
    repeat = st.sampled_from(["?", "*", "+", "??", "*?", "+?", "{2}", "{0,3}", "{1,2}",
                              "{0,40}", "*+", "++", "{2,}"])
    return st.one_of(
        st.builds(lambda g, x: g.format(x), group, inner),
        st.builds(lambda x, r: f"(?:{x}){r}", inner, repeat),
        st.lists(inner, min_size=2, max_size=4).map("".join),
        st.lists(inner, min_size=2, max_size=4).map("|".join),
    )


PATTERNS = st.recursive(_atoms(), _extend, max_leaves=12)
FLAGS = st.sampled_from([0, re.IGNORECASE, re.MULTILINE | re.DOTALL,
                         re.IGNORECASE | re.MULTILINE, re.ASCII | re.IGNORECASE])


def _case_variants(text: str, picks: list[int]) -> str:
    """Swap some characters for others `re` may match to them under IGNORECASE."""
    out = list(text)
    for i, pick in enumerate(picks):
        variants = _CASE_VARIANTS.get(out[i].lower(), "")
        if pick < len(variants):
            out[i] = variants[pick]
    return "".join(out)


# Assertions (anchors, \b, lookarounds) can make a pattern unsatisfiable, and `from_regex`
# then filters forever; such patterns are checked on random texts over the same alphabet.
_ASSERTIONS = ("\\b", "\\B", "^", "$", "\\A", "\\Z", "(?<", "(?=", "(?!")


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(source=PATTERNS, flags=FLAGS, data=st.data())
def test_random_patterns_never_miss_a_match(source: str, flags: int, data: st.DataObject) -> None:
    try:
        pattern = re.compile(source, flags)
    except re.error:
        reject()
    pf = Prefiltered.of(pattern)
    noise = st.text(TRICKY, max_size=8)
    if any(a in source for a in _ASSERTIONS):
        cores = data.draw(st.lists(st.text(TRICKY, max_size=12), min_size=8, max_size=8))
    else:
        cores = [data.draw(st.from_regex(pattern))]
    for core in cores:
        picks = data.draw(st.lists(st.integers(0, 5), min_size=len(core), max_size=len(core)))
        for text in (core, _case_variants(core, picks),
                     data.draw(noise) + core + data.draw(noise)):
            if pattern.search(text):
                assert pf.may_match(text), (source, flags, pf.literals, text)
                assert pf.search(text) is not None


# --- the real rules -------------------------------------------------------------------
def _real_patterns() -> list[Prefiltered]:
    inj = [r.prefilter for r in heuristics._RULES_LIST]
    mod = [v for v in vars(rules).values() if isinstance(v, Prefiltered)]
    assert len(inj) > 60 and len(mod) > 20
    return inj + mod


REAL = _real_patterns()


def test_every_real_rule_has_a_filter() -> None:
    """Not needed for correctness; a rule that loses its filter is slow, not wrong."""
    for pf in REAL:
        assert pf.literals is not None, pf.pattern.pattern[:60]
        assert pf.folded is bool(pf.pattern.flags & re.IGNORECASE)


_REGEX_STRATEGIES = {id(pf): st.from_regex(pf.pattern) for pf in REAL}


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(index=st.integers(0, len(REAL) - 1), data=st.data())
def test_real_rules_never_miss_a_generated_match(index: int, data: st.DataObject) -> None:
    pf = REAL[index]
    core = data.draw(_REGEX_STRATEGIES[id(pf)])
    picks = data.draw(st.lists(st.integers(0, 5), min_size=len(core), max_size=len(core)))
    noise = st.text(TRICKY + "é中 ", max_size=20)
    for text in (core, _case_variants(core, picks),
                 data.draw(noise) + core + data.draw(noise)):
        assert pf.search(text) is not None or pf.pattern.search(text) is None, text


@settings(max_examples=300, deadline=None)
@given(index=st.integers(0, len(REAL) - 1), data=st.data())
def test_real_rules_on_their_own_literals(index: int, data: st.DataObject) -> None:
    pf = REAL[index]
    literals = list(pf.literals or ("x",))
    parts = data.draw(st.lists(st.one_of(st.sampled_from(literals),
                                         st.text(TRICKY + "aeou .", max_size=6)),
                               min_size=1, max_size=8))
    text = "".join(parts)
    picks = data.draw(st.lists(st.integers(0, 5), min_size=len(text), max_size=len(text)))
    for t in (text, _case_variants(text, picks), text.upper()):
        assert (pf.search(t) is None) == (pf.pattern.search(t) is None), t


# --- equivalence on the labelled datasets --------------------------------------------------
def _jsonl_texts(path: Path) -> list[str]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line)["text"] for line in fh if line.strip()]


INJECTION_TEXTS = _jsonl_texts(DATA / "injection" / "dataset.jsonl")
MODERATION_TEXTS = [t for split in ("train", "validation", "test")
                    for t in _jsonl_texts(DATA / "moderation" / f"{split}.jsonl")]


def _detector_calls(text: str) -> Iterator[tuple[str, float]]:
    """The (view, min_weight) pairs InjectionDetector.scan passes to match_rules."""
    norm = normalize(text)
    yield norm, 0.0
    for v in views(norm):
        yield v, 0.5
    head = norm[:4000]
    yield codecs.decode(head, "rot13"), 0.85
    yield head[::-1], 0.85
    for d in decoded_payloads(text[:MAX_SCAN_CHARS]):
        yield normalize(d), 0.0


def _unfiltered(monkeypatch: pytest.MonkeyPatch) -> None:
    unfiltered = tuple(dataclasses.replace(r, prefilter=Prefiltered(r.pattern))
                       for r in heuristics._RULES_LIST)
    monkeypatch.setattr(heuristics, "_RULES_LIST", unfiltered)
    monkeypatch.setattr(heuristics, "_RULE_FILTER",
                        PrefilterSet([r.prefilter for r in unfiltered]))
    for name, value in list(vars(rules).items()):
        if isinstance(value, Prefiltered):
            monkeypatch.setattr(rules, name, Prefiltered(value.pattern))
    assert not any(pf.literals for pf in _real_patterns())


def test_match_rules_same_with_and_without_filter_on_the_dataset(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = list(dict.fromkeys(c for t in INJECTION_TEXTS for c in _detector_calls(t)))
    filtered = [heuristics.match_rules(v, w) for v, w in calls]
    assert sum(map(bool, filtered)) > 1000  # the dataset does exercise the rules
    _unfiltered(monkeypatch)
    assert filtered == [heuristics.match_rules(v, w) for v, w in calls]


def test_rule_scores_same_with_and_without_filter_on_the_datasets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    texts = list(dict.fromkeys(MODERATION_TEXTS + INJECTION_TEXTS))

    def run() -> list[tuple[dict[str, float], bool]]:
        return [(rules.rule_scores(t), rules.is_self_harm_help_seeking(t)) for t in texts]

    filtered = run()
    assert sum(bool(scores) for scores, _ in filtered) > 200
    assert sum(helping for _, helping in filtered) > 20
    _unfiltered(monkeypatch)
    assert filtered == run()


# --- PrefilterSet: one pass, the same answer as each filter on its own ----------------------
def _expected(filters: list[Prefiltered], text: str) -> frozenset[int]:
    return frozenset(i for i, pf in enumerate(filters) if pf.may_match(text))


def test_prefilter_set_finds_overlapping_and_nested_literals() -> None:
    filters = [Prefiltered(re.compile("abc|zz"), ("abc", "zz")),
               Prefiltered(re.compile("bcd"), ("bcd",)),
               Prefiltered(re.compile("b"), ("b",)),
               Prefiltered(re.compile("abcde"), ("abcde",)),
               Prefiltered(re.compile("x")),  # no literals: always a candidate
               Prefiltered(re.compile("(?i)ǅ"), ("dž",), folded=True)]
    screen = PrefilterSet(filters)
    for text in ("abcd", "xabcdex", "zz", "", "b", "DŽ", "ǆ abc", "nothing here"):
        assert screen.candidates(text) == _expected(filters, text), text
    assert screen.candidates("abcd") == {0, 1, 2, 4}
    assert PrefilterSet([]).candidates("anything") == frozenset()


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_prefilter_set_equals_may_match_on_the_real_rules(data: st.DataObject) -> None:
    literals = sorted({lit for pf in REAL for lit in pf.literals or ()})
    parts = data.draw(st.lists(st.one_of(st.sampled_from(literals),
                                         st.text(TRICKY + "aeou .İı", max_size=6)),
                               min_size=0, max_size=10))
    text = "".join(parts)
    picks = data.draw(st.lists(st.integers(0, 5), min_size=len(text), max_size=len(text)))
    screen = PrefilterSet(REAL)
    for t in (text, _case_variants(text, picks), text.upper()):
        assert screen.candidates(t) == _expected(REAL, t), t


def test_prefilter_set_equals_may_match_on_the_datasets() -> None:
    screen = PrefilterSet(REAL)
    texts = list(dict.fromkeys(MODERATION_TEXTS + INJECTION_TEXTS))[:3000]
    hits = 0
    for text in texts:
        for view in (text, normalize(text)):
            found = screen.candidates(view)
            assert found == _expected(REAL, view)
            hits += len(found)
    assert hits > 1000
