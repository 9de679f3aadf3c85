"""`guardstream audit tail`: follow the audit topic as readable lines."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import TextIO

from guardstream.errors import DecodeError
from guardstream.models import AuditEvent
from guardstream.models.codec import decode_audit
from guardstream.settings import Settings
from guardstream.topics import TopicNames

NAME = "audit"
HELP = "follow the audit topic (metadata only) as readable lines"
ORDER = 20


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="audit_command", required=True)
    tail = sub.add_parser("tail", help="follow the audit topic")
    tail.add_argument("--stage", help="only events of this stage")
    tail.add_argument("--reason", help="only events with this reason")
    tail.add_argument("--user-hash", help="only events of this user hash")
    tail.add_argument("--event", help="only this event type (request, decision, block, ...)")
    tail.add_argument("--from-beginning", action="store_true",
                      help="start at the oldest event instead of new ones")
    tail.add_argument("--limit", type=int, default=0, help="stop after N matching events")
    tail.add_argument("--idle-exit", type=float, default=0.0,
                      help="stop after this many seconds without events (0: follow forever)")


def run(args: argparse.Namespace, settings: Settings) -> int:
    if settings.broker is None:
        print("guardstream: set GUARDSTREAM_BROKER (e.g. the one `guardstream up` printed)",
              file=sys.stderr)
        return 2
    return asyncio.run(tail(settings, args, sys.stdout))


def matches(event: AuditEvent, args: argparse.Namespace) -> bool:
    return ((args.stage is None or event.stage == args.stage)
            and (args.reason is None or event.reason == args.reason)
            and (args.user_hash is None or event.user_hash == args.user_hash)
            and (args.event is None or event.event == args.event))


def format_event(event: AuditEvent) -> str:
    stamp = time.strftime("%H:%M:%S", time.localtime(event.ts_ms / 1000))
    parts = [stamp, f"{event.event:<11}", f"{event.stage:<9}", str(event.request_id)]
    if event.decision:
        parts.append(f"decision={event.decision}")
    if event.reason:
        parts.append(f"reason={event.reason}")
    if event.latency_ms is not None:
        parts.append(f"{event.latency_ms:.1f}ms")
    if event.user_hash:
        parts.append(f"user={event.user_hash}")
    if event.input_tokens is not None:
        parts.append(f"in={event.input_tokens}")
    if event.output_tokens is not None:
        parts.append(f"out={event.output_tokens}")
    if event.cost_usd:
        parts.append(f"${event.cost_usd:.6f}")
    if event.finding_counts:
        parts.append("findings=" + ",".join(f"{k}:{v}" for k, v in
                                             sorted(event.finding_counts.items())))
    return "  ".join(parts)


async def tail(settings: Settings, args: argparse.Namespace, out: TextIO) -> int:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        TopicNames(settings.topic_prefix).audit, bootstrap_servers=settings.bootstrap_servers,
        enable_auto_commit=False, fetch_max_wait_ms=settings.fetch_max_wait_ms,
        auto_offset_reset="earliest" if args.from_beginning else "latest")
    await consumer.start()
    shown = 0
    idle_since = time.monotonic()
    try:
        while True:
            batches = await consumer.getmany(timeout_ms=250)
            if not batches and args.idle_exit and time.monotonic() - idle_since > args.idle_exit:
                return 0
            for records in batches.values():
                idle_since = time.monotonic()
                for record in records:
                    try:
                        event = decode_audit(record.value or b"")
                    except (DecodeError, TypeError):
                        continue
                    if matches(event, args):
                        out.write(format_event(event) + "\n")
                        out.flush()
                        shown += 1
                        if args.limit and shown >= args.limit:
                            return 0
    finally:
        await consumer.stop()
