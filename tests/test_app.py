"""`StageAgent.handle` without a broker: fake topics record what would be produced.

The emitted-result guard runs on the real Redis (the `redis_url` fixture), so the claims
and TTLs are Redis's own; only the Kafka producer is faked, which lets these tests make
a send fail exactly where the delivery guarantees are decided.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import uuid
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from aiokafka.errors import KafkaTimeoutError, MessageSizeTooLargeError

from guardstream.app import ORIGIN_HEADER, StageAgent, _peek_request_id, create_app
from guardstream.emitted import EmitState, EmittedGuard
from guardstream.settings import Settings


class FakeTopic:
    """A topic whose sends are recorded; `fail` holds exceptions for the next sends."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.sent: list[tuple[bytes, bytes, list[tuple[str, bytes]] | None]] = []
        self.fail: list[BaseException] = []
        self.delay = 0.0
        self.hold_acks = False  # leave the returned futures pending (in `unacked`)
        self.unacked: list[asyncio.Future[None]] = []

    def get_topic_name(self) -> str:
        return self.name

    async def send(self, *, key: bytes, value: bytes,
                   headers: list[tuple[str, bytes]] | None = None) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail:
            future.set_exception(self.fail.pop(0))
            return future
        self.sent.append((key, value, headers))
        if self.hold_acks:
            self.unacked.append(future)
        else:
            future.set_result(None)
        return future

    def ack_all(self) -> None:
        for future in self.unacked:
            future.set_result(None)
        self.unacked.clear()

    def values(self) -> list[dict[str, Any]]:
        return [orjson.loads(value) for _, value, _ in self.sent]


def _agent(stage: str, redis_url: str, prefix: str) -> StageAgent:
    settings = Settings(redis_url=redis_url, topic_prefix=prefix)
    agent = StageAgent(create_app(settings, stage), stage, settings)
    for field in ("source", "forward", "results", "audit", "dlq"):
        if getattr(agent.topics, field) is not None:
            setattr(agent.topics, field, FakeTopic(field))
    return agent


def _topic(agent: StageAgent, field: str) -> FakeTopic:
    topic = getattr(agent.topics, field)
    assert isinstance(topic, FakeTopic)
    return topic


@pytest.fixture
def prefix() -> str:
    return f"gsunit{uuid.uuid4().hex[:8]}"


@pytest.fixture
def ratelimit(redis_url: str, prefix: str) -> Iterator[StageAgent]:
    """The ingress stage (it decodes raw request JSON)."""
    yield _agent("ratelimit", redis_url, prefix)


@pytest.fixture
def validate(redis_url: str, prefix: str) -> Iterator[StageAgent]:
    """A middle stage that ends bad requests with a terminal `blocked` result."""
    yield _agent("validate", redis_url, prefix)


def _blocked_envelope(request_id: str) -> bytes:
    """An envelope that validate blocks (`invalid_role`): a terminal result mid-pipeline."""
    return orjson.dumps({"request": {"request_id": request_id, "user_id": "u-1",
                                     "messages": [{"role": "wizard", "content": "hi"}]},
                         "received_ms": 1.0})


def _origin(value: str) -> list[tuple[str, bytes]]:
    return [(ORIGIN_HEADER, value.encode())]


async def test_a_redelivered_terminal_result_is_emitted_once(validate: StageAgent) -> None:
    value = _blocked_envelope("r-dup")
    for offset in (7, 7):  # the same record delivered twice (same origin header)
        await validate.handle(b"r-dup", value, topic="t", partition=0, offset=offset,
                              headers=_origin("3:41"))
    results = _topic(validate, "results").values()
    assert [r["request_id"] for r in results] == ["r-dup"]
    assert results[0]["reason"] == "invalid_role"
    assert validate.emitted.duplicates == 1


async def test_a_new_publication_of_the_same_id_gets_its_own_result(
        validate: StageAgent) -> None:
    value = _blocked_envelope("r-again")
    for origin in ("0:1", "0:9"):  # two ingress records that reuse one request id
        await validate.handle(b"r-again", value, topic="t", partition=0, offset=1,
                              headers=_origin(origin))
    assert len(_topic(validate, "results").sent) == 2


async def test_concurrent_copies_produce_one_result(validate: StageAgent) -> None:
    results = _topic(validate, "results")
    results.delay = 0.05  # the first copy is still producing while the others arrive
    value = _blocked_envelope("r-race")
    await asyncio.gather(*(validate.handle(b"r-race", value, topic="t", partition=0,
                                           offset=3, headers=_origin("1:5"))
                           for _ in range(4)))
    assert len(results.sent) == 1
    assert validate.emitted.duplicates == 3


