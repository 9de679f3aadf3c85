"""`guardstream bench` end to end: services, the runs, the report.

Order of a run: (1) the pipeline at a fixed offered rate (latency), (2) the pipeline as
fast as possible (throughput, CPU per request), (3) the same mix in process, (4) the raw
and Faust pass-through chains, repeated, (5) optionally the component benchmarks. Every
run uses fresh request and user ids, so Redis counters from one never limit another.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import platform
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from guardstream.bench import stats
from guardstream.bench.calibrate import calibrate
from guardstream.bench.chainrun import DEFAULT_CHAIN_RECORDS, run_chain
from guardstream.bench.mix import build_mix, mix_counts
from guardstream.bench.pipeline_run import PipelineRun, run_pipeline
from guardstream.bench.procs import children_of, cmdline, sample, sample_many
from guardstream.embedded.ports import stop_process
from guardstream.settings import Settings

__all__ = ["BenchOptions", "Services", "run_bench", "services"]

#: Requests of the throughput run. A run pays ~1 s of worker CPU that does not grow with
#: its requests (the burst filling and draining seven stages): ~20% of a 400-request run's
#: CPU, ~7% of a 1,500-request one's (docs/performance.md, tenth round).
DEFAULT_THROUGHPUT_REQUESTS = 1_500

DEV_KEY = "sk-dev-not-a-key"  # the dev model accepts any key


@dataclass
class BenchOptions:
    requests: int = 500
    rate: float = 20.0
    throughput_requests: int = DEFAULT_THROUGHPUT_REQUESTS
    warmup: int = 20
    requests_per_user: int = 1
    seed: int = 7
    up: bool = False
    up_pid: int | None = None
    local: bool = True
    chains: bool = True
    chain_records: int = DEFAULT_CHAIN_RECORDS
    repeat: int = 3
    extras: bool = False
    out_dir: Path = Path("bench-results")
    progress: bool = True
    timeout: float = 300.0
    idle_seconds: float = 5.0


@dataclass
class Services:
    bootstrap: str
    prefix: str
    redis_url: str | None
    openai_base_url: str | None
    up_pid: int | None
    worker_pids: dict[int, str] = field(default_factory=dict)
    started_broker: int | None = None


def _bar(total: int, desc: str, enabled: bool) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="req", disable=not enabled, file=sys.stderr,
                dynamic_ncols=True)


@contextlib.contextmanager
def services(settings: Settings, options: BenchOptions) -> Iterator[Services]:
    """What the bench talks to: with `--up` it starts everything and knows the pids."""
    with contextlib.ExitStack() as stack:
        if not options.up:
            if settings.broker is None:
                raise ValueError("set GUARDSTREAM_BROKER (or use --up)")
            up_pid = options.up_pid or _find_up()
            svc = Services(settings.bootstrap_servers[0], settings.topic_prefix,
                           settings.redis_url, settings.openai_base_url, up_pid)
            svc.worker_pids = _workers(up_pid)
            yield svc
            return
        env = dict(os.environ)
        broker_pid = None
        if settings.broker is None:
            from guardstream.embedded.broker import EmbeddedBroker

            broker = stack.enter_context(EmbeddedBroker())
            env["GUARDSTREAM_BROKER"] = broker.url
            broker_pid = getattr(getattr(broker, "proc", None), "pid", None)
        redis_url = settings.redis_url
        if redis_url is None:
            from guardstream.embedded.redis import EmbeddedRedis

            redis_url = stack.enter_context(EmbeddedRedis()).url
            env["REDIS_URL"] = redis_url
        base_url = settings.openai_base_url
        if not settings.provider_configured:
            from guardstream.bench.devserver import DevModelProcess

            base_url = stack.enter_context(DevModelProcess()).base_url
            env.update(OPENAI_BASE_URL=base_url, OPENAI_API_KEY=DEV_KEY,
                       GUARDSTREAM_DEV_MODEL="1")
            os.environ.setdefault("OPENAI_API_KEY", DEV_KEY)  # for the in-process run
        prefix = f"gsbench{uuid.uuid4().hex[:8]}"
        env["GUARDSTREAM_TOPIC_PREFIX"] = prefix
        up = stack.enter_context(_UpProcess(env, options.timeout))
        bootstrap = env["GUARDSTREAM_BROKER"].removeprefix("kafka://").split(",")[0]
        svc = Services(bootstrap, prefix, redis_url, base_url, up.pid)
        svc.worker_pids = _workers(up.pid)
        svc.started_broker = broker_pid
        yield svc


class _UpProcess:
    """`guardstream up` as a child; stopped (with its workers) on exit."""

    def __init__(self, env: dict[str, str], timeout: float) -> None:
        self.env, self.timeout = env, timeout
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None  # noqa: S101 - only after __enter__
        return self.proc.pid

    def __enter__(self) -> _UpProcess:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "guardstream.cli", "up"], env=self.env,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        ready = threading.Event()

        def read() -> None:
            assert self.proc is not None and self.proc.stdout is not None  # noqa: S101
            for raw in self.proc.stdout:
                if raw.startswith(b"ready broker="):
                    ready.set()

        threading.Thread(target=read, daemon=True).start()
        deadline = time.monotonic() + self.timeout
        while not ready.wait(0.2):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.__exit__()
                raise RuntimeError("guardstream up did not become ready")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is None:
            return
        stop_process(self.proc, 30)
        self.proc = None


def _find_up() -> int | None:
    """The one `guardstream ... up` process of this user, if there is exactly one."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            args = cmdline(int(entry.name))
            if "up" in args and any("guardstream" in a for a in args[:3]):
                found.append(int(entry.name))
    return found[0] if len(found) == 1 else None


