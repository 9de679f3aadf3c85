"""Required-literal prefilters: skip a regular expression that cannot match a text.

Why: the rule detectors run dozens of regexes over every view of every message, and on
ordinary text almost none of them match, so most of their time goes into failing searches.
Like RE2's FilteredRE2 or Hyperscan's literal prefilters, each pattern gets, once, a set of
literal strings of which every match must contain at least one; when the text contains
none of them (plain ``in`` checks, fast C code), the search is skipped.

Soundness: the literals are derived bottom-up from the pattern's parse tree
(``re._parser``). A node may know its *exact* set (every string it can match; kept small)
and a *required* set (every match contains one of these). A character or a small class is
exact; a sequence concatenates neighbouring exact sets and otherwise keeps the best
required set of its parts; an alternation requires something of every branch; a repeat
with a minimum of zero requires nothing; zero-width assertions match only "". A set holding
"" never filters. Anything this module does not know (``.``, ``\\w``, negated classes,
backreferences, a future opcode) tells nothing, and a pattern with no required set always
runs. So a skipped search is a search that would have failed: results never change.

Case: a pattern that ignores case anywhere is checked against ``fold(text)``, with
lower-case ASCII literals only. ``fold`` maps every character that ``re`` matches to an
ASCII character under IGNORECASE to that character in lower case, one character at a time,
so a case-insensitive match of an ASCII literal always shows up in the folded text
(tests/test_prefilter.py checks this for every code point). Case-sensitive patterns are
checked against the text as it is, and may have any literal.
"""

from __future__ import annotations

import re
import re._constants as _c
import re._parser as _parser
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import ahocorasick

__all__ = ["PrefilterSet", "Prefiltered", "fold", "ignores_case", "required_literals"]

#: Most strings an exact set may hold (cross products grow fast).
_MAX_EXACT = 64
#: Most characters of a class, and most copies of a fixed repeat, expanded into exact sets.
_MAX_EXPAND = 16
#: Literals this long are rare enough in ordinary text: past this length fewer literals
#: (each one more substring search) beat longer ones. Measured on the bench mix and the
#: labelled datasets; 4 to 6 are all close.
_LONG_ENOUGH = 5

_Node = tuple[Any, Any]  # (opcode, argument) as re._parser builds them
_REPEATS = (_c.MAX_REPEAT, _c.MIN_REPEAT, _c.POSSESSIVE_REPEAT)
_ZERO_WIDTH = (_c.AT, _c.ASSERT, _c.ASSERT_NOT)


def fold(text: str) -> str:
    """The view in which a case-insensitive pattern's literals are looked up.

    Under IGNORECASE, ``re`` also matches U+0130 (İ) and U+0131 (ı) to "i": casefold()
    keeps "ı" and turns "İ" into "i" + U+0307, so both are mapped first. U+017F (ſ) and
    U+212A (Kelvin sign), which match "s" and "k", casefold to them already.
    """
    return text.replace("\u0130", "i").replace("\u0131", "i").casefold()


@dataclass(frozen=True, slots=True)
class _Info:
    """What is known of a node: the best set its matches contain one of (never holding ""),
    and, when small enough, the exact set of strings it can match."""

    required: frozenset[str] | None = None
    exact: frozenset[str] | None = None


def _exact(strings: frozenset[str]) -> _Info:
    return _Info(None if "" in strings else _simplify(strings), strings)


_NOTHING = _Info()
_EMPTY = _exact(frozenset({""}))


def _product(a: frozenset[str] | None, b: frozenset[str]) -> frozenset[str] | None:
    if a is None or len(a) * len(b) > _MAX_EXACT:
        return None
    return frozenset(x + y for x in a for y in b)


def _simplify(strings: frozenset[str]) -> frozenset[str]:
    """Drop every string that contains another one: the shorter one is found anyway."""
    if len(strings) < 2:
        return strings
    kept: list[str] = []
    for s in sorted(strings, key=len):
        if not any(k in s for k in kept):
            kept.append(s)
    return frozenset(kept)


def _best(candidates: Iterable[frozenset[str]]) -> frozenset[str] | None:
    """The cheapest selective requirement: the longest shortest literal (up to
    ``_LONG_ENOUGH``), then the fewest literals, then the longest shortest literal."""
    best: frozenset[str] | None = None
    best_key = (0, 0, 0)
    for candidate in candidates:
        s = _simplify(candidate)
        shortest = min(map(len, s))
        key = (min(shortest, _LONG_ENOUGH), -len(s), shortest)
        if best is None or key > best_key:
            best, best_key = s, key
    return best


