"""LLM reply parsing: the four formats in order, validation of each item, matching items to the
requested tickers, and refusing to invent a verdict for an unreadable reply."""

from __future__ import annotations

import json

import pytest

from signalsmith.analyze.llm.reply import (
    RAW_LIMIT,
    ParsedReply,
    ParseMethod,
    TickerCall,
    UnparseableReply,
    parse_reply,
    strip_thoughts,
)
from signalsmith.domain import Verdict

POST_TEXT = "Loaded $NVDA calls, AMD looks weak. Thinking about brk.b too."
KNOWN = frozenset({"NVDA", "AMD", "TSLA", "BRK-B", "MU"})


def _parse(text: str, requested: tuple[str, ...] = ("NVDA", "AMD")) -> ParsedReply:
    return parse_reply(text, requested, POST_TEXT, KNOWN.__contains__)


def _item(ticker: str, verdict: str = "BUY", confidence: object = 0.8) -> dict[str, object]:
    return {"ticker": ticker, "verdict": verdict, "confidence": confidence, "reasoning": "why"}


def _reply(*items: dict[str, object]) -> str:
    return json.dumps({"signals": list(items)})


def _verdicts(parsed: ParsedReply) -> dict[str, Verdict]:
    return {ticker: call.verdict for ticker, call in parsed.calls.items()}


# --- 1. strict JSON -----------------------------------------------------------------------


def test_strict_json_reply() -> None:
    """A reply that is exactly the schema's object is read as JSON, item by item."""
    parsed = _parse(_reply(_item("NVDA", "BUY", 0.9), _item("AMD", "SELL", 0.6)))
    assert parsed.method is ParseMethod.JSON
    assert parsed.calls["NVDA"] == TickerCall("NVDA", Verdict.BUY, 0.9, "why")
    assert parsed.calls["AMD"] == TickerCall("AMD", Verdict.SELL, 0.6, "why")
    assert parsed.missing == ()
    assert parsed.extra == ()


def test_strict_json_accepts_a_single_item_or_a_bare_list() -> None:
    """A lone item object and a bare list of items are strict JSON replies too."""
    single = _parse("  " + json.dumps(_item("NVDA")) + "\n")
    listed = _parse(json.dumps([_item("NVDA"), _item("AMD", "HOLD")]))
    assert (single.method, _verdicts(single)) == (ParseMethod.JSON, {"NVDA": Verdict.BUY})
    assert single.missing == ("AMD",)
    assert listed.method is ParseMethod.JSON
    assert _verdicts(listed) == {"NVDA": Verdict.BUY, "AMD": Verdict.HOLD}


# --- 2. JSON embedded in prose --------------------------------------------------------------


def test_fenced_json() -> None:
    """JSON in a ```json fence with prose around it is found and recorded as embedded."""
    text = f"Here is my analysis:\n```json\n{_reply(_item('NVDA'))}\n```\nHope it helps."
    parsed = _parse(text, ("NVDA",))
    assert parsed.method is ParseMethod.EMBEDDED_JSON
    assert _verdicts(parsed) == {"NVDA": Verdict.BUY}


def test_last_json_object_in_prose_wins() -> None:
    """With a draft and a final answer in the prose, the last reply-shaped object counts,
    and a trailing non-reply object ({"note": ...}) is not mistaken for it."""
    text = (
        f"First I thought {_reply(_item('NVDA', 'SELL'))} but then {{not json}} "
        f'I changed my mind: {_reply(_item("NVDA", "BUY"))} {{"note": "done"}}'
    )
    parsed = _parse(text, ("NVDA",))
    assert parsed.method is ParseMethod.EMBEDDED_JSON
    assert _verdicts(parsed) == {"NVDA": Verdict.BUY}


def test_braces_inside_strings_do_not_break_the_scan() -> None:
    """Braces and quotes inside JSON strings are not structure: the object is read whole."""
    item = _item("NVDA") | {"reasoning": 'says "}{" and {"ticker": "AMD"} literally'}
    parsed = _parse("Answer: " + _reply(item))
    assert parsed.method is ParseMethod.EMBEDDED_JSON
    assert parsed.calls["NVDA"].reasoning == 'says "}{" and {"ticker": "AMD"} literally'
    assert parsed.missing == ("AMD",)


def test_think_block_with_decoy_json_is_ignored() -> None:
    """JSON inside <think>…</think> is the model's scratch work, not its answer."""
    decoy = _reply(_item("NVDA", "SELL", 0.99))
    text = f"<think>Maybe {decoy}? No.</think>\nFinal: {_reply(_item('NVDA', 'BUY', 0.7))}"
    parsed = _parse(text, ("NVDA",))
    assert parsed.method is ParseMethod.EMBEDDED_JSON
    assert parsed.calls["NVDA"].verdict is Verdict.BUY
    assert parsed.calls["NVDA"].confidence == 0.7


