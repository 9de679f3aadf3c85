"""Layer 1: weighted regular expressions over normalised text.

Why: the cheapest layer catches the canonical phrasings ("ignore previous instructions",
"<|im_start|>system", DAN) in every language we list, and names the attack class, which a
binary classifier cannot. Each rule has a weight; several weak hits combine by noisy-OR
(1 - prod(1 - w)), so one ambiguous phrase ("developer mode") stays below the threshold
while two together cross it. Rules are written against ``normalize()`` output (casefolded,
NFKC, single spaces) and deliberately require an instruction-like *object* ("instructions",
"rules", "system prompt"), so "ignore whitespace in git diff" does not match.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from guardstream.text.prefilter import Prefiltered, PrefilterSet

__all__ = [
    "CATEGORIES",
    "HeuristicHit",
    "combine",
    "match_rules",
]

CATEGORIES = (
    "instruction_override",
    "system_prompt_extraction",
    "role_play_jailbreak",
    "delimiter_injection",
    "encoded_payload",
    "multilingual",
    "markdown_exfiltration",
)


@dataclass(frozen=True, slots=True)
class _Rule:
    category: str
    weight: float
    pattern: re.Pattern[str]
    # The same pattern with literals one of which any match contains: on ordinary text a
    # few substring checks rule out most rules without running their regex.
    prefilter: Prefiltered


@dataclass(frozen=True, slots=True)
class HeuristicHit:
    """One rule that matched: its category and weight (never the matched text: no content)."""

    category: str
    weight: float


def _r(category: str, weight: float, pattern: str) -> _Rule:
    compiled = re.compile(pattern, re.MULTILINE | re.DOTALL)
    return _Rule(category, weight, compiled, Prefiltered.of(compiled))


_IGNORE = r"(?:ignore|disregard|forget|overrid(?:e|ing)|bypass|neglect|discard|abandon|" \
    r"throw away|set aside|do not follow|don'?t follow|stop following|no longer follow|" \
    r"never ?mind)"
_PRIOR = r"(?:previous|prior|above|earlier|preceding|former|initial|original|old|existing|" \
    r"current|default|given|your|all|any|every|system|developer|safety|" \
    r"content|ethical|openai'?s?|programmed|pre-?set|built-?in|following)"
_RULES = r"(?:instructions?|prompts?|rules?|directions?|directives?|guidelines?|commands?|" \
    r"constraints?|programming|polic(?:y|ies)|restrictions?|limitations?|filters?|" \
    r"guardrails?|safeguards?|conditioning|system messages?|context|moral(?:s|ity)?|ethics)"
_REVEAL = r"(?:repeat|print|output|show|reveal|display|tell|give|dump|leak|disclose|share|" \
    r"expose|recite|echo|type out|copy|spell|list|return|provide|paste|render|quote|translate|" \
    r"encode)"
_HIDDEN_TEXT = r"(?:system prompt|system message|system instructions?|" \
    r"initial (?:prompt|instructions?)|" \
    r"(?:hidden|secret|internal|original|first|initial|starting|developer|confidential) " \
    r"(?:prompt|instructions?|rules|message|guidelines|configuration|directives?)|" \
    r"pre-?prompt|meta-?prompt|developer message|your (?:instructions|prompt|rules|directives|" \
    r"configuration|guidelines|programming)|instructions? (?:above|before this|prior to this)|" \
    r"initialization)"
_UNRESTRICTED = r"(?:unrestricted|unfiltered|uncensored|unlimited|unbound|unchained|jailbroken|" \
    r"amoral|immoral|unethical|no (?:ethical |moral |safety |content )?" \
    r"(?:restrictions|limits|limitations|rules|" \
    r"filters|guidelines|boundaries|censorship|morals|ethics)|without (?:any )?(?:restrictions|" \
    r"limits|limitations|rules|filters|filtering|guidelines|censorship|morals|ethics|" \
    r"boundaries)|free (?:of|from) (?:all |any )?(?:restrictions|rules|limits|guidelines|" \
    r"policies)|broken free|doesn'?t have to (?:follow|abide)|does not have to (?:follow|abide)|" \
    r"not bound by)"

_RULES_LIST: tuple[_Rule, ...] = (
    # --- instruction override ---------------------------------------------------------
    _r("instruction_override", 0.95,
       rf"\b{_IGNORE}\b\W+(?:\w+\W+){{0,2}}?{_PRIOR}\W+(?:[\w'-]+\W+){{0,2}}?{_RULES}\b"),
    # Letter-spaced text joined back by despace() has no word boundaries left.
    _r("instruction_override", 0.9,
       r"(?:ignore|disregard|forget)(?:all|any|the|your)*(?:previous|prior|above|earlier)"
       r"(?:instructions?|rules|prompts?|directions|guidelines)"),
    _r("system_prompt_extraction", 0.9,
       r"(?:reveal|show|print|repeat|output)(?:me)?(?:your|the)(?:systemprompt|"
       r"initialinstructions|hiddeninstructions)"),
    _r("instruction_override", 0.45,
       rf"\b{_IGNORE}\b\W+(?:the|these|those|my|this)\W+(?:\w+\W+)?{_RULES}\b"),
    _r("instruction_override", 0.9,
       rf"\b{_IGNORE} (?:all |everything |anything )?(?:(?:that )?(?:was |you were |i )?"
       r"(?:said|told|written|stated|given|mentioned) )?(?:above|before|previously|so far|"
       r"earlier|up to (?:now|this point))\b"),
    _r("instruction_override", 0.9,
       r"\b(?:forget|ignore|disregard) (?:about )?(?:everything|all(?: of)? (?:that|this)|all)"
       r" (?:you(?:'ve| have)? (?:been|were) (?:told|taught|instructed|programmed))"),
    _r("instruction_override", 0.85,
       rf"\b(?:previous|prior|above|earlier|old|original|all) {_RULES} (?:are|is|were) (?:now )?"
       r"(?:void|cancel(?:l)?ed|revoked|obsolete|invalid|null|no longer (?:valid|apply|"
       r"applicable|relevant)|overridden|suspended|lifted|disabled|a test)"),
    _r("instruction_override", 0.6,
       r"(?:^|\n|[.!:] )(?:new|updated|real|actual|true|revised) (?:instructions?|rules|"
       r"directives?|task|objective|system prompt|policy)\s*(?::|are|is)\s"),
    _r("instruction_override", 0.5,
       r"\b(?:system override|admin override|override (?:mode|code)|sudo mode|god mode|"
       r"root access granted|authori[sz]ation (?:code|level)|maintenance mode)\b"),
    _r("instruction_override", 0.7,
       r"\b(?:from now on|henceforth|for the rest of this conversation),? (?:you will|you must|"
       r"you are going to|you'?ll) (?:ignore|disregard|not follow|answer (?:everything|all|any)|"
       r"obey|comply)"),
    _r("instruction_override", 0.4,
       r"\bignore (?:any|all|every) (?:and all )?(?:(?:previous|prior|following|other) )+"),
    _r("instruction_override", 0.7,
       r"\b(?:your|the) (?:real|actual|true|new|only) (?:task|job|goal|objective|purpose|mission|"
       r"instructions?) (?:is|are|now is)\b"),
    _r("instruction_override", 0.7,
       r"\b(?:rules|restrictions|guidelines|filters|policies|safety rules|regles|reglas|regeln|"
       r"regole|regras)(?: de securite| de seguridad| de seguranca| di sicurezza)? "
       r"(?:do not|don'?t|"
       r"no longer|ne s'appliquent|no se aplican|gelten nicht|non si applicano|nao se aplicam)"
       r"(?: \w+){0,2} ?(?:apply|pas|mas|mehr)?"),
    _r("instruction_override", 0.75,
       rf"\b{_RULES},? (?:they |which |that )?(?:(?:do not|don'?t|no longer|now longer|does not|"
       r"doesn'?t) (?:apply|matter|count)|are (?:now )?(?:irrelevant|suspended|lifted))"),
    _r("multilingual", 0.75,
       r"\b(?:(?:reglas|normas|restricciones)(?: de seguridad)? no (?:se )?aplican|"
       r"(?:richtlinien|regeln|vorgaben|beschrankungen)\w* (?:hier )?(?:gelten )?nicht"
       r"(?: mehr)? (?:gelten|mehr)|regole(?: di sicurezza)? non (?:si )?applicano|"
       r"regras(?: de seguranca)? nao (?:se )?aplicam)"),
    _r("multilingual", 0.85,
       r"\b(?:revele|montre|affiche|donne|repete|ecris|revela|muestra|muestrame|dime|repite|"
       r"escribe|zeig|gib|nenne|wiederhole|mostra|rivela|ripeti|mostre|revele|repita)\w*\b.{0,40}"
       r"\b(?:consignes|instructions|prompt|instrucciones|mensaje|anweisungen|instruktionen|"
       r"istruzioni|instrucoes) (?:systeme|du systeme|del sistema|de sistema|initiales|iniciales|"
       r"cachees|ocultas|des systems|di sistema|iniziali|nascoste|do sistema|iniciais)"),
    _r("system_prompt_extraction", 0.7,
       r"\b(?:print|reveal|show|give|tell|output|leak|dump|send|share)\b.{0,30}\b(?:api ?keys?|"
       r"passwords?|credentials|secrets?|tokens?|private keys?)\b.{0,40}\b(?:your|the) "
       r"(?:context|system|memory|instructions|prompt|config|configuration|environment)"),
    # --- system prompt extraction -----------------------------------------------------
    _r("system_prompt_extraction", 0.9,
       rf"\b{_REVEAL}\b(?:\W+\w+){{0,5}}?\W+{_HIDDEN_TEXT}"),
    _r("system_prompt_extraction", 0.9,
       r"\bwhat (?:were|was|are|is) (?:you|your) (?:(?:initially|originally|first|secretly) )?"
       r"(?:told|instructed|programmed|given|initial instructions|instructions|system prompt|"
       r"original instructions|hidden instructions|rules)\b"),
    _r("system_prompt_extraction", 0.85,
       r"\b(?:repeat|print|output|recite|echo) (?:back )?(?:all |everything |the (?:full |entire )?"
       r"(?:text|words|content|conversation)|all the words|the (?:first|previous|above))"
       r"(?:\W+\w+){0,6}?\W+(?:above|before|prior|so far|previous messages|verbatim|"
       r"in a (?:txt |text )?code ?block|starting (?:with|from)|including (?:initial|everything))"),
    _r("system_prompt_extraction", 0.9,
       r"\b(?:repeat|print|output|recite|echo|copy|dump|show|reveal|display)\b(?:\W+\w+){0,4}?"
       r"\W+(?:text|words|everything|content|messages?) (?:above|before this|prior to this)"),
    _r("system_prompt_extraction", 0.85,
       r"\b(?:repeat|print|output|recite|echo|copy|dump|show|reveal|display)\b "
       r"(?:back )?(?:the |all )?"
       r"(?:above|previous|preceding|prior|earlier|initial) (?:text|words|content|instructions?|"
       r"messages?|prompt|lines)"),
    _r("system_prompt_extraction", 0.7,
       r"\b(?:output|repeat|print|show)\b.{0,40}\bstarting (?:with|from) [\"']?you are\b"),
    _r("system_prompt_extraction", 0.55,
       r"\byour (?:system prompt|initial instructions|hidden instructions|"
       r"developer message|pre-?prompt)\b"),
    # --- role-play jailbreaks -----------------------------------------------------------
    _r("role_play_jailbreak", 0.95, r"\bdo anything now\b"),
    _r("role_play_jailbreak", 0.9,
       r"\b(?:dan|developer|dev|jailbreak|jailbroken|god|evil|unrestricted|uncensored|chaos|"
       r"opposite|anarchy|unfiltered|dude|stan|aim|mongo tom|kevin|alphabreak|dark|"
       r"unlocked) mode (?:is )?(?:now )?(?:enabled|activated|engaged|unlocked)\b"),
    _r("role_play_jailbreak", 0.6,
       r"\b(?:enable|activate|enter|switch to|turn on) (?:dan|jailbreak|god|"
       r"unrestricted|uncensored|evil) mode\b"),
    _r("role_play_jailbreak", 0.9,
       rf"\b(?:you are|you're|you will be|act as|acting as|pretend(?: to be| you are)?|"
       rf"roleplay as|role-play as|simulate|become|behave as|respond as|play the role of|"
       rf"you'?ll be|you are going to be|imagine you are)\b.{{0,80}}?\b{_UNRESTRICTED}"),
    _r("role_play_jailbreak", 0.85,
       r"\b(?:ignore|bypass|violate|break|disregard|circumvent|override|disable|turn off|"
       r"remove|without)\b.{0,30}\b(?:openai|anthropic|content|safety|ethical|moral|usage)"
       r" ?(?:polic(?:y|ies)|guidelines|filters?|restrictions|rules|protocols|settings|"
       r"safeguards|alignment|training)\b"),
    _r("role_play_jailbreak", 0.7,
       r"\b(?:never|must not|cannot|can'?t|won'?t|will not|do not|don'?t|shall not)"
       r" (?:ever )?(?:refuse|decline|say (?:no|sorry|that you can'?t)|reject)\b"
       r".{0,60}\b(?:request|question|anything|prompt|answer|respond)"),
    _r("role_play_jailbreak", 0.6,
       r"\b(?:stay in character|break character|\[?🔓|jailbreak\]|\[jailbroken\]|"
       r"\(🔓developer mode output\)|classic\] ?and|\banti-?dan\b|dan:|as dan\b|you are dan\b)"),
    _r("role_play_jailbreak", 0.4,
       r"\b(?:hypothetical|fictional|imaginary) (?:ai|model|chatbot|language model)\b"),
    _r("role_play_jailbreak", 0.3, r"\bdeveloper mode\b"),
    # --- delimiter / fake role injection -----------------------------------------------
    _r("delimiter_injection", 0.95, r"<\|(?:im_start|start_header_id)\|>\s*(?:system|assistant)"),
    _r("delimiter_injection", 0.45,
       r"<\|(?:im_start|im_end|endoftext|system|eot_id|end_header_id|assistant|user)\|>"),
    _r("delimiter_injection", 0.85, r"\[inst\].{0,400}?(?:<<sys>>|\[/inst\])|<<sys>>"),
    _r("delimiter_injection", 0.4, r"\[/?inst\]"),
    _r("delimiter_injection", 0.75,
       r"(?:^|\n)\s*(?:#{2,}|\*\*|\[|<|-{3,}|={3,})\s*(?:system|admin|developer|root)"
       r"(?: (?:prompt|message|instructions?|override|update|note))?"
       r"\s*(?:\]|>|\*\*|:|#{2,}|-{3,})"),
    _r("delimiter_injection", 0.65, r"</?(?:system|sys|admin|instructions?)>"),
    _r("delimiter_injection", 0.45, r"</(?:user|human|context|document|input|data)>"),
    _r("delimiter_injection", 0.55,
       r"(?:^|\n)\s*(?:assistant|ai|chatgpt|gpt|bot|model)\s*:\s*(?:sure|okay|ok|certainly|"
       r"of course|absolutely|yes)\b"),
    _r("delimiter_injection", 0.35, r"\n\s*(?:assistant|system)\s*:"),
    _r("delimiter_injection", 0.7,
       r"(?:end of|---\s*end)\s+(?:user )?(?:input|prompt|context|document|instructions)"
       r".{0,80}?(?:system|new instructions|override|ignore)"),
    _r("delimiter_injection", 0.3, r"\"role\"\s*:\s*\"system\""),
    _r("delimiter_injection", 0.5, r"<!--.{0,200}?(?:ignore|instruction|system|assistant|ai )"),
    # --- encoded payload hints -----------------------------------------------------------
    _r("encoded_payload", 0.6,
       r"\b(?:decode|decrypt|decipher|translate|convert|unscramble|reverse)\b.{0,40}"
       r"\b(?:and|then)\b.{0,20}\b(?:follow|execute|obey|do|run|comply|act on|perform)\b"),
    # --- markdown / html exfiltration ----------------------------------------------------
    _r("markdown_exfiltration", 0.9,
       r"(?:!\[[^\]\n]*\]\(|<img[^>]{0,200}?src\s*=\s*[\"']?)\s*(?:https?:)?//[^\s)\"'>]*[?&#/=]"
       r"[^\s)\"'>]*(?:\{\{?[^}]*\}|\[[^\]]*\]|\$[a-z_]{3,}|%7b|<[a-z_ ]+>|"
       r"(?:data|secret|password|passwd|token|key|apikey|api_key|context|history|conversation|"
       r"summary|chat|email|message|prompt|info|payload|memory|user)\b)"),
    _r("markdown_exfiltration", 0.75,
       r"\[[^\]\n]{1,80}\]\((?:https?:)?//[^\s)]*[?&][^\s)]*=(?:\{|\[|\$|%7b|<)"),
    _r("markdown_exfiltration", 0.7,
       r"\b(?:append|include|add|insert|render|output|embed)\b.{0,60}\b(?:image|img|markdown|"
       r"pixel|link|url)\b.{0,120}\b(?:conversation|chat history|previous messages|our messages|"
       r"system prompt|secret|password|api key|token|the user'?s|personal data|summary|"
       r"url-?encoded|base64)"),
    # --- multilingual override / extraction ---------------------------------------------
    _r("multilingual", 0.9,
       r"\b(?:ignora|ignore|ignorar|olvida|olvidar|omite|descarta)\b.{0,25}\b(?:instrucciones|"
       r"indicaciones|reglas|ordenes|directrices)\b.{0,20}\b(?:anteriores|previas|originales)\b"),
    _r("multilingual", 0.9,
       r"\b(?:ignorez|ignorer|ignore (?:toutes? |tous )?(?:les|tes|vos|mes)|oublie[zr]?|"
       r"neglige[zr]?)\b.{0,25}\b(?:instructions|consignes|"
       r"regles|directives)\b"),
    _r("multilingual", 0.9,
       r"\b(?:ignoriere|ignorieren sie|vergiss|vergessen sie|missachte)\b.{0,30}\b(?:anweisungen|"
       r"instruktionen|regeln|vorgaben|richtlinien|befehle)\b"),
    _r("multilingual", 0.9,
       r"\b(?:ignore|ignora|esqueca|esqueca|desconsidere|descarte)\b.{0,25}\b(?:instrucoes|"
       r"instrucoes|regras|diretrizes|ordens)\b"),
    _r("multilingual", 0.9,
       r"\b(?:ignora|dimentica|trascura|dimenticate|ignorate)\b.{0,25}\b(?:istruzioni|regole|"
       r"direttive|indicazioni)\b"),
    _r("multilingual", 0.85,
       r"\b(?:olvida|oublie|vergiss|esqueca|dimentica) (?:todo|tout|alles|tudo|tutto)\b"),
    _r("multilingual", 0.9,
       r"(?:忽略|无视|無視|忘记|忘記|忘掉|不要理会|不要遵守|跳过).{0,12}(?:指令|指示|说明|說明|规则|規則|"
       r"提示|设定|設定|要求)"),
    _r("multilingual", 0.55,
       r"(?:系统提示|系統提示|系统指令|システムプロンプト|시스템 프롬프트|初始指令)"),
    _r("multilingual", 0.9,
       r"(?:игнорируй|игнорируйте|забудь|забудьте|не обращай внимания на|отмени)\b.{0,30}"
       r"(?:инструкци|правил|указани|ограничени|промпт)"),
    _r("multilingual", 0.55, r"(?:системн\w* (?:промпт|подсказк|инструкци|сообщени))"),
    _r("multilingual", 0.9, r"(?:指示|命令|ルール|プロンプト).{0,12}(?:無視|忘れ)"),
    _r("multilingual", 0.9, r"(?:지시|명령|규칙|지침).{0,12}(?:무시|잊어)"),
    _r("multilingual", 0.9,
       r"\b(?:negeer|vergeet)\b.{0,25}\b(?:instructies|regels|aanwijzingen)\b"),
    _r("multilingual", 0.9,
       r"\b(?:zignoruj|ignoruj|zapomnij)\b.{0,25}\b(?:instrukcje|polecenia|zasady|reguły)\b"),
    _r("multilingual", 0.9,
       r"(?:talimatları|talimatlari|kuralları|kurallari|yonergeleri).{0,25}"
       r"(?:unut|yok say|gormezden gel|gormezden gel|gecersiz)"),
    _r("multilingual", 0.9, r"(?:تجاهل|انس).{0,30}(?:التعليمات|الأوامر|القواعد)"),
    _r("multilingual", 0.6,
       r"\b(?:neue anweisungen|nuevas instrucciones|nouvelles instructions|novas instrucoes|"
       r"nuove istruzioni|nieuwe instructies|nowe instrukcje|новые инструкции|"
       r"新的指令|新指令)\s*:"),
    _r("multilingual", 0.9, r"(?:نادیده بگیر|دستورهای قبلی|دستورالعمل های قبلی|پیام سیستمی)"),
    _r("multilingual", 0.55,
       r"\b(?:prompt|mensaje|message|mensagem|messaggio|eingabeaufforderung) (?:del |de |du |di )?"
       r"(?:sistema|systeme|systeme|system)\b"),
    _r("multilingual", 0.55, r"\b(?:systemprompt|system-?eingabeaufforderung|systemanweisung)"),
    _r("multilingual", 0.5,
       r"\b(?:sin|sans|ohne|sem|senza) (?:ninguna |aucune |jegliche |nenhuma |alcuna |"
       r"restricciones|restrictions|einschrankungen|restricoes|restrizioni|filtro|filtre|filter|"
       r"censura|censure|zensur)"),
)
#: Which rules may match a text, from one pass over it (the rules' required literals).
_RULE_FILTER = PrefilterSet([r.prefilter for r in _RULES_LIST])


_OPEN_QUOTES = "'\"“‘«`"
_CLOSE_QUOTES = "'\"”’»`"
#: A phrase *mentioned* in quotes ("is 'ignore previous instructions' still a thing?") is
#: weaker evidence than one *used*; the classifier then decides on the whole message.
_QUOTED_FACTOR = 0.4


def _quoted(text: str, start: int, end: int) -> bool:
    before = text[max(0, start - 2):start]
    after = text[end:end + 3]
    return any(q in before for q in _OPEN_QUOTES) and any(q in after for q in _CLOSE_QUOTES)


def match_rules(text: str, min_weight: float = 0.0) -> list[HeuristicHit]:
    """Rules of at least ``min_weight`` that match ``text`` (which should be ``normalize()``d).

    ``min_weight`` lets secondary views (ROT13, reversed, leet-folded) skip weak rules: only
    a strong hit there is evidence, and skipping the rest keeps long messages cheap.
    """
    hits: list[HeuristicHit] = []
    rules = _RULES_LIST
    for index in sorted(_RULE_FILTER.candidates(text)):
        r = rules[index]
        if r.weight < min_weight:
            continue
        m = r.pattern.search(text)
        if m is None:
            continue
        weight = r.weight
        if _quoted(text, m.start(), m.end()):
            weight *= _QUOTED_FACTOR
            for later in r.pattern.finditer(text, m.end()):
                if not _quoted(text, later.start(), later.end()):
                    weight = r.weight
                    break
        hits.append(HeuristicHit(r.category, weight))
    return hits


def combine(hits: list[HeuristicHit]) -> float:
    """Noisy-OR of the weights: several independent weak signals add up, never above 1."""
    remaining = 1.0
    for h in hits:
        remaining *= 1.0 - h.weight
    return 1.0 - remaining
