"""Evaluate the shipped local moderation artifact on the held-out test split.

Prints a markdown table (pasted into the README) and exits non-zero when the goal —
block >= 80% of harmful items while blocking <= 5% of benign ones — is missed.

Usage::

    python scripts/eval_moderation.py [--split test] [--errors]

``--errors`` also lists the ids (not the texts) of misclassified items, to look them up in
the split file.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from guardstream.detectors.moderation import LocalModerator
from guardstream.detectors.moderation.evaluation import evaluate, load_split, markdown_table

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data" / "moderation"


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Evaluate the local moderation backend.")
    ap.add_argument("--split", default="test", choices=("test", "validation", "train"))
    ap.add_argument("--errors", action="store_true", help="list misclassified item ids")
    args = ap.parse_args(argv)

    rows = load_split(DATA / f"{args.split}.jsonl")
    mod = LocalModerator()
    m = evaluate(mod, rows)
    title = "held-out test split" if args.split == "test" else f"{args.split} split"
    print(markdown_table(m, title))
    if args.errors:
        for r in rows:
            flagged = mod.score(r.text).flagged(mod.default_thresholds)
            if bool(flagged) != r.harmful:
                kind = "missed" if r.harmful else "false-positive"
                print(f"{kind}\t{r.id}\t{r.source}\t{','.join(flagged or r.categories)}",
                      file=sys.stderr)
    return 0 if m.meets_goal else 1


if __name__ == "__main__":
    raise SystemExit(main())
