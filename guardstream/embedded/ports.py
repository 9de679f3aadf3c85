"""Loopback ports and the child server processes that listen on them.

The embedded broker and the embedded Redis are both "a binary we start, on a free
loopback port, that must never outlive us". This module holds that shared part so
the two wrappers stay small:

* :func:`free_port` asks the kernel for an unused 127.0.0.1 port. The port is only
  *probably* free by the time the child binds it (another process can take it in
  between), which is why :class:`ManagedProcess` retries on a new port when the child
  exits during start-up.
* :class:`ManagedProcess` starts the child in its own session (so a terminal's Ctrl-C
  reaches only us and we stop the child in order), asks Linux to SIGKILL it when we
  die (``PR_SET_PDEATHSIG``), registers an ``atexit`` stop as a second line of
  defence, sends output to a file or ``/dev/null`` (never a pipe nobody drains),
  and stops it with SIGTERM and then SIGKILL.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import ctypes.util
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

__all__ = [
    "LOOPBACK",
    "EmbeddedStartError",
    "ManagedProcess",
    "free_port",
    "port_is_listening",
    "stop_process",
]

#: Embedded servers listen here and nowhere else: they have no authentication.
LOOPBACK = "127.0.0.1"

_PR_SET_PDEATHSIG = 1


def stop_process(proc: subprocess.Popen[Any], timeout: float) -> None:
    """SIGTERM, wait up to ``timeout`` s, then SIGKILL; returns once the child is reaped."""
    if proc.poll() is not None:
        proc.wait()
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=max(timeout, 0.0))
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        proc.wait()


class EmbeddedStartError(RuntimeError):
    """An embedded server did not become ready (bad binary, port taken, timeout)."""


def free_port(host: str = LOOPBACK) -> int:
    """Return a TCP port on ``host`` that was free a moment ago.

    Binding port 0 lets the kernel choose; we close the socket at once, so the
    caller must tolerate losing a race for it (see :class:`ManagedProcess`).
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def port_is_listening(port: int, host: str = LOOPBACK, timeout: float = 0.2) -> bool:
    """True when something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _pdeathsig_preexec() -> Callable[[], None] | None:
    """Build a ``preexec_fn`` that makes Linux SIGKILL the child when we die.

    libc and ``prctl`` are looked up here, in the parent, so the forked child only
    makes one plain system call (loading libraries after ``fork`` is not safe).
    Caveat (Linux semantics): the signal fires when the *thread* that forked the
    child exits, so start embedded servers from a long-lived thread (the main one).
    """
    if not sys.platform.startswith("linux"):
        return None
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return None
    try:
        prctl = ctypes.CDLL(libc_name, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        # The parent may have died between fork and prctl: then nobody would ever
        # send the signal, so leave now.
        if os.getppid() != parent:
            os._exit(1)

    return preexec


class ManagedProcess:
    """A child server on a loopback port with a bounded, checked start and a sure stop.

    Subclasses give the command line for a port (:meth:`_command`) and a real
    readiness probe that speaks the server's protocol (:meth:`_probe`).
    """

    #: Short name used in errors and thread names.
    kind: str = "server"
    #: How many fresh ports to try when the child dies during start-up.
    start_attempts: int = 3

    def __init__(
        self,
        *,
        port: int | None = None,
        log_path: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self._fixed_port = port
        self._port: int | None = port
        self._log_path = Path(log_path) if log_path is not None else None
        self._env = dict(env) if env is not None else None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None
        self._lock = threading.Lock()
        self._atexit_registered = False

    # -- for subclasses ------------------------------------------------------------
    def _command(self, port: int) -> Sequence[str]:
        raise NotImplementedError

    def _probe(self, port: int) -> bool:
        """Return True once the server answers a real protocol request."""
        raise NotImplementedError

    def _child_env(self) -> dict[str, str]:
        return dict(self._env) if self._env is not None else dict(os.environ)

    def _cwd(self) -> str | None:
        return None

    def _failure_hint(self) -> str:
        return ""

    # -- public ----------------------------------------------------------------------
    @property
    def port(self) -> int:
        """The TCP port the server listens on (set once :meth:`start` has run)."""
        if self._port is None:
            raise RuntimeError(f"embedded {self.kind} has not been started")
        return self._port

    @property
    def pid(self) -> int | None:
        """PID of the running child, or None when it is not running."""
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    @property
    def running(self) -> bool:
        """True while the child process is alive."""
        return self.pid is not None

    def start(self, timeout: float = 30.0) -> None:
        """Start the child and return once it answers its protocol; idempotent.

        Raises :class:`EmbeddedStartError` when it does not become ready within
        ``timeout`` seconds in total; the child is stopped before raising.
        """
        with self._lock:
            if self.running:
                return
            deadline = time.monotonic() + timeout
            attempts = 1 if self._fixed_port is not None else self.start_attempts
            last_error = ""
            for _ in range(attempts):
                port = self._fixed_port if self._fixed_port is not None else free_port()
                outcome = self._start_once(port, deadline)
                if outcome is None:
                    self._port = port
                    self._register_atexit()
                    return
                last_error = outcome
                if time.monotonic() >= deadline:
                    break
            raise EmbeddedStartError(
                f"embedded {self.kind} did not become ready: {last_error}{self._failure_hint()}"
            )

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the child: SIGTERM, wait up to ``timeout`` s, then SIGKILL; idempotent."""
        with self._lock:
            self._stop_locked(timeout)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- internals -------------------------------------------------------------------
    def _open_output(self) -> IO[bytes] | int:
        if self._log_path is None:
            return subprocess.DEVNULL
        if self._log_file is None or self._log_file.closed:
            self._log_path.parent.mkdir(parents=True, exist_ok=True)
            # Kept open (and closed in stop) because the child writes to it meanwhile.
            self._log_file = open(self._log_path, "ab")
        return self._log_file

    def _start_once(self, port: int, deadline: float) -> str | None:
        """Start on ``port``; None when ready, else a reason (child already stopped)."""
        output = self._open_output()
        try:
            self._proc = subprocess.Popen(  # noqa: S603 - fixed binary, no shell
                list(self._command(port)),
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                env=self._child_env(),
                cwd=self._cwd(),
                start_new_session=True,
                # Only one prctl() call runs in the forked child (see the helper).
                preexec_fn=_pdeathsig_preexec(),
                close_fds=True,
            )
        except OSError as exc:
            return f"cannot execute binary ({exc.strerror})"
        proc = self._proc
        delay = 0.02
        while True:
            code = proc.poll()
            if code is not None:
                self._stop_locked(0.0)
                return f"process exited with code {code} during start-up"
            if self._probe(port):
                return None
            if time.monotonic() >= deadline:
                self._stop_locked(1.0)
                return "timed out waiting for it to answer"
            time.sleep(delay)
            delay = min(delay * 1.5, 0.25)

    def _stop_locked(self, timeout: float) -> None:
        proc = self._proc
        self._proc = None
        if proc is not None:
            stop_process(proc, timeout)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def _register_atexit(self) -> None:
        if not self._atexit_registered:
            atexit.register(self._atexit_stop)
            self._atexit_registered = True

    def _atexit_stop(self) -> None:
        # At interpreter exit nobody waits long: a short SIGTERM grace, then SIGKILL.
        with contextlib.suppress(Exception):
            self._stop_locked(2.0)
