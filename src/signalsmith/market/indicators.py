"""Technical indicators of one candle series: TA-Lib computes them, nothing here re-derives one.

An indicator the series is too short for (or that is undefined on it, such as the RSI of a price
that never moved) is ``None``, and ``missing`` says why. Nothing is rounded here; ``values()``
rounds once, for prompts and for checking the numbers a model quotes back.
"""

from __future__ import annotations

import math

import numpy as np
import talib
from pydantic import BaseModel, ConfigDict

from signalsmith.market.candles import CandleSeries, FloatArray

RSI_PERIOD = 14
BAND_PERIOD = 20
BAND_WIDTH = 2.0  # standard deviations (population, as TA-Lib computes them)
MACD_FAST, MACD_SLOW, MACD_SIGNAL = 12, 26, 9
ATR_PERIOD = 14
STOCH_K, STOCH_SLOW_K, STOCH_D = 14, 3, 3
DAY_S = 86_400

# How ``values()`` rounds each field: prices to five significant digits of the last close (at
# least two decimals), what lives in price units but is small (MACD, ATR, change) two decimals
# finer, 0-100 scales and ratios to two decimals, volumes to four significant digits (whole
# units from 1,000 on).
_PRICES = frozenset(
    {"last_close", "day_high", "day_low", "sma_short", "sma_long", "ema_short", "ema_long"}
    | {"bb_upper", "bb_middle", "bb_lower"}
)
_PRICE_MOVES = frozenset({"price_change", "macd", "macd_signal", "macd_hist", "atr"})
_VOLUMES = frozenset({"obv", "volume_change", "buy_volume", "sell_volume"})


