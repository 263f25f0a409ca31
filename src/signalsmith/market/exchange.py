"""Candles from an exchange's public OHLCV API through ccxt: one exchange client per source,
a short cache, and one exchange call for a burst of requests for the same candles.

The default is ccxt's ``coinbaseexchange``: Coinbase Exchange's ``/products/{id}/candles`` is
public market data, and loading its markets takes two public calls (``/currencies`` and
``/products``). ccxt's ``coinbase`` (Advanced Trade) also reads public candles without a key
today, but loads its markets from five endpoints of two APIs (v2 currencies and exchange rates,
v3 spot and futures products) and needed a key in earlier ccxt releases. Both name products
``BTC-USD``; ccxt names the market ``BTC/USD``. Coinbase returns at most 300 candles a call, so
a longer lookback (up to ``max_lookback``, 1000 by default) is fetched in consecutive windows.
"""

from __future__ import annotations

import asyncio
import base64
import importlib
import importlib.util
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache, partial
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self, cast
from urllib.parse import unquote, urlsplit, urlunsplit

from signalsmith.errors import ConfigError, PoisonInput, TransientError
from signalsmith.market.requests import MAX_LOOKBACK
from signalsmith.market.sources import CandleRow, check_lookback, row_from_values
from signalsmith.redact import redact_url

DEFAULT_EXCHANGE: Final = "coinbaseexchange"
DEFAULT_TTL_S: Final = 30.0
DEFAULT_TIMEOUT_S: Final = 10.0
PER_CALL_FALLBACK: Final = 300  # when ccxt does not say how many candles one call returns
MAX_CACHED: Final = 256  # (product, granularity, lookback) answers kept at once
MARKETS_TTL_S: Final = 3_600.0  # new listings are seen within the hour
_REASON_CHARS: Final = 300
_SPACE: Final = re.compile(r"\s+")

CacheKey = tuple[str, str, str, int]  # exchange, product, granularity, lookback
Rows = tuple[CandleRow, ...]


@dataclass(frozen=True, slots=True)
class _Cached:
    expires: float
    rows: Rows


