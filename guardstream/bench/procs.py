"""CPU time and memory of processes from /proc (Linux), without psutil.

The benchmark charges the gateway for the CPU its worker processes burn, not for wall
time on a shared machine: utime + stime from /proc/<pid>/stat, in seconds.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ProcSample", "children_of", "cmdline", "parse_stat", "sample", "sample_many"]

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


@dataclass(frozen=True, slots=True)
class ProcSample:
    pid: int
    ppid: int
    cpu_seconds: float
    rss_bytes: int


def parse_stat(text: str, ticks: int = _TICKS, page: int = _PAGE) -> tuple[int, float, int]:
    """(ppid, utime + stime seconds, rss bytes) from a /proc/<pid>/stat line.

    The command name (field 2) may hold spaces and parentheses, so fields are counted
    from the last ')'.
    """
    rest = text[text.rindex(")") + 2:].split()
    # rest[0] is field 3 (state): ppid is field 4, utime 14, stime 15, rss 24.
    ppid = int(rest[1])
    cpu = (int(rest[11]) + int(rest[12])) / ticks
    rss = int(rest[21]) * page
    return ppid, cpu, rss


def sample(pid: int) -> ProcSample | None:
    """None once the process is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    ppid, cpu, rss = parse_stat(text)
    return ProcSample(pid, ppid, cpu, rss)


def sample_many(pids: list[int]) -> dict[int, ProcSample]:
    found = {pid: sample(pid) for pid in pids}
    return {pid: s for pid, s in found.items() if s is not None}


def children_of(pid: int) -> list[int]:
    """Direct children of `pid`, by scanning every /proc/<n>/stat for its ppid."""
    kids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        found = sample(int(entry.name))
        if found is not None and found.ppid == pid:
            kids.append(found.pid)
    return sorted(kids)


def cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]
