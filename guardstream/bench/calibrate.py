"""How fast this machine is right now, so reports from different machines can be compared.

Why: the targets are absolute CPU times, and the 2-core VMs this project is measured on
differ by 2x and more from day to day (another tenant's load, a different host). Each
report records the CPU time of two fixed workloads next to its results: pure Python
(what most of a worker's time is: dict, string and call overhead) and small float32
matrix products (what spaCy's NER spends its time on). The minimum of a few rounds is
taken, which is the least disturbed by other processes.
"""

from __future__ import annotations

import time

import numpy as np
from threadpoolctl import threadpool_limits

__all__ = ["calibrate"]


def _python_work() -> int:
    table: dict[str, int] = {}
    total = 0
    for i in range(200_000):
        key = f"k{i % 997}"
        table[key] = table.get(key, 0) + i
        total += len(key)
    return total + len(table)


def _matmul_work(x: np.ndarray, w: np.ndarray) -> float:
    acc = 0.0
    for _ in range(100):
        acc += float((x @ w)[0, 0])
    return acc


def calibrate(rounds: int = 5) -> dict[str, float]:
    """CPU milliseconds of each fixed workload (lower is faster; minimum of `rounds`)."""
    rng = np.random.default_rng(0)
    x = rng.random((64, 288), dtype=np.float32)
    w = rng.random((288, 288), dtype=np.float32)
    best = {"python_ms": float("inf"), "matmul_ms": float("inf")}
    with threadpool_limits(limits=1, user_api="blas"):  # as the NER workers run it
        for _ in range(max(1, rounds)):
            started = time.process_time()
            _python_work()
            best["python_ms"] = min(best["python_ms"], (time.process_time() - started) * 1e3)
            started = time.process_time()
            _matmul_work(x, w)
            best["matmul_ms"] = min(best["matmul_ms"], (time.process_time() - started) * 1e3)
    return {k: round(v, 1) for k, v in best.items()}
