"""The folded NER embedding computes what spaCy's layer computes, and finds the same entities."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import spacy
from spacy.language import Language
from thinc.api import Linear, Maxout, Model, chain

from guardstream.bench.mix import build_mix
from guardstream.detectors.pii.ner_fold import FoldError, fold_hash_embeddings
from guardstream.detectors.pii.offline import _EXCLUDED_PIPES, SPACY_MODEL_PACKAGE, InferenceOps

_TEXTS = [
    "", "ok", "Maria Garcia moved from Lisbon to Rotterdam in March.",
    "Hi, I'm James Smith, my email is james.smith@example.com. Call me at +1 415 555 0100.",
    "The warehouse in Rotterdam ships most European orders within two days. " * 6,
    "Dr. Aiko Tanaka met Lukas Muller and Fatima Haddad at the Berlin office on Friday.",
    "ticket JIRA-1234 assigned to chen.wei; Priya Sharma reviews it Tuesday",
    "Ünïcödé Ñame Ørsted visited São Paulo and Zürich 🙂",
]


def _load() -> Language:
    nlp = spacy.load(SPACY_MODEL_PACKAGE, exclude=list(_EXCLUDED_PIPES))
    ops = InferenceOps(use_blis=False)
    for layer in nlp.get_pipe("ner").model.walk():
        layer.ops = ops
    return nlp


@pytest.fixture(scope="module")
def pair() -> tuple[Language, Language]:
    """The same model twice: as spaCy builds it, and folded."""
    plain, folded = _load(), _load()
    fold_hash_embeddings(folded.get_pipe("ner").model)
    return plain, folded


def _corpus() -> list[str]:
    mix = build_mix(200, seed=11)
    return _TEXTS + [m["content"] for r in mix for m in r.body["messages"]]


def _entities(nlp: Language, texts: list[str]) -> list[list[tuple[int, int, str]]]:
    docs = nlp.get_pipe("ner").pipe(nlp.make_doc(t) for t in texts)
    return [[(e.start_char, e.end_char, e.label_) for e in d.ents] for d in docs]


def test_folded_token_vectors_equal_spacy_s(pair: tuple[Language, Language]) -> None:
    plain, folded = pair
    docs = [plain.make_doc(t) for t in _corpus()]
    expected = plain.get_pipe("ner").model.get_ref("tok2vec").predict(docs)
    got = folded.get_pipe("ner").model.get_ref("tok2vec").predict(docs)
    assert [a.shape for a in got] == [a.shape for a in expected]
    worst = max(float(np.abs(a - b).max()) for a, b in zip(got, expected, strict=True) if a.size)
    assert worst < 1e-4


def test_folded_ner_finds_the_same_entities(pair: tuple[Language, Language]) -> None:
    plain, folded = pair
    texts = _corpus()
    expected = _entities(plain, texts)
    assert sum(map(len, expected)) > 50  # names, places, dates: the corpus exercises NER
    assert _entities(folded, texts) == expected


def test_fold_replaces_the_product_not_the_model(pair: tuple[Language, Language]) -> None:
    plain, folded = pair
    names = {layer.name for layer in folded.get_pipe("ner").model.walk()}
    assert {"hashembed-folded", "maxout-folded"} <= names
    assert "hashembed-folded" not in {layer.name for layer in plain.get_pipe("ner").model.walk()}


def test_the_engine_s_ner_is_folded() -> None:
    from guardstream.detectors.pii.offline import build_nlp_engine

    engine = build_nlp_engine()
    names = {layer.name for layer in engine.nlp["en"].get_pipe("ner").model.walk()}
    assert "hashembed-folded" in names


def test_folded_layers_refuse_training(pair: tuple[Language, Language]) -> None:
    _plain, folded = pair
    tok2vec = folded.get_pipe("ner").model.get_ref("tok2vec")
    with pytest.raises(NotImplementedError):
        tok2vec.begin_update([folded.make_doc("Maria lives in Lisbon.")])


@pytest.mark.parametrize("model", [
    Linear(4, 3),
    chain(Linear(4, 3), Maxout(2, 4, nP=2)),
], ids=["linear", "no-hash-embeddings"])
def test_fold_rejects_other_layouts(model: Model[Any, Any]) -> None:
    with pytest.raises(FoldError):
        fold_hash_embeddings(model)
