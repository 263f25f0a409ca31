"""Exchange candles over real HTTP: ccxt's own Coinbase Exchange client against a local server
that speaks the endpoints it calls (/currencies and /products to load markets, then
/products/{id}/candles), with faults injected server-side."""

from __future__ import annotations

import asyncio
import base64
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime

import pytest
from aiohttp import web

from signalsmith.errors import ConfigError, PoisonInput, TransientError
from signalsmith.market.exchange import ExchangeCandles, candle_windows, market_symbol
from tests.conftest import free_port

MAX_PER_CALL = 300  # what Coinbase Exchange returns at most per call


def _currency(code: str, name: str, kind: str) -> dict[str, object]:
    return {
        "id": code,
        "name": name,
        "min_size": "0.00000001",
        "status": "online",
        "message": "",
        "max_precision": "0.00000001",
        "convertible_to": [],
        "details": {"type": kind, "symbol": None, "sort_order": 0, "display_name": None},
        "default_network": "",
        "supported_networks": [],
        "display_name": code,
    }


def _product(base: str, quote: str) -> dict[str, object]:
    return {
        "id": f"{base}-{quote}",
        "base_currency": base,
        "quote_currency": quote,
        "quote_increment": "0.01",
        "base_increment": "0.00000001",
        "display_name": f"{base}/{quote}",
        "min_market_funds": "1",
        "margin_enabled": False,
        "post_only": False,
        "limit_only": False,
        "cancel_only": False,
        "status": "online",
        "status_message": "",
        "trading_disabled": False,
        "fx_stablecoin": False,
        "max_slippage_percentage": "0.02000000",
        "auction_mode": False,
        "high_bid_limit_percentage": "",
    }


CURRENCIES = [
    _currency("USD", "United States Dollar", "fiat"),
    _currency("BTC", "Bitcoin", "crypto"),
    _currency("ETH", "Ethereum", "crypto"),
    _currency("SOL", "Solana", "crypto"),
]
PRODUCTS = [_product("BTC", "USD"), _product("ETH", "USD"), _product("SOL", "USD")]
GRANULARITIES = {60, 300, 900, 3600, 21600, 86400}


