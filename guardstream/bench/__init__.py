"""`guardstream bench`: what the gateway costs per request and where the time goes.

- `mix`: the standard request mix (deterministic for a seed).
- `stats`: percentiles, summaries, per-stage times, the targets.
- `pipeline_run` / `local_run`: the mix through Kafka and in process.
- `chains` / `chainrun`: raw aiokafka and Faust pass-through chains (the cost of a hop).
- `procs`: CPU and RSS of processes from /proc.
- `run`: all of it in one report; `chart`: its PNG.
"""

from __future__ import annotations

from guardstream.bench.mix import MIX_WEIGHTS, BenchRequest, build_mix
from guardstream.bench.run import BenchOptions, run_bench
from guardstream.bench.stats import TARGETS, check_targets, percentile, summarize

__all__ = ["MIX_WEIGHTS", "TARGETS", "BenchOptions", "BenchRequest", "build_mix",
           "check_targets", "percentile", "run_bench", "summarize"]
