"""Dashboard cold vs warm: overview, KPI page and uptime chart at 1,000 sites, 50,000 devices.

Seeds the fleet as bench/pages.py does (SQLite, or PostgreSQL with --pg), then, in a fresh
interpreter started as `fangxin serve` starts one (create_app, then the start-up heap frozen;
compiled-statement caches, figure caches and connections all empty), signs in and
for each page times its first request (cold; with its CPU time, steadier than wall time on a
loaded host), the p99 of n requests that each compute the figures afresh (uncached: the figure
cache emptied before each, as when it expires; the issue's "first request") and the p99 of the
next n (warm). The figure cache is emptied before each page's first request, so a page never
profits from another's work.
Baseline: /healthz p99 in the same process. Also prints the web process's peak RSS after
serving every page (issue 17 item 6: under 200 MB), and its RSS after imports and after
create_app: the imported stack is most of it.

    .venv/bin/python -m bench.dashboard [--sites 1000] [--devices 50000] [--n 30] [--pg URL]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.ingest import memory_mb, recreate_database
from bench.pages import seed
from fangxin.config import Settings
from fangxin.db import make_engine, upgrade

PAGES = ("/", "/kpi", "/charts/uptime.svg")
TARGET_MS, TARGET_RSS_MB = 200.0, 200.0


def p99(samples: list[float]) -> float:
    """Return the 99th percentile of samples."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def measure(url: str, data_dir: str, n: int) -> dict[str, Any]:
    """Child process: time each page cold then warm; return figures and peak RSS."""
    from fangxin.service.app import create_app  # noqa: PLC0415 - timed from a cold start
    from fangxin.startup import freeze_startup_heap  # noqa: PLC0415 - as above

    imported_mb = _rss_mb()["VmRSS"]
    app = create_app(Settings(data_dir=Path(data_dir), database_url=url, ratelimit_enabled=False))
    # As `fangxin serve` starts a worker: without it a full collection of the start-up heap
    # (100-200 ms here) landed in whichever page's request crossed the threshold.
    freeze_startup_heap()
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = page.split('name="csrf_token" value="')[1].split('"')[0]
    login = {"username": "bench", "password": "bench-password", "csrf_token": token}
    assert client.post("/login", data=login).status_code == 302

    cpu: list[float] = []

    def one(path: str) -> float:
        began, began_cpu = time.perf_counter(), time.process_time()
        response = client.get(path)
        took = (time.perf_counter() - began) * 1000
        cpu.append((time.process_time() - began_cpu) * 1000)
        assert response.status_code == 200, (path, response.status_code)
        return took

    health = [one("/healthz") for _ in range(n)]
    out: dict[str, Any] = {"healthz_p99": p99(health), "pages": {}}
    signed_in = _rss_mb()
    out["imports_mb"], out["app_mb"], out["app_peak_mb"] = (
        imported_mb,
        signed_in["VmRSS"],
        signed_in["VmHWM"],
    )
    figures = app.extensions["fangxin"].figures
    for path in PAGES:
        figures.clear()  # this page's first request computes
        cold = one(path)
        cold_cpu = cpu[-1]
        uncached = []
        for _ in range(n):  # each request computes its figures afresh, as after the cache expires
            figures.clear()
            uncached.append(one(path))
        warm = [one(path) for _ in range(n)]
        out["pages"][path] = {
            "cold": cold,
            "cold_cpu": cold_cpu,
            "uncached_p99": p99(uncached),
            "warm_p99": p99(warm),
        }
    served = _rss_mb()
    out["rss_mb"], out["served_mb"] = served["VmHWM"], served["VmRSS"]
    return out


def _rss_mb() -> dict[str, float]:
    """Return this process's resident set now (VmRSS) and at its peak (VmHWM), in MB."""
    # Not getrusage's ru_maxrss: Linux carries it across fork and exec, so this child reported
    # the peak of the parent that had just seeded the fleet (249 MB, against 145 of its own).
    if not Path("/proc/self/status").exists():  # not Linux: ru_maxrss is this process's own there
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        return {"VmRSS": peak, "VmHWM": peak}
    return memory_mb()


def main() -> None:
    """Seed, measure in a fresh process, print figures, baselines and ratios."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sites", type=int, default=1000)
    parser.add_argument("--devices", type=int, default=50000)
    parser.add_argument("--n", type=int, default=30)
    parser.add_argument("--pg", default=None, help="PostgreSQL URL (dropped and recreated)")
    parser.add_argument("--measure", nargs=2, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure[0], args.measure[1], args.n)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        url = args.pg or f"sqlite:///{Path(tmp) / 'bench.db'}"
        recreate_database(url)
        engine = make_engine(url)
        upgrade(engine)
        began = time.perf_counter()
        seed(engine, args.sites, args.devices)
        engine.dispose()
        print(
            f"{engine.dialect.name}: {args.sites} sites, {args.devices} devices"
            f" (seeded in {time.perf_counter() - began:.1f} s); fresh process, {args.n} warm runs"
        )
        child = [sys.executable, "-m", "bench.dashboard", "--n", str(args.n)]
        run = subprocess.run(
            [*child, "--measure", url, tmp], capture_output=True, text=True, check=True
        )
        got = json.loads(run.stdout.strip().splitlines()[-1])
    base = got["healthz_p99"]
    print(
        f"{'page':22} {'cold':>9} {'cold CPU':>9} {'uncached':>9} {'warm p99':>9}"
        f" {'uncached/warm':>13} {'uncached/healthz':>16}"
    )
    for path, figures in got["pages"].items():
        cold, fresh, warm = figures["cold"], figures["uncached_p99"], figures["warm_p99"]
        met = "met" if fresh < TARGET_MS and warm < TARGET_MS else "MISSED"
        print(
            f"{path:22} {cold:7.1f}ms {figures['cold_cpu']:7.1f}ms {fresh:7.1f}ms"
            f" {warm:7.1f}ms {fresh / warm:13.2f} {fresh / base:16.1f}"
            f"   target uncached and warm p99 < {TARGET_MS:g} ms: {met};"
            f" cold {'<' if cold < TARGET_MS else '>='} {TARGET_MS:g} ms"
        )
    print(
        "cold: a fresh process's first request (statements compiled, connections opened);"
        " uncached: p99 of requests each computing its figures (the figure cache emptied"
        " before each); warm: p99 with the figures cached"
    )
    print(f"baseline /healthz p99 {base:.2f} ms (same process)")
    rss = got["rss_mb"]
    verdict = "met" if rss < TARGET_RSS_MB else "MISSED"
    print(f"web process peak RSS {rss:.0f} MB; target < {TARGET_RSS_MB:g} MB: {verdict}")
    print(
        f"  RSS after imports {got['imports_mb']:.0f} MB; after create_app and sign-in"
        f" {got['app_mb']:.0f} MB (peak {got['app_peak_mb']:.0f}: a scrypt password check"
        f" takes 32 MB while it runs); after serving every page {got['served_mb']:.0f} MB"
    )


if __name__ == "__main__":
    main()
