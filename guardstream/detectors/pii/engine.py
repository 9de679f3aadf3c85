"""The PII / secrets engine: Presidio analyzer + anonymizer with guardstream's recognizers.

Design choices (measured with ``scripts/eval_redact.py``):

* Only our recognizers are registered (no Presidio defaults): the defaults include URL and
  DATE_TIME, which is where vanilla Presidio alters benign chat text, and many
  country-specific recognizers that cost time without helping a chat gateway.
* spaCy runs only the NER component, and only on texts with capitalised-word cues
  (see :mod:`.offline`); ``redact_many`` batches NER through ``nlp.pipe``.
* Overlapping findings are merged into their union, so a partial detection never leaves
  half of a value behind; the union takes the type of its strongest member.
* Spans already redacted (our placeholders, masks) are ignored: ``redact`` is idempotent.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from presidio_analyzer import (
    AnalyzerEngine,
    EntityRecognizer,
    LemmaContextAwareEnhancer,
    PatternRecognizer,
    RecognizerRegistry,
)
from presidio_analyzer import RecognizerResult as AnalyzerResult
from presidio_anonymizer import AnonymizerEngine
from presidio_anonymizer.entities import RecognizerResult as AnonymizerResult

from .offline import SlimNerSpacyEngine, build_nlp_engine, install_offline_tldextract
from .operators import REDACTED_TOKEN, OperatorSpec, PlaceholderState, build_operator_configs
from .recognizers import SECRET_ENTITIES, STRUCTURED_ENTITIES, build_recognizers

__all__ = ["DEFAULT_ENTITIES", "PiiConfig", "PiiEngine", "PiiSpan", "Redaction"]

#: Redacted unless configured otherwise. URL, DATE_TIME and LOCATION are deliberately
#: absent: they are mostly benign in support chat and redacting them breaks answers.
DEFAULT_ENTITIES: tuple[str, ...] = (*STRUCTURED_ENTITIES, "PERSON", "STREET_ADDRESS")

# Which type wins when findings overlap with equal scores (higher wins).
_PRIORITY = {e: 3 for e in SECRET_ENTITIES} | {
    "CREDIT_CARD": 2,
    "IBAN_CODE": 2,
    "US_SSN": 2,
    "EMAIL_ADDRESS": 2,
    "IP_ADDRESS": 1,
    "PHONE_NUMBER": 1,
    "STREET_ADDRESS": 1,
    "API_KEY": 2,  # generic "secret in context": a provider-specific type is more useful
}

# Numbers right after these words are identifiers, not phones/SSNs/IPs.
_ID_CUE = re.compile(
    r"(?i)(?:\b(?:order|invoice|ticket|tracking|ref(?:erence)?|case|confirmation|conf|"
    r"version|build|ver|release|model|serial|sku|part|item|po|receipt|transaction|txn|"
    r"booking|account|acct|customer|member|policy|claim|shipment|parcel|package|isbn|"
    r"issue|pr|bug|job|run|batch|rev|v)\.?\s*(?:no\.?|number|num|nr|id|code|#)?\s*"
    r"(?:is|was|:|#)?\s*#?|#)\s*$"
)
_ID_CUE_TYPES = frozenset({"PHONE_NUMBER", "US_SSN", "IP_ADDRESS"})
# Cheap triggers: a recognizer whose trigger is absent from the text cannot match, so
# its entity is not even requested from Presidio (saves most of the regex work on
# ordinary chat text). Entities without a trigger always run, and so do entities that a
# configured deny list also names (a deny-list word need not contain the trigger).
# tests/detectors/test_fast_paths.py checks each trigger against its recognizer.
_TRIGGERS: dict[str, re.Pattern[str]] = {
    "EMAIL_ADDRESS": re.compile(r"@"),
    "PHONE_NUMBER": re.compile(r"\d{2}"),
    "CREDIT_CARD": re.compile(r"\d{4}"),
    "US_SSN": re.compile(r"\d{3}"),
    "IBAN_CODE": re.compile(r"[A-Z]{2}\d{2}"),
    "IP_ADDRESS": re.compile(r"\d\.\d|:[0-9A-Fa-f]*:"),
    "OPENAI_API_KEY": re.compile(r"sk-"),
    "ANTHROPIC_API_KEY": re.compile(r"sk-ant-"),
    "AWS_ACCESS_KEY": re.compile(r"A[KSGIRNBC][A-Z]A"),
    "AWS_SECRET_KEY": re.compile(r"[A-Za-z0-9/+]{40}"),
    "GITHUB_TOKEN": re.compile(r"gh[pousr]_|github_pat_"),
    "SLACK_TOKEN": re.compile(r"xox|xapp-|hooks\.slack"),
    "STRIPE_KEY": re.compile(r"_live_|_test_|whsec_"),
    "JWT": re.compile(r"eyJ"),
    "PRIVATE_KEY": re.compile(r"PRIVATE KEY"),
    # The cue words of GsGenericSecretRecognizer, as whole words ("authentication" is none).
    "API_KEY": re.compile(
        r"(?i)\b(?:api[_\- ]?key|api[_\- ]?token|access[_\- ]?token|auth[_\- ]?token|"
        r"secret[_\- ]?key|client[_\- ]?secret|secret|token|bearer|x-api-key|"
        r"aws_secret_access_key|private[_\- ]?token)\b"
    ),
    # Every street pattern has a house number, except French "rue Victor Hugo" and kin.
    "STREET_ADDRESS": re.compile(
        r"\d|(?<!\w)(?:rue|avenue|boulevard|impasse|allée|chemin|place|quai)[ \t]"
    ),
    "PASSWORD": re.compile(r"(?i)pass|pwd|pw\b|://"),
}
_NER_TYPES = frozenset({"PERSON", "LOCATION"})
_NOT_A_NAME = re.compile(r"[\d=_/@<>{}\[\]|\\:;#$%^&*+]")
_MASK_ONLY = re.compile(r"^[*#xX•]+$")


@dataclass(frozen=True, slots=True)
class PiiSpan:
    """One finding; offsets refer to the original text. Carries no value."""

    entity_type: str
    start: int
    end: int
    score: float
    recognizer: str


@dataclass(frozen=True, slots=True)
class Redaction:
    """Redacted text and the findings (offsets in the ORIGINAL text)."""

    text: str
    spans: tuple[PiiSpan, ...]


def _default_operators() -> Mapping[str, OperatorSpec]:
    return MappingProxyType({"DEFAULT": OperatorSpec("replace")})


@dataclass(frozen=True)
class PiiConfig:
    """What to find and how to replace it.

    ``operators`` maps an entity type (or ``"DEFAULT"``) to an :class:`OperatorSpec`.
    ``allow_list``: exact strings never redacted. ``deny_list``: entity -> strings always
    redacted as that entity. ``use_ner``: run spaCy NER for PERSON (off = patterns only).
    """

    entities: tuple[str, ...] = DEFAULT_ENTITIES
    score_threshold: float = 0.5
    language: str = "en"
    operators: Mapping[str, OperatorSpec] = field(default_factory=_default_operators)
    allow_list: tuple[str, ...] = ()
    deny_list: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: MappingProxyType({}))
    use_ner: bool = True


class _ValidatedSkippingEnhancer(LemmaContextAwareEnhancer):
    """Presidio's context enhancer, run only on results that context can still change.

    The stock enhancer deep-copies every result of every call; checksum-validated
    results (score 1.0) cannot be boosted, so they skip the copy and the context scan.
    """

    def enhance_using_context(
        self,
        text: str,
        raw_results: list[AnalyzerResult],
        nlp_artifacts: Any,
        recognizers: list[EntityRecognizer],
        context: list[str] | None = None,
    ) -> list[AnalyzerResult]:
        todo = [r for r in raw_results if r.score < EntityRecognizer.MAX_SCORE]
        if not todo:
            return raw_results
        done = [r for r in raw_results if r.score >= EntityRecognizer.MAX_SCORE]
        enhanced = super().enhance_using_context(text, todo, nlp_artifacts, recognizers, context)
        return done + list(enhanced)


# Reserved example values only (RFC 2606 domains, a 555 number, a test card number).
_WARM_UP_TEXT = (
    "Hi, I am Jane Doe from Springfield. Mail jane.doe@example.com, see "
    "https://docs.example.org/start or call me at +1 212 555 0100; card 4111 1111 1111 1111."
)


@functools.cache
def _shared_nlp_engine(language: str) -> SlimNerSpacyEngine:
    # The spaCy model is read-only at inference: share one per process (loading it costs
    # ~0.5 s and ~50 MB per copy).
    return build_nlp_engine(language)


class PiiEngine:
    """Finds and redacts PII and secrets. Build once, call from any thread."""

    def __init__(self, config: PiiConfig | None = None) -> None:
        self.config = config or PiiConfig()
        lang = self.config.language
        if lang != "en":
            raise ValueError("only language='en' is supported")
        self._nlp = _shared_nlp_engine(lang)
        # Again here, not only when the shared spaCy engine is built: every engine must
        # validate email domains against the bundled suffix list, never the network's.
        install_offline_tldextract()
        entities = set(self.config.entities)
        if not self.config.use_ner:
            entities.discard("LOCATION")
        registry = RecognizerRegistry(supported_languages=[lang])
        recognizers = build_recognizers(entities)
        if not self.config.use_ner:
            recognizers = [r for r in recognizers if type(r).__name__ != "SpacyRecognizer"]
        for rec in recognizers:
            registry.add_recognizer(rec)
        for etype, words in self.config.deny_list.items():
            registry.add_recognizer(
                PatternRecognizer(
                    supported_entity=etype,
                    name=f"GsDenyList{etype}",
                    deny_list=list(words),
                    supported_language=lang,
                )
            )
            entities.add(etype)
        self._entities = sorted(entities)
        self._triggers = {e: rx for e, rx in _TRIGGERS.items()
                          if e not in self.config.deny_list}
        self._analyzer = AnalyzerEngine(
            registry=registry,
            nlp_engine=self._nlp,
            supported_languages=[lang],
            default_score_threshold=self.config.score_threshold,
            context_aware_enhancer=_ValidatedSkippingEnhancer(),
        )
        self._anonymizer = AnonymizerEngine()
        self._allow = frozenset(self.config.allow_list)

    def warm_up(self) -> None:
        """Run one synthetic text through every path now, not on a user's request.

        Several parts build themselves on first use: the offline public-suffix trie
        (the first email or URL, ~0.1-0.2 s), spaCy's NER buffers, the context enhancer.
        A worker calls this at start so its first requests do not wait for them.
        """
        self.analyze(_WARM_UP_TEXT)

    # ------------------------------------------------------------------ analysis
    def analyze(self, text: str) -> list[PiiSpan]:
        """Findings in ``text`` (non-overlapping, sorted by start)."""
        return self._analyze_batch([text])[0]

    def analyze_many(self, texts: Sequence[str]) -> list[list[PiiSpan]]:
        """Findings for several texts; NER runs batched."""
        return self._analyze_batch(list(texts))

    def _analyze_batch(self, texts: list[str]) -> list[list[PiiSpan]]:
        if self.config.use_ner:
            artifacts = self._nlp.process_texts(texts, self.config.language)
        else:
            artifacts = [self._tokens_only(t) for t in texts]
        out: list[list[PiiSpan]] = []
        for text, art in zip(texts, artifacts, strict=True):
            wanted = [
                e for e in self._entities
                if (t := self._triggers.get(e)) is None or t.search(text)
            ]
            raw = self._analyzer.analyze(
                text=text,
                language=self.config.language,
                entities=wanted,
                score_threshold=self.config.score_threshold,
                nlp_artifacts=art,
            )
            out.append(self._postprocess(text, raw))
        return out

    def _tokens_only(self, text: str) -> Any:
        nlp = self._nlp.get_nlp(self.config.language)
        return self._nlp._doc_to_nlp_artifact(nlp.make_doc(text), self.config.language)

    def _postprocess(self, text: str, raw: list[AnalyzerResult]) -> list[PiiSpan]:
        protected = [(m.start(), m.end()) for m in REDACTED_TOKEN.finditer(text)]
        kept: list[tuple[int, int, str, float, str]] = []
        for r in raw:
            value = text[r.start : r.end]
            if not value.strip() or value in self._allow or _MASK_ONLY.match(value):
                continue
            if any(s <= r.start and r.end <= e for s, e in protected):
                continue
            if r.entity_type in _NER_TYPES and _NOT_A_NAME.search(value):
                continue  # spaCy calls "requests==2.0" a PERSON now and then
            before = text[max(0, r.start - 40) : r.start]
            if r.entity_type in _ID_CUE_TYPES and _ID_CUE.search(before):
                continue
            meta = r.recognition_metadata or {}
            name = str(meta.get(AnalyzerResult.RECOGNIZER_NAME_KEY, "unknown"))
            kept.append((r.start, r.end, r.entity_type, float(r.score), name))
        # Placeholders overlapping a finding (e.g. NER span "Smith <PERSON_1>") are cut out.
        trimmed: list[tuple[int, int, str, float, str]] = []
        for start, end, etype, score, name in kept:
            for ps, pe in protected:
                if ps < end and start < pe:
                    if ps <= start:
                        start = pe
                    elif pe >= end:
                        end = ps
            while start < end and text[start].isspace():
                start += 1
            while end > start and text[end - 1].isspace():
                end -= 1
            if start < end:
                trimmed.append((start, end, etype, score, name))
        return _merge(trimmed)

    # ------------------------------------------------------------------ redaction
    def redact(
        self,
        text: str,
        state: PlaceholderState | None = None,
        *,
        hmac_key: bytes | None = None,
        encrypt_key: str | None = None,
    ) -> Redaction:
        """Redact ``text``; pass one ``state`` for all messages of a request."""
        return self._redact_with(text, self.analyze(text), state, hmac_key, encrypt_key)

    def redact_many(
        self,
        texts: Sequence[str],
        state: PlaceholderState | None = None,
        *,
        hmac_key: bytes | None = None,
        encrypt_key: str | None = None,
    ) -> list[Redaction]:
        """Redact several texts (e.g. the messages of one request) sharing ``state``."""
        return self.apply(texts, self._analyze_batch(list(texts)), state,
                          hmac_key=hmac_key, encrypt_key=encrypt_key)

    def apply(
        self,
        texts: Sequence[str],
        found: Sequence[list[PiiSpan]],
        state: PlaceholderState | None = None,
        *,
        hmac_key: bytes | None = None,
        encrypt_key: str | None = None,
    ) -> list[Redaction]:
        """Redact texts whose findings ``analyze_many`` already made (one ``state``)."""
        state = state if state is not None else PlaceholderState()
        return [
            self._redact_with(t, s, state, hmac_key, encrypt_key)
            for t, s in zip(texts, found, strict=True)
        ]

    def _redact_with(
        self,
        text: str,
        spans: list[PiiSpan],
        state: PlaceholderState | None,
        hmac_key: bytes | None,
        encrypt_key: str | None,
    ) -> Redaction:
        if not spans:
            return Redaction(text=text, spans=())
        state = state if state is not None else PlaceholderState()
        configs = build_operator_configs(
            [(s.entity_type, text[s.start : s.end]) for s in spans],
            self.config.operators,
            state,
            hmac_key=hmac_key,
            encrypt_key=encrypt_key,
        )
        result = self._anonymizer.anonymize(
            text=text,
            analyzer_results=[
                AnonymizerResult(s.entity_type, s.start, s.end, s.score) for s in spans
            ],
            operators=configs,
            merge_entities_with_spaces=False,
        )
        return Redaction(text=result.text, spans=tuple(spans))


def _rank(item: tuple[int, int, str, float, str]) -> tuple[int, float, int]:
    # The member covering most of the union names it ("12 Main St" beats the PERSON
    # "Main" inside it); then confidence, then specificity (OPENAI_API_KEY over API_KEY).
    start, end, etype, score, _ = item
    return (end - start, score, _PRIORITY.get(etype, 0))


def _merge(items: list[tuple[int, int, str, float, str]]) -> list[PiiSpan]:
    """Union of overlapping findings, typed by the strongest member."""
    items.sort(key=lambda x: (x[0], -x[1]))
    groups: list[list[tuple[int, int, str, float, str]]] = []
    end = -1
    for it in items:
        if groups and it[0] < end:
            groups[-1].append(it)
            end = max(end, it[1])
        else:
            groups.append([it])
            end = it[1]
    spans: list[PiiSpan] = []
    for g in groups:
        best = max(g, key=_rank)
        spans.append(
            PiiSpan(
                entity_type=best[2],
                start=min(x[0] for x in g),
                end=max(x[1] for x in g),
                score=best[3],
                recognizer=best[4],
            )
        )
    return spans
