"""INSIGHT_SCHEDULE read into schedules, and the wall-clock ticks their requests belong to. Pure:
``market.scheduler`` queues the requests.

``BTC-USD,ETH-USD@15m;SOL-USD@1h``: products separated by commas, ``@`` and an interval in the
market pipeline's granularity syntax (``15m``, ``1h``, ``1d``, ``1w``, or seconds), schedules
separated by semicolons. Ticks are aligned to UTC, counted from a Monday midnight: a 15m
schedule's ticks are at :00, :15, :30 and :45, a 1d schedule's at 00:00, a 1w schedule's on
Mondays at 00:00. Every process thus agrees on a tick's identity without asking the others.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from pydantic_core import to_json

from signalsmith.errors import ConfigError, PoisonInput
from signalsmith.market.candles import format_granularity, parse_granularity
from signalsmith.market.requests import MarketRequest, request_from_values

SETTING: Final = "INSIGHT_SCHEDULE"
SYNTAX: Final = "PRODUCTS@INTERVAL, several separated by ';' (e.g. BTC-USD,ETH-USD@15m;SOL-USD@1h)"
ANCHOR_S: Final = 4 * 86_400  # 1970-01-05 00:00 UTC, a Monday: where every tick count starts
MIN_INTERVAL_S: Final = 60  # the finest candles are 1m: more often would ask for the same ones

SCHEDULED_PREFIX: Final = "sched-"  # the correlation ids of scheduled requests


@dataclass(frozen=True, slots=True)
class Schedule:
    """Products that get a market request at every tick of ``interval_s``."""

    products: tuple[str, ...]
    interval_s: int

    @property
    def name(self) -> str:
        """As written in INSIGHT_SCHEDULE, normalised: ``BTC-USD,ETH-USD@15m``."""
        return f"{','.join(self.products)}@{format_granularity(self.interval_s)}"


def parse_schedules(text: str) -> tuple[Schedule, ...]:
    """Every schedule in ``text`` (none for blank text). Raises ``ConfigError`` naming
    INSIGHT_SCHEDULE, the part at fault and the expected syntax. Empty pieces (a trailing
    ``;`` or ``,``) are ignored; a product may be in one schedule only."""
    schedules = tuple(_schedule(part.strip()) for part in text.split(";") if part.strip())
    _check_once(schedules)
    return schedules


def _schedule(text: str) -> Schedule:
    products, at, interval = text.rpartition("@")
    if not at:
        raise _error(f"{text!r} has no @INTERVAL")
    names = [name.strip() for name in products.split(",") if name.strip()]
    if not names:
        raise _error(f"{text!r} names no product")
    return Schedule(tuple(_product(name) for name in names), _interval(interval.strip(), text))


def _product(name: str) -> str:
    """The product id as a market request reads it (``eth/usd`` → ``ETH-USD``)."""
    try:
        return request_from_values({"correlation_id": "schedule", "product_id": name}).product_id
    except PoisonInput:
        raise _error(f"{name!r} is not a product id such as BTC-USD or AAPL") from None


def _interval(value: str, text: str) -> int:
    try:
        seconds = parse_granularity(value)
    except PoisonInput:
        seconds = 0
    if seconds < MIN_INTERVAL_S:
        raise _error(f"{text!r}: {value!r} is not an interval from 1m to 1w, such as 15m or 1h")
    return seconds


def _check_once(schedules: tuple[Schedule, ...]) -> None:
    """A request does not carry its schedule's interval: a product on two schedules would be
    asked for the same insight twice at the ticks they share."""
    seen: dict[str, Schedule] = {}
    for schedule in schedules:
        for product in schedule.products:
            if product in seen:
                where = " and ".join(sorted({seen[product].name, schedule.name}))
                raise ConfigError(
                    SETTING, f"{product} is scheduled twice (in {where}): list it in one schedule"
                )
            seen[product] = schedule


def _error(problem: str) -> ConfigError:
    return ConfigError(SETTING, f"{problem}; expected {SYNTAX}")


def tick_at(now: float, interval_s: int) -> int:
    """The start (epoch seconds) of the tick that ``now`` (epoch seconds) falls in."""
    return ANCHOR_S + int((now - ANCHOR_S) // interval_s) * interval_s


def next_tick(now: float, interval_s: int) -> int:
    """The start of the tick after the one ``now`` falls in."""
    return tick_at(now, interval_s) + interval_s


def tick_text(tick: int) -> str:
    """A tick as ISO 8601 UTC: ``2026-12-04T19:15:00Z``."""
    return f"{datetime.fromtimestamp(tick, UTC):%Y-%m-%dT%H:%M:%SZ}"


def scheduled_request(product: str, tick: int) -> MarketRequest:
    """The request a tick makes for ``product``: its correlation id is the (product, tick), so
    whichever process or retry makes it, it is the same request (at most 58 characters)."""
    return request_from_values(
        {
            "correlation_id": f"{SCHEDULED_PREFIX}{product}-{tick_text(tick)}",
            "product_id": product,
            "prompt": "trend_analysis",
        }
    )


def request_data(product: str, tick: int) -> str:
    """The request's ``data`` field as it is queued on MARKET_STREAM (JSON)."""
    return to_json(scheduled_request(product, tick).model_dump(exclude_none=True)).decode()
