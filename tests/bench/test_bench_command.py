"""`guardstream bench`'s arguments: the run lengths the README's numbers depend on."""

from __future__ import annotations

import argparse
from typing import Any

import pytest

from guardstream.bench import run as bench_run
from guardstream.bench.chainrun import DEFAULT_CHAIN_RECORDS
from guardstream.bench.run import DEFAULT_THROUGHPUT_REQUESTS, BenchOptions
from guardstream.commands import bench as bench_command
from guardstream.settings import Settings


def _options(monkeypatch: pytest.MonkeyPatch, *argv: str) -> BenchOptions:
    seen: list[BenchOptions] = []

    def fake_run_bench(settings: Settings, options: BenchOptions) -> dict[str, Any]:
        seen.append(options)
        return {}

    monkeypatch.setattr(bench_run, "run_bench", fake_run_bench)
    monkeypatch.setattr("guardstream.bench.report_text.summary_lines", lambda report: [])
    parser = argparse.ArgumentParser()
    bench_command.add_arguments(parser)
    assert bench_command.run(parser.parse_args(list(argv)), Settings.from_env()) == 0
    (options,) = seen
    return options


@pytest.mark.parametrize(("argv", "throughput", "chain"), [
    ((), DEFAULT_THROUGHPUT_REQUESTS, DEFAULT_CHAIN_RECORDS),
    (("--throughput-requests", "0", "--chain-records", "500"), 0, 500),
    (("--throughput-requests", "400"), 400, DEFAULT_CHAIN_RECORDS),
])
def test_run_lengths(monkeypatch: pytest.MonkeyPatch, argv: tuple[str, ...],
                     throughput: int, chain: int) -> None:
    options = _options(monkeypatch, *argv)
    assert (options.throughput_requests, options.chain_records) == (throughput, chain)
    assert BenchOptions().throughput_requests == DEFAULT_THROUGHPUT_REQUESTS

