"""Write the bundled demo candles: 1-minute OHLCV for a few products, as CSV files in
``src/signalsmith/data/candles/``. Deterministic (seeded); run it again to rebuild them.

    python scripts/make_demo_candles.py
"""

from __future__ import annotations

import csv
import math
import random
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "src" / "signalsmith" / "data" / "candles"
END = 1_796_140_800  # 2026-12-01T16:00:00Z: the last candle opens a minute before
CANDLES = 400
# product: (first price, drift per minute, volatility per minute, typical volume)
PRODUCTS = {
    "BTC-USD": (96_500.0, 0.00012, 0.0009, 4.2),
    "ETH-USD": (3_650.0, -0.00015, 0.0012, 55.0),
    "SOL-USD": (231.0, 0.0, 0.0016, 900.0),
}


def candles(
    first: float, drift: float, vol: float, volume: float, rng: random.Random
) -> list[list[str]]:
    rows = []
    price = first
    for n in range(CANDLES):
        time = END - (CANDLES - n) * 60
        open_ = price
        close = open_ * math.exp(rng.gauss(drift, vol))
        high = max(open_, close) * (1 + abs(rng.gauss(0, vol / 2)))
        low = min(open_, close) * (1 - abs(rng.gauss(0, vol / 2)))
        size = volume * rng.lognormvariate(0, 0.6) * (1.5 if abs(close / open_ - 1) > vol else 1)
        decimals = 2 if first > 10 else 4
        rows.append(
            [str(time), *(f"{v:.{decimals}f}" for v in (open_, high, low, close)), f"{size:.6f}"]
        )
        price = close
    return rows


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for n, (product, (first, drift, vol, volume)) in enumerate(PRODUCTS.items()):
        with (OUT / f"{product}.csv").open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["time", "open", "high", "low", "close", "volume"])
            writer.writerows(candles(first, drift, vol, volume, random.Random(1_000 + n)))


if __name__ == "__main__":
    main()
