"""Metrics for the injection detector on the labelled splits (shared by scripts and tests).

Why in the package: the eval script, the training script (threshold tuning on the
validation split) and the test that guards the shipped model must compute recall and FPR
the same way.
"""

from __future__ import annotations

import json
import random
import statistics
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from guardstream.detectors.injection.detector import InjectionDetector

__all__ = [
    "DATASET_PATH",
    "GOAL_MAX_FPR",
    "GOAL_MIN_RECALL",
    "HARD_NEGATIVE_SOURCE",
    "Report",
    "evaluate",
    "load_split",
    "sample_records",
]

DATASET_PATH = Path(__file__).resolve().parents[3] / "data" / "injection" / "dataset.jsonl"
GOAL_MIN_RECALL = 0.90
GOAL_MAX_FPR = 0.05
HARD_NEGATIVE_SOURCE = "handwritten_hard_negatives"

Record = dict[str, Any]


def load_split(split: str | Iterable[str], path: Path = DATASET_PATH) -> list[Record]:
    """Records of one split (or several) of the dataset built by data/injection/build_dataset.py."""
    wanted = {split} if isinstance(split, str) else set(split)
    with path.open(encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh if line.strip()]
    return [r for r in rows if r["split"] in wanted]


def sample_records(records: list[Record], per_source: int, seed: int = 0) -> list[Record]:
    """A deterministic sample of at most ``per_source`` records from each (source, label)."""
    rng = random.Random(seed)  # noqa: S311 - reproducible sampling, not security
    by_key: dict[tuple[str, int], list[Record]] = {}
    for r in records:
        by_key.setdefault((r["source"], r["label"]), []).append(r)
    out: list[Record] = []
    for key in sorted(by_key):
        rows = by_key[key]
        out += rows if len(rows) <= per_source else rng.sample(rows, per_source)
    return out


@dataclass
class Report:
    """Confusion counts overall, for hard negatives, and per source; latency in ms."""

    threshold: float
    tp: int = 0
    fn: int = 0
    fp: int = 0
    tn: int = 0
    hard_fp: int = 0
    hard_n: int = 0
    # "source:label" -> [label, n, flagged]
    per_source: dict[str, list[int]] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)
    short_latencies_ms: list[float] = field(default_factory=list)  # messages <= 1000 chars
    layers: dict[str, int] = field(default_factory=dict)

    @property
    def recall(self) -> float:
        return self.tp / max(1, self.tp + self.fn)

    @property
    def fpr(self) -> float:
        return self.fp / max(1, self.fp + self.tn)

    @property
    def hard_fpr(self) -> float:
        return self.hard_fp / max(1, self.hard_n)

    @property
    def meets_goal(self) -> bool:
        return self.recall >= GOAL_MIN_RECALL and self.fpr <= GOAL_MAX_FPR

    def latency(self, short_only: bool = False) -> tuple[float, float]:
        """(mean, p99) in milliseconds, over all messages or only those <= 1000 chars."""
        lat = sorted(self.short_latencies_ms if short_only else self.latencies_ms)
        if not lat:
            return 0.0, 0.0
        p99 = lat[min(len(lat) - 1, int(0.99 * len(lat)))]
        return statistics.fmean(lat), p99

    def markdown(self, title: str = "Injection detector, held-out test split") -> str:
        mean, p99 = self.latency()
        s_mean, s_p99 = self.latency(short_only=True)
        lines = [
            f"**{title}** (threshold {self.threshold:.2f})",
            "",
            "| metric | value | goal |",
            "|---|---|---|",
            f"| attack recall | {self.recall:.1%} ({self.tp}/{self.tp + self.fn}) "
            f"| >= {GOAL_MIN_RECALL:.0%} |",
            f"| benign FPR (all) | {self.fpr:.1%} ({self.fp}/{self.fp + self.tn}) "
            f"| <= {GOAL_MAX_FPR:.0%} |",
            f"| hard-negative FPR | {self.hard_fpr:.1%} ({self.hard_fp}/{self.hard_n}) | |",
            f"| latency per message, mean / p99 | {mean:.2f} ms / {p99:.2f} ms | few ms |",
            f"| latency, messages <= 1000 chars ({len(self.short_latencies_ms)}), mean / p99 "
            f"| {s_mean:.2f} ms / {s_p99:.2f} ms | |",
            "",
            "| source | label | n | flagged | rate |",
            "|---|---|---|---|---|",
        ]
        for src in sorted(self.per_source, key=lambda s: (-self.per_source[s][0], s)):
            label, n, flagged = self.per_source[src]
            kind = "attack" if label else "benign"
            name = src.rsplit(":", 1)[0]
            lines.append(f"| {name} | {kind} | {n} | {flagged} | {flagged / max(1, n):.1%} |")
        if self.layers:
            lines += ["", "Deciding layer of flagged messages: " + ", ".join(
                f"{k} {v}" for k, v in sorted(self.layers.items()))]
        return "\n".join(lines)


def evaluate(detector: InjectionDetector, records: list[Record]) -> Report:
    """Scan every record once (sequentially, timing each scan) and count outcomes."""
    detector.warm_up()
    rep = Report(threshold=detector.threshold)
    for r in records:
        t0 = time.perf_counter()
        res = detector.scan(r["text"])
        elapsed = (time.perf_counter() - t0) * 1000.0
        rep.latencies_ms.append(elapsed)
        if len(r["text"]) <= 1000:
            rep.short_latencies_ms.append(elapsed)
        flagged = detector.is_attack(res)
        if flagged:
            rep.layers[res.layer] = rep.layers.get(res.layer, 0) + 1
        key = f"{r['source']}:{int(r['label'])}"
        src = rep.per_source.setdefault(key, [int(r["label"]), 0, 0])
        src[1] += 1
        src[2] += int(flagged)
        if r["label"]:
            rep.tp += flagged
            rep.fn += not flagged
        else:
            rep.fp += flagged
            rep.tn += not flagged
            if r["source"] == HARD_NEGATIVE_SOURCE:
                rep.hard_n += 1
                rep.hard_fp += flagged
    return rep
