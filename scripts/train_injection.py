"""Train the injection classifier and tune the detector threshold.

The threshold of the full detector (heuristics + classifier) is tuned on out-of-fold scores:
grouped 5-fold cross-validation over the train + validation splits of
data/injection/dataset.jsonl (near-duplicate groups never straddle folds), so every tuning
score comes from a model that did not see that text, and the test split is never touched.
(A single validation split, ~650 texts with ~30 hard negatives, proved too noisy to tune
on.) The shipped classifier is then fitted on train + validation. Artifacts are written to
guardstream/data/injection/:

- classifier.json.gz    char+word TF-IDF -> logistic regression, exported as plain data
                        (term -> idf, weight); loads without scikit-learn or pickle
- known_attacks.json    one training attack per near-duplicate group (similarity layer)
- model_meta.json       threshold, data counts, out-of-fold metrics, library versions

Run: python scripts/train_injection.py   (under a minute on 2 cores)
Then set DEFAULT_THRESHOLD in guardstream/detectors/injection/detector.py to the printed
value (a test checks the two agree).
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from pathlib import Path

import numpy as np
import sklearn
from sklearn.model_selection import GroupKFold

from guardstream.detectors.injection.classifier import (
    DEFAULT_MODEL_PATH,
    Classifier,
    build_pipeline,
    export_pipeline,
    prepare,
)
from guardstream.detectors.injection.detector import InjectionDetector
from guardstream.detectors.injection.evaluate import HARD_NEGATIVE_SOURCE, load_split
from guardstream.detectors.injection.similarity import DEFAULT_KNOWN_ATTACKS_PATH

OUT_DIR = DEFAULT_MODEL_PATH.parent
# Tune for an out-of-fold FPR well under the 5% goal, so unseen data has margin.
TARGET_FPR = 0.02
TARGET_HARD_FPR = 0.03
FOLDS = 5


def tune_threshold(scores: np.ndarray, labels: np.ndarray, hard: np.ndarray) -> float:
    """Lowest threshold (max recall) whose out-of-fold FPRs stay within the targets."""
    neg, pos = scores[labels == 0], scores[labels == 1]
    hard_scores = scores[hard]
    best = 0.95
    for t in np.round(np.arange(0.30, 0.951, 0.01), 2):
        fpr = float((neg >= t).mean()) if len(neg) else 0.0
        hfpr = float((hard_scores >= t).mean()) if len(hard_scores) else 0.0
        if fpr <= TARGET_FPR and hfpr <= TARGET_HARD_FPR:
            best = float(t)
            break
    print(f"out-of-fold: threshold={best:.2f} recall={float((pos >= best).mean()):.3f} "
          f"fpr={float((neg >= best).mean()):.3f} "
          f"hard_fpr={float((hard_scores >= best).mean()):.3f}")
    return best


def _write_model(exported: dict[str, object], path: Path) -> None:
    # mtime=0: byte-identical output for identical models (clean diffs).
    with path.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz:
        gz.write(json.dumps(exported, ensure_ascii=False, separators=(",", ":")).encode())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--c", type=float, default=4.0, help="inverse regularisation strength")
    args = ap.parse_args()

    records = load_split(["train", "val"])
    print(f"train+val={len(records)}")
    texts = [prepare(r["text"]) for r in records]
    labels = np.array([int(r["label"]) for r in records])
    groups = [r["group"] for r in records]
    oof = np.zeros(len(records))
    for k, (fit_idx, held_idx) in enumerate(
        GroupKFold(n_splits=FOLDS).split(texts, labels, groups)
    ):
        fold = build_pipeline(c=args.c)
        fold.fit([texts[i] for i in fit_idx], labels[fit_idx])
        oof[held_idx] = fold.predict_proba([texts[i] for i in held_idx])[:, 1]
        print(f"fold {k + 1}/{FOLDS} done")
    rules = InjectionDetector(classifier=False, threshold=0.0)
    heur = np.array([rules.scan(r["text"]).score for r in records])
    scores = np.maximum(heur, oof)
    hard = np.array([r["source"] == HARD_NEGATIVE_SOURCE for r in records])
    threshold = tune_threshold(scores, labels, hard)

    pipe = build_pipeline(c=args.c)
    pipe.fit(texts, labels)
    exported = export_pipeline(pipe)
    ref = pipe.predict_proba(texts[:50])[:, 1]
    mine = np.array([Classifier(exported).score_prepared(t) for t in texts[:50]])
    drift = float(np.abs(ref - mine).max())
    print(f"export check: max |sklearn - exported| = {drift:.2e}")
    if drift > 1e-3:
        raise SystemExit("exported classifier disagrees with the sklearn pipeline")

    OUT_DIR.mkdir(parents=True, exist_ok=True)
    _write_model(exported, DEFAULT_MODEL_PATH)
    seen: set[str] = set()
    attacks: list[str] = []
    for r in records:
        if r["label"] == 1 and r["group"] not in seen and r["source"] != "synthetic_encoded":
            seen.add(r["group"])
            attacks.append(r["text"][:1500])
    DEFAULT_KNOWN_ATTACKS_PATH.write_text(
        json.dumps({"note": "train+val attacks, one per near-duplicate group; sources and "
                            "licences in data/injection/README.md",
                    "attacks": attacks}, ensure_ascii=False),
        encoding="utf-8",
    )
    meta = {
        "threshold": threshold,
        "scikit_learn": sklearn.__version__,
        "fit_size": len(records),
        "tuning": f"grouped {FOLDS}-fold out-of-fold scores over train+val",
        "oof_recall": float((scores[labels == 1] >= threshold).mean()),
        "oof_fpr": float((scores[labels == 0] >= threshold).mean()),
        "classifier_c": args.c,
    }
    (OUT_DIR / "model_meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    size = sum(p.stat().st_size for p in OUT_DIR.iterdir())
    print(json.dumps(meta))
    print(f"artifacts: {OUT_DIR} ({size / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
