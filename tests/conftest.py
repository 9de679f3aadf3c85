"""Fixtures that start real services: the embedded broker, Redis, the dev model, `up`.

Every process a fixture starts is stopped by it, on free loopback ports, within bounded
time. Integration tests use a fresh topic prefix each, so they never see each other's
records on a shared broker.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator

import pytest

from guardstream.devmodel import DevModelServer
from guardstream.embedded.broker import EmbeddedBroker
from guardstream.embedded.redis import EmbeddedRedis
from tests.support import GatewayProcess


def _redis_reachable(url: str) -> bool:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379), 0.5):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker() as running:
        yield running


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """REDIS_URL when it answers (CI's machine runs one), else an embedded Redis."""
    configured = os.environ.get("REDIS_URL")
    if configured and _redis_reachable(configured):
        yield configured
        return
    with EmbeddedRedis() as running:
        yield running.url


@pytest.fixture(scope="session")
def dev_model() -> Iterator[DevModelServer]:
    with DevModelServer() as server:
        yield server


@pytest.fixture
def topic_prefix() -> str:
    return f"gs{uuid.uuid4().hex[:10]}"


@pytest.fixture
def gateway(broker: EmbeddedBroker, redis_url: str, dev_model: DevModelServer,
            topic_prefix: str, tmp_path: object) -> Iterator[GatewayProcess]:
    """`guardstream up` on the shared broker/Redis/dev model, with this test's topics."""
    with GatewayProcess(broker=broker.url, redis_url=redis_url,
                        openai_base_url=dev_model.base_url, topic_prefix=topic_prefix) as gw:
        yield gw
