"""Measure how the redact stage scales from 1 to N worker processes sharing its partitions.

One worker of every other stage runs for the whole measurement; redact workers are added
one at a time (1, 2, 3, ...). After each addition the script waits until the redact
consumer group has settled (every redact worker owns partitions, disjoint, covering the
topic), sends a warm-up batch, then a measured batch of requests full of PII, and reads
every result back. It reports, per worker count:

- `e2e_rps`: requests answered per second, first produce to last result (whole pipeline);
- `redact_rps`: records the redact stage produced per second (from the Kafka timestamps of
  its output topic), which isolates the scaled stage from the others;
- per worker: its partitions and how many records it handled in the measured batch.

Redact workers run the real `run_stage_worker` through a thin harness (`--harness STAGE`)
that only *prints* what Faust tells it (partition assignments) and counts `handle()` calls;
nothing about processing changes. Partition ownership is read this way because the
embedded broker's DescribeGroups answers with empty member assignments.

    python scripts/scale_redact.py [--workers 1,2,3] [--requests 300] [--partitions 6]

Uses GUARDSTREAM_BROKER, REDIS_URL and OPENAI_BASE_URL when set, else the embedded broker,
an embedded Redis and the dev model. Numbers depend on free cores: on a shared 2-core
machine expect noise and little gain past 2 workers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

from guardstream.agents import STAGE_ORDER
from guardstream.settings import Settings
from guardstream.topics import TopicNames
from guardstream.topics.admin import ensure_topics

__all__ = ["Fleet", "Round", "WorkerProc", "measure", "pii_requests", "rss_mib"]

SCALED_STAGE = "redact"
READY_TIMEOUT = 150.0
SETTLE_TIMEOUT = 90.0
RESULT_TIMEOUT = 120.0

_ASSIGNED = re.compile(r"assigned pid=(\d+) partitions=\[([\d, ]*)\]")
_HANDLED = re.compile(r"handled pid=(\d+) n=(\d+)")


@dataclasses.dataclass
class WorkerProc:
    """One worker process and what it printed about itself."""

    stage: str
    proc: subprocess.Popen[bytes]
    ready: threading.Event = dataclasses.field(default_factory=threading.Event)
    partitions: tuple[int, ...] | None = None
    handled: int = 0
    lines: list[str] = dataclasses.field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def read(self) -> None:
        assert self.proc.stdout is not None  # noqa: S101 - created with PIPE
        for raw in self.proc.stdout:
            line = raw.decode(errors="replace").strip()
            if (match := _HANDLED.search(line)) is not None:
                self.handled = int(match.group(2))
                continue
            self.lines.append(line)
            if (match := _ASSIGNED.search(line)) is not None:
                parts = match.group(2).strip()
                self.partitions = tuple(int(p) for p in parts.split(",")) if parts else ()
            if "ready stage=" in line:
                self.ready.set()


class Fleet:
    """Worker processes on one broker and topic prefix; all of them stopped on exit."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = dict(env)
        self.workers: list[WorkerProc] = []

    def start(self, stage: str, *, harness: bool = False) -> WorkerProc:
        command = ([sys.executable, str(Path(__file__).resolve()), "--harness", stage]
                   if harness else
                   [sys.executable, "-m", "guardstream.cli", "worker", "--stage", stage])
        proc = subprocess.Popen(command, env=self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL)
        worker = WorkerProc(stage, proc)
        threading.Thread(target=worker.read, daemon=True).start()
        self.workers.append(worker)
        return worker

    def of(self, stage: str) -> list[WorkerProc]:
        return [w for w in self.workers if w.stage == stage]

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        for worker in self.workers:
            while not worker.ready.wait(0.2):
                if worker.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{worker.stage} worker pid={worker.pid} not ready "
                                       f"(exit={worker.proc.poll()})")

    def wait_settled(self, stage: str, partitions: int, timeout: float = SETTLE_TIMEOUT) -> None:
        """Until the stage's workers own disjoint, non-empty partition sets covering all."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            owned = [w.partitions for w in self.of(stage)]
            if all(owned) and _is_partition(owned, partitions):
                return
            time.sleep(0.2)
        raise RuntimeError(f"{stage} group did not settle: {owned}")

    def stop(self) -> None:
        for worker in self.workers:
            if worker.proc.poll() is None:
                worker.proc.terminate()
        for worker in self.workers:
            try:
                worker.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.proc.kill()
                worker.proc.wait(timeout=10)

    def __enter__(self) -> Fleet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _is_partition(owned: Sequence[tuple[int, ...] | None], partitions: int) -> bool:
    flat = [p for parts in owned for p in (parts or ())]
    return len(flat) == len(set(flat)) and set(flat) == set(range(partitions))


def rss_mib(pid: int) -> float:
    """Resident set size of a process, MiB (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def pii_requests(count: int, tag: str, seed: int = 13) -> list[dict[str, Any]]:
    """Chat requests that each carry a name, an email, a phone, an address and a card."""
    from faker import Faker

    fake = Faker("en_US")
    fake.seed_instance(seed)
    return [{
        "request_id": f"{tag}-{i}", "user_id": f"scale-{tag}-{i}",
        "messages": [{"role": "user", "content": (
            f"Hi, I am {fake.name()} and my email is {fake.email()}. Call me on "
            f"{fake.phone_number()} or write to {fake.street_address()}, {fake.city()}. "
            f"My card {fake.credit_card_number()} was charged twice; please explain the "
            f"refund policy for order {i} in two sentences.")}],
    } for i in range(count)]


@dataclasses.dataclass(frozen=True)
class Round:
    """One measured batch with `workers` redact processes."""

    workers: int
    requests: int
    answered: int
    duplicates: int
    statuses: dict[str, int]
    e2e_seconds: float
    redact_seconds: float
    redact_forwarded: int
    partitions: dict[int, tuple[int, ...]]  # pid -> owned partitions
    handled: dict[int, int]  # pid -> records handled in this batch

    @property
    def e2e_rps(self) -> float:
        return self.requests / self.e2e_seconds

    @property
    def redact_rps(self) -> float:
        return self.redact_forwarded / self.redact_seconds


async def _send_batch(bootstrap: str, names: TopicNames, batch: list[dict[str, Any]],
                      security: dict[str, Any]) -> tuple[float, float, int, dict[str, list[str]]]:
    """Produce; read results and redact's output.

    Returns (seconds to the last result, seconds to redact's last output record, records
    redact forwarded, result statuses by request id)."""
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

    wanted = {r["request_id"] for r in batch}
    consumers: dict[str, Any] = {}
    for topic in (names.results, names.output_of(SCALED_STAGE) or ""):
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                    group_id=None, **security)
        await consumer.start()
        await consumer.topics()  # loads the metadata partitions_for_topic reads
        parts = [TopicPartition(topic, p)
                 for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(parts)
        await consumer.seek_to_end(*parts)
        for tp in parts:  # resolve "end" now, before anything is produced
            await consumer.position(tp)
        consumers[topic] = consumer
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5,
                                **security)
    await producer.start()
    try:
        start = time.time()
        for body in batch:
            await producer.send(names.requests, key=body["request_id"].encode(),
                                value=orjson.dumps(body))
        await producer.flush()
        statuses: dict[str, list[str]] = {}
        redact_out: set[str] = set()
        redact_last_ms = 0
        results = consumers[names.results]
        forward = consumers[names.output_of(SCALED_STAGE) or ""]
        deadline = time.monotonic() + RESULT_TIMEOUT
        settle_until: float | None = None
        while time.monotonic() < deadline:
            for consumer, is_result in ((results, True), (forward, False)):
                batch_records = await consumer.getmany(timeout_ms=100)
                for records in batch_records.values():
                    for record in records:
                        key = (record.key or b"").decode()
                        if key not in wanted:
                            continue
                        if is_result:
                            statuses.setdefault(key, []).append(
                                orjson.loads(record.value)["status"])
                        else:
                            redact_out.add(key)
                            redact_last_ms = max(redact_last_ms, record.timestamp)
            if settle_until is None and len(statuses) == len(wanted):
                e2e = time.time() - start
                settle_until = time.monotonic() + 2.0  # catch duplicates
            if settle_until is not None and time.monotonic() >= settle_until:
                break
        else:
            e2e = time.time() - start
        # Requests blocked before redact never reach its output: count what did.
        return e2e, max(redact_last_ms / 1000 - start, 1e-3), len(redact_out), statuses
    finally:
        await producer.stop()
        for consumer in consumers.values():
            await consumer.stop()


