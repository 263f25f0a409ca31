"""The check a model's insight must pass: at most 100 words, the product named, no introduction,
and every quoted number one of the computed values within the stated tolerance."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from signalsmith.market.candles import CandleSeries
from signalsmith.market.check import (
    TOLERANCE,
    check_reply,
    introduction,
    product_pattern,
    quoted_numbers,
)
from signalsmith.market.indicators import compute_indicators
from signalsmith.market.prompt import prompt_values
from signalsmith.market.requests import PRODUCT
from signalsmith.market.trend import read_trend, render_insight

MIDNIGHT = 1_767_225_600.0  # 2026-01-01T00:00:00Z
VALUES = {
    "candles": 60.0,
    "short_window": 5.0,
    "long_window": 20.0,
    "candle_size": 5.0,
    "rsi_period": 14.0,
    "last_close": 50123.45,
    "sma_short": 50100.12,
    "price_change": -612.3,
    "price_change_pct": -1.23,
    "rsi": 65.43,
    "bb_position": 0.85,
    "volume_change": 1234.0,
    "buy_volume": 2_500_000.0,
    "buy_share_pct": 55.0,
}
GOOD = "BTC-USD slipped 1.23% to 50,123.45 while the 14-period RSI sits at 65.43."


def problems(text: str, product: str = "BTC-USD") -> list[str]:
    return check_reply(text, product, VALUES)


def test_a_short_factual_reply_that_names_the_product_passes() -> None:
    assert problems(GOOD) == []


# --- length ----------------------------------------------------------------------------------


def test_a_hundred_words_pass_and_a_hundred_and_one_do_not() -> None:
    hundred = "BTC-USD " + "steady " * 99
    assert problems(hundred) == []
    assert problems(hundred + "more") == ["it has 101 words; the limit is 100"]


def test_the_word_limit_can_be_set() -> None:
    assert check_reply(GOOD, "BTC-USD", VALUES, max_words=5) == ["it has 12 words; the limit is 5"]


def test_an_empty_reply_is_one_problem() -> None:
    assert problems("  \n ") == ["it is empty"]


# --- the product -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "named", ["BTC-USD", "btc-usd", "BTC/USD", "BTC USD", "BTCUSD", "BTC–USD", "BTC", "$BTC"]
)
def test_a_pair_may_be_named_in_its_usual_forms_or_by_its_base(named: str) -> None:
    assert problems(f"{named} trades at 50,123.45.") == []


@pytest.mark.parametrize("text", ["Bitcoin trades higher.", "BTCX trades higher.", "WBTC is up."])
def test_other_names_and_longer_words_do_not_name_the_product(text: str) -> None:
    assert problems(text) == ["it does not name BTC-USD"]


def test_a_share_class_is_no_pair_so_its_first_part_alone_does_not_name_it() -> None:
    """BRK-B is Berkshire's class B share, not BRK priced in B."""
    assert product_pattern("BRK-B").search("BRK-B and BRK/B")
    assert check_reply("BRK is higher.", "BRK-B", VALUES) == ["it does not name BRK-B"]


def test_a_bare_symbol_is_named_by_itself() -> None:
    assert check_reply("AAPL holds 50,123.45.", "AAPL", VALUES) == []
    assert check_reply("Apple holds.", "AAPL", VALUES) == ["it does not name AAPL"]


def test_digits_in_the_product_are_not_quoted_numbers() -> None:
    assert check_reply("1INCH-USD and 1INCH rise 1.23%.", "1INCH-USD", VALUES) == []


# --- introductions ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "opening"),
    [
        ("Here is my take: BTC-USD is up.", "Here is"),
        ("Here's the view. BTC-USD is up.", "Here's"),
        ("Sure! BTC-USD is up.", "Sure"),
        ("Certainly. BTC-USD is up.", "Certainly"),
        ("**Of course** - BTC-USD is up.", "Of course"),
        ("As a seasoned market analyst, I see BTC-USD rising.", "As a seasoned market analyst"),
        ("Based on the data provided, BTC-USD is up.", "Based on the data"),
        ("In summary, BTC-USD is up.", "In summary"),
        ("Let me explain: BTC-USD is up.", "Let me"),
        ("Hello traders, BTC-USD is up.", "Hello"),
        ("Market insight for BTC-USD:\nIt is up.", "Market insight for BTC-USD:"),
        ("# BTC-USD outlook\nIt is up.", "# BTC-USD outlook"),
        ("\n\n  **BTC-USD trend:**\nUp.", "**BTC-USD trend:"),
    ],
)
def test_an_introduction_or_heading_is_refused(text: str, opening: str) -> None:
    assert introduction(text) == opening
    assert problems(text) == [
        f'it opens with an introduction ("{opening}"); start with the substance'
    ]


@pytest.mark.parametrize(
    "text",
    [
        "BTC-USD: up 1.23% with RSI 65.43.",  # the deterministic read opens like this
        "As a result of heavy buying, BTC-USD is up.",
        "Highs keep coming for BTC-USD.",
        "Surely BTC-USD cannot keep rising.",
        "Based on its RSI of 65.43, BTC-USD looks stretched.",
    ],
)
def test_substance_that_merely_starts_like_a_phrase_is_no_introduction(text: str) -> None:
    assert introduction(text) == ""
    assert problems(text) == []


