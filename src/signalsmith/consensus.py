"""The consensus arithmetic the commit script applies inside Redis (``sink/consensus.lua``), in
Python: the (ticker, trade date) consensus, the rolling per-ticker view and its mention spikes.
Pure; the reference that unit tests pin down and that one integration test holds the script to.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

from signalsmith.decide import DEAD_ZONE
from signalsmith.domain import Verdict

MIN_WEIGHT = 0.05  # a zero-confidence post still counts a little, so weights never sum to 0
_NO_BASELINE = 1e-9  # a ratio is never taken against less than this


def verdict_of(score: float, dead_zone: float = DEAD_ZONE) -> Verdict:
    """BUY at or above the dead zone, SELL at or below its negative, HOLD strictly between."""
    if score >= dead_zone:
        return Verdict.BUY
    if score <= -dead_zone:
        return Verdict.SELL
    return Verdict.HOLD


def weighted(total: float, weight: float) -> float:
    """A confidence-weighted score: the weighted sum over the weights, within -1..1 (0 with no
    weight)."""
    if weight > 0:
        return max(-1.0, min(1.0, total / weight))
    return 0.0


def weight_of(confidence: float) -> float:
    """How much a post's score counts: its confidence, at least ``MIN_WEIGHT``."""
    return max(confidence, MIN_WEIGHT)


def discount(copies: int, author_posts: int) -> float:
    """How much a post counts in the rolling view: the copy of its story it is (1 for the first)
    and its author's posts on the ticker (1 with no author) both discount it."""
    return 1 / (copies * math.sqrt(author_posts))


def stored(value: float) -> float:
    """A number as the script keeps it between batches: Lua's ``tostring``, 14 significant
    digits."""
    return float(f"{value:.14g}")


@dataclass
class DayTotals:
    """The running totals of a (ticker, trade date) consensus hash."""

    posts: int = 0
    buy: int = 0
    sell: int = 0
    hold: int = 0
    weight_sum: float = 0.0
    weighted_score: float = 0.0
    confidence_sum: float = 0.0

    def fold(self, confidence: float, score: float, verdict: str) -> None:
        """One more post; a verdict other than BUY or SELL counts as a hold."""
        weight = weight_of(confidence)
        self.posts += 1
        self.weight_sum += weight
        self.weighted_score += weight * score
        self.confidence_sum += confidence
        if verdict == Verdict.BUY:
            self.buy += 1
        elif verdict == Verdict.SELL:
            self.sell += 1
        else:
            self.hold += 1

    def store(self) -> None:
        """Round the sums as the hash keeps them at the end of a batch."""
        self.weight_sum = stored(self.weight_sum)
        self.weighted_score = stored(self.weighted_score)
        self.confidence_sum = stored(self.confidence_sum)


@dataclass(frozen=True)
class Consensus:
    """A day's consensus, as the hash's verdict, confidence and ensemble_score fields show it."""

    verdict: Verdict
    confidence: float
    score: float
    posts: int
    buy: int
    sell: int
    hold: int
    reasoning: str


def day_consensus(totals: DayTotals, dead_zone: float = DEAD_ZONE) -> Consensus:
    """The day's verdict follows its confidence-weighted score; its confidence is the mean
    confidence times the share of posts whose own verdict agrees."""
    score = weighted(totals.weighted_score, totals.weight_sum)
    verdict = verdict_of(score, dead_zone)
    agree = {Verdict.BUY: totals.buy, Verdict.SELL: totals.sell, Verdict.HOLD: totals.hold}
    confidence = 0.0
    if totals.posts > 0:
        mean = totals.confidence_sum / totals.posts
        confidence = max(0.0, min(1.0, mean * (agree[verdict] / totals.posts)))
    reasoning = (
        f"consensus of {totals.posts} posts today: {totals.buy} buy, {totals.sell} sell, "
        f"{totals.hold} hold; confidence-weighted score {score:+.3f}"
    )
    return Consensus(
        verdict, confidence, score, totals.posts, totals.buy, totals.sell, totals.hold, reasoning
    )


@dataclass(frozen=True)
class ViewConfig:
    """The rolling view's and the spike detector's settings (the script's ``RollingConfig``)."""

    window_s: int
    bucket_s: int
    baseline_buckets: int
    spike_factor: float
    spike_min: float
    dead_zone: float = DEAD_ZONE

    @property
    def buckets(self) -> int:
        """Buckets in the rolling window, the current one included."""
        return max(1, math.ceil(self.window_s / self.bucket_s))

    @property
    def ttl_s(self) -> int:
        """A view not written for this long is forgotten."""
        return (self.baseline_buckets + self.buckets + 1) * self.bucket_s

    def bucket_of(self, now: float) -> int:
        return math.floor(now / self.bucket_s)