def measure(*, broker: str, redis_url: str, openai_base_url: str,
            worker_counts: Sequence[int] = (1, 2, 3), requests: int = 300,
            partitions: int = 6, warmup: int = 30, prefix: str | None = None,
            extra_env: Mapping[str, str] | None = None,
            after_round: Any = None) -> list[Round]:
    """Run the rounds; `after_round(fleet)` (if given) is called after each one."""
    prefix = prefix or f"scale{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "GUARDSTREAM_BROKER": broker, "REDIS_URL": redis_url,
           "OPENAI_BASE_URL": openai_base_url,
           "OPENAI_API_KEY": os.environ.get("OPENAI_API_KEY") or "sk-dev-not-a-key",
           "GUARDSTREAM_TOPIC_PREFIX": prefix, "GUARDSTREAM_PARTITIONS": str(partitions),
           **(extra_env or {})}
    settings = Settings.from_env(env)
    asyncio.run(ensure_topics(settings))
    names = TopicNames(prefix)
    bootstrap = ",".join(settings.bootstrap_servers)
    security = _client_security(settings)
    rounds: list[Round] = []
    with Fleet(env) as fleet:
        for stage in STAGE_ORDER:
            if stage != SCALED_STAGE:
                fleet.start(stage)
        for count in sorted(set(worker_counts)):
            while len(fleet.of(SCALED_STAGE)) < count:
                fleet.start(SCALED_STAGE, harness=True)
            fleet.wait_ready()
            fleet.wait_settled(SCALED_STAGE, partitions)
            asyncio.run(_send_batch(bootstrap, names,
                                    pii_requests(warmup, f"w{count}-{uuid.uuid4().hex[:6]}"),
                                    security))
            before = {w.pid: w.handled for w in fleet.of(SCALED_STAGE)}
            owned = {w.pid: w.partitions or () for w in fleet.of(SCALED_STAGE)}
            batch = pii_requests(requests, f"m{count}-{uuid.uuid4().hex[:6]}", seed=count)
            e2e, redact, forwarded, statuses = asyncio.run(
                _send_batch(bootstrap, names, batch, security))
            time.sleep(1.5)  # the last `handled` lines are read by another thread
            counts: dict[str, int] = {}
            for values in statuses.values():
                for status in values:
                    counts[status] = counts.get(status, 0) + 1
            rounds.append(Round(
                workers=count, requests=requests, answered=len(statuses),
                duplicates=sum(len(v) - 1 for v in statuses.values()), statuses=counts,
                e2e_seconds=e2e, redact_seconds=redact, redact_forwarded=forwarded,
                partitions=owned,
                handled={w.pid: w.handled - before.get(w.pid, 0)
                         for w in fleet.of(SCALED_STAGE)}))
            if after_round is not None:
                after_round(fleet)
    return rounds