def _workers(up_pid: int | None) -> dict[int, str]:
    """pid -> stage of the stage workers under `up`."""
    if up_pid is None:
        return {}
    out = {}
    for pid in children_of(up_pid):
        args = cmdline(pid)
        if "--stage" in args:
            out[pid] = args[args.index("--stage") + 1]
    return out


def _idle_cpu(pids: list[int], seconds: float) -> dict[int, float]:
    """CPU seconds per second each worker burns with no traffic (heartbeats, empty fetches):
    charged to requests in the raw numbers, subtracted in the `busy` ones."""
    if not pids or seconds <= 0:
        return {}
    before = sample_many(pids)
    time.sleep(seconds)
    after = sample_many(pids)
    return {pid: (after[pid].cpu_seconds - before[pid].cpu_seconds) / seconds
            for pid in before if pid in after}


def _pipeline_section(run: PipelineRun, svc: Services,
                      idle: dict[int, float] | None = None) -> dict[str, Any]:
    statuses = Counter(str(r.get("status")) for r in run.results)
    reasons = Counter(str(r.get("reason")) for r in run.results if r.get("reason"))
    done = max(1, len(run.results))
    cpu = run.cpu_seconds()
    by_stage: dict[str, float] = {}
    for pid, seconds in cpu.items():
        stage = svc.worker_pids.get(pid, str(pid))
        by_stage[stage] = by_stage.get(stage, 0.0) + seconds
    cpu_ms = {stage: round(1000 * s / done, 3) for stage, s in by_stage.items()}
    if cpu_ms:
        cpu_ms["total"] = round(sum(v for k, v in cpu_ms.items()), 3)
    busy: dict[str, float] = {}
    for pid, seconds in cpu.items():
        stage = svc.worker_pids.get(pid, str(pid))
        spent = max(0.0, seconds - (idle or {}).get(pid, 0.0) * run.seconds)
        busy[stage] = busy.get(stage, 0.0) + spent
    busy_ms = {stage: round(1000 * s / done, 3) for stage, s in busy.items()}
    if busy_ms and idle:
        busy_ms["total"] = round(sum(busy_ms.values()), 3)
    by_kind: dict[str, list[float]] = {}
    for kind, ms in zip(run.kinds, run.latencies_ms, strict=True):
        by_kind.setdefault(kind, []).append(ms)
    return {
        "requests": run.sent, "results": len(run.results), "missing": run.missing,
        "seconds": round(run.seconds, 3), "throughput": round(run.throughput, 2),
        "latency_ms": stats.summarize(run.latencies_ms),
        "latency_ms_by_kind": {k: stats.summarize(v) for k, v in sorted(by_kind.items())},
        "statuses": dict(statuses), "reasons": dict(reasons),
        "stages": stats.stage_breakdown(run.results),
        "cpu_ms_per_request": cpu_ms,
        # The same minus what each worker burns idle over the run's duration.
        "busy_cpu_ms_per_request": busy_ms if idle else {},
    }


