"""Every custom Presidio recognizer of guardstream, registered in one place.

Why custom ones: Presidio's defaults are tuned for recall on generic documents, which in a
chat gateway means altering benign text (dates, URLs, version strings, order numbers) and
missing what matters most here (API keys, passwords given in context, cards in unusual
groupings). Each recognizer below is a ``PatternRecognizer`` with ``Pattern``s, ``context``
words and a ``validate_result``/``invalidate_result`` check (Luhn for cards, mod-97 for
IBANs, format/entropy checks for secrets) so that look-alikes are rejected.

Regexes run with the ``regex`` module (Presidio's engine), which allows the variable-width
look-behinds used for values given in context ("my password is ...").
No recognizer is case-insensitive unless it says so inline: Presidio's default flags include
IGNORECASE, which would turn ``AKIA[A-Z0-9]{16}`` into "any 20 letters".
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import math
import re
from collections.abc import Iterable
from typing import Any

import regex
from presidio_analyzer import (
    AnalysisExplanation,
    EntityRecognizer,
    Pattern,
    PatternRecognizer,
    RecognizerResult,
)
from presidio_analyzer.predefined_recognizers import EmailRecognizer, SpacyRecognizer

from guardstream.text.common_words import COMMON_WORDS

__all__ = [
    "ALL_ENTITIES",
    "NER_ENTITIES",
    "SECRET_ENTITIES",
    "STRUCTURED_ENTITIES",
    "build_recognizers",
    "iban_valid",
    "luhn_valid",
]

_FLAGS = regex.DOTALL | regex.MULTILINE

SECRET_ENTITIES: tuple[str, ...] = (
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "AWS_ACCESS_KEY",
    "AWS_SECRET_KEY",
    "GITHUB_TOKEN",
    "SLACK_TOKEN",
    "STRIPE_KEY",
    "JWT",
    "PRIVATE_KEY",
    "API_KEY",
    "PASSWORD",
)
STRUCTURED_ENTITIES: tuple[str, ...] = (
    "EMAIL_ADDRESS",
    "PHONE_NUMBER",
    "CREDIT_CARD",
    "US_SSN",
    "IBAN_CODE",
    "IP_ADDRESS",
    *SECRET_ENTITIES,
)
NER_ENTITIES: tuple[str, ...] = ("PERSON", "LOCATION")
ALL_ENTITIES: tuple[str, ...] = (*STRUCTURED_ENTITIES, "PERSON", "STREET_ADDRESS", "LOCATION")


# --------------------------------------------------------------------------- checksums


def luhn_valid(digits: str) -> bool:
    """Luhn mod-10 check on a string of digits."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def iban_valid(candidate: str) -> bool:
    """ISO 13616 mod-97 check (spaces ignored)."""
    s = candidate.replace(" ", "").upper()
    if not 15 <= len(s) <= 34 or not s[:2].isalpha() or not s[2:4].isdigit():
        return False
    rearranged = s[4:] + s[:4]
    try:
        number = int("".join(str(int(c, 36)) for c in rearranged))
    except ValueError:
        return False
    return number % 97 == 1


def _shannon_bits_per_char(s: str) -> float:
    counts: dict[str, int] = {}
    for c in s:
        counts[c] = counts.get(c, 0) + 1
    n = len(s)
    return -sum(k / n * math.log2(k / n) for k in counts.values())


def _looks_random(s: str, min_classes: int = 2, min_entropy: float = 3.0) -> bool:
    classes = sum(
        (
            any(c.islower() for c in s),
            any(c.isupper() for c in s),
            any(c.isdigit() for c in s),
        )
    )
    return classes >= min_classes and _shannon_bits_per_char(s) >= min_entropy


# --------------------------------------------------------------------------- base class


class _Recognizer(PatternRecognizer):
    """PatternRecognizer with case-sensitive default flags and a stable name."""

    def __init__(
        self,
        entity: str,
        name: str,
        patterns: list[Pattern],
        context: list[str] | None = None,
    ) -> None:
        super().__init__(
            supported_entity=entity,
            name=name,
            patterns=patterns,
            context=context or [],
            supported_language="en",
            global_regex_flags=_FLAGS,
        )
        self._gs_name = name
        self._gs_compiled = [
            (p.name, p.regex, regex.compile(p.regex, flags=_FLAGS)) for p in patterns
        ]