@dataclass(frozen=True)
class Mention:
    """One decision on a ticker, as the rolling view sees it; ``author`` "" for none."""

    ticker: str
    confidence: float
    score: float
    verdict: str
    story: str
    author: str = ""


@dataclass
class Totals:
    """Discounted sums over a window or a bucket (the hash's n, m, w, s, buy, sell, hold)."""

    posts: float = 0.0  # n: not discounted
    mentions: float = 0.0  # m
    weight: float = 0.0  # w
    weighted_score: float = 0.0  # s
    buy: float = 0.0
    sell: float = 0.0
    hold: float = 0.0

    def add(self, mention: Mention, share: float) -> None:
        """Add a post that counts ``share`` of one mention."""
        weight = weight_of(mention.confidence) * share
        self.posts += 1
        self.mentions += share
        self.weight += weight
        self.weighted_score += weight * mention.score
        vote = _VOTES.get(mention.verdict, "hold")
        setattr(self, vote, getattr(self, vote) + share)

    def remove(self, old: Totals) -> None:
        """Take a bucket that left the window out, never below zero."""
        for name in _TOTAL_NAMES:
            setattr(self, name, max(0.0, getattr(self, name) - getattr(old, name)))

    def store(self) -> None:
        for name in _TOTAL_NAMES:
            setattr(self, name, stored(getattr(self, name)))

    @property
    def score(self) -> float:
        return weighted(self.weighted_score, self.weight)


_TOTAL_NAMES = tuple(f.name for f in fields(Totals))
_VOTES = {"BUY": "buy", "SELL": "sell"}  # anything else is a hold


@dataclass(frozen=True)
class Window:
    """A ticker's rolling view, as the daily hash's window_* fields show it."""

    posts: int
    mentions: float
    buy: float
    sell: float
    hold: float
    score: float
    verdict: Verdict


@dataclass(frozen=True)
class Spike:
    """A bucket's mentions far above the ticker's own baseline."""

    ticker: str
    bucket: int
    bucket_start: int  # epoch seconds
    bucket_s: int
    mentions: float
    posts: int
    baseline: float
    ratio: float
    score: float
    verdict: Verdict
    confidence: float

    @property
    def reasoning(self) -> str:
        """The spike signal's reasoning text."""
        against = "a ticker new to the view"
        if self.baseline > 0:
            against = f"a baseline of {self.baseline:.2f} ({self.ratio:.1f}x)"
        return (
            f"mention spike: {self.mentions:.1f} mentions ({self.posts} posts) in {self.bucket_s}s"
            f" against {against}; their confidence-weighted score {self.score:+.3f}"
        )


@dataclass
class _Counter:
    count: int
    last: float  # when it was last bumped


@dataclass
class _Ticker:
    """One ticker's view: the window's totals, the window's buckets, the mentions of the buckets
    before the window that the baseline still needs, and the spike bookkeeping."""

    first: int  # the bucket the ticker was first seen in
    written: float  # when the view was last written
    totals: Totals = field(default_factory=Totals)
    buckets: dict[int, Totals] = field(default_factory=dict)
    past: dict[int, float] = field(default_factory=dict)
    spiked: int | None = None  # the bucket of the latest spike
    baseline: float = 0.0
    baseline_at: int | None = None  # the bucket ``baseline`` was taken in

    def mentions_in(self, bucket: int) -> float:
        if bucket in self.buckets:
            return self.buckets[bucket].mentions
        return self.past.get(bucket, 0.0)


