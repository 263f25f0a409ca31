"""The consensus reference: the daily consensus, the rolling view's discounts and aging, and the
spike detector's thresholds, on hand-computed cases and a few properties."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from signalsmith.consensus import (
    DayTotals,
    Mention,
    RollingView,
    ViewConfig,
    day_consensus,
    discount,
    stored,
    verdict_of,
    weight_of,
    weighted,
)
from signalsmith.decide import DEAD_ZONE
from signalsmith.domain import Verdict

# Three buckets of 100 s in the window; the baseline reaches 4 buckets back.
CONFIG = ViewConfig(
    window_s=300, bucket_s=100, baseline_buckets=4, spike_factor=2.0, spike_min=2.0, dead_zone=0.15
)


def _bucket(n: int) -> float:
    """A moment inside bucket ``n``."""
    return n * CONFIG.bucket_s + 10


def _mention(
    story: str, *, ticker: str = "NVDA", confidence: float = 0.5, score: float = 0.5,
    verdict: str = "BUY", author: str = "",
) -> Mention:  # fmt: skip
    return Mention(ticker, confidence, score, verdict, story, author)


@pytest.mark.parametrize(
    ("score", "dead_zone", "verdict"),
    [
        (DEAD_ZONE, DEAD_ZONE, Verdict.BUY),
        (-DEAD_ZONE, DEAD_ZONE, Verdict.SELL),
        (math.nextafter(DEAD_ZONE, 0), DEAD_ZONE, Verdict.HOLD),
        (math.nextafter(-DEAD_ZONE, 0), DEAD_ZONE, Verdict.HOLD),
        (0.0, 0.0, Verdict.BUY),
        (0.1, 0.1, Verdict.BUY),
        (0.09, 0.1, Verdict.HOLD),
    ],
)
def test_the_dead_zone_edge_belongs_to_the_verdict(
    score: float, dead_zone: float, verdict: Verdict
) -> None:
    assert verdict_of(score, dead_zone) is verdict


def test_the_dead_zone_defaults_to_the_deciders() -> None:
    assert verdict_of(DEAD_ZONE) is Verdict.BUY
    assert verdict_of(math.nextafter(DEAD_ZONE, 0)) is Verdict.HOLD


@pytest.mark.parametrize(
    ("total", "weight", "score"),
    [(0.5, 1.0, 0.5), (3.0, 2.0, 1.0), (-3.0, 2.0, -1.0), (1.0, 0.0, 0.0), (1.0, -1.0, 0.0)],
)
def test_a_weighted_score_is_clamped_and_zero_without_weight(
    total: float, weight: float, score: float
) -> None:
    assert weighted(total, weight) == score


@pytest.mark.parametrize(
    ("confidence", "weight"), [(0.0, 0.05), (0.01, 0.05), (0.05, 0.05), (0.3, 0.3), (1.0, 1.0)]
)
def test_a_weight_is_at_least_five_hundredths(confidence: float, weight: float) -> None:
    assert weight_of(confidence) == weight


def test_the_day_score_weights_by_confidence_and_the_confidence_by_agreement() -> None:
    totals = DayTotals()
    totals.fold(0.8, 0.6, "BUY")
    totals.fold(0.4, 0.5, "BUY")
    totals.fold(0.0, -1.0, "SELL")  # weighs 0.05, not 0
    consensus = day_consensus(totals, 0.15)
    assert totals.weight_sum == pytest.approx(1.25)
    assert consensus.score == pytest.approx((0.48 + 0.2 - 0.05) / 1.25)  # 0.504
    assert consensus.verdict is Verdict.BUY
    assert consensus.confidence == pytest.approx(0.4 * 2 / 3)  # mean 0.4, 2 of 3 agree
    assert (consensus.posts, consensus.buy, consensus.sell, consensus.hold) == (3, 2, 1, 0)
    assert consensus.reasoning == (
        "consensus of 3 posts today: 2 buy, 1 sell, 0 hold; confidence-weighted score +0.504"
    )


def test_a_split_day_is_a_hold_nobody_agrees_with() -> None:
    totals = DayTotals()
    totals.fold(0.9, 0.5, "BUY")
    totals.fold(0.9, -0.5, "SELL")
    consensus = day_consensus(totals, 0.15)
    assert (consensus.verdict, consensus.score, consensus.confidence) == (Verdict.HOLD, 0.0, 0.0)
    assert consensus.reasoning.endswith("confidence-weighted score +0.000")


def test_an_unknown_verdict_counts_as_a_hold() -> None:
    totals = DayTotals()
    totals.fold(0.5, 0.0, "buy")
    assert (totals.buy, totals.hold) == (0, 1)


def test_a_day_without_posts_is_a_hold_without_confidence() -> None:
    consensus = day_consensus(DayTotals())
    assert (consensus.verdict, consensus.confidence, consensus.score) == (Verdict.HOLD, 0.0, 0.0)


def test_stored_sums_keep_fourteen_significant_digits() -> None:
    totals = DayTotals(posts=3, weight_sum=1 / 3, weighted_score=2.0, confidence_sum=0.1 + 0.2)
    totals.store()
    assert totals.weight_sum == 0.33333333333333
    assert totals.weighted_score == 2.0
    assert totals.confidence_sum == 0.3
    assert stored(123456789.123456789) == 123456789.12346


def test_copies_of_a_story_count_less_and_less() -> None:
    view = RollingView(CONFIG)
    for _ in range(3):
        view.add(_mention("same"), _bucket(10))
    window = view.window("NVDA")
    assert window.posts == 3
    assert window.mentions == pytest.approx(1 + 1 / 2 + 1 / 3)
    assert window.buy == pytest.approx(window.mentions)


def test_a_loud_author_counts_by_the_square_root_of_their_posts() -> None:
    view = RollingView(CONFIG)
    for n in range(4):
        view.add(_mention(f"s{n}", author="loud"), _bucket(10))
    view.add(_mention("s4", ticker="AMD", author="loud"), _bucket(10))  # counted per ticker
    assert view.window("NVDA").mentions == pytest.approx(1 + 2**-0.5 + 3**-0.5 + 0.5)
    assert view.window("AMD").mentions == 1
    assert discount(2, 4) == 0.25


def test_the_window_score_is_weighted_by_discounted_confidence() -> None:
    view = RollingView(CONFIG)
    view.add(_mention("a", confidence=0.8, score=0.5), _bucket(10))
    view.add(_mention("a", confidence=0.0, score=-1.0, verdict="SELL"), _bucket(10))
    view.add(_mention("b", confidence=0.4, score=-0.5, verdict="HOLD"), _bucket(10))
    window = view.window("NVDA")
    # weights: 0.8 x 1, 0.05 x 1/2, 0.4 x 1
    weights = 0.8 + 0.025 + 0.4
    assert window.score == pytest.approx((0.4 - 0.025 - 0.2) / weights)
    assert window.verdict is Verdict.HOLD
    assert (window.buy, window.sell, window.hold) == pytest.approx((1, 0.5, 1))


def test_counts_live_window_s_past_their_latest_post() -> None:
    view = RollingView(CONFIG)
    view.add(_mention("s", author="a"), 0)
    view.add(_mention("s", author="a"), 300)  # the counters still live: 1/2 x 1/sqrt(2)
    assert view.window("NVDA").mentions == pytest.approx(0.5 * 2**-0.5)  # bucket 0 left
    view.add(_mention("s", author="a"), 601)  # they expired: a first copy again
    assert view.window("NVDA").mentions == 1


def test_buckets_leave_the_window_whole() -> None:
    view = RollingView(CONFIG)
    view.add(_mention("a", verdict="SELL", score=-1.0), _bucket(10))
    view.add(_mention("b"), _bucket(12))
    assert view.window("NVDA").posts == 2  # buckets 10..12
    view.add(_mention("c"), _bucket(13))
    window = view.window("NVDA")
    assert (window.posts, window.mentions, window.sell, window.buy) == (2, 2, 0, 2)
    assert window.score == 0.5


def test_a_view_idle_past_its_ttl_starts_over() -> None:
    view = RollingView(CONFIG)
    assert CONFIG.ttl_s == (4 + 3 + 1) * 100
    for story in "abc":
        view.add(_mention(story), _bucket(10))
    spikes = [view.add(_mention(story), _bucket(19)) for story in "de"]
    assert view.window("NVDA").posts == 2
    assert spikes[1] is not None
    assert spikes[1].baseline == 0  # nothing remembered of bucket 10


def test_a_new_ticker_spikes_against_the_floor_of_its_baseline() -> None:
    view = RollingView(CONFIG)
    assert view.add(_mention("a"), _bucket(10)) is None  # 1 mention: under spike_min
    spike = view.add(_mention("b"), _bucket(10))
    assert spike is not None
    assert (spike.ticker, spike.bucket, spike.bucket_start, spike.bucket_s) == (
        "NVDA", 10, 1000, 100,
    )  # fmt: skip
    assert (spike.mentions, spike.posts, spike.baseline, spike.ratio) == (2, 2, 0, 2)
    assert spike.reasoning == (
        "mention spike: 2.0 mentions (2 posts) in 100s against a ticker new to the view; "
        "their confidence-weighted score +0.500"
    )


def test_spike_min_counts_discounted_mentions() -> None:
    view = RollingView(CONFIG)
    spikes = [view.add(_mention("same"), _bucket(10)) for _ in range(3)]  # 1 + 1/2 + 1/3
    assert spikes == [None, None, None]
    assert view.add(_mention("same"), _bucket(10)) is not None  # + 1/4 > 2


def test_a_ticker_spikes_once_per_bucket() -> None:
    view = RollingView(CONFIG)
    spikes = [view.add(_mention(f"s{n}"), _bucket(10)) for n in range(5)]
    assert [spike is not None for spike in spikes] == [False, True, False, False, False]
    # Bucket 11 measures against bucket 10's 5 mentions: it spikes at 10, and only once.
    spikes = [view.add(_mention(f"t{n}"), _bucket(11)) for n in range(12)]
    assert [n for n, spike in enumerate(spikes) if spike is not None] == [9]


def test_the_baseline_is_the_mean_since_first_seen() -> None:
    view = RollingView(CONFIG)
    view.add(_mention("a"), _bucket(10))
    view.add(_mention("b"), _bucket(11))
    # Bucket 12: the baseline spans buckets 10 and 11 (seen twice, not 4 buckets): 1 a bucket.
    assert view.add(_mention("c"), _bucket(12)) is None
    spike = view.add(_mention("d"), _bucket(12))
    assert spike is not None
    assert (spike.baseline, spike.ratio) == (1.0, 2.0)
    assert spike.reasoning == (
        "mention spike: 2.0 mentions (2 posts) in 100s against a baseline of 1.00 (2.0x); "
        "their confidence-weighted score +0.500"
    )


def test_the_baseline_reaches_past_the_window_but_not_past_baseline_buckets() -> None:
    view = RollingView(CONFIG)
    for n in range(4):
        view.add(_mention(f"a{n}"), _bucket(10))
    # Bucket 14: the window is 12..14, the baseline 10..13: (4 + 0 + 0 + 0) / 4.
    spikes = [view.add(_mention(f"b{n}"), _bucket(14)) for n in range(2)]
    assert spikes[0] is None
    assert spikes[1] is not None
    assert spikes[1].baseline == 1.0
    assert view.window("NVDA").posts == 2
    # Bucket 15: the baseline is 11..14, bucket 10 forgotten: 2 / 4.
    spikes = [view.add(_mention(f"c{n}"), _bucket(15)) for n in range(2)]
    assert spikes[1] is not None
    assert (spikes[1].baseline, spikes[1].ratio) == (0.5, 4.0)


def test_a_spike_takes_spike_factor_times_the_baseline() -> None:
    view = RollingView(ViewConfig(300, 100, 4, spike_factor=3.0, spike_min=1.0))
    for n in range(2):
        view.add(_mention(f"a{n}"), _bucket(10))
    # Bucket 11: baseline 2; 3 x 2 = 6 mentions needed.
    spikes = [view.add(_mention(f"b{n}"), _bucket(11)) for n in range(6)]
    assert [spike is not None for spike in spikes] == [False] * 5 + [True]


def test_a_spike_is_called_by_its_buckets_weighted_score() -> None:
    view = RollingView(CONFIG)
    view.add(_mention("a", confidence=0.5, score=-0.8, verdict="SELL"), _bucket(10))
    spike = view.add(_mention("b", confidence=0.5, score=-0.4, verdict="BUY"), _bucket(10))
    assert spike is not None
    assert spike.score == pytest.approx(-0.6)
    assert spike.verdict is Verdict.SELL
    assert spike.confidence == pytest.approx(0.6)
    view.add(_mention("c", ticker="AMD", score=0.1), _bucket(10))
    calm = view.add(_mention("d", ticker="AMD", score=0.1), _bucket(10))
    assert calm is not None
    assert calm.verdict is Verdict.HOLD
    assert calm.confidence == pytest.approx(0.1)


def test_stored_view_sums_keep_fourteen_significant_digits() -> None:
    view = RollingView(CONFIG)
    for _ in range(3):
        view.add(_mention("same"), _bucket(10))
    view.store()
    assert view.window("NVDA").mentions == stored(1 + 1 / 2 + 1 / 3)


_posts = st.lists(
    st.tuples(
        st.floats(0, 1),
        st.floats(-2, 2),
        st.sampled_from(["BUY", "SELL", "HOLD", "other"]),
    ),
    min_size=1,
    max_size=40,
)


@given(_posts, st.floats(0, 1))
def test_a_day_score_and_confidence_stay_in_range(
    posts: list[tuple[float, float, str]], dead_zone: float
) -> None:
    totals = DayTotals()
    for post in posts:
        totals.fold(*post)
    consensus = day_consensus(totals, dead_zone)
    assert -1 <= consensus.score <= 1
    assert 0 <= consensus.confidence <= 1
    assert consensus.buy + consensus.sell + consensus.hold == consensus.posts == len(posts)


@given(_posts, st.randoms(use_true_random=False))
def test_a_day_does_not_depend_on_the_order_of_its_posts(
    posts: list[tuple[float, float, str]], rng: random.Random
) -> None:
    shuffled = list(posts)
    rng.shuffle(shuffled)
    one, other = DayTotals(), DayTotals()
    for post in posts:
        one.fold(*post)
    for post in shuffled:
        other.fold(*post)
    a, b = day_consensus(one), day_consensus(other)
    assert (a.posts, a.buy, a.sell, a.hold) == (b.posts, b.buy, b.sell, b.hold)
    assert a.score == pytest.approx(b.score, abs=1e-9)
    assert a.confidence == pytest.approx(b.confidence, abs=1e-9)
    if abs(abs(a.score) - DEAD_ZONE) > 1e-9:
        assert a.verdict is b.verdict


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["NVDA", "AMD"]),
            st.integers(0, 12),  # bucket
            st.floats(0, 1),
            st.floats(-1, 1),
            st.sampled_from(["BUY", "SELL", "HOLD"]),
            st.sampled_from(["s1", "s2", "s3", "s4"]),
            st.sampled_from(["", "a1", "a2"]),
        ),
        max_size=60,
    ).map(lambda posts: sorted(posts, key=lambda post: post[1]))
)
def test_the_view_stays_in_range_and_spikes_once_per_bucket(
    posts: list[tuple[str, int, float, float, str, str, str]],
) -> None:
    view = RollingView(CONFIG)
    spiked: list[tuple[str, int]] = []
    for ticker, bucket, confidence, score, verdict, story, author in posts:
        spike = view.add(
            Mention(ticker, confidence, score, verdict, story, author), _bucket(bucket)
        )
        window = view.window(ticker)
        assert 0 < window.mentions <= window.posts + 1e-9
        assert window.buy + window.sell + window.hold == pytest.approx(window.mentions)
        assert -1 <= window.score <= 1
        if spike is not None:
            assert spike.mentions >= CONFIG.spike_min
            assert 0 <= spike.confidence <= 1
            spiked.append((spike.ticker, spike.bucket))
    assert len(spiked) == len(set(spiked))