async def test_forwarded_records_carry_the_ingress_origin(ratelimit: StageAgent) -> None:
    body = {"request_id": "r-fwd", "user_id": f"u-{uuid.uuid4().hex[:8]}",
            "messages": [{"role": "user", "content": "hello"}]}
    await ratelimit.handle(b"r-fwd", orjson.dumps(body), topic="req", partition=2, offset=17)
    (_, _, headers), = _topic(ratelimit, "forward").sent
    assert headers is not None and (ORIGIN_HEADER, b"2:17") in headers


@pytest.mark.parametrize(("stage", "output", "value"), [
    ("ratelimit", "forward", orjson.dumps({"request_id": "r-ride", "user_id": "u-ride",
                                           "messages": [{"role": "user", "content": "hi"}]})),
    ("validate", "results", _blocked_envelope("r-ride")),
])
async def test_audit_events_are_queued_with_the_record_before_its_ack(
        redis_url: str, prefix: str, stage: str, output: str, value: bytes) -> None:
    """Queued together, the record and its audit events share one produce request."""
    agent = _agent(stage, redis_url, f"{prefix}{stage}")
    produced = _topic(agent, output)
    produced.hold_acks = True
    handling = asyncio.create_task(agent.handle(b"r-ride", value, topic="t", partition=0,
                                                offset=1, headers=_origin("0:4")))
    for _ in range(200):
        if produced.unacked:
            break
        await asyncio.sleep(0.01)
    assert produced.unacked, "the record was never produced"
    await asyncio.sleep(0.05)  # a wrong order would now be waiting for the ack
    events = _topic(agent, "audit").values()
    assert events and {e["request_id"] for e in events} == {"r-ride"}
    assert not handling.done()  # the record's offset still waits for the broker's ack
    produced.ack_all()
    await asyncio.wait_for(handling, 5)
    assert len(_topic(agent, "audit").sent) == len(events)  # none sent twice


async def test_transient_produce_errors_are_retried_not_dropped(validate: StageAgent) -> None:
    results = _topic(validate, "results")
    results.fail = [KafkaTimeoutError(), KafkaTimeoutError()]
    await validate.handle(b"r-retry", _blocked_envelope("r-retry"), topic="t", partition=0,
                          offset=1, headers=_origin("0:2"))
    assert [r["request_id"] for r in results.values()] == ["r-retry"]
    assert _topic(validate, "dlq").sent == []


async def test_a_record_the_broker_refuses_is_dead_lettered_with_an_error_result(
        validate: StageAgent) -> None:
    results = _topic(validate, "results")
    results.fail = [MessageSizeTooLargeError()]
    value = _blocked_envelope("r-big")
    await validate.handle(b"r-big", value, topic="gs.stage.validate", partition=1, offset=5,
                          headers=_origin("1:1"))
    letter, = _topic(validate, "dlq").values()
    assert letter["error"] == "produce failed: MessageSizeTooLargeError"
    assert letter["source"] == {"topic": "gs.stage.validate", "partition": 1, "offset": 5}
    assert base64.b64decode(letter["value_b64"]) == value
    # The failed produce released its claim, so the error result could be emitted at once.
    result, = results.values()
    assert (result["status"], result["reason"]) == ("error", "produce_failed")


HUGE = b'{"request_id": "r-huge", "user_id": "u", "messages": [{"role": "user", "content": "' \
    + b"x" * 700_000 + b'"}]}'


@pytest.mark.parametrize(("value", "error", "result_id"), [
    (b"{not json", "not valid UTF-8 JSON", None),
    (b'{"request_id": "r-utf8", "user_id": "\xff\xfe"}', "not valid UTF-8 JSON", None),
    (orjson.dumps([1, 2, 3]), "expected a JSON object", None),
    (orjson.dumps({"request_id": ["x"], "user_id": "u", "messages": []}), "no usable request_id",
     None),
    (orjson.dumps({"request_id": {"a": 1}}), "no usable request_id", None),
    (b"", "not valid UTF-8 JSON", None),
    (HUGE, "record too large", "r-huge"),
])
async def test_poison_ingress_records_are_dead_lettered(
        ratelimit: StageAgent, value: bytes, error: str, result_id: str | None) -> None:
    await ratelimit.handle(b"k", value, topic="gs.requests", partition=3, offset=11)
    letter, = _topic(ratelimit, "dlq").values()
    assert error in letter["error"]
    assert letter["source"] == {"topic": "gs.requests", "partition": 3, "offset": 11}
    if len(value) > ratelimit.max_record_bytes:  # the head and a digest of the rest
        assert value.startswith(base64.b64decode(letter["value_b64"]))
        assert hashlib.sha256(value).hexdigest() in letter["error"]
    else:
        assert base64.b64decode(letter["value_b64"]) == value
    assert letter["stage"] == "ratelimit"
    audit = _topic(ratelimit, "audit").values()
    assert [a["event"] for a in audit] == ["dead_letter"]
    results = _topic(ratelimit, "results").values()
    assert [r["request_id"] for r in results] == ([result_id] if result_id else [])
    assert all(r["status"] == "error" for r in results)
    assert _topic(ratelimit, "forward").sent == []