class Indicators(BaseModel):
    """What one series says, one named number per indicator.

    Windows count candles, not minutes: the default short window of 5 on 1-minute candles is
    the five-minute rolling average a trend request asks for, and stays five candles on 1h
    candles, where a five-minute window would mean nothing.

    * ``price_change``: last close minus the first candle's open, so the whole window counts;
      ``price_change_pct`` is that change in % of the first open.
    * ``day_high``/``day_low``: over the candles that start on the last candle's UTC day.
    * ``bb_position``: where the close sits in the band, 0 at the lower band and 1 at the upper;
      below 0 or above 1 when it closed outside the band.
    * ``volume_change``: volume of the last ``short_window`` candles minus that of the
      ``short_window`` before them; ``volume_change_pct`` in % of the earlier.
    * ``buy_volume``/``sell_volume``: volume of the candles that closed above/below their open,
      over the whole series (a candle that closed at its open counts for neither);
      ``buy_share_pct`` is buying volume in % of both, ``buy_sell_ratio`` buying over selling.
    * ``obv``: TA-Lib starts on-balance volume at the first candle's volume, so its level
      depends on where the series starts; its movement is what means something.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    # ``values()`` is read by the trend read, the insight text, the envelope and the prompt; the
    # model is frozen, so it is rounded once. A slot, not a private attribute: a copy (such as
    # ``model_copy(update=...)``) and ``==`` see the fields alone, so no copy keeps stale values.
    __slots__ = ("_rounded",)

    candles: int
    granularity_s: int
    short_window: int
    long_window: int
    last_time: float  # open time of the last candle, epoch seconds

    last_close: float | None = None
    price_change: float | None = None
    price_change_pct: float | None = None
    day_high: float | None = None
    day_low: float | None = None
    sma_short: float | None = None
    sma_long: float | None = None
    ema_short: float | None = None
    ema_long: float | None = None
    rsi: float | None = None
    bb_upper: float | None = None
    bb_middle: float | None = None
    bb_lower: float | None = None
    bb_position: float | None = None
    macd: float | None = None
    macd_signal: float | None = None
    macd_hist: float | None = None
    atr: float | None = None
    stoch_k: float | None = None
    stoch_d: float | None = None
    obv: float | None = None
    volume_change: float | None = None
    volume_change_pct: float | None = None
    buy_volume: float | None = None
    sell_volume: float | None = None
    buy_share_pct: float | None = None
    buy_sell_ratio: float | None = None

    missing: dict[str, str] = {}

    def values(self) -> dict[str, float]:
        """Every known indicator, rounded as a reader (and a model) would quote it, plus the
        counts a prompt states (candles and windows), so a quoted number can be checked.
        A new dict on every call, which the caller may change."""
        rounded: dict[str, float] | None = getattr(self, "_rounded", None)
        if rounded is None:
            rounded = self._round()
            object.__setattr__(self, "_rounded", rounded)
        return dict(rounded)

    def _round(self) -> dict[str, float]:
        decimals = _price_decimals(self.last_close)
        named: dict[str, float] = {
            "candles": float(self.candles),
            "short_window": float(self.short_window),
            "long_window": float(self.long_window),
        }
        for name in INDICATOR_NAMES:
            value = getattr(self, name)
            if value is not None:
                named[name] = round(value, _decimals(name, value, decimals))
        return named


_ABOUT_THE_SERIES = frozenset(
    {"candles", "granularity_s", "short_window", "long_window", "last_time", "missing"}
)
INDICATOR_NAMES: tuple[str, ...] = tuple(
    name for name in Indicators.model_fields if name not in _ABOUT_THE_SERIES
)


def format_number(value: float) -> str:
    """A number as plain text, never in exponent form: ``0.0000123``, ``50000``, ``-2.5``."""
    return np.format_float_positional(value, trim="-")


def compute_indicators(
    series: CandleSeries, *, short_window: int = 5, long_window: int = 20
) -> Indicators:
    """Every indicator of ``series`` that its length allows; see ``Indicators`` for meanings.

    ``short_window`` and ``long_window`` (candles) set the simple and exponential moving
    averages; RSI 14, Bollinger 20/2, MACD 12/26/9, ATR 14 and stochastic 14/3/3 are the
    settings traders expect when they read those names, so they are fixed.
    """
    if not 2 <= short_window < long_window:
        raise ValueError(
            f"windows must satisfy 2 <= short < long, not {short_window}, {long_window}"
        )
    found = _Found(len(series))
    _levels(series, found)
    _averages(series, found, short_window, long_window)
    _rsi(series, found)
    _bands(series, found)
    _macd(series, found)
    _atr(series, found)
    _stochastic(series, found)
    _volume(series, found, short_window)
    return Indicators(
        candles=len(series),
        granularity_s=series.granularity_s,
        short_window=short_window,
        long_window=long_window,
        last_time=float(series.time[-1]),
        missing=found.missing,
        **found.values,
    )


class _Found:
    """The indicators found so far, and the reason for each one that could not be."""

    def __init__(self, candles: int) -> None:
        self.candles = candles
        self.values: dict[str, float] = {}
        self.missing: dict[str, str] = {}

    def enough(self, needs: int, *names: str) -> bool:
        """Whether the series is long enough; if not, each name is missing for that reason."""
        if self.candles >= needs:
            return True
        self.lack(f"needs {needs} candles, have {self.candles}", *names)
        return False

    def lack(self, reason: str, *names: str) -> None:
        for name in names:
            self.missing[name] = reason

    def put(self, name: str, value: float) -> None:
        if math.isfinite(value):
            self.values[name] = float(value)
        else:  # not expected once ``enough`` holds; said rather than hidden
            self.missing[name] = "TA-Lib returned no value"

    def ratio(self, name: str, part: float, whole: float, scale: float, undefined: str) -> None:
        if whole == 0:
            self.lack(undefined, name)
        else:
            self.put(name, scale * part / whole)


def _levels(series: CandleSeries, found: _Found) -> None:
    """Last close, change over the whole series, and the last UTC day's range."""
    close, first_open = float(series.close[-1]), float(series.open[0])
    found.put("last_close", close)
    found.put("price_change", close - first_open)
    found.put("price_change_pct", 100 * (close - first_open) / first_open)
    day_start = math.floor(series.time[-1] / DAY_S) * DAY_S
    today = series.time >= day_start
    found.put("day_high", float(series.high[today].max()))
    found.put("day_low", float(series.low[today].min()))


def _averages(series: CandleSeries, found: _Found, short_window: int, long_window: int) -> None:
    for window, size in (("short", short_window), ("long", long_window)):
        if found.enough(size, f"sma_{window}", f"ema_{window}"):
            found.put(f"sma_{window}", _last(talib.SMA(series.close, timeperiod=size)))
            found.put(f"ema_{window}", _last(talib.EMA(series.close, timeperiod=size)))


def _rsi(series: CandleSeries, found: _Found) -> None:
    if not found.enough(RSI_PERIOD + 1, "rsi"):
        return
    if not np.any(np.diff(series.close)):  # no gain and no loss: TA-Lib says 0, which is wrong
        found.lack("the close never moved", "rsi")
        return
    found.put("rsi", _last(talib.RSI(series.close, timeperiod=RSI_PERIOD)))


