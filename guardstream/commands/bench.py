"""`guardstream bench`: throughput, latency, per-stage time and CPU per request.

Against a running pipeline (GUARDSTREAM_BROKER, GUARDSTREAM_TOPIC_PREFIX; worker CPU from
the `guardstream up` process given by --up-pid, or found when there is exactly one), or,
with --up, against one it starts itself.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from guardstream.settings import Settings

NAME = "bench"
HELP = "benchmark the pipeline: throughput, latency, time per stage, CPU per request"
ORDER = 8


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--requests", type=int, default=500,
                        help="requests sent at the fixed --rate (latency run)")
    parser.add_argument("--rate", type=float, default=20.0,
                        help="offered requests/s for the latency run (0: skip it)")
    parser.add_argument("--throughput-requests", type=int, default=None,
                        help="requests sent all at once (throughput run; 0: skip it; "
                             "default: 1,500)")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--requests-per-user", type=int, default=1,
                        help="requests per user id (1: rate limits never bind)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--up", action="store_true",
                        help="start broker/Redis/dev model (unless configured) and `up`")
    parser.add_argument("--up-pid", type=int, help="pid of the running `guardstream up`")
    parser.add_argument("--no-local", action="store_true", help="skip the in-process run")
    parser.add_argument("--no-chains", action="store_true",
                        help="skip the raw/Faust pass-through chains")
    parser.add_argument("--chain-records", type=int,
                        help="records timed through each pass-through chain run "
                             "(default: 10,000)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each chain")
    parser.add_argument("--extras", action="store_true",
                        help="also the redact-vs-Presidio and limiter benchmarks (scripts/)")
    parser.add_argument("--out", type=Path, default=Path("bench-results"))
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--idle-seconds", type=float, default=5.0,
                        help="measure the workers' idle CPU this long before the runs")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from guardstream.bench.chainrun import DEFAULT_CHAIN_RECORDS
    from guardstream.bench.report_text import summary_lines
    from guardstream.bench.run import DEFAULT_THROUGHPUT_REQUESTS, BenchOptions, run_bench

    throughput_requests = args.throughput_requests
    if throughput_requests is None:
        throughput_requests = DEFAULT_THROUGHPUT_REQUESTS
    options = BenchOptions(
        requests=args.requests, rate=args.rate, throughput_requests=throughput_requests,
        warmup=args.warmup, requests_per_user=args.requests_per_user, seed=args.seed,
        up=args.up, up_pid=args.up_pid, local=not args.no_local, chains=not args.no_chains,
        chain_records=args.chain_records or DEFAULT_CHAIN_RECORDS, repeat=args.repeat,
        extras=args.extras, out_dir=args.out, progress=not args.no_progress, timeout=args.timeout,
        idle_seconds=args.idle_seconds)
    report = run_bench(settings, options)
    for line in summary_lines(report):
        print(line)
    return 0
