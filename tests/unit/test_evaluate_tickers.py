"""eval's per-ticker labels and raters: parsing (good and hostile lines), the pair metrics on
hand-built scores, and scoring through the real ``OneShot`` with an in-package analyzer."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from signalsmith.analyze.fake import FunctionAnalyzer
from signalsmith.domain import Opinion, Post, Status, Verdict
from signalsmith.errors import PoisonInput
from signalsmith.evaluate import (
    LABELS,
    MAX_LABELED_TICKERS,
    Item,
    RaterPair,
    Scored,
    TickerPair,
    misclassified,
    parse_item,
    parse_items,
    per_ticker_accuracy,
    rater_pairs,
    rater_signals,
    report,
    score_all,
    ticker_pairs,
)
from signalsmith.oneshot import WHOLE_TEXT, OneShot

# --- Parsing --------------------------------------------------------------------------------


def test_a_line_with_per_ticker_and_raters_becomes_an_item() -> None:
    """Every key kept: per_ticker in the line's order, raters as tickers."""
    line = json.dumps(
        {
            "id": "a1",
            "text": "Netflix up, Disney down after earnings",
            "label": "buy",
            "tickers": ["NFLX", "DIS"],
            "per_ticker": {"NFLX": "buy", "DIS": "sell"},
            "raters": ["UBS"],
            "category": "multi_ticker",
        }
    )
    item = parse_item(line, "f:1")
    assert item == Item(
        "a1",
        "Netflix up, Disney down after earnings",
        "buy",
        ("NFLX", "DIS"),
        "multi_ticker",
        per_ticker=(("NFLX", "buy"), ("DIS", "sell")),
        raters=("UBS",),
    )
    assert item.finds_tickers


def test_tickers_and_label_default_to_per_ticker() -> None:
    """Without tickers (or with an empty list) they are the per_ticker keys, and without label it
    is the first ticker's; keys are normalized like tickers and labels are case-blind."""
    line = '{"text": "t", "tickers": [], "per_ticker": {"$nflx": " Buy ", "dis": "SELL"}}'
    item = parse_item(line, "f:1")
    assert item.tickers == ("NFLX", "DIS")
    assert item.per_ticker == (("NFLX", "buy"), ("DIS", "sell"))
    assert item.label == "buy"
    assert parse_item('{"text": "t", "per_ticker": {"F": "hold"}}', "f:2").tickers == ("F",)


def test_tickers_given_as_a_string_may_match_per_ticker() -> None:
    """tickers keeps every form it accepts elsewhere; only the normalized list must match."""
    line = '{"text": "t", "label": "sell", "tickers": "$f, gm", ' + (
        '"per_ticker": {"F": "sell", "GM": "buy"}}'
    )
    assert parse_item(line, "f:1").tickers == ("F", "GM")


def test_raters_are_normalized_and_deduplicated_and_need_no_per_ticker() -> None:
    """Raters alone keep tickers and label as given; the item is still analyzed on the tickers
    found in its text."""
    line = '{"text": "t", "label": "sell", "tickers": ["TSLA"], "raters": ["ubs", "$UBS", "GS"]}'
    item = parse_item(line, "f:1")
    assert (item.tickers, item.label, item.raters, item.per_ticker) == (
        ("TSLA",),
        "sell",
        ("UBS", "GS"),
        (),
    )
    assert item.finds_tickers


def test_empty_or_null_raters_are_none() -> None:
    """`[]` and null mean no raters: the item is scored exactly as one without the key."""
    for raters in ("[]", "null"):
        item = parse_item(
            '{"text": "t", "label": "buy", "tickers": ["A"], "raters": ' + raters + "}", "x"
        )
        assert item == Item("x", "t", "buy", ("A",))
        assert not item.finds_tickers