class _GroupedNumberRecognizer(_Recognizer):
    """Finds digit/alnum runs split into groups and keeps the longest valid group prefix.

    ``4111 1111 1111 1111 123`` (card followed by a CVV) fails Luhn as a whole; the valid
    card is a prefix of its groups. Plain ``validate_result`` can only accept or reject the
    whole match, so this class overrides ``analyze`` and trims.
    """

    def _valid(self, compact: str) -> bool:
        raise NotImplementedError

    def analyze(
        self,
        text: str,
        entities: list[str],
        nlp_artifacts: Any = None,
        regex_flags: int | None = None,
    ) -> list[RecognizerResult]:
        results: list[RecognizerResult] = []
        rec_name = self._gs_name
        for pattern_name, pattern_rx, compiled in self._gs_compiled:
            for m in compiled.finditer(text):
                span = self._best_prefix(text, m.start(), m.end())
                if span is None:
                    continue
                results.append(
                    RecognizerResult(
                        entity_type=self.supported_entities[0],
                        start=span[0],
                        end=span[1],
                        score=EntityRecognizer.MAX_SCORE,
                        analysis_explanation=self.build_regex_explanation(
                            rec_name, pattern_name, pattern_rx, 1.0, True, _FLAGS
                        ),
                        recognition_metadata={
                            RecognizerResult.RECOGNIZER_NAME_KEY: rec_name,
                            RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: self.id,
                            "pattern": pattern_name,
                        },
                    )
                )
        return list(EntityRecognizer.remove_duplicates(results))

    def _best_prefix(self, text: str, start: int, end: int) -> tuple[int, int] | None:
        ends = [m.end() + start for m in re.finditer(r"[A-Za-z0-9]+", text[start:end])]
        for e in reversed(ends):
            compact = re.sub(r"[^A-Za-z0-9]", "", text[start:e])
            if self._valid(compact):
                return start, e
        return None


class _CardRecognizer(_GroupedNumberRecognizer):
    # Issuer prefixes: Visa, Mastercard, Amex, Diners, Discover, JCB (incl. 15-digit
    # 1800/2131), UnionPay, Maestro, Mir/Verve-like 8x. Random Luhn-valid numbers outside
    # these ranges (tracking numbers) are not cards.
    _IIN = re.compile(
        r"^(?:4|5[1-5]|2[2-7]|3[47]|3[068]|6(?:011|5|4[4-9]|22)|35|62|8[18]|1800|2131|"
        r"50(?:18|20|38)|6304|6759|676[1-3])"
    )

    def _valid(self, compact: str) -> bool:
        return (
            compact.isdigit()
            and 13 <= len(compact) <= 19
            and self._IIN.match(compact) is not None
            and luhn_valid(compact)
        )


class _IbanRecognizer(_GroupedNumberRecognizer):
    def _valid(self, compact: str) -> bool:
        return iban_valid(compact)


class _SsnRecognizer(_Recognizer):
    def validate_result(self, pattern_text: str) -> bool | None:
        d = re.sub(r"\D", "", pattern_text)
        if len(d) != 9 or d[:3] in ("000", "666") or d[0] == "9":
            return False
        if d[3:5] == "00" or d[5:] == "0000" or len(set(d)) == 1 or d == "123456789":
            return False
        return None  # keep the pattern score: bare 9-digit runs still need context


class _PhoneRecognizer(_Recognizer):
    _DATE = re.compile(r"^\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}$")

    def validate_result(self, pattern_text: str) -> bool | None:
        core = re.split(r"(?i)\s*(?:x|ext\.?)\s*\d", pattern_text)[0]
        digits = re.sub(r"\D", "", core)
        if not 7 <= len(digits) <= 15 or self._DATE.match(core.strip()):
            return False
        if len(set(digits)) <= 2:
            return False
        return None


class _IpRecognizer(_Recognizer):
    def validate_result(self, pattern_text: str) -> bool | None:
        try:
            addr = ipaddress.ip_address(pattern_text)
        except ValueError:
            return False
        if isinstance(addr, ipaddress.IPv6Address):
            groups = [g for g in pattern_text.split(":") if g]
            if len(groups) < 3 or not any(c.isdigit() for c in pattern_text):
                return False
        return True


class _SecretRecognizer(_Recognizer):
    """Provider-shaped secrets: the prefix is the evidence; the body must look random."""

    def __init__(
        self,
        entity: str,
        name: str,
        patterns: list[Pattern],
        context: list[str] | None = None,
        *,
        min_classes: int = 2,
        min_entropy: float = 3.0,
        body: str = r"[A-Za-z0-9]{8,}$",
    ) -> None:
        super().__init__(entity, name, patterns, context)
        self._min_classes = min_classes
        self._min_entropy = min_entropy
        self._body = re.compile(body)

    def validate_result(self, pattern_text: str) -> bool | None:
        m = self._body.search(pattern_text)
        tail = m.group(0) if m else pattern_text
        return _looks_random(tail, self._min_classes, self._min_entropy)