def test_unclosed_think_block_leaves_nothing_to_parse() -> None:
    """A reply cut off while still thinking has no answer, even if the thought holds JSON."""
    text = f"<think>Leaning {_reply(_item('NVDA', 'SELL'))} but let me check the chart... 1"
    with pytest.raises(UnparseableReply):
        _parse(text, ("NVDA",))


def test_lone_closing_think_tag_keeps_only_the_answer_after_it() -> None:
    """When the chat template opened the think block, everything before </think> is thought."""
    text = f"decoy {_reply(_item('NVDA', 'SELL'))}</think>\n{_reply(_item('NVDA', 'BUY'))}"
    assert _verdicts(_parse(text, ("NVDA",))) == {"NVDA": Verdict.BUY}
    assert strip_thoughts("a<think>b</think>c<THINKING>d</thinking>e").split() == ["a", "c", "e"]


# --- 3. the replaced worker's ---TICKER--- format -------------------------------------------


def test_seed_segments_one_per_ticker() -> None:
    """ "analysis---TICKER---code" segments give one call each, codes 0/1/2 as HOLD/BUY/SELL,
    with the analysis as reasoning and confidence 0.5 flagged as not given."""
    text = "NVDA calls are loaded.---NVDA---1\nAMD looks weak.---AMD---2\nMU is a mention.---MU---0"
    parsed = _parse(text, ("NVDA", "AMD", "MU"))
    assert parsed.method is ParseMethod.SEED_000
    assert _verdicts(parsed) == {"NVDA": Verdict.BUY, "AMD": Verdict.SELL, "MU": Verdict.HOLD}
    assert parsed.calls["NVDA"] == TickerCall(
        "NVDA", Verdict.BUY, 0.5, "NVDA calls are loaded.", "confidence not given"
    )
    assert parsed.calls["AMD"].reasoning == "AMD looks weak."


def test_seed_segment_with_cashtag_and_markup() -> None:
    """The ticker may carry a "$" and the code bold markup; a "---TICKER---1.5" is no code."""
    parsed = _parse("Strong buy ---$nvda--- **1**", ("NVDA",))
    assert parsed.method is ParseMethod.SEED_000
    assert _verdicts(parsed) == {"NVDA": Verdict.BUY}
    with pytest.raises(UnparseableReply):
        _parse("Target ---NVDA---1.5x", ("NVDA",))


# --- 4. a trailing code ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "verdict"),
    [
        ("The post is bullish on both.\n\n1", Verdict.BUY),
        ("Clearly bearish. Decision: **2**.", Verdict.SELL),
        ("No actionable signal here.\n`0`\n", Verdict.HOLD),
    ],
)
def test_trailing_code_applies_to_every_ticker(text: str, verdict: Verdict) -> None:
    """A final 0/1/2, after punctuation and markup are ignored, is the verdict for every
    requested ticker, with confidence 0.5 flagged as not given."""
    parsed = _parse(text)
    assert parsed.method is ParseMethod.TRAILING_CODE
    assert _verdicts(parsed) == {"NVDA": verdict, "AMD": verdict}
    assert {call.confidence for call in parsed.calls.values()} == {0.5}
    assert {call.flag for call in parsed.calls.values()} == {"confidence not given"}


def test_trailing_code_reasoning_is_the_analysis() -> None:
    """The prose before the code, without the markup around the code, is the reasoning."""
    parsed = _parse("Bullish on calls.\nDecision: **1**", ("NVDA",))
    assert parsed.calls["NVDA"].reasoning == "Bullish on calls.\nDecision"


@pytest.mark.parametrize(
    "text",
    [
        "Price target is $2",
        "Revenue grew 3.2",
        "They are ranked #1",
        "See Q2",
        "Up 12",
        '{"signals": [{"ticker": "NVDA", "verdict": "MAYBE", "confidence": 1}]}',
    ],
)
def test_numbers_that_are_not_codes(text: str) -> None:
    """Prices, decimals, ranks, quarters, longer numbers and the last number of a rejected
    JSON object are not read as a final code."""
    with pytest.raises(UnparseableReply):
        _parse(text, ("NVDA",))


