"""Benches run once at a tiny size so none of them rots (no timing is asserted)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent


def bench(*args: str) -> str:
    """Run a bench module; return what it printed."""
    run = subprocess.run(
        [sys.executable, "-m", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    return run.stdout


def test_dashboard_bench_completes_and_prints_its_ratios() -> None:
    out = bench("bench.dashboard", "--sites", "8", "--devices", "40", "--n", "3")
    for page in ("/", "/kpi", "/charts/uptime.svg"):
        # page, cold ms, cold CPU ms, uncached p99 ms, warm p99 ms, the two ratios
        pattern = rf"^{re.escape(page)} +[\d.]+ms +[\d.]+ms +[\d.]+ms +[\d.]+ms +[\d.]+ +[\d.]+ "
        assert re.search(pattern, out, re.MULTILINE), out
    assert "baseline /healthz p99" in out
    assert re.search(r"web process peak RSS \d+ MB", out)


def test_scan_bench_completes_and_prints_its_ratios() -> None:
    out = bench("bench.scan", "--seconds", "0.3", "--issue", "12", "--clients", "2")
    for load in ("one label", "first sight", "seen before"):
        assert re.search(rf"/c/\{{code\}} {load}: [\d.]+ of /healthz's rate", out), out


def test_uptime_bench_completes_and_prints_its_ratios() -> None:
    out = bench("bench.uptime", "--devices", "40", "--days", "2", "--pg", "none")
    # around the clock and in business hours, counted whole and from the stored days
    assert len(re.findall(r"bare pass over the periods [\d.]+ s, ratio [\d.]+", out)) == 4, out
    assert re.search(r"refresh stored \d+ settled days", out), out
    assert re.search(r"deadline queue .* \(ratio [\d.]+\)", out), out


def test_pages_bench_completes_and_prints_its_ratios() -> None:
    out = bench("bench.pages", "--sites", "8", "--devices", "40", "--n", "3")
    for path in ("/api/v1/sites/s-0000/status", "/m/s-0000/board"):
        assert re.search(rf"^{re.escape(path)} .*ms +[\d.]+$", out, re.MULTILINE), out
    assert "baseline /healthz p50" in out