class _JwtRecognizer(_Recognizer):
    def validate_result(self, pattern_text: str) -> bool | None:
        head = pattern_text.split(".", 1)[0]
        try:
            decoded = base64.urlsafe_b64decode(head + "=" * (-len(head) % 4))
            obj = json.loads(decoded)
        except (binascii.Error, ValueError):
            return False
        return isinstance(obj, dict) and ("alg" in obj or "typ" in obj)


# Words that follow "password is" in benign text ("my password is not working").
_PASSWORD_STOPWORDS = frozenset(
    """
    a an the my your our their his her its this that these those it is was be been being
    not no none nothing never too very so also still just now currently already again
    same different wrong incorrect invalid correct right ok okay fine good bad weak strong
    expired expiring locked blocked reset changed updated required needed missing lost
    forgotten forgot unknown empty blank new old temporary temp default secure insecure
    working broken rejected accepted saved stored encrypted hashed visible hidden shown
    case sensitive long short complex simple hard easy set sent there here what which who
    how where when why if then than and or but because for from with without to of in on
    at by about into over under after before during until ready valid please help thanks
    different enough stronger weaker longer shorter managed handled protected policy
    requirements rules field box prompt manager managers change changes update updates
    expire expires reuse reused shared sharing required unchanged must should can cannot
    could would will shall may might need needs has have had contain contains containing
    include includes including require requires requiring match matches length minimum
    maximum characters chars at least only any all one two three four five six seven eight
    """.split()
)


class _ValueAfterCueRecognizer(_Recognizer):
    """Values given in context ("pwd: ...", "api key = ..."): reject benign continuations."""

    def __init__(
        self,
        entity: str,
        name: str,
        patterns: list[Pattern],
        context: list[str] | None = None,
        *,
        min_len: int = 4,
        need_random: bool = False,
    ) -> None:
        super().__init__(entity, name, patterns, context)
        self._min_len = min_len
        self._need_random = need_random

    def validate_result(self, pattern_text: str) -> bool | None:
        value = pattern_text.strip("\"'`")
        if len(value) < self._min_len or value.lower() in _PASSWORD_STOPWORDS:
            return False
        if re.fullmatch(r"<[A-Z_]+(?:_\d+|:[a-z]+:[^>]*)>|\*+|\[[A-Z_]+\]", value):
            return False  # already redacted
        if self._need_random and not _looks_random(value, 2, 2.5):
            return False
        return True


class _NameCueRecognizer(_Recognizer):
    _NOT_NAMES = frozenset(
        """
        Sir Madam Team Support All There Everyone Customer Service Sales Billing Admin
        Manager Hello Hi Hey Thanks Thank Regards Best Dear The A An I Me My We Our You Your
        Not Sure Just Here Back Writing Calling Trying Looking Still Again Today Tomorrow
        Monday Tuesday Wednesday Thursday Friday Saturday Sunday January February March
        April May June July August September October November December Mr Mrs Ms Dr Prof
        Google Amazon Apple Microsoft Windows Linux Python Chrome Firefox Safari Android
        Urgent Important Happy Sorry Glad New Old Re Fwd Order Invoice Account Version
        """.split()
    )

    def validate_result(self, pattern_text: str) -> bool | None:
        first = pattern_text.split()[0].rstrip(".,")
        if first in self._NOT_NAMES:
            return False
        return None


_FALLBACK_NAME = "GsNerNameFallbackRecognizer"


