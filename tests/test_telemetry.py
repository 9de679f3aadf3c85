"""One trace per request across all stages, in process (the Kafka case is an integration test)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from guardstream import telemetry
from guardstream.agents import build_stage
from guardstream.audit import Auditor
from guardstream.models.codec import decode_request
from guardstream.pipeline import LocalPipeline
from guardstream.resources import Resources
from guardstream.runner import step
from guardstream.settings import Settings
from guardstream.telemetry import extract_context, inject_headers, stage_span

EXPORTER = InMemorySpanExporter()
_PARENT = b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.fixture(scope="module", autouse=True)
def _provider() -> None:
    # The global provider can be set once per process; an earlier test may have set it.
    # Without an exporter configured, setup_telemetry installs none: these tests do.
    telemetry.setup_telemetry("guardstream-tests")
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        trace.set_tracer_provider(TracerProvider())
        provider = trace.get_tracer_provider()
    assert isinstance(provider, TracerProvider)
    provider.add_span_processor(SimpleSpanProcessor(EXPORTER))


async def test_every_stage_span_of_a_request_shares_its_trace() -> None:
    EXPORTER.clear()
    raw = (b'{"request_id": "t-1", "user_id": "u", "messages": '
           b'[{"role": "user", "content": "SECRET-CONTENT-123"}]}')
    async with LocalPipeline(["validate", "redact"], Resources(Settings.from_env({}))) as p:
        result = await p.run(decode_request(raw, received_ms=time.time() * 1000))
    assert result.status.value == "ok"
    spans = EXPORTER.get_finished_spans()
    names = [s.name for s in spans]
    assert names.count("guardstream.validate") == 1 and names.count("guardstream.redact") == 1
    assert len({s.context.trace_id for s in spans}) == 1
    root = next(s for s in spans if s.name == "guardstream.request")
    for span in spans:
        if span is not root:
            assert span.parent is not None and span.parent.span_id == root.context.span_id
            assert span.attributes is not None
            assert span.attributes["guardstream.decision"] == "pass"
    assert all("SECRET-CONTENT-123" not in str(s.attributes) for s in spans)


async def test_a_stage_span_is_the_child_of_the_record_s_trace_context() -> None:
    EXPORTER.clear()
    settings = Settings.from_env({})
    stage = build_stage("validate", Resources(settings))
    await stage.start()
    envelope = decode_request(b'{"request_id": "r-9", "messages": [{"role": "user", '
                              b'"content": "hello"}]}', received_ms=0.0)
    incoming = [("guardstream-origin", b"0:1"), ("traceparent", _PARENT),
                ("baggage", b"tenant=t1")]
    outcome = await step(stage, envelope, is_last=False, auditor=Auditor(settings),
                         trace_headers=incoming)
    (span,) = [s for s in EXPORTER.get_finished_spans() if s.name == "guardstream.validate"]
    assert span.parent is not None and format(span.parent.span_id, "016x") == "b7ad6b7169203331"
    assert format(span.context.trace_id, "032x") == "0af7651916cd43dd8448eb211c80319c"
    passed_on = dict(outcome.headers)["traceparent"].decode()
    assert passed_on.split("-")[1] == "0af7651916cd43dd8448eb211c80319c"
    assert passed_on.split("-")[2] == format(span.context.span_id, "016x")  # our span, next
    assert dict(outcome.headers)["baggage"] == b"tenant=t1"


def test_context_survives_a_kafka_header_round_trip() -> None:
    EXPORTER.clear()
    with stage_span("validate", "r-1") as first:
        headers = inject_headers()
    assert any(key == "traceparent" for key, _ in headers)
    with stage_span("redact", "r-1", extract_context(headers)) as second:
        pass
    assert second.get_span_context().trace_id == first.get_span_context().trace_id
    finished = {s.name: s for s in EXPORTER.get_finished_spans()}
    parent = finished["guardstream.redact"].parent
    assert parent is not None and parent.span_id == first.get_span_context().span_id


_NO_EXPORTER = """
import asyncio
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from guardstream.audit import Auditor
from guardstream.models.codec import decode_request
from guardstream.agents import build_stage
from guardstream.resources import Resources
from guardstream.runner import step
from guardstream.runner import step
from guardstream.settings import Settings
from guardstream.telemetry import (extract_context, forward_trace_headers, inject_headers,
                                   setup_telemetry, spans_recorded, stage_span)
setup_telemetry("t")
assert not isinstance(trace.get_tracer_provider(), TracerProvider)
assert not spans_recorded()
parent = b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
origin = ("guardstream-origin", b"0:7")
incoming = [origin, ("traceparent", parent), ("tracestate", b"vendor=x"),
            ("baggage", b"tenant=t1")]
with stage_span("validate", "r-1", extract_context(incoming)):
    spanned = dict(inject_headers())
assert dict(forward_trace_headers(incoming)) == spanned, (spanned, forward_trace_headers(incoming))
assert forward_trace_headers([origin]) == () and forward_trace_headers(None) == ()

async def main():
    settings = Settings.from_env({})
    stage = build_stage("validate", Resources(settings))
    await stage.start()
    env = decode_request(b'{"request_id": "r-1", "messages": [{"role": "user", '
                         b'"content": "hi"}]}', received_ms=0.0)
    passed = await step(stage, env, is_last=False, auditor=Auditor(settings),
                        trace_headers=incoming)
    fresh = await step(stage, env, is_last=False, auditor=Auditor(settings),
                       trace_headers=[origin])
    return dict(passed.headers), fresh.headers

passed, fresh = asyncio.run(main())
assert passed == spanned, passed
print(passed["traceparent"].decode())
print(len(fresh))
"""


def test_without_an_exporter_spans_are_no_ops_that_pass_the_trace_on() -> None:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("OTEL_") and k != "GUARDSTREAM_TRACE_FILE"}
    done = subprocess.run([sys.executable, "-c", _NO_EXPORTER], env=env, check=True,
                          capture_output=True, text=True, timeout=60)
    passed_on, fresh = done.stdout.split()
    assert passed_on == "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    assert fresh == "0"  # no trace started where none came in
