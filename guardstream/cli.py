"""The `guardstream` command: up, worker, scan (and the commands their issues add)."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys
from collections.abc import Sequence

from guardstream.agents import STAGE_ORDER, parse_stage_names
from guardstream.errors import ConfigError
from guardstream.logs import configure_logging
from guardstream.settings import Settings

__all__ = ["main"]

REDIS_STAGES = frozenset({"ratelimit", "llm"})


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="guardstream",
                                     description="An LLM security gateway on Kafka.")
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="broker, Redis, dev model and a worker per stage")
    up.add_argument("--workers", action="append", default=[], metavar="STAGE=N",
                    help="run N workers of STAGE (repeatable), e.g. --workers redact=2")

    worker = sub.add_parser("worker", help="a worker for one or more stages")
    worker.add_argument("--stage", action="append", required=True, metavar="NAME",
                        help=f"stage to run ({', '.join(STAGE_ORDER)}); repeatable")

    scan = sub.add_parser("scan", help="run stages in process on JSON-lines from stdin")
    scan.add_argument("--stages", default=",".join(STAGE_ORDER),
                      help="comma-separated stages (default: all)")
    scan.add_argument("--concurrency", type=int, default=16)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = Settings.from_env()
        settings.policy  # noqa: B018 - validate the policy before anything starts
    except ConfigError as exc:
        print(f"guardstream: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    try:
        if args.command == "scan":
            return _scan(args, settings)
        if args.command == "worker":
            from guardstream.worker import run_workers

            return run_workers(parse_stage_names(args.stage), settings)
        if args.command == "up":
            from guardstream.up import run_up

            return run_up(settings, replicas=_replicas(args.workers))
    except ValueError as exc:
        print(f"guardstream: {exc}", file=sys.stderr)
        return 2
    return 2


def _replicas(values: list[str]) -> dict[str, int]:
    replicas: dict[str, int] = {}
    for value in values:
        name, _, count = value.partition("=")
        parse_stage_names(name)
        if not count.isdigit() or int(count) < 1:
            raise ValueError(f"--workers {value}: expected STAGE=N with N >= 1")
        replicas[name] = int(count)
    return replicas


def _scan(args: argparse.Namespace, settings: Settings) -> int:
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


if __name__ == "__main__":
    raise SystemExit(main())