class _Deriver:
    """Computes the ``_Info`` of parse-tree nodes; ``folded``: literals for ``fold(text)``."""

    def __init__(self, folded: bool) -> None:
        self.folded = folded

    def char(self, code: int) -> str | None:
        c = chr(code)
        if not self.folded:
            return c
        # Non-ASCII characters have case relations that fold() is not proven for.
        return c.lower() if c.isascii() else None

    def sequence(self, nodes: Iterable[_Node]) -> _Info:
        infos = [self.node(op, av) for op, av in nodes]
        candidates = [i.required for i in infos if i.required is not None]
        # Runs of neighbouring exact nodes; single strings are joined up front.
        runs: list[list[frozenset[str]]] = [[]]
        for info in infos:
            if info.exact is None:
                runs.append([])
            elif len(info.exact) == 1 and runs[-1] and len(runs[-1][-1]) == 1:
                (left,), (right,) = runs[-1][-1], info.exact
                runs[-1][-1] = frozenset({left + right})
            else:
                runs[-1].append(info.exact)
        # Every window of a run is a candidate, so "(kill|hurt) myself" can require the one
        # literal " myself" rather than "kill myself" or "hurt myself".
        for run in runs:
            for start in range(len(run)):
                window: frozenset[str] | None = frozenset({""})
                for part in run[start:]:
                    window = _product(window, part)
                    if window is None:
                        break
                    if "" not in window:
                        candidates.append(window)
        exact: frozenset[str] | None = None
        if len(runs) == 1:
            exact = frozenset({""})
            for part in runs[0]:
                exact = _product(exact, part)
        return _Info(_best(candidates), exact)

    def node(self, op: Any, av: Any) -> _Info:
        if op is _c.LITERAL:
            c = self.char(av)
            return _NOTHING if c is None else _exact(frozenset({c}))
        if op is _c.IN:
            return self.char_class(av)
        if op is _c.SUBPATTERN:  # inline flags are covered by choosing `folded` globally
            return self.sequence(av[3])
        if op is _c.ATOMIC_GROUP:
            return self.sequence(av)
        if op is _c.BRANCH:
            return self.branch([self.sequence(alt) for alt in av[1]])
        if op in _REPEATS:
            return self.repeat(av[0], av[1], self.sequence(av[2]))
        if op in _ZERO_WIDTH:
            return _EMPTY
        return _NOTHING  # ANY, NOT_LITERAL, CATEGORY, GROUPREF, ...: no literal known

    def char_class(self, members: list[_Node]) -> _Info:
        chars: set[str] = set()
        for op, av in members:
            if op is _c.LITERAL:
                codes = range(av, av + 1)
            elif op is _c.RANGE:
                codes = range(av[0], av[1] + 1)
            else:  # NEGATE, CATEGORY
                return _NOTHING
            if len(chars) + len(codes) > _MAX_EXPAND:
                return _NOTHING
            for code in codes:
                c = self.char(code)
                if c is None:
                    return _NOTHING
                chars.add(c)
        return _exact(frozenset(chars))

    @staticmethod
    def branch(alternatives: list[_Info]) -> _Info:
        candidates: list[frozenset[str]] = []
        if all(alt.required is not None for alt in alternatives):
            candidates.append(frozenset().union(*(alt.required or () for alt in alternatives)))
        exact: frozenset[str] | None = None
        if all(alt.exact is not None for alt in alternatives):
            exact = frozenset().union(*(alt.exact or () for alt in alternatives))
            if len(exact) > _MAX_EXACT:
                exact = None
            elif "" not in exact:
                candidates.append(exact)
        return _Info(_best(candidates), exact)

    @staticmethod
    def repeat(low: int, high: int, body: _Info) -> _Info:
        if high == 0 or body.exact == _EMPTY.exact:
            return _EMPTY
        if body.exact is not None and low == high <= _MAX_EXPAND:
            exact: frozenset[str] | None = frozenset({""})
            for _ in range(low):
                exact = _product(exact, body.exact)
            if exact is not None:
                return _exact(exact)
        if low == 0:
            if high == 1 and body.exact is not None:
                return _Info(exact=body.exact | {""})
            return _NOTHING
        return _Info(body.required)


def _walk(nodes: Iterable[_Node]) -> Iterator[_Node]:
    """Every node of a parse tree, nested ones included."""
    for op, av in nodes:
        yield op, av
        if op is _c.BRANCH:
            for alt in av[1]:
                yield from _walk(alt)
        elif op is _c.SUBPATTERN:
            yield from _walk(av[3])
        elif op in _REPEATS:
            yield from _walk(av[2])
        elif op in (_c.ASSERT, _c.ASSERT_NOT):
            yield from _walk(av[1])
        elif op is _c.ATOMIC_GROUP:
            yield from _walk(av)
        elif op is _c.GROUPREF_EXISTS:
            yield from _walk(av[1])
            if av[2] is not None:
                yield from _walk(av[2])


