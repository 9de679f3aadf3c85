"""Test helpers that talk to real services: a gateway subprocess, Kafka produce/consume."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

import orjson

READY_TIMEOUT = 90.0


class GatewayProcess:
    """Runs `guardstream up` against given services; stops it (and its workers) on exit."""

    def __init__(self, *, broker: str, redis_url: str, openai_base_url: str,
                 topic_prefix: str, extra_env: Mapping[str, str] | None = None,
                 args: Iterable[str] = (), stderr_path: str | None = None) -> None:
        self.env = {**os.environ, "GUARDSTREAM_BROKER": broker, "REDIS_URL": redis_url,
                    "OPENAI_BASE_URL": openai_base_url, "OPENAI_API_KEY": "sk-dev-not-a-key",
                    "GUARDSTREAM_TOPIC_PREFIX": topic_prefix, **(extra_env or {})}
        self.args = list(args)
        self.prefix = topic_prefix
        self.broker = broker
        self.bootstrap = broker.removeprefix("kafka://")
        self.stderr_path = stderr_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.lines: list[str] = []

    def __enter__(self) -> GatewayProcess:
        stderr = open(self.stderr_path, "ab") if self.stderr_path else None
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "guardstream.cli", "up", *self.args],
            env=self.env, stdout=subprocess.PIPE,
            stderr=stderr if stderr is not None else subprocess.DEVNULL,
        )
        if stderr is not None:
            stderr.close()
        ready = threading.Event()

        def read() -> None:
            assert self.proc is not None and self.proc.stdout is not None
            for raw in self.proc.stdout:
                line = raw.decode(errors="replace").strip()
                self.lines.append(line)
                if line.startswith("ready broker="):
                    ready.set()

        threading.Thread(target=read, daemon=True).start()
        deadline = time.monotonic() + READY_TIMEOUT
        while not ready.wait(0.2):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.__exit__(None, None, None)
                raise RuntimeError(f"guardstream up did not become ready: {self.lines}")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None

    def topic(self, name: str) -> str:
        return f"{self.prefix}.{name}"


def request(request_id: str, content: str = "Hello there", **fields: Any) -> dict[str, Any]:
    # A fresh user per request unless the test says otherwise: limits are per user, and
    # Redis counters outlive a test run.
    user_id = fields.pop("user_id", None) or f"user-{uuid.uuid4().hex[:12]}"
    body: dict[str, Any] = {"request_id": request_id, "user_id": user_id,
                            "messages": [{"role": "user", "content": content}]}
    body.update(fields)
    return body


async def produce(bootstrap: str, topic: str,
                  records: Iterable[tuple[bytes | None, bytes]]) -> None:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for key, value in records:
            await producer.send(topic, key=key, value=value)
        await producer.flush()
    finally:
        await producer.stop()


async def consume(bootstrap: str, topic: str, *, until: int,
                  timeout: float = 60.0, settle: float = 0.0) -> list[tuple[bytes | None, bytes]]:
    """Read a topic from the start until `until` records arrived (then `settle` seconds more,
    to catch duplicates) or `timeout` passed."""
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap,
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    records: list[tuple[bytes | None, bytes]] = []
    deadline = time.monotonic() + timeout
    settle_until: float | None = None
    try:
        while time.monotonic() < deadline:
            if settle_until is not None and time.monotonic() >= settle_until:
                break
            batch = await consumer.getmany(timeout_ms=200)
            for messages in batch.values():
                records.extend((m.key, m.value) for m in messages)
            if len(records) >= until and settle_until is None:
                if settle <= 0:
                    break
                settle_until = time.monotonic() + settle
    finally:
        await consumer.stop()
    return records


def results_by_id(records: list[tuple[bytes | None, bytes]]) -> dict[str, list[dict[str, Any]]]:
    by_id: dict[str, list[dict[str, Any]]] = {}
    for _, value in records:
        result = orjson.loads(value)
        by_id.setdefault(str(result["request_id"]), []).append(result)
    return by_id


def run(coro: Any) -> Any:
    return asyncio.run(coro)
