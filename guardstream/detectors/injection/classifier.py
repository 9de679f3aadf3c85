"""Layer 2: a small local text classifier (char + word TF-IDF, logistic regression).

Why this model: it generalises to paraphrases and long role-play jailbreaks that no regex
enumerates, needs no network or GPU, and is trained on public labelled data by
``scripts/train_injection.py`` with scikit-learn.

Why it is shipped as plain JSON and scored here without scikit-learn: a pickled estimator
only loads under the exact library version that wrote it, and sklearn's per-call overhead
(input validation, FeatureUnion, sparse stacking) costs more than the arithmetic for a
chat message. The exported model is just, per feature family, term -> (idf, weight); the
two analyzers below reproduce sklearn's ``char_wb`` and word n-gram analyzers exactly, and
a test checks the scores match the sklearn pipeline. Scoring only reads the tables, so it
is safe from many threads at once.
"""

from __future__ import annotations

import gzip
import json
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np

from guardstream.detectors.injection.normalize import normalize
from guardstream.text.common_words import frequent_words
from guardstream.text.ngrams import CharWbGrams

__all__ = [
    "DEFAULT_MODEL_PATH",
    "Classifier",
    "build_pipeline",
    "export_pipeline",
    "prepare",
    "prepare_normalized",
]

DEFAULT_MODEL_PATH = (
    Path(__file__).resolve().parents[2] / "data" / "injection" / "classifier.json.gz"
)
FORMAT_VERSION = 1

_HEAD = 3000
_TAIL = 1000
_CHAR_NGRAMS = (2, 5)
_WORD_NGRAMS = (1, 2)
_WORD_PATTERN = r"(?u)\b\w+\b"
_TOKEN_RE = re.compile(_WORD_PATTERN)


def prepare_normalized(norm: str) -> str:
    """Head and tail of an already normalised text: bounded latency on huge messages."""
    if len(norm) > _HEAD + _TAIL:
        return norm[:_HEAD] + " … " + norm[-_TAIL:]
    return norm


def prepare(text: str) -> str:
    """What the classifier sees: normalised text, head and tail only."""
    return prepare_normalized(normalize(text))


def build_pipeline(c: float = 4.0) -> Any:
    """The untrained scikit-learn pipeline (training only; run time uses the JSON export)."""
    import numpy as np
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import FeatureUnion, Pipeline

    features = FeatureUnion([
        ("char", TfidfVectorizer(analyzer="char_wb", ngram_range=_CHAR_NGRAMS, min_df=2,
                                 max_features=60_000, sublinear_tf=True, dtype=np.float64)),
        ("word", TfidfVectorizer(analyzer="word", ngram_range=_WORD_NGRAMS, min_df=2,
                                 max_features=30_000, sublinear_tf=True,
                                 token_pattern=_WORD_PATTERN, dtype=np.float64)),
    ])
    clf = LogisticRegression(C=c, max_iter=2000, class_weight="balanced")
    return Pipeline([("features", features), ("clf", clf)])


def export_pipeline(pipeline: Any) -> dict[str, Any]:
    """Plain-data form of a fitted ``build_pipeline()``: only features with a non-zero weight."""
    coef = pipeline.named_steps["clf"].coef_[0]
    out: dict[str, Any] = {
        "format": FORMAT_VERSION,
        "intercept": float(pipeline.named_steps["clf"].intercept_[0]),
    }
    offset = 0
    for name, vec in pipeline.named_steps["features"].transformer_list:
        vocab: dict[str, int] = vec.vocabulary_
        idf = vec.idf_
        terms = sorted(vocab, key=vocab.__getitem__)
        table: dict[str, list[float]] = {}
        for term in terms:
            j = vocab[term]
            w = float(coef[offset + j])
            if w != 0.0:
                table[term] = [round(float(idf[j]), 6), round(w, 6)]
        out[name] = table
        offset += len(vocab)
    return out


def _word_ngrams(text: str) -> list[str]:
    tokens = _TOKEN_RE.findall(text)
    lo, hi = _WORD_NGRAMS
    grams = list(tokens) if lo == 1 else []
    for n in range(max(2, lo), hi + 1):
        grams += [" ".join(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]
    return grams


def _part(counts: Mapping[int, int], idf: np.ndarray, weight: np.ndarray) -> float:
    """Dot product of the L2-normalised sublinear TF-IDF vector with the weights.

    In numpy: a message has ~300 features, and a Python loop over them was ~2x slower.
    """
    if not counts:
        return 0.0
    n = len(counts)
    idx = np.fromiter(counts.keys(), dtype=np.intp, count=n)
    tf = np.fromiter(counts.values(), dtype=np.float64, count=n)
    v = (np.log(tf) + 1.0) * idf[idx]
    sumsq = float(v @ v)
    return float(v @ weight[idx]) / math.sqrt(sumsq) if sumsq else 0.0


class _Table:
    """One feature family: term -> column, and the columns' IDF and weight."""

    __slots__ = ("idf", "index", "weight")

    def __init__(self, rows: Mapping[str, Sequence[float]]) -> None:
        self.index: dict[str, int] = {t: j for j, t in enumerate(rows)}
        self.idf = np.array([float(v[0]) for v in rows.values()], dtype=np.float64)
        self.weight = np.array([float(v[1]) for v in rows.values()], dtype=np.float64)

    def counts(self, grams: Iterable[str]) -> dict[int, int]:
        index = self.index
        return dict(Counter(j for g in grams if (j := index.get(g)) is not None))


class Classifier:
    """A loaded classifier; ``score`` returns P(attack) for one text."""

    __slots__ = ("_char", "_char_grams", "_intercept", "_word")

    def __init__(self, data: dict[str, Any]) -> None:
        if data.get("format") != FORMAT_VERSION:
            raise ValueError("unsupported injection classifier format")
        self._intercept = float(data["intercept"])
        self._char = _Table(data["char"])
        self._word = _Table(data["word"])
        # Public words (the word features' single words, frequent English words): their
        # n-grams are tabled once instead of being cut from every message.
        self._char_grams = CharWbGrams(
            self._char.index, _CHAR_NGRAMS,
            known_words=chain((t for t in self._word.index if " " not in t), frequent_words()))

    @classmethod
    def load(cls, path: Path | str = DEFAULT_MODEL_PATH) -> Classifier:
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            return cls(json.load(fh))

    def score(self, text: str) -> float:
        return self.score_prepared(prepare(text))

    def score_prepared(self, prepared: str) -> float:
        """P(attack) for text already passed through ``prepare``."""
        text = prepared.lower()  # sklearn's default preprocessing step
        char, word = self._char, self._word
        logit = (self._intercept
                 + _part(self._char_grams.counts(text), char.idf, char.weight)
                 + _part(word.counts(_word_ngrams(text)), word.idf, word.weight))
        if logit >= 0:
            return 1.0 / (1.0 + math.exp(-logit))
        e = math.exp(logit)
        return e / (1.0 + e)
