"""INSIGHT_SCHEDULE read into schedules (a malformed one is a ConfigError naming the part and the
syntax), wall-clock ticks every process agrees on, the requests a tick makes, and what start-up
refuses (on a Redis Cluster, a MARKET_STREAM without a hash tag)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from redis.asyncio import Redis

from signalsmith.errors import ConfigError
from signalsmith.lifecycle import build_scheduler
from signalsmith.market.requests import request_from_fields
from signalsmith.market.schedule import (
    Schedule,
    next_tick,
    parse_schedules,
    request_data,
    scheduled_request,
    tick_at,
    tick_text,
)
from signalsmith.observe.metrics import Metrics
from signalsmith.settings import Settings


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def test_products_at_an_interval_several_separated_by_semicolons() -> None:
    schedules = parse_schedules(" BTC-USD, eth/usd @15m ; SOL-USD@1h;")
    assert schedules == (
        Schedule(("BTC-USD", "ETH-USD"), 900),
        Schedule(("SOL-USD",), 3_600),
    )
    assert [s.name for s in schedules] == ["BTC-USD,ETH-USD@15m", "SOL-USD@1h"]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("AAPL@1m", 60),
        ("AAPL@5m", 300),
        ("AAPL@6h", 21_600),
        ("AAPL@1d", 86_400),
        ("AAPL@1w", 604_800),
        ("AAPL@900", 900),
        ("AAPL@90m", 5_400),
    ],
)
def test_intervals_use_the_market_pipelines_granularity_syntax(text: str, seconds: int) -> None:
    (schedule,) = parse_schedules(text)
    assert schedule.interval_s == seconds


def test_no_schedule_at_all_is_blank() -> None:
    assert parse_schedules("") == ()
    assert parse_schedules(" ; ") == ()


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("BTC-USD", "'BTC-USD' has no @INTERVAL"),
        ("BTC-USD@", "'BTC-USD@': '' is not an interval from 1m to 1w"),
        ("@15m", "'@15m' names no product"),
        ("BTC-USD@15x", "'BTC-USD@15x': '15x' is not an interval from 1m to 1w"),
        ("BTC-USD@2w", "'2w' is not an interval from 1m to 1w"),
        ("BTC-USD@30s", "'30s' is not an interval from 1m to 1w"),
        ("BTC-USD@0", "'0' is not an interval"),
        ("BTC USD@15m", "'BTC USD' is not a product id"),
        ("BTC-USD;DROP@1h", "'BTC-USD' has no @INTERVAL"),
    ],
)
def test_a_malformed_schedule_names_the_setting_the_part_and_the_syntax(
    text: str, names: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_schedules(text)
    assert caught.value.setting == "INSIGHT_SCHEDULE"
    assert names in caught.value.problem
    assert "expected PRODUCTS@INTERVAL" in caught.value.problem
    assert str(caught.value).startswith("INSIGHT_SCHEDULE: ")


@pytest.mark.parametrize("text", ["BTC-USD@15m;btc-usd@1h", "BTC-USD,BTC-USD@15m"])
def test_a_product_belongs_to_one_schedule(text: str) -> None:
    """A request does not carry its schedule's interval: twice would ask for one insight twice."""
    with pytest.raises(ConfigError, match="BTC-USD is scheduled twice") as caught:
        parse_schedules(text)
    assert caught.value.setting == "INSIGHT_SCHEDULE"
    assert "list it in one schedule" in caught.value.problem


@pytest.mark.parametrize(
    ("now", "interval_s", "tick"),
    [
        ("2026-12-04T19:20:43", 900, "2026-12-04T19:15:00Z"),
        ("2026-12-04T19:15:00", 900, "2026-12-04T19:15:00Z"),  # a boundary is its own tick
        ("2026-12-04T19:14:59.999", 900, "2026-12-04T19:00:00Z"),
        ("2026-12-04T19:20:43", 3_600, "2026-12-04T19:00:00Z"),
        ("2026-12-04T19:20:43", 21_600, "2026-12-04T18:00:00Z"),
        ("2026-12-04T19:20:43", 86_400, "2026-12-04T00:00:00Z"),
        ("2026-12-04T19:20:43", 604_800, "2026-11-30T00:00:00Z"),  # weeks start on Monday
        ("2026-12-04T19:20:43", 5_400, "2026-12-04T18:00:00Z"),  # 90m: 16 ticks a day
    ],
)
def test_ticks_are_aligned_to_the_utc_clock(now: str, interval_s: int, tick: str) -> None:
    assert tick_text(tick_at(_epoch(now), interval_s)) == tick


@given(
    now=st.floats(min_value=1e9, max_value=4e9, allow_nan=False),
    interval_s=st.sampled_from([60, 300, 900, 3_600, 5_400, 21_600, 86_400, 604_800, 420]),
)
def test_now_falls_in_its_tick_and_the_next_starts_one_interval_later(
    now: float, interval_s: int
) -> None:
    tick = tick_at(now, interval_s)
    assert tick <= now < next_tick(now, interval_s) == tick + interval_s
    assert tick_at(tick, interval_s) == tick
    assert tick_at(tick - 0.001, interval_s) == tick - interval_s


def test_a_ticks_request_is_the_same_request_whoever_makes_it() -> None:
    tick = int(_epoch("2026-12-04T19:15:00"))
    request = scheduled_request("ETH-USD", tick)
    assert request.correlation_id == "sched-ETH-USD-2026-12-04T19:15:00Z"
    assert (request.product_id, request.prompt) == ("ETH-USD", "trend_analysis")
    assert scheduled_request("ETH-USD", tick + 900).correlation_id != request.correlation_id
    read = request_from_fields({"data": request_data("ETH-USD", tick)}, "market-requests", "1-0")
    assert read == request


def test_the_longest_product_still_makes_a_valid_correlation_id() -> None:
    product = "ABCDEFGHIJKLMNO-ABCDEFGHIJKLMNO"
    (schedule,) = parse_schedules(f"{product}@1w")
    request = scheduled_request(schedule.products[0], tick_at(_epoch("2026-12-04T00:00"), 604_800))
    assert len(request.correlation_id) <= 64


@pytest.mark.parametrize(
    ("stream", "refused"), [("market-requests", True), ("{ss}:market-requests", False)]
)
def test_on_a_redis_cluster_the_locks_need_the_streams_hash_tag(stream: str, refused: bool) -> None:
    """The locks are written in one script with the stream, so they must share its slot."""
    settings = Settings(
        redis_cluster=True,
        redis_addr="127.0.0.1:7000",
        market_stream=stream,
        insight_schedule="BTC-USD@1h",
    )
    client = Redis()  # never connects: building the scheduler sends nothing
    if refused:
        with pytest.raises(ConfigError, match="MARKET_STREAM=") as caught:
            build_scheduler(settings, client, Metrics())
        assert caught.value.setting == "MARKET_STREAM"
        assert "{signalsmith}:market-requests" in caught.value.problem
    else:
        assert build_scheduler(settings, client, Metrics()) is not None


def test_without_a_schedule_nothing_is_built() -> None:
    assert build_scheduler(Settings(insight_schedule=" "), Redis(), Metrics()) is None