def candle(moment: int) -> list[float]:
    """Coinbase's row order: time, low, high, open, close, volume; prices follow the time."""
    price = 100 + (moment // 60) % 50
    return [moment, price - 1, price + 1, price, price + 0.5, 1 + moment % 7]


@dataclass
class FakeCoinbase:
    """What the server saw, and the fault it answers candle requests with (if any)."""

    url: str = ""
    hits: Counter[str] = field(default_factory=Counter)
    fault: tuple[int, str] | None = None
    authorization: list[str] = field(default_factory=list)

    @property
    def candle_calls(self) -> int:
        return sum(count for path, count in self.hits.items() if path.endswith("/candles"))

    async def currencies(self, request: web.Request) -> web.Response:
        self._saw(request)
        return web.json_response(CURRENCIES)

    async def products(self, request: web.Request) -> web.Response:
        self._saw(request)
        return web.json_response(PRODUCTS)

    async def candles(self, request: web.Request) -> web.Response:
        self._saw(request)
        if self.fault is not None:
            status, body = self.fault
            return web.Response(status=status, text=body, content_type="application/json")
        if request.match_info["id"] not in {product["id"] for product in PRODUCTS}:
            return web.json_response({"message": "NotFound"}, status=404)
        granularity = int(request.query.get("granularity", "0"))
        if granularity not in GRANULARITIES:
            return web.json_response({"message": "Unsupported granularity"}, status=400)
        start, end = (_seconds(request.query[name]) for name in ("start", "end"))
        first = -(-start // granularity) * granularity
        times = list(range(first, end + 1, granularity))
        if len(times) > MAX_PER_CALL:
            message = "granularity too small for the requested time range"
            return web.json_response({"message": message}, status=400)
        return web.json_response([candle(moment) for moment in reversed(times)])

    def _saw(self, request: web.Request) -> None:
        self.hits[request.path] += 1
        self.authorization.append(request.headers.get("Authorization", ""))


def _seconds(iso: str) -> int:
    return int(datetime.fromisoformat(iso).timestamp())


@pytest.fixture
async def coinbase() -> AsyncIterator[FakeCoinbase]:
    """Coinbase Exchange's public API on a loopback port."""
    fake = FakeCoinbase()
    app = web.Application()
    for prefix in ("", "/coinbase"):  # also as a reverse proxy would mount it
        app.router.add_get(f"{prefix}/currencies", fake.currencies)
        app.router.add_get(f"{prefix}/products", fake.products)
        app.router.add_get(f"{prefix}/products/{{id}}/candles", fake.candles)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    fake.url = f"http://127.0.0.1:{port}"
    try:
        yield fake
    finally:
        await runner.cleanup()


class ManualClock:
    """Monotonic seconds that move only when the test says."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def source(coinbase: FakeCoinbase) -> AsyncIterator[ExchangeCandles]:
    async with ExchangeCandles(base_url=coinbase.url) as candles:
        yield candles


async def test_candles_arrive_parsed_oldest_first_ending_at_the_last_closed_candle(
    source: ExchangeCandles,
) -> None:
    before = datetime.now().timestamp()
    rows = await source.fetch("BTC-USD", "1m", 50)
    assert len(rows) == 50
    times = [row[0] for row in rows]
    assert times == [times[0] + 60 * index for index in range(50)]
    last_closed = int(before // 60) * 60 - 60
    assert times[-1] in {last_closed, last_closed + 60}  # the minute may turn during the test
    moment = int(times[-1])
    _t, low, high, open_, close, volume = candle(moment)
    assert rows[-1] == (float(moment), open_, high, low, close, volume)


async def test_a_long_lookback_is_fetched_in_windows_of_at_most_300(
    source: ExchangeCandles, coinbase: FakeCoinbase
) -> None:
    rows = await source.fetch("ETH-USD", "5m", 700)
    assert coinbase.candle_calls == 3
    times = [row[0] for row in rows]
    assert times == [times[0] + 300 * index for index in range(700)]


async def test_a_burst_of_requests_for_one_product_makes_one_exchange_call(
    source: ExchangeCandles, coinbase: FakeCoinbase
) -> None:
    answers = await asyncio.gather(*(source.fetch("BTC-USD", "1m", 100) for _ in range(20)))
    assert coinbase.candle_calls == 1
    assert coinbase.hits["/products"] == 1  # markets load once too
    assert all(answer == answers[0] for answer in answers)
    assert len(answers[0]) == 100


async def test_a_caller_giving_up_does_not_cancel_the_download_others_wait_for(
    source: ExchangeCandles, coinbase: FakeCoinbase
) -> None:
    impatient = asyncio.create_task(source.fetch("BTC-USD", "1m", 30))
    patient = asyncio.create_task(source.fetch("BTC-USD", "1m", 30))
    await asyncio.sleep(0)
    impatient.cancel()
    assert len(await patient) == 30
    assert impatient.cancelled()
    assert coinbase.candle_calls == 1


async def test_closing_stops_downloads_in_flight_and_their_callers_retry_later(
    coinbase: FakeCoinbase,
) -> None:
    source = ExchangeCandles(base_url=coinbase.url)
    waiting = asyncio.create_task(source.fetch("BTC-USD", "1m", 30))
    await asyncio.sleep(0)
    await source.aclose()
    with pytest.raises(TransientError, match="closed"):
        await waiting
    with pytest.raises(TransientError):
        await source.fetch("BTC-USD", "1m", 30)


async def test_a_cached_answer_is_reused_until_it_expires(coinbase: FakeCoinbase) -> None:
    clock = ManualClock()
    async with ExchangeCandles(base_url=coinbase.url, ttl_s=30, clock=clock) as source:
        first = await source.fetch("SOL-USD", "1h", 24)
        clock.now += 29
        assert await source.fetch("SOL-USD", "1h", 24) == first
        assert coinbase.candle_calls == 1
        await source.fetch("SOL-USD", "1h", 48)  # another lookback is another answer
        assert coinbase.candle_calls == 2
        clock.now += 2
        await source.fetch("SOL-USD", "1h", 24)
        assert coinbase.candle_calls == 3


async def test_a_ttl_of_zero_keeps_nothing(coinbase: FakeCoinbase) -> None:
    async with ExchangeCandles(base_url=coinbase.url, ttl_s=0) as source:
        await source.fetch("BTC-USD", "1m", 10)
        await source.fetch("BTC-USD", "1m", 10)
    assert coinbase.candle_calls == 2


async def test_an_unknown_product_is_refused_without_asking_for_candles(
    source: ExchangeCandles, coinbase: FakeCoinbase
) -> None:
    with pytest.raises(PoisonInput) as refused:
        await source.fetch("NOPE-USD", "1m", 10)
    assert refused.value.reason == "unknown_product"
    assert "NOPE-USD" in str(refused.value)
    assert coinbase.candle_calls == 0


async def test_a_granularity_the_exchange_lacks_is_refused(source: ExchangeCandles) -> None:
    with pytest.raises(PoisonInput) as refused:
        await source.fetch("BTC-USD", "2h", 10)
    assert refused.value.reason == "bad_granularity"
    assert "1m" in str(refused.value)


@pytest.mark.parametrize("lookback", [0, -3, 1_001])
async def test_a_lookback_out_of_bounds_is_refused(source: ExchangeCandles, lookback: int) -> None:
    with pytest.raises(PoisonInput) as refused:
        await source.fetch("BTC-USD", "1m", lookback)
    assert refused.value.reason == "bad_lookback"


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (500, '{"message": "Internal server error"}', "ExchangeNotAvailable"),
        (503, "upstream unavailable", "ExchangeNotAvailable"),
        (429, '{"message": "Public rate limit exceeded"}', "RateLimitExceeded"),
        (504, "gateway timeout", "RequestTimeout"),
    ],
)
async def test_a_failing_exchange_is_a_transient_error(
    source: ExchangeCandles, coinbase: FakeCoinbase, status: int, body: str, kind: str
) -> None:
    coinbase.fault = (status, body)
    with pytest.raises(TransientError, match=kind):
        await source.fetch("BTC-USD", "1m", 10)
    coinbase.fault = None
    assert len(await source.fetch("BTC-USD", "1m", 10)) == 10  # failures are not cached


async def test_a_refused_connection_is_a_transient_error() -> None:
    async with ExchangeCandles(base_url=f"http://127.0.0.1:{free_port()}") as source:
        with pytest.raises(TransientError, match="ExchangeNotAvailable"):
            await source.fetch("BTC-USD", "1m", 10)


async def test_a_slow_exchange_times_out_as_a_transient_error() -> None:
    app = web.Application()
    release = asyncio.Event()

    async def stall(_request: web.Request) -> web.Response:
        await release.wait()
        return web.json_response([])

    app.router.add_get("/{tail:.*}", stall)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        async with ExchangeCandles(base_url=f"http://127.0.0.1:{port}", timeout_s=0.2) as source:
            with pytest.raises(TransientError, match="RequestTimeout"):
                await source.fetch("BTC-USD", "1m", 10)
    finally:
        release.set()
        await runner.cleanup()


async def test_credentials_in_the_base_url_go_in_a_header_and_never_in_errors(
    coinbase: FakeCoinbase,
) -> None:
    proxied = coinbase.url.replace("http://", "http://relay:s3cret-pass@")
    async with ExchangeCandles(base_url=proxied) as source:
        assert len(await source.fetch("BTC-USD", "1m", 5)) == 5
        coinbase.fault = (502, "bad gateway")
        with pytest.raises(TransientError) as failed:
            await source.fetch("ETH-USD", "1m", 5)
    expected = "Basic " + base64.b64encode(b"relay:s3cret-pass").decode()
    assert set(coinbase.authorization) == {expected}
    assert "s3cret" not in str(failed.value)
    assert coinbase.url in str(failed.value)  # the URL it names is the one without credentials


async def test_a_base_url_with_a_path_prefixes_every_endpoint(coinbase: FakeCoinbase) -> None:
    async with ExchangeCandles(base_url=f"{coinbase.url}/coinbase/") as source:
        assert len(await source.fetch("BTC-USD", "1m", 5)) == 5
    assert set(coinbase.hits) == {
        "/coinbase/currencies",
        "/coinbase/products",
        "/coinbase/products/BTC-USD/candles",
    }


def test_an_unknown_exchange_or_base_url_stops_start_up() -> None:
    with pytest.raises(ConfigError) as unknown:
        ExchangeCandles("coinbasepro-nope")
    assert unknown.value.setting == "MARKET_EXCHANGE"
    with pytest.raises(ConfigError) as bad_url:
        ExchangeCandles(base_url="ftp://user:hunter2@example.com")
    assert bad_url.value.setting == "MARKET_EXCHANGE_URL"
    assert "hunter2" not in str(bad_url.value)


def test_windows_cover_the_newest_closed_candles_in_calls_of_at_most_per_call() -> None:
    minute = 1_699_999_980  # a whole minute in epoch seconds
    windows = candle_windows(minute + 30.5, 60, 700, 300)
    last_closed_ms = (minute - 60) * 1000
    assert [count for _since, count in windows] == [300, 300, 100]
    assert windows[0][0] == last_closed_ms - 699 * 60_000
    since, count = windows[-1]
    assert since + (count - 1) * 60_000 == last_closed_ms


def test_a_product_is_found_by_id_by_symbol_or_by_base_and_quote() -> None:
    markets = {"BTC/USDT": {"id": "BTCUSDT", "symbol": "BTC/USDT"}}
    by_id = {"BTCUSDT": [markets["BTC/USDT"]]}
    assert market_symbol(markets, by_id, "BTCUSDT") == "BTC/USDT"
    assert market_symbol(markets, by_id, "BTC/USDT") == "BTC/USDT"
    assert market_symbol(markets, by_id, "BTC-USDT") == "BTC/USDT"
    assert market_symbol(markets, by_id, "ETH-USDT") is None
    assert market_symbol(None, None, "BTC-USD") is None
