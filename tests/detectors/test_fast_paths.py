"""The CPU shortcuts must not change what the detectors compute."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from guardstream.detectors.moderation.local import LocalModerator
from guardstream.detectors.moderation.rules import normalize
from guardstream.detectors.pii import PiiEngine
from guardstream.detectors.pii.offline import needs_ner, ner_windows

_TEXTS = [
    "", "!!!", "How do I reset my password?", "you are a worthless idiot, shut up",
    "I keep thinking about ending my life", "Ship it to Rotterdam by Friday, Maria.",
    "The quarterly report shows revenue growth. " * 30,
]
_FILLER = "The migration moved the billing service to the new cluster over the weekend. " * 20


@pytest.fixture(scope="module")
def moderator() -> LocalModerator:
    return LocalModerator()


@pytest.fixture(scope="module")
def engine() -> PiiEngine:
    return PiiEngine()


def test_fast_tfidf_equals_sklearn(moderator: LocalModerator) -> None:
    texts = [normalize(t) for t in _TEXTS]
    ref = np.asarray(sp.hstack([moderator._word.transform(texts),
                                moderator._char.transform(texts)]).tocsr() @ moderator._coef)
    split = moderator._fast_word.n_features
    got = (moderator._fast_word.dot(texts, moderator._coef[:split])
           + moderator._fast_char.dot(texts, moderator._coef[split:]))
    np.testing.assert_allclose(got, ref, atol=1e-5)
    prof = moderator._profanity
    np.testing.assert_allclose(prof._fast.dot(texts, prof._coef),
                               np.asarray(prof._vectorizer.transform(texts) @ prof._coef),
                               atol=1e-9)


@pytest.mark.parametrize("text", [
    "no capitals here at all", "Sentence start only.", "ask Maria Garcia about it",
    _FILLER + "Please forward this to Maria Garcia in Rotterdam. " + _FILLER,
    _FILLER,
])
def test_ner_windows_cover_every_cue(text: str) -> None:
    windows = ner_windows(text)
    assert bool(windows) == needs_ner(text)
    for w_start, w_end in windows:
        assert 0 <= w_start < w_end <= len(text)
    if len(text) > 1000 and windows:
        assert sum(b - a for a, b in windows) < len(text)  # long text: only a part runs NER


@pytest.mark.parametrize("name", ["Maria Garcia", "James Smith", "Aiko Tanaka"])
def test_windowed_ner_finds_names_in_long_text(engine: PiiEngine, name: str) -> None:
    text = _FILLER + f"Please forward this to {name} in accounting.\n" + _FILLER
    start = text.index(name)
    spans = engine.analyze(text)
    assert any(s.entity_type == "PERSON" and s.start <= start and s.end >= start + len(name)
               for s in spans)
    short = engine.analyze(f"Please forward this to {name} in accounting.")
    assert [s.entity_type for s in short] == [s.entity_type for s in spans]
