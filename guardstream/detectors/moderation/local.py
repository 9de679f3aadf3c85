"""The offline moderation backend: a small TF-IDF + linear model, lexicon rules and
alt-profanity-check, combined per category.

Why this shape: it runs on a CPU in about a millisecond per message, needs nothing from the
network, and every part is inspectable. The trained artifact is a joblib file shipped inside
the package (``guardstream/data/moderation/``), produced by ``scripts/train_moderation.py``.

Thread safety: after ``__init__`` nothing is mutated; scikit-learn's ``transform`` and the
numpy products used here are read-only, so one instance can serve concurrent callers.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from importlib import resources
from itertools import chain
from pathlib import Path
from types import MappingProxyType
from typing import Any

import joblib
import numpy as np

from guardstream.text.common_words import frequent_words

from .categories import CATEGORIES
from .fasttfidf import FastTfidf
from .rules import is_self_harm_help_seeking, normalize, rule_scores
from .scores import ModerationScores

__all__ = ["ARTIFACT_NAME", "ARTIFACT_VERSION", "LocalModerator", "default_artifact_path"]

ARTIFACT_NAME = "moderation_model.joblib"
ARTIFACT_VERSION = 1

# Long inputs are scored in overlapping windows and the maximum is kept per category:
# TF-IDF vectors are length-normalised, so a short harmful request padded with pages of
# benign text would otherwise be diluted below any threshold.
_WINDOW = 1500
_STRIDE = 1200
# Ceiling on the model's self-harm score for help-seeking wording (see rules): the model
# learned "suicide" as a strong word, and blocking someone asking how to help a friend is
# the costliest false positive of all.
_HELP_SEEKING_CAP = 0.2


def default_artifact_path() -> Path:
    """Where the shipped artifact lives inside the installed package."""
    return Path(str(resources.files("guardstream") / "data" / "moderation" / ARTIFACT_NAME))


def _windows(text: str) -> list[str]:
    if len(text) <= _WINDOW:
        return [text]
    return [text[i : i + _WINDOW] for i in range(0, len(text) - _STRIDE // 4, _STRIDE)]


class _ProfanitySignal:
    """alt-profanity-check's model, evaluated directly.

    Its ``predict_prob`` goes through ``CalibratedClassifierCV`` (five LinearSVC + sigmoid
    calibrators) and costs ~4 ms per call in scikit-learn overhead; the same arithmetic on
    pre-stacked arrays costs microseconds. The result equals ``predict_prob`` (tested).
    """

    __slots__ = ("_a", "_b", "_coef", "_fast", "_intercept", "_vectorizer")

    def __init__(self) -> None:
        import profanity_check

        base = Path(profanity_check.__file__).parent / "data"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self._vectorizer = joblib.load(base / "vectorizer.joblib")
            model = joblib.load(base / "model.joblib")
        cal = model.calibrated_classifiers_
        self._coef = np.stack([c.estimator.coef_[0] for c in cal], axis=1)
        self._intercept = np.array([c.estimator.intercept_[0] for c in cal])
        self._a = np.array([c.calibrators[0].a_ for c in cal])
        self._b = np.array([c.calibrators[0].b_ for c in cal])
        self._fast = FastTfidf(self._vectorizer)

    def probs(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros(0)
        df = self._fast.dot(texts, self._coef) + self._intercept
        p = 1.0 / (1.0 + np.exp(np.clip(self._a * df + self._b, -50.0, 50.0)))
        return np.asarray(p.mean(axis=1), dtype=float)


class LocalModerator:
    """Scores text for the moderation categories, offline.

    ``default_thresholds`` were tuned on the validation split by the training script; the
    held-out test split was used only to report the final numbers.
    """

    __slots__ = ("_artifact", "_bias", "_cats", "_char", "_coef", "_fast_char", "_fast_word",
                 "_profanity", "_word", "default_thresholds")

    def __init__(self, *, artifact: Mapping[str, Any] | None = None,
                 path: Path | None = None) -> None:
        if artifact is None:
            artifact = joblib.load(path or default_artifact_path())
        if artifact.get("version") != ARTIFACT_VERSION:
            raise ValueError("unsupported moderation artifact version")
        self._artifact = artifact
        self._word = artifact["word_vectorizer"]
        self._char = artifact["char_vectorizer"]
        self._cats: tuple[str, ...] = tuple(artifact["model_categories"])
        self._coef = np.asarray(artifact["coef"], dtype=np.float64)  # (n_features, n_cats)
        self._bias = np.asarray(artifact["intercept"], dtype=np.float64)  # (n_cats,)
        thresholds = {c: float(artifact.get("thresholds", {}).get(c, 0.5)) for c in CATEGORIES}
        self.default_thresholds: Mapping[str, float] = MappingProxyType(thresholds)
        self._profanity = _ProfanitySignal()
        self._fast_word = FastTfidf(self._word)
        # Public words (the word model's single words, frequent English words): the char
        # model tables their n-grams once instead of cutting them from every message.
        self._fast_char = FastTfidf(self._char, known_words=chain(
            (t for t in self._word.vocabulary_ if " " not in t), frequent_words()))
        if self._fast_word.n_features + self._fast_char.n_features != self._coef.shape[0]:
            raise ValueError("moderation artifact: vectorizers and weights disagree")

    @property
    def metadata(self) -> Mapping[str, Any]:
        """Training metadata stored in the artifact (data sizes, parameters)."""
        return MappingProxyType(dict(self._artifact.get("metadata", {})))

    def _model_probs(self, normed: Sequence[str]) -> np.ndarray:
        # Same as hstack([word.transform, char.transform]) @ coef, without scikit-learn's
        # per-call overhead (see FastTfidf).
        split = self._fast_word.n_features
        logits = (self._fast_word.dot(normed, self._coef[:split])
                  + self._fast_char.dot(normed, self._coef[split:]) + self._bias)
        return 1.0 / (1.0 + np.exp(-np.clip(logits, -50.0, 50.0)))

    def score(self, text: str) -> ModerationScores:
        """Scores for one text."""
        return self.score_many([text])[0]

    def score_many(self, texts: Sequence[str]) -> list[ModerationScores]:
        """Scores for many texts; batching amortises the vectoriser calls."""
        owners: list[int] = []
        pieces: list[str] = []
        for idx, text in enumerate(texts):
            for w in _windows(text if isinstance(text, str) else str(text)):
                owners.append(idx)
                pieces.append(w)
        if not pieces:
            return []
        normed = [normalize(p) for p in pieces]
        probs = self._model_probs(normed)
        prof = self._profanity.probs(normed)
        col = {c: i for i, c in enumerate(self._cats)}
        best = np.zeros((len(texts), len(CATEGORIES)))
        for row, (owner, piece) in enumerate(zip(owners, pieces, strict=True)):
            rules = rule_scores(piece)
            helping = is_self_harm_help_seeking(piece)
            for j, cat in enumerate(CATEGORIES):
                s = float(probs[row, col[cat]]) if cat in col else 0.0
                if cat == "self-harm" and helping:
                    s = min(s, _HELP_SEEKING_CAP)
                if cat == "profanity":
                    s = max(s, float(prof[row]))
                s = max(s, rules.get(cat, 0.0))
                if s > best[owner, j]:
                    best[owner, j] = s
        best = np.nan_to_num(np.clip(best, 0.0, 1.0))
        return [
            ModerationScores(MappingProxyType({c: float(best[i, j])
                                               for j, c in enumerate(CATEGORIES)}))
            for i in range(len(texts))
        ]
