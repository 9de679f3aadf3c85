"""`guardstream send [FILE]`: publish JSON-lines requests, print their results in order."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Iterable, Iterator
from typing import Any, BinaryIO, TextIO

import orjson

from guardstream.settings import Settings

NAME = "send"
HELP = "publish JSON-lines requests (FILE or stdin) and print one result line each"
ORDER = 10


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", nargs="?", default="-",
                        help="JSON-lines requests (default: stdin)")
    parser.add_argument("--timeout", type=float, default=60.0,
                        help="seconds to wait for each result (default 60)")
    parser.add_argument("--batch", type=int, default=500,
                        help="requests in flight at once (results stay in input order)")


def run(args: argparse.Namespace, settings: Settings) -> int:
    if settings.broker is None:
        print("guardstream: set GUARDSTREAM_BROKER (e.g. the one `guardstream up` printed)",
              file=sys.stderr)
        return 2
    if args.timeout <= 0 or args.batch < 1:
        raise ValueError("--timeout and --batch must be positive")
    if args.file == "-":
        return asyncio.run(send(sys.stdin.buffer, sys.stdout, settings,
                                timeout=args.timeout, batch=args.batch))
    with open(args.file, "rb") as source:
        return asyncio.run(send(source, sys.stdout, settings, timeout=args.timeout,
                                batch=args.batch))


async def send(source: BinaryIO | Iterable[bytes], sink: TextIO, settings: Settings, *,
               timeout: float = 60.0, batch: int = 500) -> int:
    """Publish every request line; print one JSON line per input line, in input order.

    A line that is not a request, or gets no result in time, prints an `error` line with
    reason `invalid_request` or `client_timeout`, and the exit status becomes 1.
    """
    from guardstream.client import GuardstreamClient

    failed = False
    async with GuardstreamClient.from_settings(settings) as client:
        for chunk in _chunks(_lines(source), batch):
            parsed = [_parse(line) for line in chunk]
            outcomes = await client.submit_many(
                [p for p in parsed if isinstance(p, dict)], timeout, return_exceptions=True)
            answers = iter(outcomes)
            for item in parsed:
                outcome = next(answers) if isinstance(item, dict) else item
                line, ok = _render(outcome, item)
                failed |= not ok
                sink.write(line + "\n")
            sink.flush()
    return 1 if failed else 0


def _lines(source: BinaryIO | Iterable[bytes]) -> Iterator[bytes]:
    for raw in source:
        if raw.strip():
            yield raw


def _chunks(lines: Iterator[bytes], size: int) -> Iterator[list[bytes]]:
    chunk: list[bytes] = []
    for line in lines:
        chunk.append(line)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _parse(line: bytes) -> dict[str, Any] | Exception:
    try:
        data = orjson.loads(line)
    except orjson.JSONDecodeError:
        return ValueError("the line is not valid JSON")
    if not isinstance(data, dict):
        return ValueError("the line is not a JSON object")
    return data


def _render(outcome: Any, request: dict[str, Any] | Exception) -> tuple[str, bool]:
    from guardstream.client import ResultTimeout
    from guardstream.models import Result

    if isinstance(outcome, Result):
        return orjson.dumps(outcome.to_dict()).decode(), True
    request_id = request.get("request_id") if isinstance(request, dict) else None
    reason = "client_timeout" if isinstance(outcome, ResultTimeout) else "invalid_request"
    if isinstance(outcome, ResultTimeout):
        request_id = outcome.request_id
    error = {"request_id": request_id if isinstance(request_id, str) else None,
             "status": "error", "blocked_by": None, "reason": reason,
             "detail": str(outcome) if isinstance(outcome, Exception) else None}
    return orjson.dumps(error).decode(), False
