"""`guardstream up`: everything on one machine."""

from __future__ import annotations

import argparse

from guardstream.agents import parse_stage_names
from guardstream.settings import Settings

NAME = "up"
HELP = "embedded broker, Redis and dev model (unless configured) and a worker per stage"
ORDER = 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workers", action="append", default=[], metavar="STAGE=N",
                        help="run N workers of STAGE (repeatable), e.g. --workers redact=2")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from guardstream.up import run_up

    return run_up(settings, replicas=_replicas(args.workers))


def _replicas(values: list[str]) -> dict[str, int]:
    replicas: dict[str, int] = {}
    for value in values:
        name, _, count = value.partition("=")
        parse_stage_names(name)
        if not count.isdigit() or int(count) < 1:
            raise ValueError(f"--workers {value}: expected STAGE=N with N >= 1")
        replicas[name] = int(count)
    return replicas
