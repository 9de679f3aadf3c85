"""The Faust app: one per stage process, its own consumer group, topics declared once.

Each stage worker is a thin Faust agent around the stage's `process()`: it decodes the
record, calls `runner.step`, and produces the outcome (next stage, result, audit events).
Values are raw bytes on every topic, encoded by `models.codec`: producers and consumers
in other languages need no Faust metadata.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
import re
import tempfile
import time
from dataclasses import dataclass
from typing import Any

import faust
import orjson

from guardstream.agents import STAGE_ORDER, build_stage
from guardstream.agents.base import Stage
from guardstream.audit import Auditor
from guardstream.emitted import EmitState, EmittedGuard
from guardstream.errors import DecodeError
from guardstream.faust_tuning import InFlight, faust_options, quiet_sensors
from guardstream.heap import settle_heap
from guardstream.models import AuditEvent, DeadLetter, Result, Status
from guardstream.models.codec import decode_envelope, decode_request, encode
from guardstream.models.request import usable_request_id
from guardstream.resources import Resources
from guardstream.runner import step
from guardstream.settings import Settings
from guardstream.telemetry import Metrics, setup_telemetry
from guardstream.topics import TopicNames

__all__ = ["ORIGIN_HEADER", "StageAgent", "create_app", "max_record_bytes"]

log = logging.getLogger("guardstream.app")

# The ingress record (partition:offset) a record descends from, carried stage to stage so
# the emitted-result guard tells a redelivery from a new request reusing an id.
ORIGIN_HEADER = "guardstream-origin"
_PEEK_BYTES = 4096
_DLQ_HEAD_BYTES = 65_536
_SEND_BACKOFF_FIRST = 0.2
_SEND_BACKOFF_MAX = 5.0


def max_record_bytes(settings: Settings) -> int:
    """Ingress records above this are dead-lettered unparsed.

    Twice the validate stage's content limit plus 64 KiB for the JSON around it: a request
    somewhat over the content limit still gets a `too_large` result from validate with its
    findings; one far over it never costs a full parse.
    """
    return 2 * settings.policy.stages.validate_.max_total_bytes + 65_536


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
    return quiet_sensors(faust.App(
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
        **faust_options(settings.bootstrap_servers),  # see guardstream.faust_tuning
    ))


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
        self.inflight = InFlight()
        app.guardstream_inflight = self.inflight  # type: ignore[attr-defined]
        app.on_partitions_assigned.connect(self._forget_stale)  # type: ignore[arg-type]
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
        self.max_record_bytes = max_record_bytes(settings)
        # Same Redis (and socket timeouts) as the stages; fails open when it is down.
        self.emitted = EmittedGuard(self.resources.redis(), prefix=settings.topic_prefix)
        app.agent(self.topics.source, name=f"stage-{stage_name}",
                  concurrency=settings.agent_concurrency)(self._agent)
        self._started: asyncio.Task[None] | None = None

    def _topic(self, name: str) -> faust.TopicT:
        return self.app.topic(name, key_serializer="raw", value_serializer="raw",
                              partitions=self.settings.partitions)

    async def ensure_started(self) -> None:
        """Build the stage's heavy objects once, whichever agent instance asks first."""
        if self._started is None:
            self._started = asyncio.ensure_future(self._start_stage())
        await asyncio.shield(self._started)

    async def _start_stage(self) -> None:
        await self.stage.start()
        # What start-up built lives as long as the worker: out of the collector's full
        # passes (guardstream.heap).
        frozen = settle_heap()
        log.info("stage %s started; %d start-up objects frozen", self.stage.name, frozen)

    async def _forget_stale(self, sender: Any, assigned: Any, **_: Any) -> None:
        # Not on revoke: the commit made while partitions are revoked (and at shutdown)
        # must still see records that were interrupted.
        self.inflight.forget(assigned)

    async def _agent(self, stream: faust.StreamT) -> None:
        await self.ensure_started()
        # `stream.events()` is this same loop wrapped in one more async generator: a
        # second generator round trip per record, ~7% of a pass-through hop's CPU.
        async for _ in stream:
            event = stream.current_event
            if event is None:  # what `events()` skips; a topic's stream always has one
                continue
            message = event.message
            self.inflight.add(message.tp, message.offset)
            await self.handle(message.key, message.value, topic=message.topic,
                              partition=message.partition, offset=message.offset,
                              headers=message.headers)
            # Not in a `finally`: a record cancelled by shutdown must stay uncommittable.
            self.inflight.done(message.tp, message.offset)

    async def handle(self, key: bytes | None, value: bytes | None, *, topic: str | None = None,
                     partition: int | None = None, offset: int | None = None,
                     headers: Any = None) -> None:
        """Process one record. Every path ends in a produced record; none raises.

        Faust acks the record (its offset becomes committable) when this returns, so it
        returns only after what the record caused is on the broker. Cancellation (worker
        shutdown, lost partition) propagates: the record is not acked and its next owner
        gets it again.
        """
        source = _Source(key, value, topic, partition, offset)
        try:
            await self._handle(source, headers)
        except Exception:  # last resort: a bug here must not stop the partition
            log.exception("stage %s dropped a record it could not handle", self.stage.name)
            self.metrics.dead_letters.add(1, {"stage": self.stage.name})
        self.processed += 1

    async def _handle(self, source: _Source, headers: Any) -> None:
        value = source.value
        if value is None:
            await self._dead_letter("empty record value", source, headers)
            return
        if self.is_first and len(value) > self.max_record_bytes:
            # Never parse it: a usable id is looked for in the first few KiB only.
            # The DLQ keeps its head (base64 of the whole would not fit a Kafka record)
            # and a digest to match it with the producer's copy.
            digest = hashlib.sha256(value).hexdigest()
            await self._dead_letter(
                f"record too large ({len(value)} bytes, at most {self.max_record_bytes}); "
                f"value_b64 holds the first {_DLQ_HEAD_BYTES} bytes, sha256 {digest}",
                dataclasses.replace(source, value=value[:_DLQ_HEAD_BYTES]), headers,
                request_id=_peek_request_id(value[:_PEEK_BYTES]), reason="too_large")
            return
        try:
            envelope = (decode_request(value, received_ms=time.time() * 1000)
                        if self.is_first else decode_envelope(value))
        except DecodeError as exc:
            await self._dead_letter(str(exc), source, headers)
            return
        except Exception as exc:  # a decoder bug on odd input: still a dead letter
            await self._dead_letter(f"decode failed: {type(exc).__name__}", source, headers)
            return
        origin = self._origin(source, headers, envelope.received_ms)
        try:
            outcome = await step(self.stage, envelope, is_last=self.topics.forward is None,
                                 auditor=self.auditor, trace_headers=headers,
                                 metrics=self.metrics)
        except Exception as exc:  # step() contains stage errors; this is a bug around them
            log.exception("stage %s: step failed for request %s", self.stage.name,
                          envelope.request_id)
            await self._dead_letter(f"stage failed: {type(exc).__name__}", source, headers,
                                    request_id=envelope.request_id, reason="stage_error")
            return
        key_bytes = envelope.request_id.encode()
        out_headers = (*outcome.headers, (ORIGIN_HEADER, origin.encode()))
        try:
            if outcome.forward is not None and self.topics.forward is not None:
                await self._send(self.topics.forward, key_bytes, encode(outcome.forward),
                                 out_headers, audit=outcome.audit)
            elif outcome.result is not None:
                await self._emit_result(outcome.result, origin, out_headers,
                                        audit=outcome.audit)
            else:
                await self._audit(outcome.audit)
        except Exception as exc:  # the broker refused this record (too large, ...)
            log.warning("stage %s could not produce for request %s (%s)", self.stage.name,
                        envelope.request_id, type(exc).__name__)
            await self._dead_letter(f"produce failed: {type(exc).__name__}", source, headers,
                                    request_id=envelope.request_id, reason="produce_failed")

    def _origin(self, source: _Source, headers: Any, received_ms: float) -> str:
        """Which publication this record descends from (see `guardstream.emitted`)."""
        if self.is_first and source.partition is not None and source.offset is not None:
            return f"{source.partition}:{source.offset}"
        found = _header(headers, ORIGIN_HEADER)
        return found if found else f"t{received_ms:.3f}"

    async def _emit_result(self, result: Result, origin: str,
                           headers: tuple[tuple[str, bytes], ...] = (), *,
                           audit: tuple[AuditEvent, ...] = ()) -> bool:
        """Produce a terminal result unless this publication's result was already emitted
        (the stage's `audit` events go out either way)."""
        request_id = result.request_id
        if request_id is None:
            await self._audit(audit)
            return False
        claim = await self.emitted.claim(request_id, origin)
        if claim.state is EmitState.DUPLICATE:
            log.info("stage %s: result for request %s already emitted; not again",
                     self.stage.name, request_id)
            await self._audit(audit)
            return False
        try:
            await self._send(self.topics.results, request_id.encode(), encode(result), headers,
                             audit=audit)
        except BaseException:
            await asyncio.shield(self.emitted.release(request_id, claim))
            raise
        await self.emitted.confirm(request_id, origin, claim)
        return True

    async def _send(self, topic: faust.TopicT, key: bytes, value: bytes,
                    headers: tuple[tuple[str, bytes], ...] = (), *,
                    audit: tuple[AuditEvent, ...] = ()) -> None:
        """Produce and wait for the broker's ack (so the offset commits only after it).

        Transient broker trouble is retried with capped backoff for as long as it lasts:
        the partition waits rather than acking a record whose output is not on the broker.
        Errors about the record itself (too large, ...) are raised for the DLQ path.

        `audit` events are queued right behind the record, before its ack is awaited, so
        both travel in one produce request: a produce round trip costs aiokafka ~0.45 ms
        of CPU, a record appended to one ~15 us, and queued after the ack the events
        went out in a request of their own (docs/performance.md, sixth round).
        """
        delay = _SEND_BACKOFF_FIRST
        while True:
            try:
                fut = await topic.send(key=key, value=value, headers=list(headers) or None)
                if audit:
                    await self._audit(audit)
                    audit = ()
                await fut
                return
            except Exception as exc:
                if not _transient(exc):
                    raise
                log.warning("stage %s: produce to %s failed (%s); retrying in %.1fs",
                            self.stage.name, topic.get_topic_name(), type(exc).__name__,
                            delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, _SEND_BACKOFF_MAX)

    async def _audit(self, events: tuple[AuditEvent, ...]) -> None:
        """Audit events are best effort: they never hold up or lose a result."""
        for event in events:
            key = (event.request_id or "").encode()
            try:
                await self.topics.audit.send(key=key, value=encode(event))
            except Exception as exc:
                log.warning("stage %s: audit event not produced (%s)", self.stage.name,
                            type(exc).__name__)

    async def _dead_letter(self, error: str, source: _Source, headers: Any, *,
                           request_id: str | None = None, reason: str = "undecodable") -> None:
        """The original bytes and where they came from to the DLQ, an audit event, and an
        `error` result when a request id can be recovered."""
        letter = DeadLetter(error=error, stage=self.stage.name, topic=source.topic,
                            partition=source.partition, offset=source.offset, key=source.key,
                            value=source.value, ts_ms=time.time() * 1000)
        try:
            await self._send(self.topics.dlq, source.key or b"", encode(letter))
        except Exception as exc:  # e.g. the original is too large for the DLQ topic too
            log.warning("stage %s: dead letter not produced (%s); sending it without the "
                        "original bytes", self.stage.name, type(exc).__name__)
            letter = dataclasses.replace(letter, value=None,
                                         error=f"{error}; original bytes dropped "
                                               f"({type(exc).__name__})")
            await self._send(self.topics.dlq, source.key or b"", encode(letter))
        self.metrics.dead_letters.add(1, {"stage": self.stage.name})
        if request_id is None and reason == "undecodable":
            request_id = _request_id_of(source.value)
        await self._audit((self.auditor.dead_letter_event(self.stage.name, request_id,
                                                          reason),))
        if request_id is not None:
            result = Result(request_id=request_id, status=Status.ERROR,
                            blocked_by=self.stage.name, reason=reason, detail=error)
            await self._emit_result(result, self._origin(source, headers, 0.0))


