"""CPU per request of each stage, in process, one request at a time, over the bench mix.

What `guardstream bench` cannot show: its in-process chain runs 16 requests at once and
reports one number. Here every stage's `step()` is timed alone (`time.process_time`, so
the CPU threads it hands work to count too), on the same standard mix, against the dev
model in its own process. A second table splits the CPU by kind of request (the bench
mix's kinds). `--profile STAGE` also runs cProfile on that stage (its CPU work is then run
inline instead of in the thread pool, so the profile sees it).

    python scripts/profile_stages.py --requests 300
    python scripts/profile_stages.py --requests 300 --profile redact --lines 30
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import sys
import time
from collections.abc import Callable
from typing import Any


async def _measure(args: argparse.Namespace) -> tuple[dict[str, float], list[str]]:
    import orjson

    from guardstream.agents import STAGE_ORDER, build_stage
    from guardstream.audit import Auditor
    from guardstream.bench.mix import build_mix
    from guardstream.models.codec import decode_request
    from guardstream.resources import Resources
    from guardstream.runner import step
    from guardstream.settings import Settings
    from guardstream.telemetry import Metrics

    if args.profile:
        async def inline(self: Resources, fn: Callable[..., Any], *fn_args: Any) -> Any:
            return fn(*fn_args)
        Resources.run_cpu = inline  # type: ignore[method-assign]
    settings = Settings.from_env()
    resources = Resources(settings)
    stages = [build_stage(name, resources) for name in STAGE_ORDER]
    for stage in stages:
        await stage.start()
    auditor, metrics = Auditor(settings), Metrics()
    warmup = 30
    mix = build_mix(args.requests + warmup, run_id=f"prof{time.time_ns()}")
    cpu = dict.fromkeys(STAGE_ORDER, 0.0)
    by_kind: dict[str, dict[str, float]] = {}
    kind_counts: dict[str, int] = {}
    profiler = cProfile.Profile()
    try:
        for index, request in enumerate(mix):
            if index >= warmup:
                kind_counts[request.kind] = kind_counts.get(request.kind, 0) + 1
            kind_cpu = by_kind.setdefault(request.kind, dict.fromkeys(STAGE_ORDER, 0.0))
            envelope = decode_request(orjson.dumps(request.body), received_ms=time.time() * 1e3)
            for position, stage in enumerate(stages):
                measured = index >= warmup
                profiling = measured and stage.name == args.profile
                if profiling:
                    profiler.enable()
                started = time.process_time()
                outcome = await step(stage, envelope, is_last=position == len(stages) - 1,
                                     auditor=auditor, metrics=metrics)
                if measured:
                    spent = time.process_time() - started
                    cpu[stage.name] += spent
                    kind_cpu[stage.name] += spent
                if profiling:
                    profiler.disable()
                if outcome.result is not None or outcome.forward is None:
                    break
                envelope = outcome.forward
    finally:
        for stage in stages:
            await stage.close()
        await resources.close()
    if args.profile:
        pstats.Stats(profiler).sort_stats(args.sort).print_stats(args.lines)
    per_stage = {name: 1000.0 * seconds / args.requests for name, seconds in cpu.items()}
    return per_stage, _kind_table(by_kind, kind_counts)


def _kind_table(by_kind: dict[str, dict[str, float]], counts: dict[str, int]) -> list[str]:
    """One row per kind of request: its share, CPU per request, share of CPU, top stages."""
    total_cpu = sum(sum(stages.values()) for stages in by_kind.values())
    total_requests = sum(counts.values())
    rows = ["| kind | share of requests | ms per request | share of all CPU "
            "| largest stages (ms) |", "|---|---|---|---|---|"]
    for kind, stages in sorted(by_kind.items(), key=lambda item: -sum(item[1].values())):
        count = counts.get(kind, 0)
        if not count:
            continue
        spent = sum(stages.values())
        top = sorted(stages.items(), key=lambda item: -item[1])[:4]
        largest = ", ".join(f"{name} {1000.0 * s / count:.1f}" for name, s in top)
        rows.append(f"| {kind} | {count / total_requests:.0%} | {1000.0 * spent / count:.1f} "
                    f"| {spent / total_cpu:.0%} | {largest} |")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--profile", help="a stage name to run cProfile on")
    parser.add_argument("--sort", default="tottime", help="pstats sort key")
    parser.add_argument("--lines", type=int, default=40)
    args = parser.parse_args(argv)
    from guardstream.bench.devserver import DevModelProcess
    from guardstream.bench.run import DEV_KEY

    with DevModelProcess() as dev:
        os.environ.update(OPENAI_BASE_URL=dev.base_url, OPENAI_API_KEY=DEV_KEY,
                          GUARDSTREAM_DEV_MODEL="1")
        per_stage, kinds = asyncio.run(_measure(args))
    print("| stage | CPU ms per request (all requests of the mix) |")
    print("|---|---|")
    for name, ms in per_stage.items():
        print(f"| {name} | {ms:.2f} |")
    print(f"| **all stages** | **{sum(per_stage.values()):.2f}** |")
    print()
    print("\n".join(kinds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