def _many(count: int) -> str:
    return json.dumps({f"T{n}": "buy" for n in range(count)})


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ('"per_ticker": ["NFLX", "buy"]', "'per_ticker' must be an object"),
        ('"per_ticker": "NFLX:buy"', "'per_ticker' must be an object"),
        ('"per_ticker": 3', "'per_ticker' must be an object"),
        ('"per_ticker": {}', "at least one ticker"),
        ('"per_ticker": {"NFLX": "up"}', "'per_ticker' label of NFLX must be buy, sell or hold"),
        ('"per_ticker": {"NFLX": 1}', "'per_ticker' label of NFLX"),
        ('"per_ticker": {"NFLX": null}', "'per_ticker' label of NFLX"),
        ('"per_ticker": {"NFLX": ["buy"]}', "'per_ticker' label of NFLX"),
        ('"per_ticker": {"": "buy"}', "'per_ticker' has a bad ticker"),
        ('"per_ticker": {"NOT A TICKER": "buy"}', "'per_ticker' has a bad ticker"),
        ('"per_ticker": {"WAYTOOLONGSYMBOL": "buy"}', "'per_ticker' has a bad ticker"),
        ('"per_ticker": {"nflx": "buy", "$NFLX": "buy"}', "names NFLX twice"),
        ('"tickers": ["DIS"], "per_ticker": {"NFLX": "buy"}', "must be the 'per_ticker' keys"),
        (
            '"tickers": ["DIS", "NFLX"], "per_ticker": {"NFLX": "buy", "DIS": "sell"}',
            "in the same order",
        ),
        ('"tickers": ["NFLX", "DIS"], "per_ticker": {"NFLX": "buy"}', "'per_ticker' keys"),
        ('"tickers": 5, "per_ticker": {"NFLX": "buy"}', "tickers"),
        ('"label": "sell", "per_ticker": {"NFLX": "buy"}', "first ticker, NFLX, buy"),
        ('"label": "up", "per_ticker": {"NFLX": "up"}', "must be buy, sell or hold"),
        ('"label": "bullish", "per_ticker": {"NFLX": "buy"}', "'label' must be buy"),
        ('"label": "buy", "raters": "UBS"', "'raters' must be a list"),
        ('"label": "buy", "raters": {"UBS": "sell"}', "'raters' must be a list"),
        ('"label": "buy", "raters": [3]', "'raters' has a bad ticker: 3"),
        ('"label": "buy", "raters": [null]', "'raters' has a bad ticker"),
        ('"label": "buy", "raters": [["UBS"]]', "'raters' has a bad ticker"),
        ('"label": "buy", "raters": ["UBS GS"]', "'raters' has a bad ticker"),
        ('"per_ticker": {"TSLA": "sell"}, "raters": ["UBS", "$tsla"]', "TSLA is both"),
        ('"label": "sell", "tickers": ["TSLA"], "raters": ["tsla"]', "TSLA is both"),
        (f'"per_ticker": {_many(MAX_LABELED_TICKERS + 1)}', "101 tickers, limit 100"),
        ('"label": "buy", "raters": ' + json.dumps(["UBS"] * 101), "'raters' has 101 tickers"),
        ('"label": "buy", "raters": ' + json.dumps(["GS"] * 100_000), "limit 100"),
        ('"label": "buy", "n": ' + "9" * 5000, "not JSON"),
    ],
)
def test_a_hostile_line_names_its_number_and_problem(fields: str, problem: str) -> None:
    """Each bad per_ticker, raters or combination raises PoisonInput saying where and what."""
    text = '{"text": "fine", "label": "hold"}\n{"text": "t", ' + fields + "}\n"
    with pytest.raises(PoisonInput) as caught:
        list(parse_items("set.jsonl", text))
    assert caught.value.detail.startswith("set.jsonl line 2: ")
    assert problem in caught.value.detail


def test_nesting_too_deep_for_the_reader_is_an_input_error() -> None:
    """A line nested beyond Python's recursion limit is refused like any other bad JSON."""
    with pytest.raises(PoisonInput, match="not JSON"):
        parse_item('{"text": "t", "label": "buy", "x": ' + "[" * 100_000 + "}", "f:1")


_SCALAR = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10)
_JSON = st.recursive(
    _SCALAR,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=10,
)
_TICKERISH = st.sampled_from(
    ["NVDA", "nvda", "$AMD", "UBS", "brk.b", "", " ", "A B", "X" * 13, "$"]
) | st.text(max_size=8)
_LABELISH = st.sampled_from(["buy", "SELL", " hold ", "bullish", ""]) | _JSON
_RECORDS = st.fixed_dictionaries(
    {},
    optional={
        "id": st.text(max_size=6) | _JSON,
        "text": st.sampled_from(["Nvidia up", "  "]) | _JSON,
        "label": _LABELISH,
        "tickers": st.lists(_TICKERISH, max_size=4) | _JSON,
        "per_ticker": st.dictionaries(_TICKERISH, _LABELISH, max_size=4) | _JSON,
        "raters": st.lists(_TICKERISH, max_size=4) | _JSON,
        "category": st.text(max_size=6) | _JSON,
    },
)


@settings(max_examples=400, deadline=None)
@given(_RECORDS)
def test_parse_item_raises_only_poison_input_and_keeps_its_promises(
    record: dict[str, object],
) -> None:
    """Any JSON object is an item or a PoisonInput; an item's per_ticker keys are its tickers,
    its label the first one's, and no rater is one of its tickers."""
    try:
        item = parse_item(json.dumps(record), "f:1")
    except PoisonInput:
        return
    assert item.label in LABELS
    assert all(label in LABELS for _, label in item.per_ticker)
    if item.per_ticker:
        assert item.tickers == tuple(ticker for ticker, _ in item.per_ticker)
        assert item.label == item.per_ticker[0][1]
    assert not set(item.raters) & set(item.tickers)
    assert len(item.per_ticker) <= MAX_LABELED_TICKERS
    assert len(item.raters) <= MAX_LABELED_TICKERS