# --- validation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("word", "verdict"),
    [
        ("buy", Verdict.BUY),
        ("Bullish", Verdict.BUY),
        ("LONG", Verdict.BUY),
        ("sell", Verdict.SELL),
        ("bearish", Verdict.SELL),
        ("Short", Verdict.SELL),
        ("hold", Verdict.HOLD),
        ("Neutral", Verdict.HOLD),
        ("none", Verdict.HOLD),
        ("no signal", Verdict.HOLD),
        ("No_Signal", Verdict.HOLD),
        (" HOLD ", Verdict.HOLD),
    ],
)
def test_verdict_synonyms_any_case(word: str, verdict: Verdict) -> None:
    """Verdicts are read case-insensitively, with bullish/long, bearish/short and
    neutral/none/no signal as synonyms."""
    assert _parse(_reply(_item("NVDA", word)), ("NVDA",)).calls["NVDA"].verdict is verdict


@pytest.mark.parametrize("verdict", ["MAYBE", "strong buy", "", 1, None])
def test_invalid_verdict_is_rejected(verdict: object) -> None:
    """An item whose verdict is not a known word is dropped with the reason recorded; its
    ticker is missing while valid items still count."""
    parsed = _parse(_reply(_item("NVDA", "BUY"), _item("AMD") | {"verdict": verdict}))
    assert _verdicts(parsed) == {"NVDA": Verdict.BUY}
    assert parsed.missing == ("AMD",)
    assert len(parsed.rejected) == 1
    assert "AMD: verdict" in parsed.rejected[0]


@pytest.mark.parametrize("confidence", [-0.1, 100.5, 250, True, "high", float("nan")])
def test_out_of_range_confidence_is_rejected(confidence: object) -> None:
    """Negative, over-100, boolean, non-numeric and non-finite confidences reject the item."""
    parsed = _parse(_reply(_item("NVDA"), _item("AMD", "SELL", confidence)))
    assert "AMD" not in parsed.calls
    assert parsed.missing == ("AMD",)
    assert "confidence" in parsed.rejected[0]


def test_only_invalid_items_make_the_reply_unparseable() -> None:
    """When every item fails validation the reply is an error carrying the reasons."""
    with pytest.raises(UnparseableReply) as caught:
        _parse(_reply(_item("NVDA", "BUY", 7000)), ("NVDA",))
    assert "confidence 7000 is outside 0..1" in caught.value.reason


@pytest.mark.parametrize(
    ("given", "expected"), [(85, 0.85), (100, 1.0), ("85%", 0.85), ("40 %", 0.4), (1.5, 0.015)]
)
def test_percentage_confidence_is_scaled_and_flagged(given: object, expected: float) -> None:
    """A confidence above 1 and at most 100, or written with "%", is read as a percentage
    and flagged."""
    call = _parse(_reply(_item("NVDA", "BUY", given)), ("NVDA",)).calls["NVDA"]
    assert call.confidence == pytest.approx(expected)
    assert call.flag == "confidence given as a percentage"


def test_confidence_bounds_and_numeric_text_are_accepted_unflagged() -> None:
    """0, 1 and numeric text inside 0..1 are plain confidences."""
    parsed = _parse(_reply(_item("NVDA", "BUY", 0), _item("AMD", "SELL", "1")))
    assert (parsed.calls["NVDA"].confidence, parsed.calls["NVDA"].flag) == (0.0, "")
    assert (parsed.calls["AMD"].confidence, parsed.calls["AMD"].flag) == (1.0, "")


def test_missing_confidence_is_flagged_not_invented_silently() -> None:
    """A JSON item without a confidence keeps its verdict at 0.5, flagged as not given."""
    item = {"ticker": "NVDA", "verdict": "SELL", "reasoning": "puts"}
    call = _parse(json.dumps(item), ("NVDA",)).calls["NVDA"]
    assert (call.verdict, call.confidence, call.flag) == (Verdict.SELL, 0.5, "confidence not given")


def test_ticker_is_normalized() -> None:
    """Tickers are matched after stripping "$", upper-casing and writing share classes
    with "-", and keyed by the ticker as requested."""
    parsed = _parse(_reply(_item(" $nvda "), _item("brk.b", "SELL")), ("NVDA", "BRK-B"))
    assert _verdicts(parsed) == {"NVDA": Verdict.BUY, "BRK-B": Verdict.SELL}
    assert parsed.calls["NVDA"].ticker == "NVDA"
    assert parsed.calls["BRK-B"].flag == ""


def test_wrong_ticker_is_flagged_and_kept_as_extra() -> None:
    """An item for a ticker that is neither in the post nor a known symbol is flagged and
    kept in extra for audit; the requested ticker it did not answer is missing."""
    parsed = _parse(_reply(_item("ZZZQ", "BUY")), ("NVDA",))
    assert parsed.calls == {}
    assert parsed.missing == ("NVDA",)
    assert len(parsed.extra) == 1
    extra = parsed.extra[0]
    assert (extra.ticker, extra.verdict) == ("ZZZQ", Verdict.BUY)
    assert extra.flag == "ticker not in post and not a known symbol; ticker not requested"


