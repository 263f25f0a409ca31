"""Time per market request in the pure core: candle validation, indicators, the trend read.

    python bench/bench_indicators.py [--candles 300] [--runs 2000] [--seed 7]

One request's candles are a random walk of one-minute candles (0.1% volatility a minute, wicks
beyond the body, log-normal volume) ending at the last closed minute, as an exchange returns
them. Each stage is timed alone, --runs times after a warm-up:
  validate_lists    validate_candles on [time, open, high, low, close, volume] number rows
  validate_objects  validate_candles on {"t": ms, "o": "text", ...} rows, read value by value
  indicators        compute_indicators on the validated series (the 1 ms target)
  trend             read_trend and render_insight on those indicators
Prints one JSON object per stage (p50 and p99 in microseconds), then a result line.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import time
from collections.abc import Callable

from signalsmith.market.candles import validate_candles
from signalsmith.market.indicators import Indicators, compute_indicators
from signalsmith.market.trend import read_trend, render_insight

TARGET_US = 1_000.0
MINUTE = 60


def random_walk(candles: int, seed: int, now: float) -> list[list[float]]:
    """Closed one-minute candles ending at the minute before ``now``'s, oldest first."""
    rng = random.Random(seed)
    last_open = (int(now) // MINUTE - 1) * MINUTE
    price = 50_000.0
    rows: list[list[float]] = []
    for index in range(candles):
        open_ = price
        close = open_ * (1 + rng.gauss(0, 0.001))
        high = max(open_, close) * (1 + abs(rng.gauss(0, 0.0004)))
        low = min(open_, close) * (1 - abs(rng.gauss(0, 0.0004)))
        volume = rng.lognormvariate(1.0, 0.8)
        rows.append([last_open - (candles - 1 - index) * MINUTE, open_, high, low, close, volume])
        price = close
    return rows


def as_objects(rows: list[list[float]]) -> list[dict[str, object]]:
    """The same candles as a JSON API sends them: millisecond times, prices as text."""
    return [
        {"t": int(t * 1000), "o": str(o), "h": str(h), "l": str(lo), "c": str(c), "v": str(v)}
        for t, o, h, lo, c, v in rows
    ]


def timed(stage: Callable[[], object], runs: int) -> dict[str, float]:
    """p50 and p99 of ``runs`` calls, in microseconds, after a warm-up of a tenth as many."""
    for _ in range(max(1, runs // 10)):
        stage()
    samples: list[float] = []
    for _ in range(runs):
        started = time.perf_counter_ns()
        stage()
        samples.append((time.perf_counter_ns() - started) / 1_000)
    samples.sort()
    return {
        "p50_us": round(statistics.median(samples), 1),
        "p99_us": round(samples[min(len(samples) - 1, int(0.99 * len(samples)))], 1),
    }


def trend_stage(found: Indicators) -> str:
    """The trend read and the insight text, on a copy of ``found``: an indicators object rounds
    its values once and keeps them, and each request rounds its own."""
    fresh = found.model_copy()
    return render_insight("BTC-USD", fresh, read_trend(fresh))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--candles", type=int, default=300, help="candles per request")
    parser.add_argument("--runs", type=int, default=2_000, help="timed calls per stage")
    parser.add_argument("--seed", type=int, default=7, help="seed of the random walk")
    args = parser.parse_args()
    now = time.time()
    rows = random_walk(args.candles, args.seed, now)
    objects = as_objects(rows)
    series = validate_candles(rows, MINUTE, now)
    found = compute_indicators(series)
    read = read_trend(found)
    if len(series) != args.candles or found.missing:
        raise SystemExit(f"bench input is not what it should be: {series.notes} {found.missing}")
    stages: dict[str, Callable[[], object]] = {
        "validate_lists": lambda: validate_candles(rows, MINUTE, now),
        "validate_objects": lambda: validate_candles(objects, MINUTE, now),
        "indicators": lambda: compute_indicators(series),
        "trend": lambda: trend_stage(found),
    }
    figures = {name: timed(stage, args.runs) for name, stage in stages.items()}
    for name, figure in figures.items():
        print(json.dumps({"stage": name, "candles": args.candles, "runs": args.runs, **figure}))
    indicators = figures["indicators"]
    verdict = "meets" if indicators["p50_us"] <= TARGET_US else "MISSES"
    print(
        f"result: compute_indicators p50 {indicators['p50_us']} us, p99 {indicators['p99_us']} us"
        f" for {args.candles} candles ({verdict} the {TARGET_US:.0f} us target); validation p50"
        f" {figures['validate_lists']['p50_us']} us (lists),"
        f" {figures['validate_objects']['p50_us']} us (objects); read {read.verdict.value};"
        f" python {platform.python_version()}"
    )


if __name__ == "__main__":
    main()
