"""Layer 3 (optional): cosine similarity to a list of known attack prompts.

Why: a reused jailbreak (a DAN variant pasted with small edits) is recognised by being
close to one already seen, even when the classifier is unsure. The list ships as plain
JSON (``known_attacks.json``, built from the *training* split only) and the char n-gram
index is built in memory at load, so nothing version-specific is pickled.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from guardstream.detectors.injection.classifier import prepare

__all__ = ["DEFAULT_KNOWN_ATTACKS_PATH", "SimilarityIndex"]

DEFAULT_KNOWN_ATTACKS_PATH = (
    Path(__file__).resolve().parents[2] / "data" / "injection" / "known_attacks.json"
)


_INDEXED_CHARS = 800


class SimilarityIndex:
    """Max cosine similarity (char 4-5-grams, TF-IDF) of a text's opening to known attacks."""

    __slots__ = ("_matrix", "_vectorizer")

    def __init__(self, attacks: list[str]) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer

        # The opening of a jailbreak identifies it; indexing only that keeps load time short.
        self._vectorizer: Any = TfidfVectorizer(analyzer="char_wb", ngram_range=(4, 5),
                                                sublinear_tf=True, min_df=1)
        self._matrix: Any = self._vectorizer.fit_transform(
            [prepare(a)[:_INDEXED_CHARS] for a in attacks])

    @classmethod
    def load(cls, path: Path | str = DEFAULT_KNOWN_ATTACKS_PATH) -> SimilarityIndex:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return cls([str(t) for t in data["attacks"]])

    def score(self, text: str) -> float:
        return self.score_prepared(prepare(text))

    def score_prepared(self, prepared: str) -> float:
        vec = self._vectorizer.transform([prepared[:_INDEXED_CHARS]])
        if vec.nnz == 0:
            return 0.0
        sims = self._matrix @ vec.T
        return float(min(1.0, max(0.0, sims.max())))