async def test_a_decoder_bug_is_a_dead_letter_not_a_crash(
        ratelimit: StageAgent, monkeypatch: pytest.MonkeyPatch) -> None:
    import guardstream.app as app_module

    def broken(*_: Any, **__: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(app_module, "decode_request", broken)
    await ratelimit.handle(b"k", orjson.dumps({"request_id": "r-bug"}), topic="t",
                           partition=0, offset=0)
    letter, = _topic(ratelimit, "dlq").values()
    assert letter["error"] == "decode failed: RuntimeError"
    assert [r["request_id"] for r in _topic(ratelimit, "results").values()] == ["r-bug"]


async def test_audit_failures_never_lose_the_result(validate: StageAgent) -> None:
    _topic(validate, "audit").fail = [MessageSizeTooLargeError()] * 4
    await validate.handle(b"r-aud", _blocked_envelope("r-aud"), topic="t", partition=0,
                          offset=1, headers=_origin("0:3"))
    assert [r["request_id"] for r in _topic(validate, "results").values()] == ["r-aud"]


@pytest.mark.parametrize(("head", "expected"), [
    (b'{"request_id": "r-1", "messages": [', "r-1"),
    (b'{"user_id": "u", "request_id":42, "x"', "42"),
    (b'{"metadata": {"request_id": "inner"}, "request_id": "outer"', "outer"),
    (b'{"messages": [{"content": "\\"request_id\\": \\"fake\\""}], "request_id": "r"', "r"),
    (b'{"metadata": {"request_id": "inner"}, "messages": [', None),
    (b'{"note": "request_id", "request_id": "r-2"', "r-2"),
    (b'{"request_id": "  "', None),
    (b'{"request_id": null', None),
    (b'{"request_id": "unterminated', None),
    (b'["request_id", "r"]', None),
])
def test_peek_request_id(head: bytes, expected: str | None) -> None:
    assert _peek_request_id(head) == expected


async def test_emitted_guard_fails_open_when_redis_is_down() -> None:
    from redis.asyncio import Redis

    dead = Redis.from_url("redis://127.0.0.1:1/0", socket_timeout=0.2,
                          socket_connect_timeout=0.2)
    guard = EmittedGuard(dead, prefix="gsunit")
    try:
        first = await guard.claim("r-1", "0:1")
        second = await guard.claim("r-2", "0:2")  # the breaker: no second timeout
    finally:
        await dead.aclose()
    assert first.state is second.state is EmitState.UNGUARDED
    assert guard.unguarded == 2


async def test_a_crashed_owner_delays_a_redelivery_but_never_loses_it(
        redis_url: str, prefix: str) -> None:
    from redis.asyncio import Redis

    redis = Redis.from_url(redis_url)
    try:
        crashed = EmittedGuard(redis, prefix=prefix, pending_seconds=0.3)
        successor = EmittedGuard(redis, prefix=prefix, pending_seconds=0.3)
        claim = await crashed.claim("r-c", "0:1")  # ... and the worker died before the ack
        assert claim.state is EmitState.OWNER
        again = await successor.claim("r-c", "0:1")
        assert again.state is EmitState.OWNER  # after the pending marker expired
        assert successor.waits > 0
        await successor.confirm("r-c", "0:1", again)
        assert (await successor.claim("r-c", "0:1")).state is EmitState.DUPLICATE
        assert 0 < await redis.ttl(successor.key("r-c")) <= successor.ttl_seconds
    finally:
        await redis.aclose()


async def test_a_started_stage_freezes_its_start_up_heap(validate: StageAgent) -> None:
    import gc

    gc.unfreeze()
    try:
        await validate.ensure_started()
        assert gc.get_freeze_count() > 0
        assert id(validate.stage) not in {id(obj) for obj in gc.get_objects()}
    finally:
        gc.unfreeze()
