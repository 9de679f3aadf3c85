"""One module per `guardstream` subcommand, found by name.

Each module defines `NAME`, `HELP`, `add_arguments(parser)` and
`run(args, settings) -> int`. A new command is a new module here; nothing else changes.
"""

from __future__ import annotations

import argparse
import pkgutil
from importlib import import_module
from types import ModuleType
from typing import Protocol

from guardstream.settings import Settings

__all__ = ["Command", "discover"]


class Command(Protocol):
    NAME: str
    HELP: str

    def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace, settings: Settings) -> int: ...


def discover() -> list[ModuleType]:
    modules = [import_module(f"{__name__}.{info.name}")
               for info in pkgutil.iter_modules(__path__) if not info.name.startswith("_")]
    return sorted((m for m in modules if hasattr(m, "NAME")), key=lambda m: m.ORDER
                  if hasattr(m, "ORDER") else 100)
