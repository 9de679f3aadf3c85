"""Dataset loading and metrics shared by the training script, the evaluation script and
the tests, so that all three compute "blocked" and "recall" the same way."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .categories import CATEGORIES
from .local import LocalModerator
from .scores import ModerationScores

__all__ = ["GOAL_MAX_FPR", "GOAL_MIN_RECALL", "Example", "Metrics", "evaluate", "load_split",
           "markdown_table", "metrics_from_scores"]

GOAL_MIN_RECALL = 0.80
GOAL_MAX_FPR = 0.05


@dataclass(frozen=True, slots=True)
class Example:
    """One labelled text of the moderation dataset."""

    id: str
    text: str
    harmful: bool
    categories: tuple[str, ...]
    source: str
    group: str


def load_split(path: Path) -> list[Example]:
    """Read one ``*.jsonl`` split written by ``data/moderation/build_dataset.py``."""
    rows: list[Example] = []
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            d = json.loads(line)
            rows.append(Example(d["id"], d["text"], bool(d["harmful"]),
                                tuple(d["categories"]), d["source"], d["group"]))
    return rows


@dataclass(slots=True)
class Metrics:
    """Block rates of one split at one set of thresholds."""

    n_harmful: int
    n_benign: int
    recall: float
    fpr: float
    per_category: dict[str, tuple[int, float]] = field(default_factory=dict)
    per_source: dict[str, tuple[int, float]] = field(default_factory=dict)
    ms_per_message: float = 0.0

    @property
    def meets_goal(self) -> bool:
        return self.recall >= GOAL_MIN_RECALL and self.fpr <= GOAL_MAX_FPR


def metrics_from_scores(rows: Sequence[Example], scores: Sequence[ModerationScores],
                        thresholds: Mapping[str, float]) -> Metrics:
    """A message counts as blocked when any category reaches its threshold.

    Per-category recall is the share of harmful items labelled with that category that are
    blocked at all (by any category): what matters to the gateway is that it is stopped.
    """
    blocked = [bool(s.flagged(thresholds)) for s in scores]
    harm = [b for r, b in zip(rows, blocked, strict=True) if r.harmful]
    ben = [b for r, b in zip(rows, blocked, strict=True) if not r.harmful]
    per_cat: dict[str, tuple[int, float]] = {}
    for cat in CATEGORIES:
        hits = [b for r, b in zip(rows, blocked, strict=True) if r.harmful and cat in r.categories]
        if hits:
            per_cat[cat] = (len(hits), sum(hits) / len(hits))
    per_src: dict[str, tuple[int, float]] = {}
    for src in sorted({r.source for r in rows}):
        hits = [b for r, b in zip(rows, blocked, strict=True) if r.source == src]
        per_src[src] = (len(hits), sum(hits) / len(hits))
    return Metrics(
        n_harmful=len(harm),
        n_benign=len(ben),
        recall=sum(harm) / max(len(harm), 1),
        fpr=sum(ben) / max(len(ben), 1),
        per_category=per_cat,
        per_source=per_src,
    )


def evaluate(moderator: LocalModerator, rows: Sequence[Example],
             thresholds: Mapping[str, float] | None = None) -> Metrics:
    """Score ``rows`` one message at a time (as the stage does) and compute the metrics."""
    start = time.perf_counter()
    scores = [moderator.score(r.text) for r in rows]
    elapsed = time.perf_counter() - start
    m = metrics_from_scores(rows, scores, thresholds or moderator.default_thresholds)
    m.ms_per_message = 1000.0 * elapsed / max(len(rows), 1)
    return m


def markdown_table(m: Metrics, title: str = "held-out test split") -> str:
    """The README table: overall, per category and per source."""
    lines = [
        f"Local moderation backend on the {title} "
        f"({m.n_harmful} harmful, {m.n_benign} benign; {m.ms_per_message:.2f} ms/message):",
        "",
        "| measure | n | value |",
        "|---|---:|---:|",
        f"| harmful blocked (recall) | {m.n_harmful} | {m.recall:.1%} |",
        f"| benign blocked (false-positive rate) | {m.n_benign} | {m.fpr:.1%} |",
    ]
    for cat, (n, r) in m.per_category.items():
        lines.append(f"| recall, category `{cat}` | {n} | {r:.1%} |")
    for src, (n, r) in m.per_source.items():
        lines.append(f"| blocked, source `{src}` | {n} | {r:.1%} |")
    goal = "met" if m.meets_goal else "MISSED"
    lines += ["", f"Goal (recall >= {GOAL_MIN_RECALL:.0%}, FPR <= {GOAL_MAX_FPR:.0%}): {goal}."]
    return "\n".join(lines)