class _NerNameFallbackRecognizer(EntityRecognizer):
    """Full names that spaCy found but mislabelled (ORG/FAC/GPE) become PERSON.

    spaCy's small model knows common anglophone names; "Siegmund Baum" or "Megan Little"
    come back as FAC or ORG. A span of 2-4 capitalised words whose first word is not
    everyday English (top-2,000 list) and which has no organisation/place/calendar word is
    taken as a person, with a score just above the default threshold.
    """

    _ORG_WORDS = frozenset(
        """
        inc ltd llc gmbh ag sa plc corp co company corporation group bank university
        college school institute hospital clinic service services team support office
        store shop market airlines airways airport station church foundation agency
        department ministry council club association society fund partners holdings labs
        systems technologies solutions software cloud pay wallet street road avenue lane
        park square bridge river lake mountain county city state republic kingdom united
        north south east west new saint st fort monday tuesday wednesday thursday friday
        saturday sunday january february march april may june july august september october
        november december easter christmas thanksgiving halloween day eve week year
        edition pro max plus ultra mini lite premium enterprise api sdk cli
        """.split()
    )
    # Title case only: all-caps tokens ("IP", "SSN") are acronyms, not names.
    _WORD = regex.compile(r"^\p{Lu}\p{Ll}[\p{L}'’\-]*$")
    _PARTICLE = frozenset(
        "von van de del della da di le la du der den ten ter y zu dos das".split()
    )

    def __init__(self) -> None:
        super().__init__(
            supported_entities=["PERSON"],
            name=_FALLBACK_NAME,
            supported_language="en",
        )

    def load(self) -> None:  # nothing to load
        return None

    def analyze(
        self, text: str, entities: list[str], nlp_artifacts: Any = None
    ) -> list[RecognizerResult]:
        if nlp_artifacts is None or "PERSON" not in entities:
            return []
        out: list[RecognizerResult] = []
        for ent in nlp_artifacts.entities:
            if ent.label_ not in ("ORGANIZATION", "LOCATION"):
                continue
            words = ent.text.split()
            core = [w for w in words if w not in self._PARTICLE]
            if not 2 <= len(core) <= 4 or not all(self._WORD.match(w) for w in core):
                continue
            lower = [w.lower().strip("'’") for w in core]
            if lower[0] in COMMON_WORDS or any(
                part in self._ORG_WORDS for w in lower for part in w.split("-")
            ):
                continue
            out.append(
                RecognizerResult(
                    entity_type="PERSON",
                    start=ent.start_char,
                    end=ent.end_char,
                    score=0.55,
                    analysis_explanation=AnalysisExplanation(
                        recognizer=_FALLBACK_NAME,
                        original_score=0.55,
                        textual_explanation="capitalised NER span relabelled as PERSON",
                    ),
                    recognition_metadata={
                        RecognizerResult.RECOGNIZER_NAME_KEY: _FALLBACK_NAME,
                        RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: self.id,
                    },
                )
            )
        return out


# --------------------------------------------------------------------------- patterns

_NAME_WORD = r"\p{Lu}[\p{Ll}\p{Lu}'’\-]*\p{Ll}[\p{Ll}'’\-]*"
_NAME_PARTICLE = r"(?:von|van|de|del|della|da|di|le|la|du|der|den|ten|ter|y|zu|dos|das|bin|al)"
_NAME = rf"{_NAME_WORD}(?:[ \t]+(?:{_NAME_PARTICLE}[ \t]+)*{_NAME_WORD}){{0,3}}"