class ExchangeCandles:
    """A ``CandleSource`` over one ccxt exchange's public OHLCV endpoint.

    Answers are kept ``ttl_s`` seconds (0: not kept); concurrent requests for the same candles
    share one download. Raises ``PoisonInput`` (``unknown_product``, ``bad_granularity``,
    ``bad_lookback``) for a request this exchange can never answer and ``TransientError`` when it
    cannot answer now (connection refused, timeout, 429, 5xx, an error message). A reply ccxt
    cannot parse into candles gives no rows, as ccxt reports it. Close it with ``aclose`` (or
    ``async with``): it holds the exchange's HTTP session.
    """

    name: Final = "exchange"

    def __init__(
        self,
        exchange_id: str = DEFAULT_EXCHANGE,
        *,
        base_url: str | None = None,
        ttl_s: float = DEFAULT_TTL_S,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        max_lookback: int = MAX_LOOKBACK,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        _check_exchange_id(exchange_id)
        if base_url:
            _check_base_url(base_url)
        self.exchange_id = exchange_id
        self._base_url = base_url
        self._timeout_s = timeout_s
        # ccxt takes over a second to import: it loads on the first request, so start-up (and
        # a run that never needs an exchange) does not wait for it.
        self._exchange: Any = None
        self._opening = asyncio.Lock()  # concurrent first requests make one client
        self._closed = False
        self._ttl_s = ttl_s
        self._max_lookback = max_lookback
        self._clock = clock  # monotonic seconds; tests pass their own to expire the cache
        self._cache: dict[CacheKey, _Cached] = {}
        self._flights: dict[CacheKey, asyncio.Task[Rows]] = {}
        self._markets_at: float | None = None

    async def fetch(self, product_id: str, granularity: str, lookback: int) -> list[CandleRow]:
        """The newest ``lookback`` closed candles of ``product_id`` (an exchange id such as
        ``BTC-USD`` or a ccxt symbol such as ``BTC/USD``), oldest first."""
        check_lookback(lookback, self._max_lookback)
        await self._open()
        seconds = self._timeframe_s(granularity)
        key = (self.exchange_id, product_id, granularity, lookback)
        cached = self._cache.get(key)
        if cached is not None and cached.expires > self._clock():
            return list(cached.rows)
        flight = self._flight(key, seconds)
        try:
            # shielded: a caller that gives up does not cancel the download the others wait for
            return list(await asyncio.shield(flight))
        except asyncio.CancelledError:
            if _closed_under(flight):
                raise TransientError(f"candles of {product_id}: the source was closed") from None
            raise

    async def aclose(self) -> None:
        """Stop downloads in flight and close the exchange's HTTP session; a request after
        this (or waiting for the client meanwhile) is a transient error."""
        self._closed = True
        flights = list(self._flights.values())
        for flight in flights:
            flight.cancel()
        await asyncio.gather(*flights, return_exceptions=True)
        if self._exchange is not None:
            await self._exchange.close()

    async def _open(self) -> None:
        """The exchange's client, made on the first request (ccxt imported in a thread)."""
        async with self._opening:
            if self._exchange is not None and not self._closed:
                return
            module = await asyncio.to_thread(_ccxt)
            if self._closed:
                raise TransientError(f"candles from {self.exchange_id}: the source was closed")
            exchange = _open_exchange(module, self.exchange_id, self._timeout_s)
            if self._base_url:
                _point_at(exchange, self._base_url)
            self._exchange = exchange

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    def _timeframe_s(self, granularity: str) -> int:
        timeframes: Mapping[str, object] = self._exchange.timeframes or {}
        if granularity not in timeframes:
            offered = ", ".join(timeframes)
            raise PoisonInput(
                "bad_granularity", f"{self.exchange_id} offers {offered}, not {granularity!r:.20}"
            )
        return int(self._exchange.parse_timeframe(granularity))

    def _flight(self, key: CacheKey, seconds: int) -> asyncio.Task[Rows]:
        """The download of ``key`` in flight, started if there is none."""
        flight = self._flights.get(key)
        if flight is None:
            flight = asyncio.create_task(self._download(key, seconds))
            self._flights[key] = flight
            flight.add_done_callback(partial(self._landed, key))
        return flight

    def _landed(self, key: CacheKey, flight: asyncio.Task[Rows]) -> None:
        if self._flights.get(key) is flight:
            del self._flights[key]
        if not flight.cancelled():
            flight.exception()  # retrieved here: every waiter may have given up on it

    async def _download(self, key: CacheKey, seconds: int) -> Rows:
        _exchange, product_id, granularity, lookback = key
        try:
            symbol = await self._symbol(product_id)
            rows: list[CandleRow] = []
            for since_ms, count in candle_windows(time.time(), seconds, lookback, self._per_call()):
                raw = await self._exchange.fetch_ohlcv(symbol, granularity, since_ms, count)
                rows += _rows(raw)
        except Exception as exc:
            if not isinstance(exc, _ccxt().BaseError):
                raise
            raise _translated(exc, self.exchange_id, product_id) from exc
        newest = _newest(rows, lookback)
        self._keep(key, newest)
        return newest

    async def _symbol(self, product_id: str) -> str:
        """The ccxt symbol of ``product_id``; markets are loaded once and refreshed hourly."""
        now = self._clock()
        stale = self._markets_at is not None and now - self._markets_at > MARKETS_TTL_S
        if self._markets_at is None or stale:
            await self._exchange.load_markets(reload=stale)
            self._markets_at = now
        symbol = market_symbol(self._exchange.markets, self._exchange.markets_by_id, product_id)
        if symbol is None:
            raise PoisonInput("unknown_product", _not_listed(self.exchange_id, product_id))
        return symbol

    def _per_call(self) -> int:
        """How many candles one call returns at most (ccxt's ``features`` says, per exchange)."""
        features = self._exchange.features or {}
        limit = (features.get("spot") or {}).get("fetchOHLCV", {}).get("limit")
        return limit if isinstance(limit, int) and limit > 0 else PER_CALL_FALLBACK

    def _keep(self, key: CacheKey, rows: Rows) -> None:
        if self._ttl_s <= 0:
            return
        now = self._clock()
        self._cache.pop(key, None)
        if len(self._cache) >= MAX_CACHED:
            self._cache = {k: kept for k, kept in self._cache.items() if kept.expires > now}
        while len(self._cache) >= MAX_CACHED:
            del self._cache[next(iter(self._cache))]  # the oldest answer
        self._cache[key] = _Cached(now + self._ttl_s, rows)


def _closed_under(flight: asyncio.Task[Rows]) -> bool:
    """True when ``flight`` was cancelled by ``aclose`` while the caller itself was not: its
    request is retried later, not cancelled."""
    caller = asyncio.current_task()
    return flight.cancelled() and (caller is None or not caller.cancelling())


def candle_windows(
    now_s: float, granularity_s: int, lookback: int, per_call: int
) -> list[tuple[int, int]]:
    """``(since in epoch ms, count)`` for each exchange call, oldest first, that together cover
    the newest ``lookback`` closed candles. The candle still forming is not asked for: its close
    is not a close yet (validation would leave it out anyway)."""
    last_open = int(now_s // granularity_s) * granularity_s - granularity_s
    first_open = last_open - (lookback - 1) * granularity_s
    return [
        ((first_open + start * granularity_s) * 1000, min(per_call, lookback - start))
        for start in range(0, lookback, per_call)
    ]


def market_symbol(
    markets: Mapping[str, object] | None, by_id: Mapping[str, object] | None, product_id: str
) -> str | None:
    """The ccxt symbol for a product named by the exchange's own id (``BTC-USD``), by the
    symbol itself (``BTC/USD``), or by base and quote joined with ``-`` (``BTC-USDT`` for
    Binance's ``BTCUSDT``); None when the exchange lists no such market."""
    listed = (by_id or {}).get(product_id)
    found = listed[0] if isinstance(listed, list) and listed else listed
    if isinstance(found, Mapping) and isinstance(found.get("symbol"), str):
        return cast("str", found["symbol"])
    for symbol in (product_id, product_id.replace("-", "/")):
        if symbol in (markets or {}):
            return symbol
    return None


@cache
def _ccxt() -> Any:
    return importlib.import_module("ccxt.async_support")


def _check_exchange_id(exchange_id: str) -> None:
    """A name ccxt does not know is the operator's mistake and stops start-up; checked against
    ccxt's files, without importing it."""
    spec = importlib.util.find_spec("ccxt")
    origin = Path(spec.origin) if spec is not None and spec.origin else None
    known = origin is not None and (origin.parent / "async_support" / f"{exchange_id}.py").is_file()
    if not known or not exchange_id.isidentifier() or exchange_id.startswith("_"):
        raise ConfigError(
            "MARKET_EXCHANGE",
            f"{exchange_id!r:.40} is not a ccxt exchange id (for Coinbase: {DEFAULT_EXCHANGE})",
        )


def _open_exchange(ccxt: Any, exchange_id: str, timeout_s: float) -> Any:
    """ccxt's client for ``exchange_id``. An exchange without an OHLCV endpoint can never
    answer: every request to it is refused with the reason."""
    exchange = getattr(ccxt, exchange_id)({"timeout": int(timeout_s * 1000)})
    if not exchange.has.get("fetchOHLCV"):
        raise PoisonInput("no_candles", f"{exchange_id} offers no OHLCV candles in ccxt")
    return exchange


def _check_base_url(base_url: str) -> None:
    parts = urlsplit(base_url)
    if parts.scheme not in {"http", "https"} or not parts.hostname or parts.query:
        raise ConfigError(
            "MARKET_EXCHANGE_URL",
            f"{redact_url(base_url)} is not an http(s) base URL such as http://127.0.0.1:8080",
        )


def _point_at(exchange: Any, base_url: str) -> None:
    """Send every API call of ``exchange`` to ``base_url`` (a reverse proxy, a test server),
    keeping each endpoint's path. A user and password in the URL become a Basic header, so the
    URLs ccxt logs and puts in its errors never carry them."""
    parts = urlsplit(base_url)
    if parts.username is not None or parts.password is not None:
        user_pass = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}"
        basic = base64.b64encode(user_pass.encode()).decode("ascii")
        exchange.headers = {**(exchange.headers or {}), "Authorization": f"Basic {basic}"}
    host = parts.netloc.rpartition("@")[2]
    base = urlunsplit((parts.scheme, host, parts.path.rstrip("/"), "", ""))
    exchange.urls["api"] = _rebased(exchange.urls["api"], base)


def _rebased(value: object, base: str) -> object:
    """``value`` (ccxt's ``urls['api']``: a URL or a nest of them) with each URL's scheme and
    host replaced by ``base``."""
    if isinstance(value, str):
        parts = urlsplit(value)
        return base + parts.path + (f"?{parts.query}" if parts.query else "")
    if isinstance(value, dict):
        return {key: _rebased(item, base) for key, item in value.items()}
    return value


def _rows(raw: object) -> list[CandleRow]:
    """ccxt's ``[ms, open, high, low, close, volume]`` lists as rows in epoch seconds; a list
    with a missing or non-numeric value is left out."""
    rows: list[CandleRow] = []
    for item in raw if isinstance(raw, list) else []:
        if isinstance(item, list) and len(item) >= 6 and isinstance(item[0], int | float):
            row = row_from_values([item[0] / 1000, *item[1:6]])
            if row is not None:
                rows.append(row)
    return rows


def _newest(rows: list[CandleRow], lookback: int) -> Rows:
    """One row per time (windows meet at their edges), oldest first, the newest ``lookback``."""
    by_time = {row[0]: row for row in rows}
    return tuple(by_time[moment] for moment in sorted(by_time)[-lookback:])


def _translated(exc: Exception, exchange_id: str, product_id: str) -> PoisonInput | TransientError:
    """ccxt's error as signalsmith's: a symbol the exchange does not know is the request's
    fault; everything else (network, timeout, 429, 5xx, a reply ccxt could not read, a refusal)
    is the exchange's, retried later and dead-lettered by the engine if it never clears."""
    if isinstance(exc, _ccxt().BadSymbol):
        return PoisonInput("unknown_product", _not_listed(exchange_id, product_id))
    detail = _SPACE.sub(" ", str(exc))[:_REASON_CHARS]
    kind = type(exc).__name__
    return TransientError(f"candles of {product_id} from {exchange_id}: {kind}: {detail}")


def _not_listed(exchange_id: str, product_id: str) -> str:
    return f"{exchange_id} lists no market {product_id!r:.40}"
