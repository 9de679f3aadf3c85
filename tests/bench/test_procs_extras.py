"""/proc parsing and the markdown tables of the component benchmarks."""

from __future__ import annotations

import os
import time

import pytest

from guardstream.bench.extras import parse_markdown_table
from guardstream.bench.procs import parse_stat, sample


def _stat_line(comm: str, ppid: int, utime: int, stime: int, rss_pages: int) -> str:
    fields = ["S", str(ppid)] + ["0"] * 9 + [str(utime), str(stime)] + ["0"] * 8 + \
        [str(rss_pages)] + ["0"] * 20
    return f"1234 ({comm}) " + " ".join(fields)


@pytest.mark.parametrize("comm", ["python", "a b", "x) (y", "(("])
def test_parse_stat_counts_from_last_paren(comm: str) -> None:
    ppid, cpu, rss = parse_stat(_stat_line(comm, 42, 150, 50, 10), ticks=100, page=4096)
    assert ppid == 42
    assert cpu == pytest.approx(2.0)
    assert rss == 10 * 4096


def test_sample_of_this_process_sees_cpu_spent() -> None:
    before = sample(os.getpid())
    assert before is not None and before.rss_bytes > 0
    deadline = time.process_time() + 0.3
    while time.process_time() < deadline:
        pass
    after = sample(os.getpid())
    assert after is not None
    assert after.cpu_seconds - before.cpu_seconds >= 0.2
    assert sample(2**22 + 12345) is None


def test_parse_markdown_table() -> None:
    text = "intro\n\n| metric | a | b |\n|---|---|---|\n| rate | 1 | 2 |\n| x | 3 | 4 |\nend"
    assert parse_markdown_table(text) == [{"metric": "rate", "a": "1", "b": "2"},
                                          {"metric": "x", "a": "3", "b": "4"}]
    assert parse_markdown_table("no table") == []
