"""Throughput benchmark for the offline lexicon analyzer, on one core (not a test).

Run: ``python bench/bench_lexicon.py [--n N] [--min-chars C] [--per-ticker]``; prints one JSON
object. ``--per-ticker`` times what the offline analyzer does for a post: find its tickers (and
raters), then one opinion per ticker (``judge_for``), or the whole text's when it names none.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Callable
from importlib.resources import files
from itertools import cycle, islice

from signalsmith.analyze.lexicon import Lexicon
from signalsmith.tickers import TickerExtractor, load_symbol_book

# A varied built-in set, used when the packaged demo posts are missing or unreadable.
BUILTIN_TEXTS: tuple[str, ...] = (
    "Just loaded up on more $AMD calls, this thing is going to the moon 🚀🚀 earnings next week",
    "Bought the dip on NVDA today. Diamond hands 💎🙌 not selling until $200, the AI trade is real",
    "Operating profit rose to EUR 13.1 mn from EUR 8.7 mn in the corresponding period in 2007.",
    "Net sales decreased by 5% to EUR 58.2 million, while the operating loss widened to EUR 3.4 mn",
    "The company's net loss narrowed to $2.1 million, or 4 cents a share, from $5.4 million.",
    "Apple beat estimates and raised guidance for the holiday quarter as iPhone demand held up.",
    "Morgan Stanley upgraded the stock to overweight and raised its price target to $210 from $180",
    "The retailer missed estimates and cut its outlook; shares plunged 15% in after-hours trading.",
    "Rotating out of INTC into AMD. Intel can't execute and the foundry story keeps slipping.",
    "Long NVDA, short SMCI. One of these has real margins and one has an accounting problem.",
    "Great, another 20% drop, love being a bagholder /s. Bought RIVN at 18 like a genius.",
    "Is TSLA going to the moon after the robotaxi event? Thoughts on calls vs shares here?",
    "Regulators opened an investigation into the automaker after a recall of 300,000 vehicles.",
    "The firm filed for Chapter 11 bankruptcy protection on Monday after failing to refinance debt",
    "Not bullish on RIVN here. Cash burn is insane and they will need another dilutive offering.",
    "Despite the selloff, I'm buying more META here. Ad revenue grew 22% and margins expanded.",
    "Classic dead cat bounce on PTON, bagholders getting rekt 💀 this is going to zero 📉",
    "Analysts downgraded Boeing to sell after another delivery delay and a profit warning.",
    "What time does the market open on Monday? First time trading, want to set up my account.",
    "The company will hold its annual general meeting in Helsinki on 15 March 2025.",
    "Short squeeze incoming on GME, shorts are trapped and borrow fees are spiking. Tendies soon",
    "Sold everything yesterday. This market is a bubble and the Fed is going to break something.",
    "Costs fell 12% as the restructuring program took hold, lifting operating margin to 14.2%.",
    "Trimmed my AAPL position and took profits, valuation looks stretched at 33x earnings.",
    "MSFT breaking out to an all-time high 📈 Azure growth re-accelerated, very bullish into Q4",
    "No longer bearish on INTC, the turnaround is real and gross margin improved for 3 quarters.",
    "Bought puts on SPY, this market is about to tank. CPI is hot and yields keep rising.",
    "Order intake grew 25% year-on-year, driven by strong demand in Asia and the Middle East.",
    "The board appointed a new chief financial officer, effective January 1, the company said.",
    "PLTR might be overvalued but the contract wins keep coming. Maybe trim, maybe hold, idk?",
)


def _post_text(line: str) -> str:
    """The text of one demo line; malformed or empty lines give an empty string."""
    try:
        entry = json.loads(line)
    except json.JSONDecodeError:
        return ""
    if not isinstance(entry, dict):
        return ""
    text = entry.get("text")
    if isinstance(text, str) and text:
        return text
    parts = [entry.get(key) for key in ("title", "body")]
    return "\n\n".join(part for part in parts if isinstance(part, str) and part)


def load_texts() -> tuple[list[str], str]:
    """The demo posts if the package ships them, else the built-in set; and which was used."""
    try:
        resource = files("signalsmith") / "data" / "demo_posts.jsonl"
        lines = resource.read_text(encoding="utf-8").splitlines()
    except (FileNotFoundError, OSError):
        lines = []
    texts = [text for text in map(_post_text, lines) if text]
    if texts:
        return texts, "demo_posts.jsonl"
    return list(BUILTIN_TEXTS), "builtin"


def lengthen(texts: list[str], min_chars: int) -> list[str]:
    """Join consecutive texts (as title and body are joined) until each is ``min_chars`` long."""
    if min_chars <= 0:
        return texts
    joined: list[str] = []
    current = ""
    for text in texts * 2:
        current = f"{current}\n\n{text}" if current else text
        if len(current) >= min_chars:
            joined.append(current)
            current = ""
    return joined or texts


def _per_ticker(lexicon: Lexicon) -> Callable[[str], object]:
    """A post's offline analysis: its tickers (raters set apart), then an opinion for each."""
    extractor = TickerExtractor(load_symbol_book())

    def judge(text: str) -> object:
        tickers, _ = extractor.roles(text)
        return lexicon.judge_for(text, tickers) if tickers else lexicon.judge(text)

    return judge


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=50_000, help="how many texts to analyze")
    parser.add_argument(
        "--min-chars", type=int, default=0, help="join posts until each is at least this long"
    )
    parser.add_argument(
        "--per-ticker", action="store_true", help="extract tickers, then judge each (judge_for)"
    )
    args = parser.parse_args()
    texts, corpus = load_texts()
    texts = lengthen(texts, args.min_chars)
    batch = list(islice(cycle(texts), max(args.n, 0)))
    lexicon = Lexicon()
    lexicon.judge(texts[0])  # warm up caches outside the timed loop
    judge = _per_ticker(lexicon) if args.per_ticker else lexicon.judge
    started = time.perf_counter()
    for text in batch:
        judge(text)
    seconds = time.perf_counter() - started
    result = {
        "texts": len(batch),
        "seconds": round(seconds, 4),
        "texts_per_s": round(len(batch) / seconds, 1) if seconds > 0 else None,
        "python": platform.python_version(),
        "corpus": corpus,
        "mean_chars": round(sum(map(len, batch)) / len(batch), 1) if batch else 0,
        "per_ticker": args.per_ticker,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
