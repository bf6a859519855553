"""The ingest and issuance benches run end to end at a tiny size, so neither rots (no timing)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from sqlalchemy.engine import make_url

from tests.conftest import PG_URL

ROOT = Path(__file__).parent.parent


def bench_pg() -> str:
    """Return a PostgreSQL URL the benches may drop and recreate, or 'none'."""
    if not PG_URL:
        return "none"
    url = make_url(PG_URL)
    return url.set(database=f"{url.database}_bench").render_as_string(hide_password=False)


def run_bench(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_issuance_bench_prints_figure_baseline_and_ratio() -> None:
    args = ["-m", "bench.issuance", "--certificates", "20", "--threads", "2", "--sqlite", "--http"]
    out = run_bench(*args, "--pg", bench_pg())
    lines = [line for line in out.splitlines() if "issuance" in line]
    assert len(lines) == (2 if PG_URL else 1), out
    for line in lines:
        assert re.search(r"issuance +\d+/s +bare insert\+commit +\d+/s +ratio \d+\.\d\d", line)
        assert "20 numbers, unique and gap-free" in line
    door = [line for line in out.splitlines() if "POST /api/v1/certificates" in line]
    assert len(door) == len(lines), out
    for line in door:
        assert re.search(
            r"certificates +\d+/s +server CPU \d+\.\d\d ms/request +ratio to in-process \d+\.\d\d",
            line,
        )
        assert "40 numbers, unique and gap-free" in line  # 20 to warm up, then 20


def test_issuance_profile_prints_statements_commits_and_cpu_per_request() -> None:
    args = ["-m", "bench.issuance_profile", "--requests", "10", "--threads", "2", "--sqlite"]
    out = run_bench(*args, "--pg", bench_pg())
    lines = [line for line in out.splitlines() if "statements/request" in line]
    assert len(lines) == (4 if PG_URL else 2), out
    for line in lines:
        assert re.search(r"\d+\.\d\d statements/request +\d+\.\d\d commits", line), line
        assert re.search(r"CPU +\d+\.\d\d ms/request", line), line
    assert re.search(r"1\.00 +INSERT INTO certificates", out), out  # one by one: one each


def test_ingest_bench_prints_ratios_against_bare_paho() -> None:
    scenarios = "abcd" if PG_URL else "ab"
    out = run_bench(
        "bench/ingest.py", "--messages", "300", "--scenarios", scenarios, "--pg", bench_pg()
    )
    assert "PostgreSQL scenarios not run" not in out, out
    for name in scenarios[1:]:
        assert re.search(rf"ratio \({name}\) / \(a\) = \d+\.\d\d", out), out
    if PG_URL:
        assert re.search(r"ratio \(d\) / \(c\) = \d+\.\d\d", out), out
