"""Page load to the first feed row of the dashboard on a large store (target: 2 s on 1,000,000
decisions), in a real browser against a real `signalsmith run --only store`.

    python bench/bench_page.py [--db sqlite|postgres] [--rows 1000000] [--runs 10]
        [--pause 2] [--requests 50] [--keep] [--url URL]

Fills a fresh database with --rows decisions as bench/bench_query_api.py does (its migration,
realistic rows and summaries; PostgreSQL in a schema of its own), then starts `signalsmith run
--only store` over it (the store, its API, live feed and dashboard; Redis keys under a new
prefix, deleted afterwards). Loads `/` in headless Chromium (/usr/bin/chromium, or CHROMIUM,
via Playwright) once to warm the server up, then --runs times, --pause seconds apart (as a
person reloads), each in a new browser context (nothing cached). The page: index.html, its
scripts and styles, then the feed view fetches `/api/decisions?limit=50` from the store,
renders the rows, and opens `/api/live`. Prints one JSON line per phase, p50 / max and each
run in ms: `first_row`, from `page.goto` to the first frame that shows a visible
`[data-testid="feed-row"]` (a MutationObserver in the page notes it: Playwright's own wait
polls up to a second apart, `first_row_polled` is when it saw the row); then, from the
browser's Performance API, ms from the navigation's start to the end of the document, of the
last script or style, DOMContentLoaded, the start of the `/api/decisions` request and its
duration. Last, `/api/decisions?limit=50` over plain HTTP (httpx, --requests sequential
requests after a warm-up, p50 / p99 / max) for comparison.

The service paces everything but /api (the page and its assets) to a small share of its HTTP
thread's CPU, so the figures depend on --pause: 0 measures loads back to back.

--keep leaves the database in place and prints its URL. --url measures a server that is
already running (no fill, no service; --db and --rows then only label the output).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Browser, sync_playwright

from bench_query_api import POSTGRES_DSN, _free_port, _postgres, _prepare, _report, _timed
from benchkeys import fresh_keys
from serving import start_service
from signalsmith.store.database import parse_database_url

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
FIRST_ROW = '[data-testid="feed-row"]'
TARGET_MS = 2_000
# In the page, before its own scripts: the page's clock at the first frame that shows a feed row
# (Playwright's own wait polls ever more slowly, up to a second apart: it only says when to read).
WATCH = """new MutationObserver((records, observer) => {
  const row = document.querySelector('[data-testid="feed-row"]');
  if (row && row.checkVisibility()) {
    observer.disconnect();
    requestAnimationFrame(() => { window.__firstRow = performance.now(); });
  }
}).observe(document, { childList: true, subtree: true, attributes: true });"""
# What the page's own clock says once a row shows: its navigation and its store request.
TIMINGS = """() => {
  const nav = performance.getEntriesByType("navigation")[0];
  const resources = performance.getEntriesByType("resource");
  const api = resources.find((entry) => new URL(entry.name).pathname === "/api/decisions");
  const assets = resources.filter((entry) => ["script", "link"].includes(entry.initiatorType));
  return {
    time_origin: performance.timeOrigin,
    first_row_in_page: window.__firstRow,
    document: nav.responseEnd,
    assets: assets.length ? Math.max(...assets.map((entry) => entry.responseEnd)) : null,
    dom_content_loaded: nav.domContentLoadedEventEnd,
    decisions_start: api ? api.startTime : null,
    decisions: api ? api.duration : null,
  };
}"""
PHASES = (
    "first_row",
    "document",
    "assets",
    "dom_content_loaded",
    "decisions_start",
    "decisions",
    "first_row_polled",
)


def load_once(browser: Browser, base: str) -> dict[str, float]:
    """One cold load of ``/``: ms from ``page.goto`` to the first frame showing a feed row, the
    page's timings (ms from its navigation start), and when Playwright's wait saw the row."""
    context = browser.new_context()
    try:
        context.add_init_script(WATCH)
        page = context.new_page()
        wall_ms = time.time() * 1000
        started = time.perf_counter()
        page.goto(base + "/", wait_until="commit")
        page.locator(FIRST_ROW).first.wait_for(state="visible", timeout=60_000)
        polled = (time.perf_counter() - started) * 1000
        page.wait_for_function("() => window.__firstRow !== undefined")
        timings: dict[str, float] = page.evaluate(TIMINGS)
    finally:
        context.close()
    first_row = timings.pop("time_origin") - wall_ms + timings.pop("first_row_in_page")
    return {"first_row": first_row, "first_row_polled": polled, **timings}


def measure_page(base: str, runs: int, pause: float, extra: dict[str, object]) -> None:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            load_once(browser, base)  # warm-up
            loads = []
            for _ in range(runs):
                time.sleep(pause)
                loads.append(load_once(browser, base))
        finally:
            browser.close()
    for phase in PHASES:
        times = [load[phase] for load in loads if load[phase] is not None]
        if not times:
            raise SystemExit(f"the page made no /api/decisions request: {loads}")
        line: dict[str, object] = {
            "phase": phase,
            "runs": len(times),
            "p50_ms": round(statistics.median(times), 1),
            "max_ms": round(max(times), 1),
            "each_ms": [round(value) for value in times],
        }
        if phase == "first_row":
            line["target_ms"] = TARGET_MS
        print(json.dumps({**line, **extra, "pause_s": pause}), flush=True)


def measure_http(base: str, requests: int, extra: dict[str, object]) -> None:
    params = {"limit": "50"}
    with httpx.Client(base_url=base, timeout=60) as client:
        for _ in range(10):  # warm-up
            _timed(client, "/api/decisions", params)
        times = [_timed(client, "/api/decisions", params) for _ in range(requests)]
    _report("http_decisions_limit50", times, extra)


def _check_page(base: str) -> None:
    answer = httpx.get(base + "/", timeout=30)
    if answer.status_code != 200 or "/assets/app.js" not in answer.text:
        raise SystemExit(f"{base}/ does not serve the dashboard: {answer.status_code}")


# Every other Redis name a `signalsmith run` may use (as tests/conftest.py's stream_env).
_PREFIXED = (
    "DEDUP_PREFIX",
    "MARKET_STREAM",
    "MARKET_GROUP",
    "INSIGHT_STREAM",
    "MARKET_CANDLE_PREFIX",
    "INSIGHT_REQUEST_PREFIX",
    "STRATEGY_STREAM",
    "STRATEGY_GROUP",
    "ENHANCED_STREAM",
    "STRATEGY_REQUEST_PREFIX",
    "CSV_GROUP",
    "STORE_GROUP",
    "STRATEGY_STORE_GROUP",
)


def _serve_and_measure(url: str, args: argparse.Namespace, extra: dict[str, object]) -> None:
    """``signalsmith run --only store`` over ``url``, its Redis names and state of its own."""
    os.environ.pop("API_TOKEN", None)  # a loopback server without a token: the page, no sign-in
    with fresh_keys(REDIS_URL, "bench-page") as names, tempfile.TemporaryDirectory() as state:
        prefix = names["STREAM"].removesuffix(":in")
        env = {
            **names,
            **{key: f"{prefix}:{key.lower()}" for key in _PREFIXED},
            "DECISION_STREAM": f"{prefix}:log",  # the live feed reads it
            "STATE_DIR": state,
            "DATABASE_URL": url,
            "REDIS_URL": REDIS_URL,
            "HTTP_HOST": "127.0.0.1",
            "HTTP_PORT": str(_free_port()),
            "LOG_LEVEL": "WARNING",
            "MARKET_ENABLED": "false",
            "STRATEGY_ENABLED": "false",
        }
        child, base = start_service(env, "--only", "store")
        try:
            _check_page(base)
            measure_page(base, args.runs, args.pause, extra)
            measure_http(base, args.requests, extra)
        finally:
            child.terminate()
            child.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgres"))
    parser.add_argument("--rows", type=int)
    parser.add_argument("--runs", type=int, default=10, help="cold page loads after a warm-up")
    parser.add_argument("--pause", type=float, default=2.0, help="seconds between loads")
    parser.add_argument("--requests", type=int, default=50, help="plain HTTP requests")
    parser.add_argument("--keep", action="store_true", help="leave the database in place")
    parser.add_argument("--url", help="measure this running server (no fill, no service)")
    args = parser.parse_args()
    extra: dict[str, Any] = {"db": args.db, "rows": args.rows}
    if args.url:
        base = args.url.rstrip("/")
        _check_page(base)
        measure_page(base, args.runs, args.pause, extra)
        measure_http(base, args.requests, extra)
        return
    args.db = extra["db"] = args.db or "sqlite"
    args.rows = extra["rows"] = 1_000_000 if args.rows is None else args.rows
    now = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=1)
    url, schema = _prepare(args, now)
    try:
        _serve_and_measure(url, args, extra)
    finally:
        if args.keep:
            print(f"database: {url}", file=sys.stderr)
        elif schema is not None:
            asyncio.run(_postgres(POSTGRES_DSN, f'DROP SCHEMA "{schema}" CASCADE'))
        else:
            shutil.rmtree(Path(parse_database_url(url).url.database or "").parent)


if __name__ == "__main__":
    main()
