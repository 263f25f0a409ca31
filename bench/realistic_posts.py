"""Posts shaped like real Reddit traffic, for benchmarks that must not flatter: lengths drawn
from a log-normal with a median near 300 characters and a tail to 1,500, about half of them
chatter that names no ticker, the rest naming one to three tickers amid market talk. Seeded, so
every run offers the same posts; no two are the same text.
"""

from __future__ import annotations

import math
import random
import statistics

MEDIAN_CHARS = 300
SIGMA = 0.75
SHORTEST, LONGEST = 40, 1_500
CHATTER_SHARE = 0.5

TICKERS = [
    "NVDA",
    "AMD",
    "TSLA",
    "AAPL",
    "MSFT",
    "AMZN",
    "META",
    "GOOGL",
    "NFLX",
    "INTC",
    "PLTR",
    "GME",
    "AMC",
    "COIN",
    "SOFI",
    "RIVN",
    "MU",
    "SMCI",
    "BABA",
    "NIO",
    "SPY",
    "QQQ",
    "JPM",
    "BAC",
    "DIS",
    "UBER",
    "SHOP",
    "ARM",
    "AVGO",
    "TSM",
]
SUBREDDITS = ("wallstreetbets", "stocks", "investing", "options", "StockMarket", "pennystocks")

_MARKET = (
    "{t} beat estimates by {n} cents and raised guidance for the full year.",
    "Bought {k} more shares of {t} at {p} this morning, averaging down.",
    "Loading {t} calls for {month}, strike {p}, this looks like the bottom.",
    "Puts on {t} printed, down {n}% since the open and still falling.",
    "{t} missed on revenue again and the guidance cut was worse than feared.",
    "Not sure about {t} here, the chart looks stretched after a {n}% run.",
    "Sold my whole {t} position for a {n}% gain, taking profits before earnings.",
    "Anyone else holding {t} through the split? Margins keep expanding.",
    "{t} got downgraded to neutral with a price target of {p}.",
    "Shorting {t} into the print, the valuation makes no sense at {n}x sales.",
    "The {t} conference call was bullish, management sounded confident about demand.",
    "{t} is my biggest holding and I added {k} shares on the dip.",
    "Volume on {t} is {n} times the average today, something is brewing.",
    "Rotating out of {t} into cash, the macro picture worries me.",
    "DD: {t} has {n} billion in cash, no debt, and trades below book value.",
)
_CHATTER = (
    "My wife says I should stop checking my phone during dinner.",
    "Rent went up again by {n} dollars, honestly thinking about moving back home.",
    "Does anyone know a good budgeting app that does not sell your data?",
    "Lost {n} pounds this year just by walking to work every day.",
    "The coffee machine at the office broke for the {k} time this month.",
    "Took the kids to the lake this weekend and the weather was perfect.",
    "Honest question: how do you all stay motivated when work gets boring?",
    "I finally finished the book everyone keeps recommending, it was fine.",
    "Traffic this morning was insane, took me {n} minutes to go {k} miles.",
    "Remember when gas was under {k} dollars? Good times.",
    "My dog ate an entire sandwich off the counter while I was on a call.",
    "Thinking about learning to cook instead of ordering takeout every night.",
    "Mods please pin the daily thread, it keeps getting buried.",
    "What a week, I need a vacation somewhere without internet.",
    "Just got back from the gym, leg day is still the worst day.",
)
_MONTHS = ("January", "March", "June", "September", "December")


def _fill(template: str, rng: random.Random, tickers: list[str]) -> str:
    ticker = rng.choice(tickers) if tickers else ""
    tag = f"${ticker}" if rng.random() < 0.6 else ticker
    return template.format(
        t=tag,
        n=rng.randint(2, 97),
        k=rng.randint(2, 400),
        p=f"{rng.uniform(5, 900):.2f}",
        month=rng.choice(_MONTHS),
    )


def _length(rng: random.Random) -> int:
    drawn = rng.lognormvariate(math.log(MEDIAN_CHARS), SIGMA)
    return int(min(LONGEST, max(SHORTEST, drawn)))


def realistic_post(index: int, rng: random.Random) -> dict[str, str]:
    """One post as a stream entry's fields: title, body, subreddit, author."""
    chatter = rng.random() < CHATTER_SHARE
    tickers = [] if chatter else rng.sample(TICKERS, rng.choice((1, 1, 1, 2, 2, 3)))
    pool = _CHATTER if chatter else _MARKET
    target = _length(rng)
    title = _fill(rng.choice(pool), rng, tickers)[:120]
    sentences: list[str] = []
    length = len(title)
    while length < target:
        sentence = _fill(rng.choice(pool), rng, tickers)
        if not chatter and rng.random() < 0.25:  # real posts wander off topic too
            sentence = _fill(rng.choice(_CHATTER), rng, [])
        sentences.append(sentence)
        length += len(sentence) + 1
    body = " ".join(sentences)[: max(0, target - len(title))]
    return {
        "id": f"r{index}",
        "title": title,
        "body": body,
        "subreddit": rng.choice(SUBREDDITS),
        "author": f"user_{rng.randint(1, 50_000)}",
    }


def realistic_posts(count: int, seed: int = 1) -> list[dict[str, str]]:
    rng = random.Random(seed)
    return [realistic_post(index, rng) for index in range(count)]


def describe(posts: list[dict[str, str]]) -> dict[str, float]:
    """Length median, p90 and max (title + body) and the share naming no ticker."""
    lengths = sorted(len(p["title"]) + 1 + len(p["body"]) for p in posts)
    no_ticker = sum(1 for p in posts if not any(t in p["title"] + p["body"] for t in TICKERS))
    return {
        "median_chars": statistics.median(lengths),
        "p90_chars": lengths[int(0.9 * (len(lengths) - 1))],
        "max_chars": lengths[-1],
        "share_without_ticker": round(no_ticker / len(posts), 3),
    }


if __name__ == "__main__":
    print(describe(realistic_posts(10_000)))