def _memory(svc: Services) -> dict[str, Any]:
    workers = sample_many(list(svc.worker_pids))
    per_stage = {svc.worker_pids[p]: round(s.rss_bytes / 2**20, 1) for p, s in workers.items()}
    up = sample(svc.up_pid) if svc.up_pid else None
    total = sum(s.rss_bytes for s in workers.values()) + (up.rss_bytes if up else 0)
    return {"worker_rss_mb": per_stage,
            "up_process_rss_mb": round(up.rss_bytes / 2**20, 1) if up else None,
            "up_total_rss_mb": round(total / 2**20, 1) if workers else None}


def _machine() -> dict[str, Any]:
    cpu = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    from importlib.metadata import version

    return {"date": datetime.now(UTC).isoformat(timespec="seconds"), "cpu": cpu,
            "cores": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform(),
            "faust": version("faust-streaming"), "aiokafka": version("aiokafka"),
            "load_before": [round(x, 2) for x in os.getloadavg()],
            "speed_before": calibrate()}


def run_bench(settings: Settings, options: BenchOptions) -> dict[str, Any]:
    report: dict[str, Any] = {"meta": _machine(), "command": " ".join(sys.argv)}
    latencies: dict[str, list[float]] = {}
    run_tag = uuid.uuid4().hex[:6]
    with services(settings, options) as svc:
        report["config"] = {
            "requests": options.requests, "rate": options.rate,
            "throughput_requests": options.throughput_requests,
            "requests_per_user": options.requests_per_user,
            "rate_limits": "policy defaults; every user id sends at most "
                           f"{options.requests_per_user} request(s) per run",
            "mix": mix_counts(build_mix(options.requests, seed=options.seed)),
            "partitions": settings.partitions, "agent_concurrency": settings.agent_concurrency,
            "workers": sorted(svc.worker_pids.values()), "topic_prefix": svc.prefix,
        }
        pids = list(svc.worker_pids)
        pipeline: dict[str, Any] = {}
        warm = build_mix(options.warmup, seed=options.seed + 1, run_id=f"w{run_tag}")
        asyncio.run(run_pipeline(svc.bootstrap, svc.prefix, warm, rate=0,
                                 wait_s=options.timeout))
        idle = _idle_cpu(pids, options.idle_seconds)
        pipeline["idle_cpu_ms_per_second"] = {
            svc.worker_pids[p]: round(1000 * v, 2) for p, v in idle.items()}
        if options.rate > 0 and options.requests > 0:
            mix = build_mix(options.requests, seed=options.seed, run_id=f"r{run_tag}",
                            requests_per_user=options.requests_per_user)
            with _bar(len(mix), f"pipeline @ {options.rate:g}/s", options.progress) as bar:
                run = asyncio.run(run_pipeline(svc.bootstrap, svc.prefix, mix,
                                               rate=options.rate, pids=pids,
                                               wait_s=options.timeout, progress=bar.update))
            pipeline["fixed_rate"] = _pipeline_section(run, svc, idle)
            latencies[f"pipeline @ {options.rate:g}/s"] = run.latencies_ms
        if options.throughput_requests > 0:
            mix = build_mix(options.throughput_requests, seed=options.seed,
                            run_id=f"t{run_tag}", requests_per_user=options.requests_per_user)
            with _bar(len(mix), "pipeline, max rate", options.progress) as bar:
                run = asyncio.run(run_pipeline(svc.bootstrap, svc.prefix, mix, rate=0,
                                               pids=pids, wait_s=options.timeout,
                                               progress=bar.update))
            pipeline["throughput"] = _pipeline_section(run, svc, idle)
            latencies["pipeline, max rate"] = run.latencies_ms
        pipeline["memory"] = _memory(svc)
        report["pipeline"] = pipeline
        if options.local:
            report["inprocess"] = _inprocess(settings, svc, options, run_tag, latencies)
    if options.chains:
        report["chains"] = _chains(settings, options)
    if options.extras:
        report["extras"] = _extras(settings, svc)
    report["meta"]["load_after"] = [round(x, 2) for x in os.getloadavg()]
    report["meta"]["speed_after"] = calibrate()
    report["targets"] = stats.check_targets(_measured(report))
    options.out_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    json_path = options.out_dir / f"bench-{stamp}.json"
    png_path = options.out_dir / f"bench-{stamp}.png"
    from guardstream.bench.chart import write_chart

    skipped = write_chart(report, latencies, png_path)
    report["chart"] = skipped or str(png_path)
    json_path.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    report["report_path"] = str(json_path)
    return report


