"""One stage scaled out: 1, 2 and 3 redact workers share its partitions on the embedded broker.

The rounds run through `scripts/scale_redact.py` (the same code that produced the numbers in
docs/deployment.md). What is asserted is what must hold on any machine: every request
answered exactly once, every redact worker owning partitions (disjoint, covering the topic)
and handling records. Throughput is measured and printed, never asserted: on a shared
2-core machine a speed ratio would be a coin toss.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from guardstream.devmodel import DevModelServer
from guardstream.embedded.broker import EmbeddedBroker

pytestmark = pytest.mark.integration

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "scale_redact.py"
PARTITIONS = 6
REQUESTS = 200


def _load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("scale_redact", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


def test_redact_workers_share_partitions_and_every_request_is_answered_once(
        broker: EmbeddedBroker, redis_url: str, dev_model: DevModelServer,
        topic_prefix: str) -> None:
    scale = _load_script()
    rounds = scale.measure(broker=broker.url, redis_url=redis_url,
                           openai_base_url=dev_model.base_url, worker_counts=(1, 2, 3),
                           requests=REQUESTS, partitions=PARTITIONS, warmup=20,
                           prefix=topic_prefix)

    print("\n" + scale._table(rounds))  # the measurement, for the log (pytest -s)
    assert [r.workers for r in rounds] == [1, 2, 3]
    for r in rounds:
        assert r.answered == REQUESTS, r
        assert r.duplicates == 0, r
        assert r.statuses == {"ok": REQUESTS}, r
        # Each worker owns partitions: disjoint sets that together cover the topic.
        owned = list(r.partitions.values())
        assert len(owned) == r.workers
        assert all(owned)
        flat = [p for parts in owned for p in parts]
        assert sorted(flat) == list(range(PARTITIONS))
        # ...and each one handled records of this batch; together at least all of them.
        assert set(r.handled) == set(r.partitions)
        assert all(n > 0 for n in r.handled.values()), r.handled
        assert sum(r.handled.values()) >= REQUESTS
        assert r.e2e_rps > 0 and r.redact_rps > 0