# USPS Publication 28 street suffixes (common forms and abbreviations) plus UK/AU forms.
_STREET_SUFFIXES = """
Alley Aly Annex Anx Arcade Arc Avenue Ave Av Bayou Beach Bend Bluff Bluffs Bottom Boulevard
Blvd Branch Br Bridge Brg Brook Brooks Burg Burgs Bypass Byp Camp Canyon Cape Causeway
Center Ctr Centers Circle Cir Circles Cliff Cliffs Club Common Commons Corner Corners Course
Court Ct Courts Cove Coves Creek Crk Crescent Cres Crest Crossing Xing Crossroad Curve Dale
Dam Divide Drive Dr Drives Estate Estates Expressway Expy Extension Ext Extensions Fall
Falls Ferry Field Fields Flat Flats Ford Fords Forest Forge Forges Fork Forks Fort Freeway
Fwy Garden Gardens Gdns Gateway Glen Glens Green Greens Grove Grv Groves Harbor Harbors
Haven Heights Hts Highway Hwy Hill Hills Hollow Inlet Island Islands Isle Junction Jct
Junctions Key Keys Knoll Knolls Lake Lakes Land Landing Lane Ln Light Lights Loaf Lock
Locks Lodge Loop Mall Manor Manors Meadow Meadows Mews Mill Mills Mission Motorway Mount
Mountain Mtn Mountains Neck Orchard Oval Overpass Park Parks Parkway Pkwy Parkways Pass
Passage Path Pike Pine Pines Place Pl Plain Plains Plaza Plz Point Pt Points Port Ports
Prairie Radial Ramp Ranch Rapid Rapids Rest Ridge Ridges River Road Rd Roads Route Rte Row
Rue Run Shoal Shoals Shore Shores Skyway Spring Springs Spur Spurs Square Sq Squares
Station Sta Stravenue Stream Street St Streets Summit Terrace Ter Throughway Trace Track
Trafficway Trail Trl Tunnel Turnpike Underpass Union Unions Valley Valleys Via Viaduct View
Views Village Villages Ville Vista Walk Walks Wall Way Ways Well Wells Close Wynd Gate Grange
Parade Promenade Quay Esplanade Drove Dene Chase Croft Rise Vale Wharf Yard Alleyway Wade
End Circuit Boulevarde Fairway Glade Mead Nook
""".split()
_SUFFIX_ALT = "|".join(sorted({s for s in _STREET_SUFFIXES}, key=len, reverse=True))
_UNIT = (
    r"(?:,?[ \t]*(?:Apt|Apartment|Suite|Ste|Unit|Flat|Floor|Fl|Room|Rm|#)\.?[ \t]*"
    r"#?[A-Za-z0-9\-]{1,6})"
)
_CITY_TAIL = r"(?:,?[ \t]*\n?[ \t]*\p{Lu}[\p{L}.'\- ]{1,30},[ \t]*[A-Z]{2}[ \t]+\d{5}(?:-\d{4})?)"
_EN_STREET = (
    rf"(?<![\w/.-])(?:{_UNIT}[ \t]*[,\n][ \t]*)?\d{{1,6}}[A-Za-z]?(?:/\d{{1,5}})?,?[ \t]+"
    rf"(?:(?:{_NAME_WORD}|\d+(?:st|nd|rd|th))[ \t]+){{1,4}}(?i:{_SUFFIX_ALT})\b\.?"
    rf"{_UNIT}?{_CITY_TAIL}?"
)
_UNIT_FIRST = (  # en_GB "Flat 17\nJanet Meadows"
    rf"(?<![\w])(?:Flat|Apartment|Apt|Unit|Suite|Studio)\.?[ \t]*\d{{1,5}}[A-Za-z]?[ \t]*"
    rf"[,\n][ \t]*"
    rf"(?:\d{{1,5}}[ \t]+)?(?:{_NAME_WORD}[ \t]+){{1,4}}(?i:{_SUFFIX_ALT})\b"
)
_DE_NL_SUFFIX = (
    r"(?i:straße|strasse|str\.|weg|gasse|allee|ring|platz|damm|ufer|chaussee|steig|pfad|"
    r"markt|berg|hof|straat|laan|plein|gracht|kade|singel|boulevard|dijk|pad|park|steeg|"
    r"dreef|erf|wal|veld|weide|haven|hoven|burg|dam|kamp|akker|baan|wijk|zijde|brink)"
)
_DE_NL_STREET = (
    rf"(?<![\w])\p{{Lu}}[\p{{L}}\-]*{_DE_NL_SUFFIX}[ \t]+\d{{1,4}}(?:[ \t]?[-/][ \t]?\d{{1,4}})?"
    rf"[a-z]?\b|(?<![\w])\p{{Lu}}[\p{{L}}\-]+[ \t](?:Straße|Strasse|Str\.|Weg|Gasse|Allee|"
    rf"Platz|Ring|Damm)[ \t]+\d{{1,4}}[a-z]?\b"
)
_ROMANCE_PREFIX = (
    r"(?:rue|avenue|av\.|boulevard|bd|place|chemin|allée|impasse|quai|route|cours|"
    r"square|passage|Calle|C/|Avenida|Avda\.?|Paseo|Plaza|Camino|Ronda|Callejón|Cuesta|"
    r"Urbanización|Pasaje|Carretera|Vía|Rambla|Glorieta|Alameda|Acceso|Cañada|Travesía|"
    r"Via|Viale|Piazza|Piazzale|Corso|Vicolo|Largo|Contrada|Rotonda|Strada|Stretto|Borgo|"
    r"Incrocio|Canale|Vial|Sector|Senda|Partida|Pasadizo|Ruta|Calleja|Circunvalación|"
    r"Camino|Entrada|Polígono|Plazuela|Prolongación|Plazoleta|Paraje|Callejuela|Gran)"
)
_FR_STREET = (
    rf"(?<![\w])\d{{1,4}}(?:[ \t]?(?:bis|ter))?,?[ \t]+(?i:{_ROMANCE_PREFIX})[ \t]+"
    rf"(?:(?:d['’]|de[ \t]+la[ \t]+|de[ \t]+|du[ \t]+|des[ \t]+|l['’])?{_NAME_WORD}[ \t]?){{1,4}}"
)
_FR_STREET_NO_NUMBER = (
    r"(?<![\w])(?:rue|avenue|boulevard|impasse|allée|chemin|place|quai)[ \t]+"
    rf"(?:(?:d['’]|de[ \t]+la[ \t]+|de[ \t]+|du[ \t]+|des[ \t]+|l['’])?{_NAME_WORD}[ \t]?){{1,3}}"
)
_ES_IT_STREET = (
    rf"(?<![\w])(?i:{_ROMANCE_PREFIX})[ \t]+(?:(?:de|del|de[ \t]+la|de[ \t]+los|dei|della|"
    rf"delle|di)[ \t]+)?(?:{_NAME_WORD}[ \t]+){{0,3}}{_NAME_WORD},?[ \t]+\d{{1,5}}\b"
    rf"(?:[ \t]+(?:Apt\.|Puerta|Piso|Appartamento|Piano|Interno)[ \t]+\d{{1,4}})?"
)

