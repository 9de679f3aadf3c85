"""`guardstream worker --stage NAME ...`: workers for those stages."""

from __future__ import annotations

import argparse

from guardstream.agents import STAGE_ORDER, parse_stage_names
from guardstream.settings import Settings

NAME = "worker"
HELP = "a worker for one or more stages (one process and consumer group per stage)"
ORDER = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stage", action="append", required=True, metavar="NAME",
                        help=f"stage to run ({', '.join(STAGE_ORDER)}); repeatable")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from guardstream.worker import run_workers

    return run_workers(parse_stage_names(args.stage), settings)