def _client_security(settings: Settings) -> dict[str, Any]:
    """aiokafka client kwargs for the configured SASL/TLS (empty for PLAINTEXT)."""
    sec = settings.kafka_security
    if sec.protocol == "PLAINTEXT":
        return {}
    import ssl

    kwargs: dict[str, Any] = {"security_protocol": sec.protocol}
    if sec.protocol in ("SSL", "SASL_SSL"):
        context = ssl.create_default_context(cafile=sec.ssl_cafile)
        if sec.ssl_certfile:
            context.load_cert_chain(sec.ssl_certfile, sec.ssl_keyfile)
        kwargs["ssl_context"] = context
    if sec.protocol.startswith("SASL"):
        kwargs.update(sasl_mechanism=sec.sasl_mechanism or "PLAIN",
                      sasl_plain_username=sec.sasl_username,
                      sasl_plain_password=sec.sasl_password)
    return kwargs


# --- the harness a scaled worker runs ------------------------------------------------------

def _harness(stage: str) -> int:
    """`guardstream worker --stage STAGE`, plus lines saying what Faust assigned and how many
    records `handle()` finished. Output only; the processing path is the real one."""
    import guardstream.worker as worker_module
    from guardstream.logs import configure_logging

    pid = os.getpid()
    real_create_app = worker_module.create_app
    real_agent = worker_module.StageAgent

    def create_app(settings: Settings, stage_name: str) -> Any:
        app = real_create_app(settings, stage_name)
        source = TopicNames(settings.topic_prefix).input_of(stage_name)

        @app.on_partitions_assigned.connect  # type: ignore[arg-type]
        async def _assigned(sender: Any, assigned: Any, **_: Any) -> None:
            mine = sorted(tp.partition for tp in assigned if tp.topic == source)
            print(f"assigned pid={pid} partitions={mine}", flush=True)

        return app

    class CountingAgent(real_agent):  # type: ignore[misc,valid-type]
        async def handle(self, *args: Any, **kwargs: Any) -> None:
            await super().handle(*args, **kwargs)
            print(f"handled pid={pid} n={self.processed}", flush=True)

    worker_module.create_app = create_app  # type: ignore[assignment]
    worker_module.StageAgent = CountingAgent  # type: ignore[misc]
    settings = Settings.from_env()
    configure_logging(settings.log_level)
    return worker_module.run_stage_worker(stage, settings)