@dataclass(frozen=True, slots=True)
class _Source:
    """Where a record came from: what a dead letter must carry."""

    key: bytes | None
    value: bytes | None
    topic: str | None
    partition: int | None
    offset: int | None


def _transient(exc: BaseException) -> bool:
    """Broker trouble that passes (retry the send), as opposed to a bad record."""
    from aiokafka.errors import KafkaError, KafkaTimeoutError, ProducerClosed

    if isinstance(exc, KafkaTimeoutError | ProducerClosed | ConnectionError | TimeoutError):
        return True
    return isinstance(exc, KafkaError) and bool(getattr(exc, "retriable", False))


def _header(headers: Any, name: str) -> str | None:
    items = headers.items() if isinstance(headers, dict) else (headers or ())
    for key, value in items:
        if str(key).lower() == name:
            return value.decode("latin-1") if isinstance(value, bytes) else str(value)
    return None


def _request_id_of(value: bytes | None) -> str | None:
    """A usable request id from bytes that failed to decode fully, if there is one."""
    if not value:
        return None
    try:
        data = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    if isinstance(data, dict) and isinstance(data.get("request"), dict):
        data = data["request"]
    return usable_request_id(data)


_ID_VALUE = re.compile(rb'\s*:\s*("(?:[^"\\]|\\.){0,800}"|-?\d{1,30})')


def _peek_request_id(head: bytes) -> str | None:
    """The top-level `request_id` of a JSON object from its first bytes, without parsing
    the rest: strings are skipped, nesting is counted, only a depth-1 key counts."""
    if not head.lstrip().startswith(b"{"):
        return None
    depth = 0
    i, n = 0, len(head)
    while i < n:
        c = head[i]
        if c == 0x22:  # '"'
            j = i + 1
            while j < n and head[j] != 0x22:
                j += 2 if head[j] == 0x5C else 1  # skip escapes
            if j >= n:
                return None
            if depth == 1 and head[i + 1:j] == b"request_id" and _is_key(head, j + 1):
                match = _ID_VALUE.match(head, j + 1)
                if match is None:
                    return None
                try:
                    return usable_request_id({"request_id": orjson.loads(match.group(1))})
                except orjson.JSONDecodeError:
                    return None
            i = j + 1
            continue
        if c in b"{[":
            depth += 1
        elif c in b"}]":
            depth -= 1
        i += 1
    return None


def _is_key(head: bytes, after: int) -> bool:
    """Whether the string that ended just before `after` is an object key (a colon follows)."""
    rest = head[after:after + 64].lstrip()
    return rest.startswith(b":")