_CRED_CUE_RX = (
    r"(?<=(?i:\b(?:pass(?:word|wd|code|phrase)?|pwd|pw)\b)[\"'`]?(?:[ \t]+(?:for|to|on|of)"
    r"(?:[ \t]+[\w@.\-]+){1,3})?[ \t]*(?:(?:(?i:is|was|will[ \t]+be|should[ \t]+be|"
    r"has[ \t]+been|now|currently|set[ \t]+to|changed[ \t]+to|reads)|[:=]|->|=>)[ \t]*){1,3}"
    r"[\"'`]?)"
)
# Value: non-space run not ending in sentence punctuation or a closing quote.
_CRED_VALUE_RX = r"[^\s\"'`]*[^\s\"'`.,;:]"

_KEY_CUE_RX = (
    r"(?<=(?i:\b(?:api[_\- ]?key|api[_\- ]?token|access[_\- ]?token|auth[_\- ]?token|"
    r"secret[_\- ]?key|client[_\- ]?secret|secret|token|bearer|x-api-key|"
    r"aws_secret_access_key|private[_\- ]?token)\b)[ \t]*(?:(?:(?i:is|was|:|=|=>))[ \t]*){0,2}"
    r"[\"'`]?)"
)


def _p(name: str, rx: str, score: float) -> Pattern:
    return Pattern(name=name, regex=rx, score=score)


def _phone() -> _Recognizer:
    sep = r"[ \t.\-]"
    ext = r"(?:[ \t]*(?:x|ext\.?|extension)[ \t]*\d{1,6})?"
    patterns = [
        _p(
            "intl",
            rf"(?<![\w+])\+\d{{1,3}}{sep}?(?:\(0\){sep}?)?(?:\(\d{{1,5}}\){sep}?)?"
            rf"\d{{1,5}}(?:{sep}?\d{{1,5}}){{0,5}}{ext}(?![\w])",
            0.7,
        ),
        _p(
            "nanp",
            rf"(?<![\w+])(?:(?:1|001){sep}?)?(?:\(\d{{3}}\)|\d{{3}}){sep}?\d{{3}}{sep}\d{{4}}"
            rf"{ext}(?![\w])",
            0.6,
        ),
        _p("local", r"(?<![\w+#/.,\-])\d{3,4}[ \t.\-]\d{4}(?![\w]|[.,\-]\d)", 0.3),
        _p("bare", r"(?<![\w+#/.,\-])\d{8,12}(?![\w]|[.,\-]\d)", 0.3),
        _p(
            "trunk_paren",
            r"(?<![\w+#/])\(0\d{1,4}\)[ \t\-]?\d{3,8}(?:[ \t\-]\d{2,4})?(?![\w])",
            0.6,
        ),
        _p("trunk_space", r"(?<![\w+#/.\-])0\d{2,4} \d{6,8}(?![\w]|[.\-]\d)", 0.5),
        _p("trunk_dash", r"(?<![\w+#/.\-])0\d{2,4}-\d{6,8}(?![\w]|[.\-]\d)", 0.55),
        _p("nanp_bare", r"(?<![\w+#/])(?:1)?[2-9]\d{2}[2-9]\d{6}(?![\w])", 0.35),
        _p(
            "national",
            rf"(?<![\w+#/])\(?0\d{{1,4}}\)?(?:{sep}|/)?\d{{2,8}}(?:{sep}?\d{{2,4}}){{0,4}}"
            rf"(?![\w])",
            0.4,
        ),
    ]
    return _PhoneRecognizer(
        "PHONE_NUMBER",
        "GsPhoneRecognizer",
        patterns,
        context=[
            "phone",
            "call",
            "tel",
            "telephone",
            "mobile",
            "cell",
            "number",
            "reach",
            "text",
            "whatsapp",
            "fax",
            "contact",
            "ring",
            "sms",
            "landline",
            "dial",
        ],
    )


