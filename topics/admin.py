"""Creates the pipeline's topics up front, so no stage waits on another to declare them."""

from __future__ import annotations

import logging

from guardstream.errors import ConfigError
from guardstream.settings import Settings
from guardstream.topics import TopicNames

__all__ = ["ensure_topics"]

log = logging.getLogger("guardstream.topics")


async def ensure_topics(settings: Settings) -> list[str]:
    """Create every missing topic with the configured partitions and replication.

    With GUARDSTREAM_PRECREATED_TOPICS set (clusters where apps may not create topics)
    this only checks that they exist and raises ConfigError naming the missing ones.
    Returns the names that were created. Uses the same SASL/TLS settings as the workers.
    """
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    from guardstream.client import kafka_security_options

    names = TopicNames(settings.topic_prefix).all()
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers,
                                request_timeout_ms=15_000,
                                **kafka_security_options(settings.kafka_security))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [name for name in names if name not in existing]
        if missing and not settings.create_topics:
            raise ConfigError(f"GUARDSTREAM_PRECREATED_TOPICS is set but these topics are "
                              f"missing: {', '.join(missing)}; create them (see "
                              f"docs/deployment.md) or unset it")
        if missing:
            await admin.create_topics([
                NewTopic(name, num_partitions=settings.partitions,
                         replication_factor=settings.replication_factor)
                for name in missing
            ])
        return missing
    finally:
        await admin.close()
