"""The injection detector: cheapest layer first, score = max over layers.

Why layered: regexes name the attack class and catch canonical phrasings in many languages
for microseconds; the classifier catches paraphrases and long role-play jailbreaks; the
optional similarity layer catches lightly edited copies of known attacks. Obfuscated text
is folded (leetspeak, homoglyphs, spacing) and embedded base64/hex/ROT13/percent payloads
are decoded and rescanned, so hiding an attack costs the attacker more than it costs us.
"""

from __future__ import annotations

import codecs
import threading
from dataclasses import dataclass
from pathlib import Path

from guardstream.detectors.injection.classifier import (
    DEFAULT_MODEL_PATH,
    Classifier,
    prepare_normalized,
)
from guardstream.detectors.injection.decoders import decoded_payloads
from guardstream.detectors.injection.heuristics import HeuristicHit, combine, match_rules
from guardstream.detectors.injection.normalize import MAX_SCAN_CHARS, normalize, views
from guardstream.detectors.injection.similarity import (
    DEFAULT_KNOWN_ATTACKS_PATH,
    SimilarityIndex,
)

__all__ = ["DEFAULT_THRESHOLD", "InjectionDetector", "InjectionScore"]

#: Tuned on the validation split by scripts/train_injection.py (never on test).
DEFAULT_THRESHOLD = 0.49

# A rule this strong found only after decoding/folding marks the message "encoded_payload".
_STRONG = 0.85
# ROT13/reversed tricks are short; only this much of a message is folded that way.
_FOLDED_VIEW_CHARS = 4000
# Cosine similarity -> score: below _SIM_LO is unrelated text, at _SIM_HI a near-copy.
_SIM_LO = 0.45
_SIM_HI = 0.85


@dataclass(frozen=True, slots=True)
class InjectionScore:
    """Result of one scan. Carries no message content (safe to log and audit)."""

    score: float
    layer: str
    categories: tuple[str, ...]


_CLEAN = InjectionScore(0.0, "none", ())


def _clip(x: float) -> float:
    return 0.0 if x != x else min(1.0, max(0.0, x))  # x != x: NaN guard


class InjectionDetector:
    """Scores a message for prompt injection / jailbreak. ``scan`` is thread-safe."""

    def __init__(
        self,
        *,
        threshold: float = DEFAULT_THRESHOLD,
        heuristics: bool = True,
        classifier: bool = True,
        similarity: bool = False,
        model_path: Path | str | None = None,
        known_attacks_path: Path | str | None = None,
    ) -> None:
        if not 0.0 <= threshold <= 1.0:
            raise ValueError("threshold must be within [0, 1]")
        self.threshold = threshold
        self._use_heuristics = heuristics
        self._use_classifier = classifier
        self._use_similarity = similarity
        self._model_path = Path(model_path) if model_path else DEFAULT_MODEL_PATH
        self._known_path = (Path(known_attacks_path) if known_attacks_path
                            else DEFAULT_KNOWN_ATTACKS_PATH)
        self._lock = threading.Lock()
        self._classifier: Classifier | None = None
        self._similarity: SimilarityIndex | None = None

    # -- lazy, once-per-instance loading (double-checked under a lock) -------------------
    def _get_classifier(self) -> Classifier:
        clf = self._classifier
        if clf is None:
            with self._lock:
                if self._classifier is None:
                    self._classifier = Classifier.load(self._model_path)
                clf = self._classifier
        return clf

    def _get_similarity(self) -> SimilarityIndex:
        idx = self._similarity
        if idx is None:
            with self._lock:
                if self._similarity is None:
                    self._similarity = SimilarityIndex.load(self._known_path)
                idx = self._similarity
        return idx

    def warm_up(self) -> None:
        """Load the enabled models now (e.g. at worker start) instead of on the first scan."""
        if self._use_classifier:
            self._get_classifier()
        if self._use_similarity:
            self._get_similarity()

    # -- scanning --------------------------------------------------------------------------
    def scan(self, text: str) -> InjectionScore:
        if not isinstance(text, str) or not text.strip():
            return _CLEAN
        norm = normalize(text)
        layer_scores: dict[str, float] = {"heuristic": 0.0, "classifier": 0.0,
                                          "similarity": 0.0}
        categories: list[str] = []
        weak: list[str] = []

        def note(hits: list[HeuristicHit], extra: str | None = None) -> float:
            s = combine(hits)
            for h in hits:
                target = categories if h.weight >= 0.5 else weak
                if h.category not in target:
                    target.append(h.category)
            if extra and s >= _STRONG and extra not in categories:
                categories.append(extra)
            return s

        decoded = [normalize(d) for d in decoded_payloads(text[:MAX_SCAN_CHARS])]
        if self._use_heuristics:
            h = note(match_rules(norm))
            for v in views(norm):
                h = max(h, note(match_rules(v, min_weight=0.5), "encoded_payload"))
            # ROT13 and reversed text: only strong rules count (their output is gibberish
            # for ordinary text, so a strong hit there is no accident).
            head = norm[:_FOLDED_VIEW_CHARS]
            for folded in (codecs.decode(head, "rot13"), head[::-1]):
                h = max(h, note(match_rules(folded, min_weight=_STRONG), "encoded_payload"))
            for d in decoded:
                h = max(h, note(match_rules(d), "encoded_payload"))
            layer_scores["heuristic"] = h
        if self._use_classifier:
            clf = self._get_classifier()
            c = clf.score_prepared(prepare_normalized(norm))
            for d in decoded:
                dc = clf.score_prepared(prepare_normalized(d))
                if dc >= self.threshold and "encoded_payload" not in categories:
                    categories.append("encoded_payload")
                c = max(c, dc)
            layer_scores["classifier"] = c
        if self._use_similarity:
            sim = self._get_similarity().score_prepared(prepare_normalized(norm))
            layer_scores["similarity"] = (sim - _SIM_LO) / (_SIM_HI - _SIM_LO)

        layer = max(layer_scores, key=lambda k: layer_scores[k])
        score = _clip(layer_scores[layer])
        if score < self.threshold:
            return InjectionScore(score, "none", ())
        cats = categories or weak
        return InjectionScore(score, layer, tuple(cats))

    def is_attack(self, result: InjectionScore) -> bool:
        return result.score >= self.threshold
