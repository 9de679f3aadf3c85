"""Delivery guarantees on the embedded broker and a real Redis: crashes, rebalances, SIGTERM
and poison records, with every stage in its own worker process so one can be killed.

What each test checks, as the issue asks: every request id gets a result exactly once as
the client (`GuardstreamClient`) sees it; the raw results topic is counted too (duplicates
there are what the emitted-result guard has to prevent); the dev model counts at most one
paid call per request id. Measurements are printed (`pytest -s` shows them).
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from guardstream.agents import STAGE_ORDER
from guardstream.client import GuardstreamClient
from guardstream.devmodel import DevModelServer
from guardstream.embedded.broker import EmbeddedBroker
from guardstream.settings import Settings
from guardstream.topics.admin import ensure_topics
from guardstream.worker import READY_PREFIX

pytestmark = pytest.mark.integration

READY_TIMEOUT = 120.0
RESULT_TIMEOUT = 90.0


def write_policy(path: Path, **llm: Any) -> str:
    """The packaged policy with short LLM timeouts: a worker killed mid-call leaves a
    pending idempotency marker that expires after the retry budget (~8 s here, not ~2 min)."""
    from importlib.resources import files

    policy = yaml.safe_load(files("guardstream").joinpath("default_policy.yaml").read_text())
    policy["stages"]["llm"].update({"timeout_seconds": 2, "max_retries": 1,
                                    "backoff_base_seconds": 0.1, "backoff_max_seconds": 0.5,
                                    "max_retry_after_seconds": 0.5, **llm})
    path.write_text(yaml.safe_dump(policy))
    return str(path)


class Worker:
    """One `guardstream worker --stage NAME` process; `ready` is set when it consumes."""

    def __init__(self, stage: str, env: Mapping[str, str], log_path: Path) -> None:
        self.stage = stage
        with log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "guardstream.cli", "worker", "--stage", stage],
                env=dict(env), stdout=subprocess.PIPE, stderr=log)
        self.ready = threading.Event()
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = raw.decode(errors="replace").strip()
            self.lines.append(line)
            if READY_PREFIX in line:
                self.ready.set()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    async def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while not self.ready.is_set():
            if not self.alive() or time.monotonic() > deadline:
                raise RuntimeError(f"worker {self.stage} not ready: {self.lines[-3:]}")
            await asyncio.sleep(0.1)

    def signal(self, signum: int) -> None:
        if self.alive():
            self.proc.send_signal(signum)

    def stop(self, timeout: float = 20.0) -> int:
        if self.alive():
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        return self.proc.wait(10)


class Pipeline:
    """Worker processes per stage on shared services, with this pipeline's topic prefix."""

    def __init__(self, *, broker: str, redis_url: str, openai_base_url: str,
                 policy: str, log_dir: Path, stages: tuple[str, ...] = STAGE_ORDER,
                 extra_env: Mapping[str, str] | None = None) -> None:
        self.prefix = f"gsd{uuid.uuid4().hex[:10]}"
        self.bootstrap = broker.removeprefix("kafka://")
        self.redis_url = redis_url
        self.stages = stages
        self.env = {**os.environ, "GUARDSTREAM_BROKER": broker, "REDIS_URL": redis_url,
                    "OPENAI_BASE_URL": openai_base_url, "OPENAI_API_KEY": "sk-dev-not-a-key",
                    "GUARDSTREAM_TOPIC_PREFIX": self.prefix, "GUARDSTREAM_POLICY": policy,
                    **(extra_env or {})}
        self.log_dir = log_dir
        self.workers: dict[str, list[Worker]] = {stage: [] for stage in stages}

    def topic(self, name: str) -> str:
        return f"{self.prefix}.{name}"

    async def start(self) -> None:
        settings = Settings.from_env(self.env)
        await ensure_topics(settings)
        for stage in self.stages:
            self.spawn(stage)
        await asyncio.gather(*(w.wait_ready() for ws in self.workers.values() for w in ws))

    def spawn(self, stage: str) -> Worker:
        worker = Worker(stage, self.env, self.log_dir / f"{stage}.log")
        self.workers[stage].append(worker)
        return worker

    def stop(self) -> None:
        for workers in self.workers.values():
            for worker in workers:
                worker.stop()


@pytest.fixture(scope="module")
def delivery_dev() -> Iterator[DevModelServer]:
    """A dev model of this module's own: its per-request call counts are ours alone."""
    with DevModelServer() as server:
        yield server