# --- numbers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "quoted",
    [
        "50,123.45",
        "50123.45",
        "$50,123",
        "50,100",  # the short SMA rounded, or the close within 0.5%
        "50.1k",
        "$50k",
        "5.0123e4",
        "65.4",
        "65",
        "-1.2%",
        "1.23 %",
        "1.2 percent",
        "612",
        "1,234",
        "1.2k",
        "2.5 million",
        "2.5M",
        "$2.5m",
        "85%",  # the Bollinger position as a share of the band
        "55%",
        ".85",
    ],
)
def test_a_computed_value_rounded_as_the_text_shows_it_passes(quoted: str) -> None:
    assert problems(f"BTC-USD at {quoted} today.") == []


@pytest.mark.parametrize(
    ("quoted", "shown"),
    [
        ("51,000", "51,000"),  # 1.7% from the close, and not its rounding
        ("65.9", "65.9"),
        ("1.3%", "1.3%"),
        ("1,250", "1,250"),  # 1.3% from the volume change
        ("2.6 million", "2.6 million"),
        ("$7", "7"),
        ("1e999", "1e999"),
    ],
)
def test_an_invented_or_misquoted_number_is_named(quoted: str, shown: str) -> None:
    assert problems(f"BTC-USD at {quoted} today.") == [
        f"it quotes {shown}, which is none of the numbers given"
    ]


def test_a_percentage_must_quote_a_percentage() -> None:
    """612 is the price change in dollars: "612%" claims something else."""
    assert problems("BTC-USD changed 612 today.") == []
    assert problems("BTC-USD changed 612% today.") == [
        "it quotes 612%, which is none of the numbers given"
    ]


def test_windows_periods_and_candle_size_may_be_named() -> None:
    text = "BTC-USD: the 5-minute candles, 5-candle and 20-candle SMAs, 14-period RSI, 60 candles."
    assert problems(text) == []


def test_numbers_glued_to_a_name_are_names_not_quotes() -> None:
    assert problems("BTC-USD holds above SMA20 and EMA50 into Q3.") == []


def test_each_wrong_number_is_named_once_and_the_list_is_capped() -> None:
    text = "BTC-USD: 7, 7, 8, 9, 10.5, 11.5, 12.5, 13.5 and 14.5."
    assert problems(text) == [
        "it quotes 7, which is none of the numbers given",
        "it quotes 8, which is none of the numbers given",
        "it quotes 9, which is none of the numbers given",
        "it quotes 10.5, which is none of the numbers given",
        "it quotes 11.5, which is none of the numbers given",
        "and 3 more numbers not given",
    ]


def test_every_problem_is_reported_together() -> None:
    text = "Sure! Bitcoin is at 7. " + "word " * 100
    assert problems(text) == [
        "it has 105 words; the limit is 100",
        "it does not name BTC-USD",
        'it opens with an introduction ("Sure"); start with the substance',
        "it quotes 7, which is none of the numbers given",
    ]


def test_quoted_numbers_read_thousands_decimals_exponents_and_scales() -> None:
    read = {
        q.shown: (q.readings, q.percent)
        for q in quoted_numbers("50,000.25 and .5, 1.2e3, 65%, 3 bn, 2 Million and 5m")
    }
    assert read == {
        "50,000.25": ((50000.25,), False),
        ".5": ((0.5,), False),
        "1.2e3": ((1200.0,), False),
        "65%": ((65.0,), True),
        "3 bn": ((3e9,), False),
        "2 Million": ((2e6,), False),
        "5m": ((5.0, 5e6), False),
    }


# --- properties ------------------------------------------------------------------------------

PRODUCTS = st.from_regex(PRODUCT, fullmatch=True)
FINITE = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e15, max_value=1e15)
# What quoting a value plausibly looks like: plain, grouped, rounded, in thousands, exponent.
FORMATS = (
    lambda v: f"{v:.10g}",
    lambda v: f"{v:,.2f}",
    lambda v: f"${abs(v):,.0f}",
    lambda v: f"{v:.1f}",
    lambda v: f"{v / 1000:.1f}k",
    lambda v: f"{v:.3e}",
    lambda v: f"{round(v, 4)}",
)


@settings(max_examples=300, deadline=None)
@given(
    st.text(max_size=400),
    PRODUCTS,
    st.dictionaries(st.text(max_size=12), FINITE, max_size=8),
)
def test_any_text_is_checked_without_raising(
    text: str, product: str, values: dict[str, float]
) -> None:
    found = check_reply(text, product, values)
    assert all(isinstance(problem, str) and problem for problem in found)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="0123456789.,-+eEkKmMbB%$ \n", max_size=200), PRODUCTS, FINITE)
def test_number_soup_is_checked_without_raising(text: str, product: str, value: float) -> None:
    check_reply(text, product, {"x": value})