# --- Metrics on hand-built scores -----------------------------------------------------------

BUY, SELL, HOLD = Verdict.BUY, Verdict.SELL, Verdict.HOLD

# m: two subjects, one right; u: the subject missed; f: the analysis failed (no targets at all);
# r: a rater given SELL, another HOLD, a third never returned; w: the text named no ticker.
MULTI = Item("m", "t", "buy", ("NFLX", "DIS"), "multi", (("NFLX", "buy"), ("DIS", "sell")))
UNKNOWN = Item("u", "t", "hold", ("ZRBX",), "", (("ZRBX", "hold"),))
FAILED = Item("f", "t", "sell", ("F",), "multi", (("F", "sell"),), ("C",))
RATED = Item("r", "t", "sell", ("TSLA",), "analyst", (("TSLA", "sell"),), ("UBS", "GS", "BCS"))
WHOLE = Item("w", "t", "buy", ("AAPL",), "analyst", (("AAPL", "buy"),), ("MS",))
PLAIN = Item("p", "t", "buy", ("AMD",), "social")

SCORED = [
    Scored(MULTI, "sell", Status.OK, per_target=(("NFLX", SELL), ("DIS", SELL))),
    Scored(UNKNOWN, "hold", Status.OK, per_target=(("AMD", BUY),)),
    Scored(FAILED, "hold", Status.ERROR),
    Scored(RATED, "sell", Status.OK, per_target=(("TSLA", SELL), ("UBS", SELL), ("GS", HOLD))),
    Scored(WHOLE, "buy", Status.OK, per_target=((WHOLE_TEXT, BUY),)),
    Scored(PLAIN, "buy", Status.OK, per_target=(("AMD", BUY),)),
]


def test_ticker_pairs_take_each_subjects_own_decision() -> None:
    """A subject's decision is its own; none returned is None (the whole text's ``*`` is no
    ticker's); a failed analysis predicts hold, as it does for the item; plain items add none."""
    assert ticker_pairs(SCORED) == [
        TickerPair(MULTI, "NFLX", "buy", "sell"),
        TickerPair(MULTI, "DIS", "sell", "sell"),
        TickerPair(UNKNOWN, "ZRBX", "hold", None),
        TickerPair(FAILED, "F", "sell", "hold"),
        TickerPair(RATED, "TSLA", "sell", "sell"),
        TickerPair(WHOLE, "AAPL", "buy", None),
    ]


def test_per_ticker_accuracy_counts_missed_as_wrong_by_hand() -> None:
    """6 pairs, 2 right (DIS, TSLA), 2 missed (ZRBX labeled hold is still wrong, AAPL)."""
    assert per_ticker_accuracy(ticker_pairs(SCORED)) == {
        "pairs": 6,
        "correct": 2,
        "accuracy": 0.3333,
        "missed": 2,
        "by_category": {
            "analyst": {"pairs": 2, "correct": 1, "accuracy": 0.5, "missed": 1},
            "multi": {"pairs": 3, "correct": 1, "accuracy": 0.3333, "missed": 0},
            "uncategorized": {"pairs": 1, "correct": 0, "accuracy": 0.0, "missed": 1},
        },
    }
    assert per_ticker_accuracy([]) == {
        "pairs": 0,
        "correct": 0,
        "accuracy": 0.0,
        "missed": 0,
        "by_category": {},
    }


def test_rater_pairs_and_false_signals_by_hand() -> None:
    """UBS got SELL: a false signal; GS's HOLD, BCS never returned, MS under the whole text only
    and C in a failed analysis are not; 1 of 5."""
    pairs = rater_pairs(SCORED)
    assert pairs == [
        RaterPair(FAILED, "C", None),
        RaterPair(RATED, "UBS", "sell"),
        RaterPair(RATED, "GS", "hold"),
        RaterPair(RATED, "BCS", None),
        RaterPair(WHOLE, "MS", None),
    ]
    assert rater_signals(pairs, limit=5) == {
        "pairs": 5,
        "false_signals": 1,
        "false_signal_rate": 0.2,
        "offending": [{"id": "r", "rater": "UBS", "verdict": "sell"}],
    }


def test_offending_raters_are_capped_and_absent_without_a_limit() -> None:
    """BUY counts as SELL does; the list keeps input order, stops at the limit, and is left out
    when no examples are asked for."""
    pairs = [
        RaterPair(RATED, "UBS", "buy"),
        RaterPair(WHOLE, "MS", "sell"),
        RaterPair(MULTI, "GS", "hold"),
    ]
    capped = rater_signals(pairs, limit=1)
    assert (capped["false_signals"], capped["false_signal_rate"]) == (2, 0.6667)
    assert capped["offending"] == [{"id": "r", "rater": "UBS", "verdict": "buy"}]
    assert "offending" not in rater_signals(pairs)
    assert rater_signals([]) == {"pairs": 0, "false_signals": 0, "false_signal_rate": 0.0}


