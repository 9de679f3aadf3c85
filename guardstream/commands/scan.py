"""`guardstream scan --stages a,b`: the stages in process on JSON-lines from stdin."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses

from guardstream.agents import STAGE_ORDER, parse_stage_names
from guardstream.settings import Settings

NAME = "scan"
HELP = "run stages in process (no Kafka) on JSON-lines requests from stdin"
ORDER = 3

REDIS_STAGES = frozenset({"ratelimit", "llm"})


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stages", default=",".join(STAGE_ORDER),
                        help="comma-separated stages (default: all)")
    parser.add_argument("--concurrency", type=int, default=16,
                        help="requests in flight at once (results stay in input order)")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from guardstream.scan import scan

    names = parse_stage_names(args.stages)
    if REDIS_STAGES & set(names) and settings.redis_url is None:
        from guardstream.embedded.redis import EmbeddedRedis

        with EmbeddedRedis() as redis:
            settings = dataclasses.replace(settings, redis_url=redis.url)
            asyncio.run(scan(names, settings, concurrency=args.concurrency))
        return 0
    asyncio.run(scan(names, settings, concurrency=args.concurrency))
    return 0