def test_unrequested_but_real_ticker_is_only_flagged_as_not_requested() -> None:
    """A ticker named in the post (or known) but not asked about is extra, not suspicious."""
    parsed = _parse(_reply(_item("NVDA"), _item("TSLA", "SELL")), ("NVDA",))
    assert [(call.ticker, call.flag) for call in parsed.extra] == [("TSLA", "ticker not requested")]


def test_requested_ticker_absent_from_post_and_book_is_flagged() -> None:
    """The mention check applies to requested tickers too: "$sym" or a bare word, any case."""
    known_nothing = parse_reply(_reply(_item("AMD")), ["AMD"], "amd? $nvda", lambda _: False)
    assert known_nothing.calls["AMD"].flag == ""
    invented = parse_reply(_reply(_item("AM")), ["AM"], "AMD and $AMDX", lambda _: False)
    assert invented.calls["AM"].flag == "ticker not in post and not a known symbol"


def test_whole_text_pseudo_ticker_takes_the_single_item() -> None:
    """A request for "*" (the post as a whole) takes the reply's only item, whatever its
    ticker; with several items there is no telling which one, so "*" is missing."""
    single = _parse(_reply(_item("NVDA", "SELL")), ("*",))
    assert single.calls["*"].verdict is Verdict.SELL
    assert single.extra == ()
    several = _parse(_reply(_item("NVDA"), _item("AMD")), ("*",))
    assert several.missing == ("*",)
    assert len(several.extra) == 2


def test_item_without_ticker_answers_a_single_request() -> None:
    """With one ticker asked about, an item without a ticker is about it (flagged); with
    several it is rejected."""
    item = {"verdict": "BUY", "confidence": 0.6, "reasoning": "r"}
    call = _parse(json.dumps(item), ("NVDA",)).calls["NVDA"]
    assert (call.ticker, call.verdict, call.flag) == ("NVDA", Verdict.BUY, "ticker not given")
    with pytest.raises(UnparseableReply, match="no ticker"):
        _parse(json.dumps(item))


def test_duplicate_items_keep_the_first() -> None:
    """A second item for the same ticker is ignored and noted in rejected."""
    parsed = _parse(_reply(_item("NVDA", "BUY"), _item("nvda", "SELL")), ("NVDA",))
    assert _verdicts(parsed) == {"NVDA": Verdict.BUY}
    assert parsed.rejected == ("NVDA: duplicate item ignored",)


def test_missing_lists_unanswered_tickers_in_request_order() -> None:
    """Requested tickers the reply said nothing valid about are listed as requested."""
    parsed = _parse(_reply(_item("AMD")), ("NVDA", "AMD", "MU"))
    assert parsed.missing == ("NVDA", "MU")


# --- unparseable replies ------------------------------------------------------------------


def test_unparseable_reply_keeps_the_raw_text_truncated() -> None:
    """Prose with no JSON, segment or final code is an error, never a neutral verdict; the
    raw reply is kept, cut to 2,000 characters."""
    text = "I cannot determine a signal from this post. " * 200
    with pytest.raises(UnparseableReply) as caught:
        _parse(text)
    assert len(text) > RAW_LIMIT == 2_000
    assert caught.value.raw == text[:RAW_LIMIT]
    assert caught.value.reason
    assert caught.value.reason in str(caught.value)


@pytest.mark.parametrize("text", ["", "   \n\t "])
def test_empty_reply_is_unparseable(text: str) -> None:
    """An empty or blank reply is an error with the reason "empty reply"."""
    with pytest.raises(UnparseableReply) as caught:
        _parse(text)
    assert caught.value.reason == "empty reply"
    assert caught.value.raw == text


@pytest.mark.parametrize("text", ['{"signals": []}', "{}", '{"error": "rate limited"}', "[]"])
def test_json_without_items_is_unparseable(text: str) -> None:
    """A JSON reply with no items says nothing, which is an error, not a HOLD."""
    with pytest.raises(UnparseableReply):
        _parse(text)


def test_pathological_reply_is_rejected_quickly() -> None:
    """Thousands of broken JSON fragments or deep nesting do not make parsing quadratic."""
    for text in ('{"a' * 20_000, '{"a":' * 20_000, "[" * 50_000, "[{" * 30_000):
        with pytest.raises(UnparseableReply):
            _parse(text)