def _bands(series: CandleSeries, found: _Found) -> None:
    names = ("bb_upper", "bb_middle", "bb_lower", "bb_position")
    if not found.enough(BAND_PERIOD, *names):
        return
    # The middle band is TA-Lib's default, a simple average; the unit tests hold it there.
    bands = talib.BBANDS(
        series.close, timeperiod=BAND_PERIOD, nbdevup=BAND_WIDTH, nbdevdn=BAND_WIDTH
    )
    upper, middle, lower = (_last(band) for band in bands)
    found.put("bb_upper", upper)
    found.put("bb_middle", middle)
    found.put("bb_lower", lower)
    close = float(series.close[-1])
    found.ratio("bb_position", close - lower, upper - lower, 1.0, "the bands have no width")


def _macd(series: CandleSeries, found: _Found) -> None:
    names = ("macd", "macd_signal", "macd_hist")
    if not found.enough(MACD_SLOW + MACD_SIGNAL - 1, *names):
        return
    lines = talib.MACD(
        series.close, fastperiod=MACD_FAST, slowperiod=MACD_SLOW, signalperiod=MACD_SIGNAL
    )
    for name, line in zip(names, lines, strict=True):
        found.put(name, _last(line))


def _atr(series: CandleSeries, found: _Found) -> None:
    if found.enough(ATR_PERIOD + 1, "atr"):
        atr = talib.ATR(series.high, series.low, series.close, timeperiod=ATR_PERIOD)
        found.put("atr", _last(atr))


def _stochastic(series: CandleSeries, found: _Found) -> None:
    names = ("stoch_k", "stoch_d")
    if not found.enough(STOCH_K + STOCH_SLOW_K + STOCH_D - 2, *names):
        return
    # The last %D averages %K over the last STOCH_SLOW_K + STOCH_D - 1 fast windows; a window
    # with no range has no %K (TA-Lib would say 0, as if the close sat at the low).
    used = STOCH_SLOW_K + STOCH_D - 1
    ranges = talib.MAX(series.high, STOCH_K)[-used:] - talib.MIN(series.low, STOCH_K)[-used:]
    if np.any(ranges <= 0):
        found.lack(f"a {STOCH_K}-candle high-low range was zero", *names)
        return
    slow_k, slow_d = talib.STOCH(  # both smoothings are TA-Lib's default simple averages
        series.high,
        series.low,
        series.close,
        fastk_period=STOCH_K,
        slowk_period=STOCH_SLOW_K,
        slowd_period=STOCH_D,
    )
    found.put("stoch_k", _last(slow_k))
    found.put("stoch_d", _last(slow_d))


def _volume(series: CandleSeries, found: _Found, short_window: int) -> None:
    """OBV, recent volume against the window before it, and buying against selling volume."""
    found.put("obv", _last(talib.OBV(series.close, series.volume)))
    if found.enough(2 * short_window, "volume_change", "volume_change_pct"):
        recent = float(series.volume[-short_window:].sum())
        before = float(series.volume[-2 * short_window : -short_window].sum())
        found.put("volume_change", recent - before)
        found.ratio(
            "volume_change_pct", recent - before, before, 100.0, "no volume in the window before"
        )
    buying = float(series.volume[series.close > series.open].sum())
    selling = float(series.volume[series.close < series.open].sum())
    found.put("buy_volume", buying)
    found.put("sell_volume", selling)
    found.ratio("buy_share_pct", buying, buying + selling, 100.0, "no candle moved with volume")
    found.ratio("buy_sell_ratio", buying, selling, 1.0, "no selling volume")


def _last(line: FloatArray) -> float:
    return float(line[-1])


def _price_decimals(close: float | None) -> int:
    """Enough decimals for five significant digits of the price, and never fewer than 2."""
    if not close:
        return 2
    return max(2, 4 - math.floor(math.log10(abs(close))))


def _decimals(name: str, value: float, price_decimals: int) -> int:
    if name in _PRICES:
        return price_decimals
    if name in _PRICE_MOVES:
        return price_decimals + 2
    if name in _VOLUMES:
        return _volume_decimals(value)
    return 2


def _volume_decimals(value: float) -> int:
    """Whole units for large volumes, four significant digits for fractional ones (0.5234)."""
    if value == 0:
        return 0
    return min(8, max(0, 3 - math.floor(math.log10(abs(value)))))
