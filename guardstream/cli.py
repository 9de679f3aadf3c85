"""The `guardstream` command. Subcommands live in `guardstream.commands`, one module each."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from guardstream.commands import discover
from guardstream.errors import ConfigError
from guardstream.logs import configure_logging
from guardstream.settings import Settings

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="guardstream",
                                     description="An LLM security gateway on Kafka.")
    sub = parser.add_subparsers(dest="command", required=True)
    commands = {}
    for module in discover():
        module.add_arguments(sub.add_parser(module.NAME, help=module.HELP))
        commands[module.NAME] = module
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
        settings.policy  # noqa: B018 - validate the policy before anything starts
    except ConfigError as exc:
        print(f"guardstream: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    try:
        code: int = commands[args.command].run(args, settings)
    except (ValueError, ConfigError) as exc:
        print(f"guardstream: {exc}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    raise SystemExit(main())
