"""`guardstream worker --stage NAME ...`: one Faust worker process per stage.

Each stage is its own consumer group, so N copies of `guardstream worker --stage redact`
share the redact topic's partitions. Several `--stage` flags start one child process per
stage (each with only its own stage's models in memory) and supervise them.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Sequence

import faust

from guardstream.app import StageAgent, create_app
from guardstream.logs import NOISY_LOGGERS, JsonFormatter
from guardstream.settings import Settings

__all__ = ["READY_PREFIX", "run_stage_worker", "run_workers", "spawn_worker"]

READY_PREFIX = "ready stage="


def run_workers(stages: Sequence[str], settings: Settings) -> int:
    if len(stages) == 1:
        return run_stage_worker(stages[0], settings)
    children = [spawn_worker(stage) for stage in stages]

    def forward(signum: int, _frame: object) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    codes = [child.wait() for child in children]
    return max(codes, default=0)


def spawn_worker(stage: str, env: dict[str, str] | None = None,
                 stdout: int | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "guardstream.cli", "worker", "--stage", stage],
        env=env if env is not None else dict(os.environ),
        stdout=stdout,
    )


def run_stage_worker(stage: str, settings: Settings) -> int:
    app = create_app(settings, stage)
    agent = StageAgent(app, stage, settings)

    @app.task
    async def announce_ready() -> None:
        # Ready = joined the group and the flow resumed after the first rebalance.
        recovery = app.tables.recovery  # type: ignore[attr-defined]
        while not (recovery.completed.is_set() and not app.rebalancing):  # noqa: ASYNC110
            await asyncio.sleep(0.05)  # Faust offers no event for "consuming again"
        _quiet()  # again: Faust's own logging setup ran since
        assigned = sorted(tp.partition for tp in app.consumer.assignment())
        print(f"{READY_PREFIX}{stage} pid={os.getpid()} partitions={assigned}", flush=True)

    worker = _Worker(app, loglevel=settings.log_level.lower(), quiet=True,
                     redirect_stdouts=False)
    # The spinner sets the root logger to DEBUG, so every send formats a record with the
    # payload in it (~15% of a worker's CPU, and content in memory where it should not be).
    worker.spinner = None
    _quiet()
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        return int(exc.code or 0)
    finally:
        agent.processed  # noqa: B018 - keep the agent referenced for the worker's life
    return 0


class _Worker(faust.Worker):
    """Faust's worker with guardstream's JSON-lines log format and quiet noisy loggers."""

    def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
        super().on_setup_root_logger(logger, level)
        for handler in logger.handlers:
            handler.setFormatter(JsonFormatter())
        _quiet()


def _quiet() -> None:
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
