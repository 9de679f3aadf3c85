"""Evaluate the shipped injection detector on the held-out test split.

Prints a markdown table (recall, FPR, hard-negative FPR, per-source rates, latency mean/p99)
and exits 1 if the goal (recall >= 90%, FPR <= 5%) is missed.

Run: python scripts/eval_injection.py [--split test] [--sample N] [--ablation] [--similarity]
"""

from __future__ import annotations

import argparse
import sys

from guardstream.detectors.injection import InjectionDetector
from guardstream.detectors.injection.evaluate import evaluate, load_split, sample_records


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", default="test", choices=["train", "val", "test"])
    ap.add_argument("--sample", type=int, default=0,
                    help="at most N records per (source, label); 0 = all")
    ap.add_argument("--similarity", action="store_true", help="enable the similarity layer")
    ap.add_argument("--ablation", action="store_true",
                    help="also report heuristics-only and classifier-only rows")
    args = ap.parse_args()

    records = load_split(args.split)
    if args.sample:
        records = sample_records(records, args.sample)
    det = InjectionDetector(similarity=args.similarity)
    report = evaluate(det, records)
    layers = "heuristics+classifier" + ("+similarity" if args.similarity else "")
    print(report.markdown(f"Injection detector, {args.split} split ({layers})"))
    if args.ablation:
        print("\n| layers | recall | FPR | hard-neg FPR | mean ms |\n|---|---|---|---|---|")
        for name, kw in (("heuristics only", {"classifier": False}),
                         ("classifier only", {"heuristics": False}),
                         ("heuristics+classifier", {}),
                         ("all three", {"similarity": True})):
            r = evaluate(InjectionDetector(**kw), records)  # type: ignore[arg-type]
            print(f"| {name} | {r.recall:.1%} | {r.fpr:.1%} | {r.hard_fpr:.1%} "
                  f"| {r.latency()[0]:.2f} |")
    if not report.meets_goal:
        print("\nGOAL MISSED", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
