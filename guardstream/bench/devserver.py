"""The dev model in its own process, so its CPU is charged to neither side of a comparison.

`python -m guardstream.bench.devserver` prints `url=<base_url>` and serves until its stdin
closes or it is terminated.
"""

from __future__ import annotations

import subprocess
import sys
import time

from guardstream.embedded.ports import stop_process

__all__ = ["DevModelProcess", "main"]


class DevModelProcess:
    """Context manager: `.base_url` of a dev model running in a child process."""

    def __init__(self, timeout: float = 30.0) -> None:
        self.timeout = timeout
        self.proc: subprocess.Popen[bytes] | None = None
        self.base_url = ""

    def __enter__(self) -> DevModelProcess:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "guardstream.bench.devserver"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        assert self.proc.stdout is not None  # noqa: S101 - created with PIPE
        deadline = time.monotonic() + self.timeout
        line = self.proc.stdout.readline().decode().strip()
        if not line.startswith("url=") or time.monotonic() > deadline:
            self.__exit__()
            raise RuntimeError("the dev model process did not start")
        self.base_url = line.removeprefix("url=")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is None:
            return
        stop_process(self.proc, 10)
        self.proc = None


def main() -> int:
    from guardstream.devmodel import DevModelServer

    with DevModelServer() as server:
        print(f"url={server.base_url}", flush=True)
        sys.stdin.read()  # until the parent closes the pipe or terminates us
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
