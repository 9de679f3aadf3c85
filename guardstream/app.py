"""The Faust app: one per stage process, its own consumer group, topics declared once.

Each stage worker is a thin Faust agent around the stage's `process()`: it decodes the
record, calls `runner.step`, and produces the outcome (next stage, result, audit events).
Values are raw bytes on every topic, encoded by `models.codec`: producers and consumers
in other languages need no Faust metadata.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
import time
from dataclasses import dataclass
from typing import Any

import faust

from guardstream.agents import STAGE_ORDER, build_stage
from guardstream.agents.base import Stage
from guardstream.audit import Auditor
from guardstream.errors import DecodeError
from guardstream.models import AuditEvent, DeadLetter, Result, Status
from guardstream.models.codec import decode_envelope, decode_request, encode
from guardstream.models.request import usable_request_id
from guardstream.resources import Resources
from guardstream.runner import step
from guardstream.settings import Settings
from guardstream.telemetry import Metrics, extract_context, setup_telemetry
from guardstream.topics import TopicNames

__all__ = ["StageAgent", "create_app"]

log = logging.getLogger("guardstream.app")


def create_app(settings: Settings, stage: str) -> faust.App:
    """The Faust app for one stage: app id `<prefix>-<stage>` is the stage's consumer group."""
    security = settings.kafka_security
    broker_credentials: Any = None
    if security.protocol.startswith("SASL"):
        broker_credentials = faust.SASLCredentials(
            username=security.sasl_username, password=security.sasl_password,
            mechanism=security.sasl_mechanism or "PLAIN",
            ssl_context=_ssl_context(settings) if security.protocol == "SASL_SSL" else None,
        )
    elif security.protocol == "SSL":
        broker_credentials = _ssl_context(settings)
    return faust.App(
        f"{settings.topic_prefix}-{stage}",
        broker=[f"kafka://{server}" for server in settings.bootstrap_servers],
        broker_credentials=broker_credentials,
        store="memory://",
        web_enabled=False,
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        topic_allow_declare=settings.create_topics,
        topic_disable_leader=True,
        consumer_auto_offset_reset="earliest",
        # On Tansu the group join takes about half the session timeout (~31 s with Faust's
        # 60 s default, 4.4 s with 6 s); a dead worker's partitions move after ~9 s.
        broker_rebalance_timeout=3.0,
        broker_session_timeout=6.0,
        broker_heartbeat_interval=1.0,
        broker_commit_interval=1.0,
        producer_linger=0.002,
        producer_acks=-1,
        stream_wait_empty=False,
        table_cleanup_interval=3600.0,
        # Faust makes "<id>-data/" in the working directory even with memory:// stores.
        datadir=tempfile.mkdtemp(prefix=f"guardstream-{stage}-"),
    )


def _ssl_context(settings: Settings) -> Any:
    import ssl

    security = settings.kafka_security
    context = ssl.create_default_context(cafile=security.ssl_cafile)
    if security.ssl_certfile:
        context.load_cert_chain(security.ssl_certfile, security.ssl_keyfile)
    return context


@dataclass
class _Topics:
    source: faust.TopicT
    forward: faust.TopicT | None
    results: faust.TopicT
    audit: faust.TopicT
    dlq: faust.TopicT


