"""The market insight's prompt: the default template rendered from computed values, indicators a
short series lacks shown as n/a, MARKET_PROMPT_FILE templates and their start-up errors, and
the follow-up that states why a reply was refused."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from signalsmith.errors import ConfigError
from signalsmith.market.candles import CandleSeries
from signalsmith.market.check import check_reply
from signalsmith.market.indicators import Indicators, compute_indicators, format_number
from signalsmith.market.prompt import (
    DEFAULT_PROMPT,
    MISSING,
    PLACEHOLDERS,
    build_prompt,
    candle_words,
    follow_up,
    load_market_prompt,
    prompt_values,
    unknown_placeholders,
)

MIDNIGHT = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def indicators(candles: int, granularity_s: int = 300) -> Indicators:
    """A rising series with pullbacks and uneven volume, ``candles`` long."""
    steps = np.arange(candles, dtype=np.float64)
    close = 50_000 + 37.3 * steps - np.where(steps % 3 == 0, 61.7, 0.0)
    open_ = np.concatenate([close[:1] - 5, close[:-1]])
    high, low = np.maximum(open_, close) + 12, np.minimum(open_, close) - 12
    time = MIDNIGHT + granularity_s * steps
    volume = 5 + (steps % 7)
    series = CandleSeries(time, open_, high, low, close, volume, granularity_s=granularity_s)
    return compute_indicators(series)


FULL = indicators(60)
SHORT = indicators(8)  # too short for the long window, RSI, bands, MACD and volume change


def test_the_default_prompt_states_every_value_the_insight_needs() -> None:
    prompt = build_prompt(DEFAULT_PROMPT, "BTC-USD", FULL)
    shown = FULL.values()
    assert "{" not in prompt
    assert MISSING not in prompt.replace("shown as n/a", "")
    assert "BTC-USD, from its last 60 5-minute candles:" in prompt
    for name in (
        "sma_short",
        "sma_long",
        "ema_short",
        "ema_long",
        "rsi",
        "bb_upper",
        "bb_lower",
        "macd",
        "price_change",
        "price_change_pct",
        "volume_change",
        "day_high",
        "day_low",
        "buy_volume",
        "sell_volume",
    ):
        assert re.search(rf"(?<![\d.]){re.escape(format_number(shown[name]))}(?![\d])", prompt), (
            name
        )
    assert "RSI (14 periods; above 70 is overbought, below 30 oversold)" in prompt
    assert "Bollinger bands (20 periods, 2 standard deviations)" in prompt
    assert "MACD (12/26/9)" in prompt


def test_the_default_prompt_asks_for_the_rules_the_check_enforces() -> None:
    prompt = build_prompt(DEFAULT_PROMPT, "BTC-USD", FULL)
    assert "no more than 100 words" in prompt
    assert "no greeting, title, preamble or sign-off" in prompt
    assert "Mention BTC-USD by name" in prompt
    assert "must be one listed above" in prompt


@pytest.mark.parametrize("found", [FULL, SHORT], ids=["full", "short"])
def test_every_number_the_prompt_states_is_one_a_reply_may_quote(found: Indicators) -> None:
    """So a model that copies any number from the prompt is never refused for it."""
    prompt = build_prompt(DEFAULT_PROMPT, "BTC-USD", found)
    assert check_reply(prompt, "BTC-USD", prompt_values(found), max_words=10_000) == []


def test_indicators_a_short_series_lacks_read_n_a() -> None:
    prompt = build_prompt(DEFAULT_PROMPT, "ETH-EUR", SHORT)
    assert "{" not in prompt
    assert f"RSI (14 periods; above 70 is overbought, below 30 oversold): {MISSING}" in prompt
    assert f"upper {MISSING}, lower {MISSING}" in prompt
    assert f"line {MISSING}, signal {MISSING}, histogram {MISSING}" in prompt
    assert f"({format_number(SHORT.values()['price_change_pct'])}%)" in prompt


def test_the_prompt_values_add_the_settings_the_selling_share_and_the_candle_size() -> None:
    values = prompt_values(FULL)
    assert values.items() >= FULL.values().items()
    assert values["sell_share_pct"] == pytest.approx(100 - values["buy_share_pct"])
    assert values["candle_size"] == 5
    assert {name: values[name] for name in ("rsi_period", "band_period", "band_width")} == {
        "rsi_period": 14,
        "band_period": 20,
        "band_width": 2,
    }
    assert (values["macd_fast_period"], values["macd_slow_period"]) == (12, 26)
    assert values["max_words"] == 100
    assert set(values) <= PLACEHOLDERS


@pytest.mark.parametrize(
    ("seconds", "words"),
    [
        (60, ("1-minute", 1)),
        (300, ("5-minute", 5)),
        (3_600, ("1-hour", 1)),
        (21_600, ("6-hour", 6)),
        (86_400, ("1-day", 1)),
        (90, ("90-second", 90)),
    ],
)
def test_the_candle_size_is_said_in_words(seconds: int, words: tuple[str, int]) -> None:
    assert candle_words(seconds) == words


def test_a_custom_template_fills_known_names_and_keeps_other_braces() -> None:
    template = 'Product {product} ({candle}), RSI {rsi}, ATR {atr}. Answer as {"note": "..."}.'
    prompt = build_prompt(template, "BTC-USD", FULL)
    values = FULL.values()
    assert prompt == (
        f"Product BTC-USD (5-minute), RSI {format_number(values['rsi'])}, "
        f"ATR {format_number(values['atr'])}. "
        'Answer as {"note": "..."}.'
    )


def test_a_value_is_inserted_literally() -> None:
    """A product id is inserted as text, never read as a replacement pattern."""
    assert build_prompt(r"{product} \1 {candles}", "BTC-USD", FULL) == r"BTC-USD \1 60"


def test_an_unknown_placeholder_cannot_be_rendered() -> None:
    assert unknown_placeholders("{product} {rsi} {RSI} {price} {rsi}") == ["RSI", "price"]
    with pytest.raises(ValueError, match="RSI, price"):
        build_prompt("{product} {rsi} {RSI} {price}", "BTC-USD", FULL)


# --- MARKET_PROMPT_FILE ----------------------------------------------------------------------


def test_without_a_file_the_default_prompt_is_used() -> None:
    assert load_market_prompt(None) == DEFAULT_PROMPT


def test_a_file_is_the_template_without_its_byte_order_mark(tmp_path: Path) -> None:
    path = tmp_path / "market.txt"
    path.write_text("\ufeffYou trade {product}. RSI {rsi}.", encoding="utf-8")
    assert load_market_prompt(path) == "You trade {product}. RSI {rsi}."


def _error(path: Path) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load_market_prompt(path)
    assert caught.value.setting == "MARKET_PROMPT_FILE"
    return caught.value


def test_a_missing_or_unreadable_file_is_a_config_error(tmp_path: Path) -> None:
    assert "cannot read" in _error(tmp_path / "absent.txt").problem
    assert "cannot read" in _error(tmp_path).problem  # a directory
    binary = tmp_path / "binary.txt"
    binary.write_bytes(b"{product} \xff\xfe\x00")
    assert "cannot read" in _error(binary).problem


def test_an_empty_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "empty.txt"
    path.write_text(" \n\t\n", encoding="utf-8")
    assert _error(path).problem.endswith("is empty")


def test_an_unknown_placeholder_is_named_with_the_known_ones(tmp_path: Path) -> None:
    path = tmp_path / "typo.txt"
    path.write_text("About {product}: RSI {rsi14}, band {bb_up}.", encoding="utf-8")
    problem = _error(path).problem
    assert "unknown placeholders {rsi14}, {bb_up}" in problem
    assert "{rsi}" in problem
    assert "{bb_upper}" in problem


def test_a_file_without_placeholders_is_a_config_error(tmp_path: Path) -> None:
    """A file of plain text would show the model none of the computed values."""
    path = tmp_path / "plain.txt"
    path.write_text("Write a short note for traders on the market.", encoding="utf-8")
    assert "has no placeholder" in _error(path).problem


# --- the follow-up ---------------------------------------------------------------------------


def test_the_follow_up_lists_every_problem() -> None:
    problems = ["it does not name BTC-USD", "it quotes 7, which is none of the numbers given"]
    message = follow_up(problems)
    assert "- it does not name BTC-USD\n- it quotes 7, which is none" in message
    assert "every rule of the first message" in message
