"""Benches run once at a tiny size so none of them rots (no timing is asserted)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent


def test_dashboard_bench_completes_and_prints_its_ratios() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "bench.dashboard", "--sites", "8", "--devices", "40", "--n", "3"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    for page in ("/", "/kpi", "/charts/uptime.svg"):
        # page, cold ms, warm p99 ms, cold/warm ratio, cold/healthz ratio
        pattern = rf"^{re.escape(page)} +[\d.]+ms +[\d.]+ms +[\d.]+ +[\d.]+ "
        assert re.search(pattern, run.stdout, re.MULTILINE), run.stdout
    assert "baseline /healthz p99" in run.stdout
    assert re.search(r"web process peak RSS \d+ MB", run.stdout)