@pytest.fixture(scope="module")
def pipeline(broker: EmbeddedBroker, redis_url: str, delivery_dev: DevModelServer,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    log_dir = tmp_path_factory.mktemp("delivery")
    running = Pipeline(broker=broker.url, redis_url=redis_url,
                       openai_base_url=delivery_dev.base_url,
                       policy=write_policy(log_dir / "policy.yaml"), log_dir=log_dir)
    try:
        asyncio.run(running.start())
        yield running
    finally:
        running.stop()


# -- observing the results topic --------------------------------------------------------


class Collector:
    """Reads a topic from the start in the background: every record with its arrival time."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.records: list[tuple[float, bytes | None, bytes]] = []
        self.headers: list[list[tuple[str, bytes]]] = []
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Collector:
        from aiokafka import AIOKafkaConsumer

        self._consumer = AIOKafkaConsumer(self.topic, bootstrap_servers=self.bootstrap,
                                          auto_offset_reset="earliest",
                                          enable_auto_commit=False)
        await self._consumer.start()
        self._task = asyncio.create_task(self._run())
        return self

    async def _run(self) -> None:
        while True:
            batch = await self._consumer.getmany(timeout_ms=200)
            now = time.monotonic()
            for messages in batch.values():
                self.records.extend((now, m.key, m.value) for m in messages)
                self.headers.extend(list(m.headers or ()) for m in messages)

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass
        await self._consumer.stop()

    def counts(self) -> Counter[str]:
        """Records per request id (every pipeline topic is keyed by it)."""
        return Counter((k or b"").decode() for _, k, _ in self.records)

    async def wait_for(self, ids: set[str], timeout: float, settle: float = 2.0) -> None:
        deadline = time.monotonic() + timeout
        while not ids <= set(self.counts()) and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        await asyncio.sleep(settle)  # late duplicates

    def longest_gap_after(self, moment: float) -> float:
        """The longest pause between results after `moment`: how long recovery took."""
        times = sorted(t for t, _, _ in self.records if t >= moment)
        stamps = [moment, *times]
        return max((b - a for a, b in itertools.pairwise(stamps)), default=0.0)


def new_requests(count: int, tag: str) -> list[dict[str, Any]]:
    run = uuid.uuid4().hex[:6]
    return [{"request_id": f"{tag}-{run}-{i}", "user_id": f"u-{run}-{i}",
             "messages": [{"role": "user",
                           "content": f"Question {i}: how do stream processors scale?"}]}
            for i in range(count)]


@pytest.fixture
async def client(pipeline: Pipeline) -> AsyncIterator[GuardstreamClient]:
    async with GuardstreamClient(pipeline.bootstrap, topic_prefix=pipeline.prefix) as running:
        yield running


async def publish_paced(client: GuardstreamClient, requests: list[dict[str, Any]],
                        per_second: float) -> None:
    for body in requests:
        await client.publish(body)
        await asyncio.sleep(1 / per_second)


async def wait_all(client: GuardstreamClient, ids: list[str]) -> dict[str, Any]:
    results = await asyncio.gather(*(client.wait(i, RESULT_TIMEOUT) for i in ids),
                                   return_exceptions=True)
    return dict(zip(ids, results, strict=True))


async def llm_in_flight(pipeline: Pipeline) -> set[str]:
    """Request ids whose model call was in flight (a pending idempotency marker)."""
    from redis.asyncio import Redis

    redis = Redis.from_url(pipeline.redis_url)
    try:
        ids = set()
        pattern = f"{pipeline.prefix}:{{llm}}:idem:*"
        async for key in redis.scan_iter(match=pattern, count=500):
            raw = await redis.get(key)
            if raw is not None and orjson.loads(raw).get("state") == "pending":
                ids.add(key.decode().rsplit(":", 1)[1])
        return ids
    finally:
        await redis.aclose()


def assert_answered_once(answers: Mapping[str, Any], raw: Counter[str]) -> None:
    failed = {i: repr(a) for i, a in answers.items() if isinstance(a, BaseException)}
    assert not failed, f"{len(failed)} requests without a result: {list(failed.items())[:3]}"
    statuses = Counter(a.status.value for a in answers.values())
    assert statuses == Counter({"ok": len(answers)}), statuses
    missing = set(answers) - set(raw)
    assert not missing, f"{len(missing)} results never on the raw topic"


# -- the tests ----------------------------------------------------------------------------


async def test_sigkill_redact_and_llm_mid_stream(pipeline: Pipeline, client: GuardstreamClient,
                                                 delivery_dev: DevModelServer) -> None:
    requests = new_requests(240, "kill")
    ids = [r["request_id"] for r in requests]
    async with Collector(pipeline.bootstrap, pipeline.topic("results")) as results, \
            Collector(pipeline.bootstrap, pipeline.topic("stage.moderate")) as after_redact, \
            Collector(pipeline.bootstrap, pipeline.topic("stage.output")) as after_llm:
        publishing = asyncio.create_task(publish_paced(client, requests, per_second=16))
        await asyncio.sleep(4)
        redact = pipeline.workers["redact"][-1]
        redact.signal(signal.SIGKILL)
        killed_redact = time.monotonic()
        replacement = pipeline.spawn("redact")
        await asyncio.sleep(4)
        llm = pipeline.workers["llm"][-1]
        llm.signal(signal.SIGKILL)
        killed_llm = time.monotonic()
        in_flight = await llm_in_flight(pipeline)
        llm_replacement = pipeline.spawn("llm")
        await publishing
        await asyncio.gather(replacement.wait_ready(), llm_replacement.wait_ready())
        answers = await wait_all(client, ids)
        await results.wait_for(set(ids), timeout=30)
        raw = results.counts()
        redelivered = {name: sum(c - 1 for c in seen.counts().values() if c > 1)
                       for name, seen in (("redact", after_redact), ("llm", after_llm))}

    calls = {i: delivery_dev.behaviour.calls[i] for i in ids}
    raw_duplicates = sum(raw[i] - 1 for i in ids if raw[i] > 1)
    print(f"\n[kill] n={len(ids)} envelopes produced twice (redeliveries)={redelivered} "
          f"raw duplicates={raw_duplicates} "
          f"client dropped={client.duplicates_dropped} "
          f"model calls={sum(calls.values())} (ids called twice: "
          f"{sum(1 for c in calls.values() if c > 1)}, in flight at the llm kill: "
          f"{len(in_flight)}) redact recovery gap={results.longest_gap_after(killed_redact):.1f}s"
          f" llm recovery gap={results.longest_gap_after(killed_llm):.1f}s")
    assert_answered_once(answers, raw)
    # One paid call per request; the only exception a real crash allows: a call that was
    # in flight when the llm worker died is made again once its marker expires.
    over = {i: c for i, c in calls.items() if c > 1 and i not in in_flight}
    assert not over, f"requests called more than once: {over}"
    assert all(c <= 2 for c in calls.values())
    assert all(c >= 1 for c in calls.values())


async def test_scale_one_stage_to_three_workers_and_back(pipeline: Pipeline,
                                                         client: GuardstreamClient,
                                                         delivery_dev: DevModelServer) -> None:
    requests = new_requests(240, "scale")
    ids = [r["request_id"] for r in requests]
    async with Collector(pipeline.bootstrap, pipeline.topic("results")) as results:
        publishing = asyncio.create_task(publish_paced(client, requests, per_second=16))
        await asyncio.sleep(2)
        added = [pipeline.spawn("validate"), pipeline.spawn("validate")]
        await asyncio.gather(*(w.wait_ready() for w in added))
        await asyncio.sleep(2)
        assert sum(w.alive() for w in pipeline.workers["validate"]) == 3
        # Back to one: SIGTERM hands their partitions back to the survivor.
        exits = [await asyncio.to_thread(w.stop) for w in added]
        await publishing
        answers = await wait_all(client, ids)
        await results.wait_for(set(ids), timeout=30)
        raw = results.counts()

    calls = {i: delivery_dev.behaviour.calls[i] for i in ids}
    print(f"\n[scale] n={len(ids)} raw duplicates={sum(raw[i] - 1 for i in ids if raw[i] > 1)}"
          f" client dropped={client.duplicates_dropped} model calls={sum(calls.values())} "
          f"worker exit codes={exits}")
    assert exits == [0, 0]
    assert_answered_once(answers, raw)
    assert all(c == 1 for c in calls.values()), Counter(calls.values())


async def test_sigterm_mid_stream_hands_back_in_flight_work(
        pipeline: Pipeline, client: GuardstreamClient, delivery_dev: DevModelServer) -> None:
    requests = new_requests(120, "term")
    ids = [r["request_id"] for r in requests]
    async with Collector(pipeline.bootstrap, pipeline.topic("results")) as results:
        publishing = asyncio.create_task(publish_paced(client, requests, per_second=20))
        await asyncio.sleep(2.5)
        moderate = pipeline.workers["moderate"][-1]
        started = time.monotonic()
        code = await asyncio.to_thread(moderate.stop)
        stopped_in = time.monotonic() - started
        restarted = pipeline.spawn("moderate")
        await publishing
        await restarted.wait_ready()
        answers = await wait_all(client, ids)
        await results.wait_for(set(ids), timeout=30)
        raw = results.counts()

    print(f"\n[sigterm] n={len(ids)} exit={code} stopped in {stopped_in:.1f}s raw duplicates="
          f"{sum(raw[i] - 1 for i in ids if raw[i] > 1)}")
    assert code == 0
    assert_answered_once(answers, raw)
    assert all(delivery_dev.behaviour.calls[i] == 1 for i in ids)


async def test_poison_records_are_dead_lettered_and_valid_requests_served(
        pipeline: Pipeline, client: GuardstreamClient) -> None:
    from tests.support import produce

    run = uuid.uuid4().hex[:6]
    huge = orjson.dumps({"request_id": f"huge-{run}", "user_id": "u",
                         "messages": [{"role": "user", "content": "x" * 900_000}]})
    poison = {
        b"{not json": None,
        b'{"request_id": "utf8-' + run.encode() + b'", "user_id": "\xff\xfe"}': None,
        orjson.dumps([1, 2, 3]): None,
        orjson.dumps({"request_id": ["not", "a", "string"], "user_id": 7,
                      "messages": "wrong"}): None,
        huge: f"huge-{run}",
    }
    # Wrong types with a usable id are the validate stage's business: a blocked result.
    typed = {"request_id": f"types-{run}", "user_id": 12,
             "messages": [{"role": "user", "content": ["not", "text"]}], "max_tokens": "lots"}
    valid = new_requests(10, "valid")
    async with Collector(pipeline.bootstrap, pipeline.topic("dlq")) as letters:
        await produce(pipeline.bootstrap, pipeline.topic("requests"),
                      [(b"poison", value) for value in poison])
        typed_result = await client.submit(typed, timeout=RESULT_TIMEOUT)
        answers = await client.submit_many(valid, timeout=RESULT_TIMEOUT)
        huge_result = await client.wait(f"huge-{run}", RESULT_TIMEOUT)
        deadline = time.monotonic() + 30
        while len(letters.records) < len(poison) and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        dead = [orjson.loads(v) for _, _, v in letters.records]

    originals = {base64.b64decode(d["value_b64"]) for d in dead}
    assert originals - {huge[:65_536]} == set(poison) - {huge}
    assert huge[:65_536] in originals  # too large for the DLQ: its head (and a digest)
    assert len(dead) == len(poison)
    assert all(d["source"]["topic"] == pipeline.topic("requests") for d in dead)
    assert all(isinstance(d["source"]["offset"], int) for d in dead)
    assert (huge_result.status.value, huge_result.reason) == ("error", "too_large")
    assert (typed_result.status.value, typed_result.blocked_by) == ("blocked", "validate")
    assert [a.status.value for a in answers] == ["ok"] * len(valid)


async def test_replayed_envelopes_emit_no_second_result(pipeline: Pipeline,
                                                        client: GuardstreamClient) -> None:
    """What a redelivery looks like to the last stage, made on purpose: the same envelopes
    (same origin header) a second time. The emitted guard must drop their results."""
    from aiokafka import AIOKafkaProducer

    requests = new_requests(30, "replay")
    ids = [r["request_id"] for r in requests]
    async with Collector(pipeline.bootstrap, pipeline.topic("results")) as results, \
            Collector(pipeline.bootstrap, pipeline.topic("stage.output")) as to_output:
        answers = dict(zip(ids, await client.submit_many(requests, timeout=RESULT_TIMEOUT),
                           strict=True))
        await to_output.wait_for(set(ids), timeout=30, settle=0.5)  # the reader may lag
        producer = AIOKafkaProducer(bootstrap_servers=pipeline.bootstrap, acks="all")
        await producer.start()
        try:
            # Only this test's envelopes: the topic also holds the earlier tests' records.
            ours = [(key, value, headers) for (_, key, value), headers
                    in zip(to_output.records, to_output.headers, strict=True)
                    if (key or b"").decode() in answers]
            for key, value, headers in ours:
                await producer.send_and_wait(pipeline.topic("stage.output"), value, key=key,
                                             headers=headers)
        finally:
            await producer.stop()
        await asyncio.sleep(5)  # time for the replayed envelopes to be processed
        raw = results.counts()
        replayed = len(ours)
    print(f"\n[replay] replayed {replayed} envelopes; results per id: {Counter(raw.values())}")
    assert replayed == len(ids)
    assert_answered_once(answers, raw)
    assert all(raw[i] == 1 for i in ids), Counter(raw[i] for i in ids)
