"""`stop_process`: SIGTERM first, SIGKILL after the grace period, always reaped."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from guardstream.embedded.ports import stop_process

_READY = "print('ready', flush=True); import time; time.sleep(60)"
_IGNORES_TERM = "import signal; signal.signal(signal.SIGTERM, signal.SIG_IGN); " + _READY
_SLEEPS = _READY


def _start(code: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([sys.executable, "-c", code],
                            stdout=subprocess.PIPE)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == b"ready"
    return proc


@pytest.mark.parametrize(("code", "grace", "signal_seen"), [
    (_SLEEPS, 10.0, -15),        # stops on SIGTERM, long before the grace period ends
    (_IGNORES_TERM, 0.5, -9),    # ignores SIGTERM: killed once the grace period is over
])
def test_stop_process(code: str, grace: float, signal_seen: int) -> None:
    proc = _start(code)
    started = time.monotonic()
    stop_process(proc, grace)
    assert proc.returncode == signal_seen
    assert time.monotonic() - started < grace + 5


def test_an_exited_child_is_just_reaped() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    while proc.poll() is None:
        time.sleep(0.01)
    stop_process(proc, 0.0)
    assert proc.returncode == 0