def _secrets() -> list[_Recognizer]:
    body = r"[A-Za-z0-9_\-]{8,}$"
    return [
        _SecretRecognizer(
            "OPENAI_API_KEY",
            "GsOpenAiKeyRecognizer",
            [
                _p(
                    "openai",
                    r"(?<![\w-])sk-(?!ant-)(?:proj-|svcacct-|admin-|None-)?[A-Za-z0-9_\-]{20,}",
                    0.9,
                )
            ],
            body=body,
        ),
        _SecretRecognizer(
            "ANTHROPIC_API_KEY",
            "GsAnthropicKeyRecognizer",
            [_p("anthropic", r"(?<![\w-])sk-ant-[A-Za-z0-9_\-]{20,}", 0.95)],
            body=body,
        ),
        _SecretRecognizer(
            "AWS_ACCESS_KEY",
            "GsAwsAccessKeyRecognizer",
            [
                _p(
                    "aws_akid",
                    r"(?<![A-Za-z0-9])(?:AKIA|ASIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|ABIA|ACCA)"
                    r"[A-Z0-9]{16}(?![A-Za-z0-9])",
                    0.9,
                )
            ],
            min_classes=1,
            min_entropy=2.5,
            body=r"[A-Z0-9]{16}$",
        ),
        _SecretRecognizer(
            "AWS_SECRET_KEY",
            "GsAwsSecretKeyRecognizer",
            [_p("aws_secret", r"(?<![A-Za-z0-9/+=])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])", 0.5)],
            context=["aws", "secret", "access", "key"],
            min_classes=3,
            min_entropy=4.0,
            body=r"[A-Za-z0-9/+]{40}$",
        ),
        _SecretRecognizer(
            "GITHUB_TOKEN",
            "GsGithubTokenRecognizer",
            [
                _p("gh_classic", r"(?<![\w])(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{30,}", 0.95),
                _p("gh_fine", r"(?<![\w])github_pat_[A-Za-z0-9_]{22,}", 0.95),
            ],
            body=r"[A-Za-z0-9]{20,}",
        ),
        _SecretRecognizer(
            "SLACK_TOKEN",
            "GsSlackTokenRecognizer",
            [
                _p("slack", r"(?<![\w-])xox[abposre]-[A-Za-z0-9\-]{10,}", 0.95),
                _p("slack_app", r"(?<![\w-])xapp-\d-[A-Za-z0-9\-]{10,}", 0.95),
                _p(
                    "slack_webhook",
                    r"https://hooks\.slack\.com/services/[A-Za-z0-9_/\-]{20,}",
                    0.95,
                ),
            ],
            min_classes=1,
            body=r"[A-Za-z0-9]{6,}$",
        ),
        _SecretRecognizer(
            "STRIPE_KEY",
            "GsStripeKeyRecognizer",
            [
                _p("stripe", r"(?<![\w])(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{10,}", 0.95),
                _p("stripe_whsec", r"(?<![\w])whsec_[A-Za-z0-9]{16,}", 0.95),
            ],
        ),
        _JwtRecognizer(
            "JWT",
            "GsJwtRecognizer",
            [
                _p(
                    "jwt",
                    r"(?<![\w-])eyJ[A-Za-z0-9_\-]{5,}\.eyJ[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]{8,}",
                    0.9,
                )
            ],
        ),
        _Recognizer(
            "PRIVATE_KEY",
            "GsPrivateKeyRecognizer",
            [
                _p(
                    "pem",
                    r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----"
                    r"(?:.*?-----END[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|[A-Za-z0-9+/=\s:\-,]*)",
                    1.0,
                )
            ],
        ),
        _ValueAfterCueRecognizer(
            "API_KEY",
            "GsGenericSecretRecognizer",
            [_p("secret_in_context", _KEY_CUE_RX + r"[A-Za-z0-9_\-./+=]{16,}", 0.8)],
            min_len=16,
            need_random=True,
        ),
        _ValueAfterCueRecognizer(
            "PASSWORD",
            "GsPasswordRecognizer",
            [_p("password_in_context", _CRED_CUE_RX + _CRED_VALUE_RX, 0.8)],
            min_len=4,
        ),
        _ValueAfterCueRecognizer(
            "PASSWORD",
            "GsUrlCredentialRecognizer",
            [
                _p(
                    "url_userinfo",
                    r"(?<=\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s:/@]{1,64}:)[^\s/]{1,128}"
                    r"(?=@[A-Za-z0-9.\-]+(?::\d+)?(?:[/?#\s\"'`]|$))",
                    0.9,
                )
            ],
            min_len=1,
        ),
        _ValueAfterCueRecognizer(
            "PASSWORD",
            "GsBarePasswordRecognizer",
            [
                _p(
                    "password_after_word",
                    r"(?<=(?i:\b(?:pass(?:word|wd|code|phrase)?|pwd|pw)\b)[ \t]+)" + _CRED_VALUE_RX,
                    0.7,
                )
            ],
            min_len=6,
            need_random=True,
        ),
    ]