def _parse(pattern: re.Pattern[str]) -> Any:
    return _parser.parse(pattern.pattern, pattern.flags)


def _ignores_case(pattern: re.Pattern[str], tree: Any) -> bool:
    return bool(pattern.flags & re.IGNORECASE) or any(
        op is _c.SUBPATTERN and av[1] & re.IGNORECASE for op, av in _walk(tree))


def ignores_case(pattern: re.Pattern[str]) -> bool:
    """True if any part of ``pattern`` ignores case: its literals are then for ``fold(text)``."""
    return _ignores_case(pattern, _parse(pattern))


def _derive(pattern: re.Pattern[str]) -> tuple[tuple[str, ...] | None, bool]:
    if not isinstance(pattern.pattern, str):
        return None, False
    tree = _parse(pattern)
    folded = _ignores_case(pattern, tree)
    required = _Deriver(folded).sequence(tree).required
    if required is None:
        return None, folded
    return tuple(sorted(required, key=lambda s: (-len(s), s))), folded


def required_literals(pattern: re.Pattern[str]) -> tuple[str, ...] | None:
    """Literals of which every match of ``pattern`` contains one; None if none are known.

    For a pattern that ``ignores_case``, they are lower-case ASCII, to be looked up in
    ``fold(text)``; otherwise in the text itself. Longest first.
    """
    return _derive(pattern)[0]


@dataclass(frozen=True, slots=True)
class Prefiltered:
    """A compiled pattern and its required literals; ``search`` skips hopeless texts.

    Build one with ``Prefiltered.of(pattern)``. ``literals`` None means no filter: the
    pattern always runs (``Prefiltered(pattern)`` is the unfiltered pattern, e.g. in tests).
    """

    pattern: re.Pattern[str]
    literals: tuple[str, ...] | None = None
    folded: bool = False  # the literals are for fold(text)

    @classmethod
    def of(cls, pattern: re.Pattern[str]) -> Prefiltered:
        return cls(pattern, *_derive(pattern))

    def may_match(self, text: str, folded: str | None = None) -> bool:
        """False only if ``pattern`` cannot match ``text``. Pass ``folded=fold(text)`` when
        checking several patterns against one text, so it is folded once."""
        literals = self.literals
        if literals is None:
            return True
        if self.folded:
            text = fold(text) if folded is None else folded
        for literal in literals:
            if literal in text:
                return True
        return False

    def search(self, text: str, folded: str | None = None) -> re.Match[str] | None:
        """``pattern.search(text)``, or None at once when the literals rule a match out."""
        if self.may_match(text, folded):
            return self.pattern.search(text)
        return None


class PrefilterSet:
    """Which of several prefiltered patterns may match a text, from one pass over it.

    ``Prefiltered.may_match`` costs one substring search per literal, and a failing search
    reads the whole text: 70 rules with ~350 literals read a 3 KB prompt 350 times. An
    Aho-Corasick automaton over all the literals (pyahocorasick, C) finds every one present
    in a single pass, overlapping occurrences included, so the candidates are exactly the
    patterns ``may_match`` would let through.
    """

    __slots__ = ("_always", "_folded", "_plain", "size")

    def __init__(self, filters: Sequence[Prefiltered]) -> None:
        self.size = len(filters)
        always: list[int] = []
        plain: dict[str, list[int]] = {}
        folded: dict[str, list[int]] = {}
        for index, pf in enumerate(filters):
            if pf.literals is None or "" in pf.literals:
                always.append(index)
                continue
            for literal in pf.literals:
                (folded if pf.folded else plain).setdefault(literal, []).append(index)
        self._always = frozenset(always)
        self._plain = _automaton(plain)
        self._folded = _automaton(folded)

    def candidates(self, text: str, folded: str | None = None) -> frozenset[int]:
        """Indices of the patterns that may match ``text`` (all others cannot).

        Pass ``folded=fold(text)`` if it is at hand; it is computed only when needed.
        """
        found: set[int] = set(self._always)
        if self._plain is not None:
            for _, indices in self._plain.iter(text):
                found.update(indices)
        if self._folded is not None:
            view = fold(text) if folded is None else folded
            for _, indices in self._folded.iter(view):
                found.update(indices)
        return frozenset(found)


def _automaton(literals: dict[str, list[int]]) -> Any:
    if not literals:
        return None
    automaton = ahocorasick.Automaton()
    for literal, indices in literals.items():
        automaton.add_word(literal, tuple(indices))
    automaton.make_automaton()
    return automaton
