"""A fitted ``TfidfVectorizer`` evaluated without scikit-learn's per-call overhead.

Why: the moderation model multiplies three TF-IDF vectors (word, char, profanity) by
dense weights for every message. ``TfidfVectorizer.transform`` spends about half of its
time on parameter validation, input checks and sparse-matrix plumbing that a single
message does not need. Here the same analyzer (``build_analyzer()``, so the same
lower-casing, stop words and n-grams), vocabulary and IDF weights produce the vector
directly, and its product with the weights is a gather + sum. Equal to
``transform(texts) @ coef`` up to float rounding (tested). ``char_wb`` vectorizers count
their n-grams word by word (:class:`guardstream.text.ngrams.CharWbGrams`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from guardstream.text.ngrams import CharWbGrams

__all__ = ["FastTfidf"]


class FastTfidf:
    """``transform(texts) @ coef`` for a fitted ``TfidfVectorizer`` (l2 norm or none).

    ``known_words``: for a ``char_wb`` vectorizer, public words whose n-grams are tabled
    up front (see :class:`~guardstream.text.ngrams.CharWbGrams`).
    """

    __slots__ = ("_analyze", "_count", "_idf", "_l2", "_sublinear", "_vocab", "grams",
                 "n_features")

    def __init__(self, vectorizer: Any, known_words: Iterable[str] = ()) -> None:
        if vectorizer.binary or vectorizer.norm not in ("l2", None):
            raise ValueError("unsupported TfidfVectorizer configuration")
        self._analyze: Callable[[str], list[str]] = vectorizer.build_analyzer()
        self._vocab: dict[str, int] = dict(vectorizer.vocabulary_)
        self._count: Callable[[str], dict[int, int]] = self._count_analyzed
        #: The word-by-word n-gram counter of a ``char_wb`` vectorizer (None otherwise).
        self.grams: CharWbGrams[int] | None = None
        if (vectorizer.analyzer == "char_wb" and vectorizer.preprocessor is None
                and vectorizer.strip_accents is None):
            grams = self.grams = CharWbGrams(self._vocab, vectorizer.ngram_range, known_words)
            lower = bool(vectorizer.lowercase)
            self._count = (lambda t: grams.counts(t.lower())) if lower else grams.counts
        idf = vectorizer.idf_ if vectorizer.use_idf else np.ones(len(self._vocab))
        self._idf = np.asarray(idf, dtype=np.float64)
        self._sublinear = bool(vectorizer.sublinear_tf)
        self._l2 = vectorizer.norm == "l2"
        self.n_features = len(self._vocab)

    def features(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """Column indices and TF-IDF weights of ``text`` (normalised as configured)."""
        counts = self._count(text)
        if not counts:
            return np.zeros(0, dtype=np.intp), np.zeros(0)
        idx = np.fromiter(counts.keys(), dtype=np.intp, count=len(counts))
        tf = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
        if self._sublinear:
            tf = np.log(tf) + 1.0
        weights = tf * self._idf[idx]
        if self._l2:
            norm = float(np.sqrt(np.dot(weights, weights)))
            if norm > 0.0:
                weights /= norm
        return idx, weights

    def _count_analyzed(self, text: str) -> dict[int, int]:
        vocab = self._vocab
        return dict(Counter(j for f in self._analyze(text) if (j := vocab.get(f)) is not None))

    def dot(self, texts: Sequence[str], coef: np.ndarray) -> np.ndarray:
        """``transform(texts) @ coef`` for a dense ``coef`` of shape (n_features, k)."""
        out = np.zeros((len(texts), coef.shape[1]))
        for row, text in enumerate(texts):
            idx, weights = self.features(text)
            if idx.size:
                out[row] = weights @ coef[idx]
        return out
