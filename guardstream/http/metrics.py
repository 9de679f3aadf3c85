"""Prometheus text exposition for the HTTP front door, without a dependency.

Two series are enough to run it: answered requests by status code and reason, and a
latency histogram. Label values are stable codes (status, reason), never content; they
are escaped and truncated anyway, so a misbehaving stage cannot break the format.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections import Counter

__all__ = ["LATENCY_BUCKETS", "HttpMetrics"]

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_MAX_LABEL = 64
_MAX_SERIES = 500


class HttpMetrics:
    """Counters kept in memory; `render()` is the `/metrics` body."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: Counter[tuple[str, str]] = Counter()
        self._bucket_counts = [0] * (len(LATENCY_BUCKETS) + 1)  # last one is +Inf
        self._latency_sum = 0.0
        self._latency_count = 0

    def observe(self, status: int, reason: str | None, seconds: float) -> None:
        key = (str(status), _label(reason or "none"))
        with self._lock:
            if key not in self._requests and len(self._requests) >= _MAX_SERIES:
                key = (key[0], "other")  # bound the number of series
            self._requests[key] += 1
            self._bucket_counts[bisect_left(LATENCY_BUCKETS, seconds)] += 1
            self._latency_sum += seconds
            self._latency_count += 1

    def count(self, status: int, reason: str | None = None) -> int:
        """Requests answered with `status` (and `reason`, when given)."""
        with self._lock:
            return sum(n for (s, r), n in self._requests.items()
                       if s == str(status) and (reason is None or r == reason))

    def render(self) -> str:
        with self._lock:
            lines = [
                "# HELP guardstream_http_requests_total HTTP requests answered, by status "
                "code and result reason.",
                "# TYPE guardstream_http_requests_total counter",
            ]
            for (status, reason), n in sorted(self._requests.items()):
                lines.append(f'guardstream_http_requests_total{{status="{status}",'
                             f'reason="{reason}"}} {n}')
            lines += [
                "# HELP guardstream_http_request_duration_seconds Time from request to "
                "answer.",
                "# TYPE guardstream_http_request_duration_seconds histogram",
            ]
            cumulative = 0
            for bound, n in zip(LATENCY_BUCKETS, self._bucket_counts, strict=False):
                cumulative += n
                lines.append(f'guardstream_http_request_duration_seconds_bucket{{le="{bound}"}}'
                             f" {cumulative}")
            cumulative += self._bucket_counts[-1]
            lines.append(f'guardstream_http_request_duration_seconds_bucket{{le="+Inf"}} '
                         f"{cumulative}")
            lines.append(f"guardstream_http_request_duration_seconds_sum {self._latency_sum}")
            lines.append(f"guardstream_http_request_duration_seconds_count "
                         f"{self._latency_count}")
        return "\n".join(lines) + "\n"


def _label(value: str) -> str:
    value = value[:_MAX_LABEL]
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
