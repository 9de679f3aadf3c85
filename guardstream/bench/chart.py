"""The report's PNG: latency distribution, time per stage, CPU per worker, throughputs.

matplotlib is an optional dependency (`pip install guardstream[bench]`); without it the
JSON report is still written and the chart is skipped with a note.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["write_chart"]


def write_chart(report: dict[str, Any], latencies_ms: dict[str, list[float]],
                path: Path) -> str | None:
    """Write the PNG; returns why it was skipped, or None."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed (pip install 'guardstream[bench]')"
    fig, axes = plt.subplots(2, 2, figsize=(12, 8.5))
    ax = axes[0][0]
    for label, values in latencies_ms.items():
        if values:
            ordered = sorted(values)
            ax.plot(ordered, [100 * (i + 1) / len(ordered) for i in range(len(ordered))],
                    label=f"{label} (n={len(values)})")
    ax.set_xscale("log")
    ax.set_xlabel("end-to-end latency, ms (log)")
    ax.set_ylabel("% of requests")
    ax.set_title("Latency distribution (CDF)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)

    # Both under full load: the pipeline's all-at-once run and the in-process run.
    stages = report.get("pipeline", {}).get("throughput", {}).get("stages") or \
        report.get("pipeline", {}).get("fixed_rate", {}).get("stages") or {}
    local = report.get("inprocess", {}).get("stages") or {}
    ax = axes[0][1]
    names = list(stages)
    xs = range(len(names))
    ax.bar([x - 0.2 for x in xs], [stages[n]["mean"] for n in names], 0.4,
           label="pipeline (all at once)")
    ax.bar([x + 0.2 for x in xs], [local.get(n, {}).get("mean", 0) for n in names], 0.4,
           label="in process (16 in flight)")
    ax.set_xticks(list(xs), names, rotation=30)
    ax.set_ylabel("mean ms in stage")
    ax.set_title("Time in each stage (results' `stages`)")
    ax.legend(fontsize=8)

    cpu = report.get("pipeline", {}).get("throughput", {}).get("cpu_ms_per_request") or \
        report.get("pipeline", {}).get("fixed_rate", {}).get("cpu_ms_per_request") or {}
    ax = axes[1][0]
    per_stage = {k: v for k, v in cpu.items() if k != "total"}
    ax.bar(list(per_stage), list(per_stage.values()), color="tab:orange")
    ax.set_ylabel("CPU ms per request")
    ax.set_title(f"Worker CPU per request (total {cpu.get('total', 0):.1f} ms)")
    ax.tick_params(axis="x", rotation=30)

    ax = axes[1][1]
    bars = {
        "pipeline": report.get("pipeline", {}).get("throughput", {}).get("throughput"),
        "in process": report.get("inprocess", {}).get("throughput"),
        "Faust 7-hop\npass-through": report.get("chains", {}).get("faust", {})
        .get("throughput", {}).get("median"),
        "raw aiokafka 7-hop\npass-through": report.get("chains", {}).get("raw", {})
        .get("throughput", {}).get("median"),
    }
    bars = {k: v for k, v in bars.items() if v}
    ax.bar(list(bars), list(bars.values()), color="tab:green")
    ax.set_yscale("log")
    ax.set_ylabel("requests/s (log)")
    ax.set_title("Throughput")
    ax.tick_params(axis="x", labelsize=8)
    meta = report.get("meta", {})
    fig.suptitle(f"guardstream bench: {meta.get('cpu', '?')} x{meta.get('cores', '?')}, "
                 f"{meta.get('date', '')}", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return None