def _inprocess(settings: Settings, svc: Services, options: BenchOptions, run_tag: str,
               latencies: dict[str, list[float]]) -> dict[str, Any]:
    from guardstream.bench.local_run import run_local

    local_settings = dataclasses.replace(settings, redis_url=svc.redis_url,
                                         openai_base_url=svc.openai_base_url,
                                         topic_prefix=svc.prefix)
    count = options.throughput_requests or options.requests
    mix = build_mix(count, seed=options.seed, run_id=f"l{run_tag}",
                    requests_per_user=options.requests_per_user)
    warm = build_mix(options.warmup, seed=options.seed + 1, run_id=f"lw{run_tag}")
    with _bar(len(mix), "in process", options.progress) as bar:
        run = asyncio.run(run_local(local_settings, mix, warm, progress=bar.update))
    latencies["in process (service time)"] = run.latencies_ms
    done = max(1, len(run.results))
    return {"requests": len(mix), "seconds": round(run.seconds, 3),
            "throughput": round(run.throughput, 2),
            "cpu_ms_per_request": round(1000 * run.cpu_seconds / done, 3),
            "service_time_ms": stats.summarize(run.latencies_ms),
            "statuses": dict(Counter(str(r.get("status")) for r in run.results)),
            "stages": stats.stage_breakdown(run.results)}


def _chains(settings: Settings, options: BenchOptions) -> dict[str, Any]:
    from guardstream.embedded.broker import EmbeddedBroker

    with contextlib.ExitStack() as stack:
        bootstrap = settings.bootstrap_servers[0] if settings.broker else \
            stack.enter_context(EmbeddedBroker()).url.removeprefix("kafka://")
        runs: dict[str, list[dict[str, Any]]] = {"raw": [], "faust": []}
        for _ in range(max(1, options.repeat)):
            for kind in ("raw", "faust"):  # interleaved: load bursts hit both
                result = run_chain(kind, bootstrap, records=options.chain_records,
                                   timeout=options.timeout)
                runs[kind].append(result.as_dict())
    out: dict[str, Any] = {}
    for kind, items in runs.items():
        out[kind] = {"runs": items,
                     "throughput": stats.spread([float(r["throughput"]) for r in items]),
                     "cpu_ms_per_hop": stats.spread([float(r["cpu_ms_per_hop"])
                                                     for r in items])}
    ratios = [float(f["cpu_ms_per_hop"]) / float(r["cpu_ms_per_hop"])
              for f, r in zip(runs["faust"], runs["raw"], strict=True)
              if float(r["cpu_ms_per_hop"]) > 0]
    out["faust_hop_vs_raw_hop"] = stats.spread(ratios)
    return out


def _extras(settings: Settings, svc: Services) -> dict[str, Any]:
    from guardstream.bench.extras import run_script

    redis = {"REDIS_URL": svc.redis_url} if svc.redis_url else None
    return {
        "redact_vs_vanilla_presidio": run_script(
            "eval_redact.py", ["--split", "test", "--n-pii", "200", "--n-benign", "100"]),
        "limiter": run_script("bench_limiter.py", ["--requests", "5000"], env=redis),
    }


def _measured(report: dict[str, Any]) -> dict[str, float | None]:
    pipeline = report.get("pipeline", {})
    tput = pipeline.get("throughput", {})
    fixed = pipeline.get("fixed_rate", {})
    cpu = (tput.get("cpu_ms_per_request") or fixed.get("cpu_ms_per_request") or {})
    memory = pipeline.get("memory", {})
    rss = memory.get("worker_rss_mb") or {}
    latency = fixed.get("latency_ms", {})
    chains = report.get("chains", {})
    return {
        "gateway_cpu_ms_per_request": cpu.get("total"),
        "faust_hop_vs_raw_hop": chains.get("faust_hop_vs_raw_hop", {}).get("median"),
        "pipeline_vs_inprocess_throughput": stats.ratio(
            tput.get("throughput"), report.get("inprocess", {}).get("throughput")),
        "max_worker_rss_mb": max(rss.values()) if rss else None,
        "up_total_rss_mb": memory.get("up_total_rss_mb"),
        "p99_over_p50": stats.ratio(latency.get("p99"), latency.get("p50")),
    }