def build_recognizers(entities: Iterable[str]) -> list[EntityRecognizer]:
    """All guardstream recognizers for ``entities`` (unknown names are ignored)."""
    wanted = set(entities)
    recognizers: list[EntityRecognizer] = [
        EmailRecognizer(),  # its tldextract is the offline one (see offline.py)
        _phone(),
        _CardRecognizer(
            "CREDIT_CARD",
            "GsCreditCardRecognizer",
            [_p("card", r"(?<![\w.,\-])\d(?:[ \t.\-]?\d){12,22}(?![\w])", 1.0)],
            context=["card", "credit", "visa", "mastercard", "amex", "debit"],
        ),
        _SsnRecognizer(
            "US_SSN",
            "GsSsnRecognizer",
            [
                _p("ssn_grouped", r"(?<![\w\-.])\d{3}([- ])\d{2}\1\d{4}(?![\w\-])", 0.6),
                _p("ssn_bare", r"(?<![\w#\-.])\d{9}(?![\w\-])", 0.3),
            ],
            context=["ssn", "social", "security", "ss#", "taxpayer", "tin"],
        ),
        _IbanRecognizer(
            "IBAN_CODE",
            "GsIbanRecognizer",
            [
                _p(
                    "iban",
                    r"(?<![\w])[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]{4}){2,7}(?:[ ]?[A-Z0-9]{1,3})?(?![\w])",
                    1.0,
                )
            ],
        ),
        _IpRecognizer(
            "IP_ADDRESS",
            "GsIpRecognizer",
            [
                _p(
                    "ipv4",
                    r"(?<![\w.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}"
                    r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?![\w]|\.\d)",
                    0.6,
                ),
                _p(
                    "ipv6",
                    r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}"
                    r"(?:%[A-Za-z0-9]+)?(?![\w:])",
                    0.6,
                ),
            ],
        ),
        *_secrets(),
        _NameCueRecognizer(
            "PERSON",
            "GsNameCueRecognizer",
            [
                _p(
                    "name_after_cue",
                    r"(?<=(?i:\bmy[ \t]+name[ \t]+is|\bname[ \t]*:|\bsigned[ \t]*,?|"
                    r"\b(?:kind[ \t]+|best[ \t]+|warm[ \t]+)?regards[ \t]*,|\bsincerely[ \t]*,|"
                    r"\bthanks[ \t]*,|\bcheers[ \t]*,|\bcall[ \t]+me|\bcardholder[ \t]*:?|"
                    r"\bthis[ \t]+is|\bi[ \t]+am|\bi['’]m|\bdear|\bhi|\bhello|\bhey|"
                    r"\bcc:?|\battn:?|\battention:?|"
                    r"\b(?:ship|deliver|send|address(?:ed)?)[ \t]+(?:it[ \t]+)?to|"
                    r"\bc/o|\b(?:account|order|card|ticket)[ \t]+holder[ \t]*:?|"
                    r"\bon[ \t]+behalf[ \t]+of|"
                    r"\bspeak[ \t]+(?:to|with)|\bcontact[ \t]+person[ \t]*:?|\bfrom[ \t]*:)"
                    r"\s+(?:(?:Mr|Mrs|Ms|Miss|Dr|Prof)\.?[ \t]+)?)" + _NAME,
                    0.6,
                ),
                _p(
                    "name_before_cue",
                    _NAME + r"(?=[ \t]+(?:here|speaking)\b)",
                    0.6,
                ),
                _p(
                    "name_after_title",
                    r"(?<=\b(?:Mr|Mrs|Ms|Miss|Dr|Prof)\.?[ \t]+)" + _NAME,
                    0.6,
                ),
            ],
        ),
        _Recognizer(
            "STREET_ADDRESS",
            "GsStreetAddressRecognizer",
            [
                _p("en_street", _EN_STREET, 0.6),
                _p("unit_first", _UNIT_FIRST, 0.6),
                _p("de_nl_street", _DE_NL_STREET, 0.6),
                _p("fr_street", _FR_STREET, 0.6),
                _p("fr_street_no_number", _FR_STREET_NO_NUMBER, 0.5),
                _p("es_it_street", _ES_IT_STREET, 0.6),
            ],
            context=["address", "live", "ship", "deliver", "street", "billing", "mail"],
        ),
    ]
    if wanted & set(NER_ENTITIES):
        recognizers.append(
            SpacyRecognizer(
                supported_language="en",
                supported_entities=[e for e in NER_ENTITIES if e in wanted],
            )
        )
        recognizers.append(_NerNameFallbackRecognizer())
    return [r for r in recognizers if set(r.supported_entities) & wanted]