@settings(max_examples=300, deadline=None)
@given(
    st.floats(min_value=1e-6, max_value=1e12),
    st.booleans(),
    st.sampled_from(FORMATS),
    st.sampled_from(["BTC-USD", "ETH-EUR", "AAPL"]),
)
def test_a_value_quoted_in_any_plausible_format_is_accepted(
    magnitude: float, negative: bool, style: object, product: str
) -> None:
    value = -magnitude if negative else magnitude
    quoted = style(value)  # type: ignore[operator]
    assert check_reply(f"{product} reads {quoted} now.", product, {"value": value}) == []


def half_unit(shown: str) -> float:
    """Half a unit of the last digit ``shown`` writes: how far off a correct rounding can be."""
    mantissa, _, exponent = shown.lower().partition("e")
    decimals = len(mantissa.partition(".")[2])
    return 0.5 * 10.0 ** (int(exponent or "0") - decimals)


@settings(max_examples=300, deadline=None)
@given(
    st.floats(min_value=1e-6, max_value=1e12),
    st.one_of(
        st.floats(min_value=2.2 * TOLERANCE, max_value=10.0),
        st.floats(min_value=-0.9, max_value=-2.2 * TOLERANCE),
    ),
)
def test_a_value_off_by_more_than_the_tolerance_is_rejected(value: float, off: float) -> None:
    quoted = value * (1 + off)
    shown = f"{quoted:.12g}"
    # ".12g" drops trailing zeros, so a quote landing on a short number shows as "1" or "0.5",
    # and a short number claims only its own digits: "1" quotes anything from 0.5 to 1.5 (see
    # test_a_short_number_quotes_any_value_it_rounds_to). Only a quote past both that and the
    # tolerance must fail.
    allowed = max(TOLERANCE * value, half_unit(shown))
    assume(abs(float(shown) - value) > 2 * allowed)
    assert check_reply(f"BTC-USD reads {shown} now.", "BTC-USD", {"value": value}) == [
        f"it quotes {shown}, which is none of the numbers given"
    ]


@settings(max_examples=100, deadline=None)
@given(
    st.sampled_from([2e-12, 1e-6, 1.0, 5e4, 5e11]),
    st.lists(st.floats(min_value=-0.03, max_value=0.03), min_size=1, max_size=80),
    st.sampled_from(["BTC-USD", "ETH-EUR", "1INCH-USD", "AAPL"]),
    st.sampled_from([60, 300, 3_600, 86_400]),
)
def test_the_deterministic_insight_always_passes_the_check(
    scale: float, changes: list[float], product: str, granularity_s: int
) -> None:
    """The plain read quotes only computed values, so it passes what a model's text must."""
    close = scale * np.cumprod(1 + np.asarray(changes))
    open_ = np.concatenate([[scale], close[:-1]])
    time = MIDNIGHT + granularity_s * np.arange(len(close), dtype=np.float64)
    high, low = np.maximum(open_, close) * 1.002, np.minimum(open_, close) * 0.998
    volume = np.linspace(0, 1e6, len(close))
    series = CandleSeries(time, open_, high, low, close, volume, granularity_s=granularity_s)
    found = compute_indicators(series)
    text = render_insight(product, found, read_trend(found))
    assert check_reply(text, product, prompt_values(found)) == []


@pytest.mark.parametrize(
    ("shown", "value"),
    [
        ("1", 1.4),
        ("1", 1.5),  # a tie: rounding half down, or truncating, writes 1.5 as "1"
        ("2", 2.5),  # a tie: rounding half to even, as Python's formatting does, writes "2"
        ("3", 2.5),  # and rounding half up writes "3"
        ("50k", 50_499.0),
    ],
)
def test_a_short_number_quotes_any_value_it_rounds_to(shown: str, value: float) -> None:
    """The prompt allows numbers "as written or rounded", and a number claims only the digits it
    shows: "1" says 1 give or take half a unit, however far that is from the value in percent.
    Both neighbours of a tie pass, since which one a text writes depends on its rounding rule."""
    assert check_reply(f"BTC-USD reads {shown} now.", "BTC-USD", {"value": value}) == []


@pytest.mark.parametrize(
    ("shown", "value"), [("1", 1.6), ("1.0", 1.5), ("2", 3.0), ("50k", 50_501.0)]
)
def test_a_short_number_past_half_a_unit_of_the_value_is_rejected(shown: str, value: float) -> None:
    """Shown digits are held to: "1.0" claims 1.0 give or take 0.05, so it does not quote 1.5."""
    assert check_reply(f"BTC-USD reads {shown} now.", "BTC-USD", {"value": value}) == [
        f"it quotes {shown}, which is none of the numbers given"
    ]


def test_the_tolerance_is_half_a_percent() -> None:
    assert math.isclose(TOLERANCE, 0.005)
    assert problems("BTC-USD at 50,374 now.") == []  # +0.5% of 50,123.45
    assert problems("BTC-USD at 50,380 now.") == [
        "it quotes 50,380, which is none of the numbers given"
    ]
