"""Candles from a product's Redis stream (the suite's real Redis, a key per test), and the
``FirstOf`` chain that asks the stream, a file and others in order."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from signalsmith.errors import PoisonInput, TransientError
from signalsmith.market.candle_files import FileCandles
from signalsmith.market.candle_stream import StreamCandles
from signalsmith.market.sources import FirstOf, FoundCandles
from tests.conftest import free_port

pytestmark = pytest.mark.redis

T0 = 1_700_000_000


def flat(moment: int, price: float = 100.0) -> dict[str, str]:
    return {
        "time": str(moment),
        "open": str(price),
        "high": str(price + 2),
        "low": str(price - 1),
        "close": str(price + 1),
        "volume": "3.5",
    }


def row(moment: int, price: float = 100.0) -> tuple[float, ...]:
    return (moment, price, price + 2, price - 1, price + 1, 3.5)


@pytest.fixture
def source(redis: Redis, prefix: str) -> StreamCandles:
    return StreamCandles(redis, prefix=f"{prefix}:candles")


async def test_the_newest_entries_come_back_oldest_first(
    redis: Redis, source: StreamCandles
) -> None:
    for index in range(10):
        await redis.xadd(source.key("BTC-USD"), flat(T0 + 60 * index, 100 + index))
    rows = await source.fetch("BTC-USD", "1m", 4)
    assert rows == [row(T0 + 60 * index, 100 + index) for index in range(6, 10)]
    assert len(await source.fetch("BTC-USD", "1m", 1_000)) == 10


async def test_flat_fields_and_a_data_field_of_json_are_both_read(
    redis: Redis, source: StreamCandles
) -> None:
    key = source.key("ETH-USD")
    await redis.xadd(key, flat(T0))
    await redis.xadd(key, {"data": json.dumps({**flat(T0 + 60), "open": 100.0})})
    await redis.xadd(key, {"data": json.dumps([(T0 + 120) * 1000, 100, 102, 99, 101, 3.5])})
    short_names = {"t": "2023-11-14T22:16:20Z", "o": "100", "h": "102", "l": "99", "c": "101"}
    await redis.xadd(key, short_names | {"v": "3.5"})
    rows = await source.fetch("ETH-USD", "1m", 10)
    assert [moment for moment, *_prices in rows] == [T0, T0 + 60, T0 + 120, T0 + 180]
    assert all(prices == [100, 102, 99, 101, 3.5] for _moment, *prices in rows)
    assert source.skipped == 0


async def test_malformed_entries_are_skipped_and_counted(
    redis: Redis, source: StreamCandles
) -> None:
    key = source.key("SOL-USD")
    malformed: list[dict[str, str]] = [
        {k: v for k, v in flat(T0).items() if k != "volume"},
        flat(T0) | {"close": "lots"},
        flat(T0) | {"time": "yesterday"},
        {"data": "{not json"},
        {"data": json.dumps([T0, 1, 2, 3])},
        {"data": json.dumps({"time": T0, "open": True, "high": 1, "low": 1, "close": 1})},
        {"data": json.dumps("a string")},
        {"data": "[" * 3_000 + "]" * 3_000},
        {"data": json.dumps([T0, 1, 1, 1, 1, 1, "x" * 5_000])},
    ]
    await redis.xadd(key, flat(T0 - 60))
    for fields in malformed:
        await redis.xadd(key, fields)
    await redis.xadd(key, flat(T0 + 60))
    rows = await source.fetch("SOL-USD", "1m", 100)
    assert rows == [row(T0 - 60), row(T0 + 60)]
    assert source.skipped == len(malformed)


async def test_an_empty_or_missing_stream_has_no_rows(redis: Redis, source: StreamCandles) -> None:
    assert await source.fetch("BTC-USD", "1m", 10) == []
    entry = await redis.xadd(source.key("BTC-USD"), flat(T0))
    await redis.xdel(source.key("BTC-USD"), entry)
    assert await source.fetch("BTC-USD", "1m", 10) == []


async def test_a_key_that_is_not_a_stream_is_refused(redis: Redis, source: StreamCandles) -> None:
    await redis.set(source.key("BTC-USD"), "a string")
    with pytest.raises(PoisonInput) as refused:
        await source.fetch("BTC-USD", "1m", 10)
    assert refused.value.reason == "bad_candle_stream"


@pytest.fixture
async def unreachable() -> AsyncIterator[StreamCandles]:
    """A stream source whose Redis does not answer."""
    no_retry = Retry(NoBackoff(), retries=0)  # redis-py's default backs off for seconds
    client = Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=1, retry=no_retry)
    try:
        yield StreamCandles(client)
    finally:
        await client.aclose()


async def test_redis_not_answering_is_a_transient_error(unreachable: StreamCandles) -> None:
    with pytest.raises(TransientError, match="candles:BTC-USD"):
        await unreachable.fetch("BTC-USD", "1m", 10)


# FirstOf


@pytest.fixture
def files(tmp_path: Path) -> FileCandles:
    """A directory holding BTC-USD's candles, one a minute."""
    lines = "".join(f"{T0 + 60 * index},1,2,1,2,9\n" for index in range(5))
    (tmp_path / "BTC-USD.csv").write_text("time,open,high,low,close,volume\n" + lines)
    return FileCandles(tmp_path)


async def test_the_first_source_with_rows_answers(
    redis: Redis, source: StreamCandles, files: FileCandles
) -> None:
    await redis.xadd(source.key("BTC-USD"), flat(T0))
    found = await FirstOf(source, files).find("BTC-USD", "1m", 10)
    assert found == FoundCandles("stream", [row(T0)])
    found = await FirstOf(files, source).find("BTC-USD", "1m", 10)
    assert found.source == "file"
    assert len(found.rows) == 5


async def test_a_source_without_rows_passes_the_request_on(
    source: StreamCandles, files: FileCandles
) -> None:
    found = await FirstOf(source, files).find("BTC-USD", "1m", 2)
    assert found.source == "file"
    assert [moment for moment, *_ in found.rows] == [T0 + 180, T0 + 240]


async def test_a_source_that_refuses_passes_the_request_on(
    redis: Redis, source: StreamCandles, files: FileCandles
) -> None:
    await redis.set(source.key("BTC-USD"), "not a stream")
    assert (await FirstOf(source, files).find("BTC-USD", "1m", 10)).source == "file"
    with pytest.raises(PoisonInput) as refused:
        await FirstOf(source, files).find("ETH-USD", "1m", 10)
    assert refused.value.reason == "no_candles"
    with pytest.raises(PoisonInput) as refused:
        await FirstOf(files, source).find("BTC-USD", "1m", 1_001)
    assert refused.value.reason == "bad_lookback"


async def test_no_source_with_rows_is_poison_naming_what_each_said(
    redis: Redis, source: StreamCandles, files: FileCandles
) -> None:
    await redis.set(source.key("ETH-USD"), "not a stream")
    with pytest.raises(PoisonInput) as refused:
        await FirstOf(files, source).find("ETH-USD", "1m", 10)
    assert refused.value.reason == "bad_candle_stream"  # the most telling reason given
    assert "file: none" in refused.value.detail
    assert "stream: bad_candle_stream" in refused.value.detail
    with pytest.raises(PoisonInput) as nothing:
        await FirstOf().find("ETH-USD", "1m", 10)
    assert "no candle source is configured" in nothing.value.detail


async def test_a_source_that_is_down_stops_the_chain(
    unreachable: StreamCandles, files: FileCandles
) -> None:
    with pytest.raises(TransientError):
        await FirstOf(unreachable, files).find("BTC-USD", "1m", 10)