def _table(rounds: Sequence[Round]) -> str:
    lines = ["| redact workers | requests | e2e req/s | redact req/s | handled per worker |",
             "|---|---|---|---|---|"]
    for r in rounds:
        handled = ", ".join(str(n) for n in r.handled.values())
        lines.append(f"| {r.workers} | {r.requests} | {r.e2e_rps:.1f} | {r.redact_rps:.1f} | "
                     f"{handled} |")
    return "\n".join(lines)


@contextlib.contextmanager
def _services() -> Iterator[tuple[str, str, str]]:
    """GUARDSTREAM_BROKER / REDIS_URL / OPENAI_BASE_URL, or embedded ones for this run."""
    with contextlib.ExitStack() as stack:
        broker = os.environ.get("GUARDSTREAM_BROKER")
        if not broker:
            from guardstream.embedded.broker import EmbeddedBroker

            broker = stack.enter_context(EmbeddedBroker()).url
        redis_url = os.environ.get("REDIS_URL")
        if not redis_url:
            from guardstream.embedded.redis import EmbeddedRedis

            redis_url = stack.enter_context(EmbeddedRedis()).url
        base_url = os.environ.get("OPENAI_BASE_URL")
        if not base_url:
            from guardstream.devmodel import DevModelServer

            base_url = stack.enter_context(DevModelServer()).base_url
        yield broker, redis_url, base_url


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", default="1,2,3", help="redact worker counts (1,2,3)")
    parser.add_argument("--requests", type=int, default=300, help="requests per round (300)")
    parser.add_argument("--partitions", type=int, default=6, help="partitions per topic (6)")
    parser.add_argument("--harness", metavar="STAGE", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.harness:
        return _harness(args.harness)
    counts = [int(part) for part in args.workers.split(",") if part.strip()]
    rss: dict[str, float] = {}

    def sample(fleet: Fleet) -> None:
        for worker in fleet.workers:
            rss[worker.stage] = max(rss.get(worker.stage, 0.0), rss_mib(worker.pid))

    with _services() as (broker, redis_url, base_url):
        rounds = measure(broker=broker, redis_url=redis_url, openai_base_url=base_url,
                         worker_counts=counts, requests=args.requests,
                         partitions=args.partitions, after_round=sample)
    print(_table(rounds))
    print("peak RSS after a round (MiB): "
          + ", ".join(f"{stage}={mib:.0f}" for stage, mib in rss.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