class StageAgent:
    """Binds one stage to its Faust app: consume, `step`, produce, never crash on input."""

    def __init__(self, app: faust.App, stage_name: str, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.names = TopicNames(settings.topic_prefix)
        self.resources = Resources(settings)
        self.stage: Stage = build_stage(stage_name, self.resources)
        self.auditor = Auditor(settings)
        setup_telemetry(f"guardstream-{stage_name}")
        self.metrics = Metrics()
        self.is_first = stage_name == STAGE_ORDER[0]
        forward = self.names.output_of(stage_name)
        self.topics = _Topics(
            source=self._topic(self.names.input_of(stage_name)),
            forward=self._topic(forward) if forward else None,
            results=self._topic(self.names.results),
            audit=self._topic(self.names.audit),
            dlq=self._topic(self.names.dlq),
        )
        self.processed = 0
        app.agent(self.topics.source, name=f"stage-{stage_name}",
                  concurrency=settings.agent_concurrency)(self._agent)
        self._started: asyncio.Task[None] | None = None

    def _topic(self, name: str) -> faust.TopicT:
        return self.app.topic(name, key_serializer="raw", value_serializer="raw",
                              partitions=self.settings.partitions)

    async def ensure_started(self) -> None:
        """Build the stage's heavy objects once, whichever agent instance asks first."""
        if self._started is None:
            self._started = asyncio.ensure_future(self.stage.start())
        await asyncio.shield(self._started)

    async def _agent(self, stream: faust.StreamT) -> None:
        await self.ensure_started()
        async for event in stream.events():
            message = event.message
            await self.handle(message.key, message.value, topic=message.topic,
                              partition=message.partition, offset=message.offset,
                              headers=message.headers)

    async def handle(self, key: bytes | None, value: bytes | None, *, topic: str | None = None,
                     partition: int | None = None, offset: int | None = None,
                     headers: Any = None) -> None:
        """Process one record. Every path ends in a produced record; none raises."""
        try:
            if value is None:
                raise DecodeError("empty record value")
            envelope = (decode_request(value, received_ms=time.time() * 1000)
                        if self.is_first else decode_envelope(value))
        except DecodeError as exc:
            await self._dead_letter(str(exc), key, value, topic, partition, offset)
            return
        try:
            outcome = await step(self.stage, envelope, is_last=self.topics.forward is None,
                                 auditor=self.auditor, trace_parent=extract_context(headers),
                                 metrics=self.metrics)
            key_bytes = envelope.request_id.encode()
            if outcome.forward is not None and self.topics.forward is not None:
                await self._send(self.topics.forward, key_bytes, encode(outcome.forward),
                                 outcome.headers)
            elif outcome.result is not None:
                await self._send(self.topics.results, key_bytes, encode(outcome.result),
                                 outcome.headers)
            await self._audit(outcome.audit)
        except Exception as exc:  # the broker itself failed us: hand back to the DLQ path
            log.exception("stage %s could not produce for request %s", self.stage.name,
                          envelope.request_id)
            await self._dead_letter(f"produce failed: {type(exc).__name__}", key, value,
                                    topic, partition, offset)
        self.processed += 1

    async def _send(self, topic: faust.TopicT, key: bytes, value: bytes,
                    headers: tuple[tuple[str, bytes], ...] = ()) -> None:
        # Wait for the broker's ack before the offset can be committed: at-least-once.
        fut = await topic.send(key=key, value=value, headers=list(headers) or None)
        await fut

    async def _audit(self, events: tuple[AuditEvent, ...]) -> None:
        for event in events:
            key = (event.request_id or "").encode()
            await self.topics.audit.send(key=key, value=encode(event))

    async def _dead_letter(self, error: str, key: bytes | None, value: bytes | None,
                           topic: str | None, partition: int | None,
                           offset: int | None) -> None:
        letter = DeadLetter(error=error, stage=self.stage.name, topic=topic,
                            partition=partition, offset=offset, key=key, value=value,
                            ts_ms=time.time() * 1000)
        await self._send(self.topics.dlq, key or b"", encode(letter))
        self.metrics.dead_letters.add(1, {"stage": self.stage.name})
        request_id = _request_id_of(value)
        await self._audit((self.auditor.dead_letter_event(self.stage.name, request_id,
                                                          "undecodable"),))
        if request_id is not None:
            result = Result(request_id=request_id, status=Status.ERROR,
                            blocked_by=self.stage.name, reason="undecodable", detail=error)
            await self._send(self.topics.results, request_id.encode(), encode(result))


def _request_id_of(value: bytes | None) -> str | None:
    """A usable request id from bytes that failed to decode fully, if there is one."""
    if not value:
        return None
    try:
        import orjson

        data = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    if isinstance(data, dict) and isinstance(data.get("request"), dict):
        data = data["request"]
    return usable_request_id(data)
