"""Container health check for `guardstream worker`: is this worker connected to Kafka?

Workers serve no HTTP, so Docker and Kubernetes probe them with this script (stdlib only,
copied into the image as /usr/local/lib/guardstream/healthcheck.py). It exits 0 when the
container's network namespace holds an ESTABLISHED TCP connection to one of the broker
ports in GUARDSTREAM_BROKER (kafka://host:port[,host:port]), else 1.

What it proves: the worker process is up and its Kafka clients hold live connections (a
worker that lost the cluster closes them; Kafka clients reconnect on their own). What it
does not prove: that the event loop is making progress. Consumer lag, which the KEDA
ScaledObjects watch and which belongs in alerting, covers that. Reading /proc/net/tcp
needs no extra package, no port and no change to the worker.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from pathlib import Path

__all__ = ["broker_ports", "established_remote_ports", "main"]

_ESTABLISHED = "01"
_PROC_FILES = ("/proc/net/tcp", "/proc/net/tcp6")


def broker_ports(url: str) -> set[int]:
    """The ports of `kafka://host:port[,host:port]` (the default 9092 when none is set)."""
    ports = set()
    for part in url.split(","):
        _, _, port = part.strip().removeprefix("kafka://").rpartition(":")
        if port.isdigit():
            ports.add(int(port))
    return ports or {9092}


def established_remote_ports(paths: Iterable[str | Path] = _PROC_FILES) -> set[int]:
    """Remote ports of ESTABLISHED connections listed in /proc/net/tcp-format files."""
    ports: set[int] = set()
    for path in paths:
        try:
            lines = Path(path).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 3 and fields[3] == _ESTABLISHED:
                ports.add(int(fields[2].rpartition(":")[2], 16))
    return ports


def main() -> int:
    wanted = broker_ports(os.environ.get("GUARDSTREAM_BROKER", ""))
    if wanted & established_remote_ports():
        return 0
    print(f"no established connection to a broker port {sorted(wanted)}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
