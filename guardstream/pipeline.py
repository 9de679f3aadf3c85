"""The stages chained in one process: what `guardstream scan` and the benchmarks run."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable, Sequence

from opentelemetry import trace

from guardstream.agents import build_stage
from guardstream.agents.base import Stage
from guardstream.audit import Auditor
from guardstream.errors import DecodeError
from guardstream.models import AuditEvent, Envelope, Result, Status
from guardstream.models.codec import decode_request
from guardstream.resources import Resources
from guardstream.runner import step
from guardstream.telemetry import Metrics

__all__ = ["LocalPipeline", "undecodable_result"]


class LocalPipeline:
    """Runs the given stages in order on each request, with no broker in between."""

    def __init__(self, stage_names: Sequence[str], resources: Resources) -> None:
        self.resources = resources
        self.stages: list[Stage] = [build_stage(name, resources) for name in stage_names]
        self.auditor = Auditor(resources.settings)
        self.audit_log: list[AuditEvent] | None = None
        self.metrics = Metrics()

    async def start(self) -> None:
        for stage in self.stages:
            await stage.start()

    async def close(self) -> None:
        for stage in reversed(self.stages):
            await stage.close()

    async def __aenter__(self) -> LocalPipeline:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def run(self, envelope: Envelope) -> Result:
        last = len(self.stages) - 1
        tracer = trace.get_tracer("guardstream")
        with tracer.start_as_current_span("guardstream.request") as root:
            root.set_attribute("guardstream.request_id", envelope.request_id)
            return await self._run(envelope, last)

    async def _run(self, envelope: Envelope, last: int) -> Result:
        for index, stage in enumerate(self.stages):
            outcome = await step(stage, envelope, is_last=index == last, auditor=self.auditor,
                                 metrics=self.metrics)
            if self.audit_log is not None:
                self.audit_log.extend(outcome.audit)
            if outcome.result is not None:
                return outcome.result
            assert outcome.forward is not None  # noqa: S101 - Outcome invariant
            envelope = outcome.forward
        raise AssertionError("unreachable: the last stage always yields a result")

    async def run_raw(self, raw: bytes | str) -> Result:
        try:
            envelope = decode_request(raw, received_ms=time.time() * 1000)
        except DecodeError as exc:
            return undecodable_result(str(exc))
        return await self.run(envelope)

    async def run_lines(self, lines: Iterable[bytes | str], *,
                        concurrency: int = 16) -> AsyncIterator[Result]:
        """Results in input order, with up to `concurrency` requests in flight."""
        window: asyncio.Queue[asyncio.Task[Result] | None] = asyncio.Queue(maxsize=concurrency)

        async def feed() -> None:
            for line in lines:
                if not line.strip():
                    continue
                await window.put(asyncio.create_task(self.run_raw(line)))
            await window.put(None)

        feeder = asyncio.create_task(feed())
        try:
            while (task := await window.get()) is not None:
                yield await task
        finally:
            feeder.cancel()


def undecodable_result(error: str) -> Result:
    """The answer for input with no usable request id (on Kafka it goes to the DLQ)."""
    return Result(request_id=None, status=Status.ERROR, reason="undecodable", detail=error)