class RollingView:
    """Every ticker's rolling view and mention spikes, fed mentions in commit order.

    A post lands in the bucket of ``now``; ``store()`` ends a batch of the script (its sums are
    then kept rounded). Story and author counts, per ticker, live ``window_s`` past their latest
    bump, and a view not written for ``ViewConfig.ttl_s`` is forgotten, as the script's keys expire.
    """

    def __init__(self, config: ViewConfig) -> None:
        self.config = config
        self._tickers: dict[str, _Ticker] = {}
        self._counters: dict[tuple[str, str, str], _Counter] = {}

    def add(self, mention: Mention, now: float) -> Spike | None:
        """Fold one mention in; the spike it raises, if any."""
        bucket = self.config.bucket_of(now)
        ticker = self._ticker(mention.ticker, now, bucket)
        share = self._share(mention, now)
        ticker.totals.add(mention, share)
        ticker.buckets.setdefault(bucket, Totals()).add(mention, share)
        ticker.written = now
        return self._spike(mention, ticker, bucket)

    def window(self, ticker: str) -> Window:
        """The ticker's view as it stands (zero for a ticker never seen)."""
        view = self._tickers[ticker].totals if ticker in self._tickers else Totals()
        score = view.score
        return Window(
            posts=int(view.posts),
            mentions=view.mentions,
            buy=view.buy,
            sell=view.sell,
            hold=view.hold,
            score=score,
            verdict=verdict_of(score, self.config.dead_zone),
        )

    def store(self) -> None:
        """End of a batch: the sums are kept rounded from here on."""
        for ticker in self._tickers.values():
            ticker.totals.store()
            for totals in ticker.buckets.values():
                totals.store()
            ticker.baseline = stored(ticker.baseline)

    def _ticker(self, name: str, now: float, bucket: int) -> _Ticker:
        """The ticker's view aged to ``bucket``; a new one if never seen or expired."""
        ticker = self._tickers.get(name)
        if ticker is None or now - ticker.written > self.config.ttl_s:
            ticker = self._tickers[name] = _Ticker(first=bucket, written=now)
        self._age(ticker, bucket)
        return ticker

    def _age(self, ticker: _Ticker, bucket: int) -> None:
        """Buckets that left the window leave the totals, oldest first; their mentions stay
        while the baseline reaches back to them."""
        start = bucket - self.config.buckets + 1
        for old in sorted(b for b in ticker.buckets if b < start):
            gone = ticker.buckets.pop(old)
            ticker.totals.remove(gone)
            ticker.past[old] = gone.mentions
        oldest = bucket - self.config.baseline_buckets
        for old in [b for b in ticker.past if b < oldest]:
            del ticker.past[old]

    def _share(self, mention: Mention, now: float) -> float:
        copies = self._bump(mention.ticker, "story", mention.story, now)
        posts = self._bump(mention.ticker, "author", mention.author, now) if mention.author else 1
        return discount(copies, posts)

    def _bump(self, ticker: str, kind: str, name: str, now: float) -> int:
        key = (ticker, kind, name)
        counter = self._counters.get(key)
        if counter is None or now - counter.last > self.config.window_s:
            counter = self._counters[key] = _Counter(0, now)
        counter.count += 1
        counter.last = now
        return counter.count

    def _baseline(self, ticker: _Ticker, bucket: int) -> float:
        """Mentions per bucket over the buckets before this one since the ticker was first seen,
        at most ``baseline_buckets`` of them (at least one: a new ticker's baseline is 0). Taken
        once per bucket: the buckets it covers do not change any more."""
        if ticker.baseline_at != bucket:
            span = min(self.config.baseline_buckets, max(1, bucket - ticker.first))
            total = 0.0
            for old in range(bucket - span, bucket):  # in order, as the script adds them
                total += ticker.mentions_in(old)
            ticker.baseline, ticker.baseline_at = total / span, bucket
        return ticker.baseline

    def _spike(self, mention: Mention, ticker: _Ticker, bucket: int) -> Spike | None:
        """A spike when this bucket's mentions reach ``spike_min`` and ``spike_factor`` times the
        baseline (a baseline counts as at least one mention over the baseline buckets); once per
        ticker and bucket."""
        config, current = self.config, ticker.buckets[bucket]
        mentions = current.mentions
        if mentions < config.spike_min or ticker.spiked == bucket:
            return None
        base = self._baseline(ticker, bucket)
        if mentions < config.spike_factor * max(base, 1 / config.baseline_buckets):
            return None
        ticker.spiked = bucket
        ratio = mentions / max(base, _NO_BASELINE) if base > 0 else mentions
        score = current.score
        return Spike(
            ticker=mention.ticker,
            bucket=bucket,
            bucket_start=bucket * config.bucket_s,
            bucket_s=config.bucket_s,
            mentions=mentions,
            posts=int(current.posts),
            baseline=base,
            ratio=ratio,
            score=score,
            verdict=verdict_of(score, config.dead_zone),
            confidence=abs(score),
        )
