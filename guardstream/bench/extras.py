"""The component benchmarks the report carries along: redact vs vanilla Presidio, limiter.

Both live in the repository's `scripts/` (they are development tools, not part of the
wheel) and print markdown tables; they are run as they are and their tables parsed, so
the numbers in the report are exactly what those scripts print.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

__all__ = ["parse_markdown_table", "run_script", "scripts_dir"]


def scripts_dir() -> Path | None:
    """`scripts/` of a source checkout, or None for an installed wheel."""
    candidate = Path(__file__).resolve().parents[2] / "scripts"
    return candidate if candidate.is_dir() else None


def parse_markdown_table(text: str) -> list[dict[str, str]]:
    """Rows of the first markdown table in `text`, keyed by its header cells."""
    rows = [line.strip() for line in text.splitlines() if line.strip().startswith("|")]
    if len(rows) < 2:
        return []
    def cells(line: str) -> list[str]:
        return [c.strip() for c in line.strip().strip("|").split("|")]
    header = cells(rows[0])
    body = [r for r in rows[1:] if not set(r.replace("|", "").strip()) <= set("-: ")]
    return [dict(zip(header, cells(r), strict=False)) for r in body]


def run_script(name: str, args: list[str], *, timeout: float = 600.0,
               env: dict[str, str] | None = None) -> dict[str, object]:
    """Run scripts/<name> with this interpreter; its table, or why there is none."""
    folder = scripts_dir()
    if folder is None or not (folder / name).exists():
        return {"skipped": f"scripts/{name} not found (needs a source checkout)"}
    try:
        done = subprocess.run(  # noqa: S603 - our own interpreter and script
            [sys.executable, str(folder / name), *args], capture_output=True, text=True,
            timeout=timeout, env={**os.environ, **(env or {})}, check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f}s"}
    table = parse_markdown_table(done.stdout)
    notes = [line for line in done.stdout.splitlines()
             if line and not line.startswith("|") and not line.startswith("Split")]
    return {"command": f"python scripts/{name} {' '.join(args)}".strip(),
            "exit_code": done.returncode, "table": table, "notes": notes[-3:]}