def test_report_adds_each_section_only_when_an_item_has_its_key() -> None:
    """per_ticker with any per_ticker item, raters with any raters item; neither otherwise; the
    item-level figures still count every item."""
    both = report(SCORED, 1.0, "offline", show_errors=3)
    assert both["n"] == 6
    assert both["per_ticker"] == per_ticker_accuracy(ticker_pairs(SCORED))
    assert both["raters"] == rater_signals(rater_pairs(SCORED), 3)
    subjects_only = report([SCORED[0]], 1.0, "offline")
    assert "per_ticker" in subjects_only
    assert "raters" not in subjects_only
    raters_only = Item("o", "t", "sell", ("TSLA",), raters=("UBS",))
    only = report([Scored(raters_only, "sell", Status.OK, per_target=(("UBS", SELL),))], 1, "o")
    assert "per_ticker" not in only
    assert only["raters"] == {"pairs": 1, "false_signals": 1, "false_signal_rate": 1.0}
    plain = report([SCORED[-1]], 1.0, "offline", show_errors=3)
    assert "per_ticker" not in plain
    assert "raters" not in plain


def test_misclassified_lists_wrong_tickers_in_place_of_their_item() -> None:
    """A per_ticker item contributes each wrong ticker (predicted None when missed), not a line
    of its own; other items are listed as before; the limit counts entries."""
    wrong = misclassified(SCORED, 10)
    assert [(w["id"], w.get("ticker"), w["label"], w["predicted"]) for w in wrong] == [
        ("m", "NFLX", "buy", "sell"),
        ("u", "ZRBX", "hold", None),
        ("f", "F", "sell", "hold"),
        ("w", "AAPL", "buy", None),
    ]
    assert wrong[0] == {
        "id": "m",
        "text": "t",
        "ticker": "NFLX",
        "label": "buy",
        "predicted": "sell",
        "status": "ok",
        "category": "multi",
    }
    assert wrong[2]["status"] == "error"
    assert [w["id"] for w in misclassified(SCORED, 2)] == ["m", "u"]
    plain_wrong = Scored(PLAIN, "sell", Status.OK, per_target=(("AMD", SELL),))
    assert misclassified([plain_wrong], 5)[0] == {
        "id": "p",
        "text": "t",
        "label": "buy",
        "predicted": "sell",
        "status": "ok",
        "tickers": ["AMD"],
        "category": "social",
    }


# --- Scoring through the real OneShot --------------------------------------------------------


def _by_ticker(post: Post, ticker: str) -> Opinion:
    verdict = {"NVDA": BUY, "AMD": SELL}.get(ticker, HOLD)
    return Opinion(verdict, 0.9, {BUY: 0.8, SELL: -0.8, HOLD: 0.0}[verdict])


async def test_items_with_per_ticker_or_raters_are_analyzed_on_the_tickers_found() -> None:
    """The post carries no tickers for these items, so the extractor finds AMD (a rater here)
    and the analyzer's SELL for it is seen; an item without the keys analyzes only its given
    ticker, as before; the item's prediction is its first ticker's decision, or hold when the
    analyzer did not find it."""
    shot = OneShot([FunctionAnalyzer(_by_ticker)])
    items = [
        Item("p", "NVDA up, AMD down", "buy", ("NVDA",), per_ticker=(("NVDA", "buy"),)),
        Item("r", "NVDA up, AMD down", "buy", ("NVDA",), raters=("AMD",)),
        Item("g", "NVDA up, AMD down", "buy", ("NVDA",)),
        Item(
            "s",
            "NVDA up, AMD down",
            "sell",
            ("AMD", "NVDA"),
            per_ticker=(("AMD", "sell"), ("NVDA", "buy")),
        ),
        Item("z", "Zorblax up, AMD down", "buy", ("ZRBX",), per_ticker=(("ZRBX", "buy"),)),
    ]
    scored = await score_all(shot, items, concurrency=2)
    found = (("NVDA", BUY), ("AMD", SELL))
    assert [s.per_target for s in scored] == [
        found,
        found,
        (("NVDA", BUY),),
        found,
        (("AMD", SELL),),
    ]
    assert [s.predicted for s in scored] == ["buy", "buy", "buy", "sell", "hold"]
    assert scored[-1].status is Status.OK  # the analysis itself went fine
    assert rater_signals(rater_pairs(scored))["false_signals"] == 1
    assert [pair.predicted for pair in ticker_pairs(scored)] == ["buy", "sell", "buy", None]
