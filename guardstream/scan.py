"""`guardstream scan`: JSON-lines requests in, one JSON-lines result each out, in order."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import BinaryIO

from guardstream.models.codec import encode
from guardstream.pipeline import LocalPipeline
from guardstream.resources import Resources
from guardstream.settings import Settings
from guardstream.telemetry import setup_telemetry

__all__ = ["scan"]


async def scan(stage_names: Sequence[str], settings: Settings, *,
               stdin: BinaryIO | None = None, stdout: BinaryIO | None = None,
               concurrency: int = 16) -> int:
    source = stdin or sys.stdin.buffer
    sink = stdout or sys.stdout.buffer
    setup_telemetry("guardstream-scan")
    resources = Resources(settings)
    count = 0
    try:
        async with LocalPipeline(stage_names, resources) as pipeline:
            async for result in pipeline.run_lines(source, concurrency=concurrency):
                sink.write(encode(result) + b"\n")
                sink.flush()
                count += 1
    finally:
        await resources.close()
    return count
