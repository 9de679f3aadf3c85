"""`make demo`: start `guardstream up`, publish sample requests, print their results."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import orjson

from guardstream.embedded.ports import stop_process

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    path = Path(args[0] if args else "examples/requests.jsonl")
    lines = [line for line in path.read_bytes().splitlines() if line.strip()]
    print("starting guardstream up (embedded broker, Redis and dev model) ...", flush=True)
    proc = subprocess.Popen([sys.executable, "-m", "guardstream.cli", "up"],
                            stdout=subprocess.PIPE, env=dict(os.environ))
    ready: list[str] = []
    event = threading.Event()

    def watch() -> None:
        assert proc.stdout is not None  # noqa: S101 - created with PIPE
        for raw in proc.stdout:
            line = raw.decode(errors="replace").strip()
            if line.startswith("ready broker="):
                ready.append(line.removeprefix("ready broker="))
                event.set()

    threading.Thread(target=watch, daemon=True).start()
    try:
        if not event.wait(180):
            print("guardstream up did not become ready", file=sys.stderr)
            return 1
        print(f"ready: broker at {ready[0]}; sending {len(lines)} requests\n", flush=True)
        results = asyncio.run(_exchange(ready[0], lines))
        for result in results:
            print(_summary(result))
        return 0
    finally:
        stop_process(proc, 60)


async def _exchange(bootstrap: str, lines: list[bytes]) -> list[dict[str, Any]]:
    from guardstream.client import GuardstreamClient

    async with GuardstreamClient(bootstrap) as client:
        requests = [orjson.loads(line) for line in lines]
        return [r.to_dict() for r in await client.submit_many(requests, timeout=120)]


def _summary(result: dict[str, Any]) -> str:
    status = str(result["status"])
    head = f"{result['request_id']}: {status}"
    if status != "ok":
        head += f" by {result['blocked_by']} ({result['reason']}): {result['detail']}"
    else:
        head += f"\n    output: {str(result.get('output'))[:100]!r}"
    findings = result.get("findings") or []
    if findings:
        kinds = ", ".join(f"{f['stage']}:{f['type']}" for f in findings)
        head += f"\n    findings: {kinds}"
    return head


if __name__ == "__main__":
    raise SystemExit(main())
