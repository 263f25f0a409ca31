"""eval's pure parts: labeled lines in, metrics out, with hand-computed expectations."""

from __future__ import annotations

from pathlib import Path

import pytest

from signalsmith.analyze.fake import FunctionAnalyzer
from signalsmith.domain import ModelCall, Opinion, Post, Status, Verdict
from signalsmith.errors import PoisonInput, TransientError
from signalsmith.evaluate import (
    Item,
    Pair,
    Scored,
    accuracy,
    class_scores,
    classification,
    confusion,
    describe,
    directional,
    llm_usage,
    load_items,
    macro_f1,
    misclassified,
    parse_items,
    report,
    score_all,
)
from signalsmith.oneshot import OneShot

# 9 pairs: buy 4 (2 right, 1 hold, 1 sell), sell 2 (1 right, 1 buy), hold 3 (2 right, 1 buy)
MIXED: list[Pair] = [
    ("buy", "buy"),
    ("buy", "buy"),
    ("buy", "hold"),
    ("buy", "sell"),
    ("sell", "sell"),
    ("sell", "buy"),
    ("hold", "hold"),
    ("hold", "hold"),
    ("hold", "buy"),
]


def test_confusion_counts_every_cell() -> None:
    """The matrix is {true: {predicted: count}}, with zero cells present."""
    assert confusion(MIXED) == {
        "buy": {"buy": 2, "sell": 1, "hold": 1},
        "sell": {"buy": 1, "sell": 1, "hold": 0},
        "hold": {"buy": 1, "sell": 0, "hold": 2},
    }


def test_precision_recall_f1_by_hand() -> None:
    """buy: 2 of 4 predicted right, 2 of 4 found; sell 1/2, 1/2; hold 2/3, 2/3."""
    scores = class_scores(confusion(MIXED))
    assert scores["buy"].precision == pytest.approx(0.5)
    assert scores["buy"].recall == pytest.approx(0.5)
    assert scores["buy"].f1 == pytest.approx(0.5)
    assert scores["sell"].f1 == pytest.approx(0.5)
    assert scores["hold"].precision == pytest.approx(2 / 3)
    assert scores["hold"].recall == pytest.approx(2 / 3)
    assert [scores[label].support for label in ("buy", "sell", "hold")] == [4, 2, 3]


def test_accuracy_and_macro_f1_by_hand() -> None:
    """5 of 9 right; macro-F1 is the mean of 0.5, 0.5 and 2/3."""
    assert accuracy(MIXED) == pytest.approx(5 / 9)
    assert macro_f1(confusion(MIXED)) == pytest.approx((0.5 + 0.5 + 2 / 3) / 3)


def test_directional_coverage_and_accuracy_by_hand() -> None:
    """Of 6 items labeled buy/sell, 5 got a direction (coverage 5/6) and 3 of those were right."""
    moves = directional(MIXED)
    assert moves.support == 6
    assert moves.coverage == pytest.approx(5 / 6)
    assert moves.accuracy == pytest.approx(3 / 5)


def test_a_class_never_predicted_has_precision_zero() -> None:
    """sell is a true label but never predicted: precision 0 (no division error), F1 0, and it
    still counts in macro-F1."""
    pairs: list[Pair] = [("buy", "buy"), ("sell", "buy"), ("hold", "hold")]
    scores = class_scores(confusion(pairs))
    assert (scores["sell"].precision, scores["sell"].recall, scores["sell"].f1) == (0.0, 0.0, 0.0)
    assert scores["buy"].f1 == pytest.approx(2 / 3)
    assert macro_f1(confusion(pairs)) == pytest.approx((2 / 3 + 0.0 + 1.0) / 3)


def test_a_class_absent_everywhere_is_left_out_of_macro_f1() -> None:
    """No item is sell and none is predicted sell: macro-F1 averages buy and hold only."""
    pairs: list[Pair] = [("buy", "buy"), ("hold", "buy")]
    assert macro_f1(confusion(pairs)) == pytest.approx((2 / 3 + 0.0) / 2)


def test_empty_and_all_hold_edges_score_zero() -> None:
    """No pairs, or no direction ever called: zeros, never a crash."""
    assert accuracy([]) == 0.0
    assert macro_f1(confusion([])) == 0.0
    assert directional([]) == directional([("hold", "hold")])
    timid = directional([("buy", "hold"), ("sell", "hold")])
    assert (timid.coverage, timid.accuracy, timid.support) == (0.0, 0.0, 2)


def test_classification_is_json_with_rounded_figures() -> None:
    """The JSON form carries n, accuracy, macro-F1, per-class scores, confusion, directional."""
    result = classification(MIXED)
    assert result["n"] == 9
    assert result["accuracy"] == 0.5556
    assert result["macro_f1"] == 0.5556
    assert result["per_class"] == {
        "buy": {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 4},
        "sell": {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2},
        "hold": {"precision": 0.6667, "recall": 0.6667, "f1": 0.6667, "support": 3},
    }
    assert result["directional"] == {"coverage": 0.8333, "accuracy": 0.6, "support": 6}


def test_lines_become_items_with_defaults() -> None:
    """Blank lines are skipped; a missing id is named after its line; labels are case-blind;
    tickers are normalized like a producer's."""
    text = '{"text": " Up ", "label": "BUY"}\n\n{"id": 7, "text": "x", "label": "hold", ' + (
        '"tickers": ["$nvda", "AMD"], "category": "social", "reason": "why"}\n'
    )
    assert list(parse_items("f.jsonl", text)) == [
        Item("f.jsonl:1", "Up", "buy"),
        Item("7", "x", "hold", ("NVDA", "AMD"), "social"),
    ]


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("{broken", "not JSON"),
        ('["text", "buy"]', "JSON object"),
        ('{"label": "buy"}', "'text'"),
        ('{"text": "   ", "label": "buy"}', "'text'"),
        ('{"text": "t"}', "'label'"),
        ('{"text": "t", "label": "bullish"}', "'bullish'"),
        ('{"text": "t", "label": "buy", "tickers": [3]}', "tickers"),
        ('{"text": "t", "label": "buy", "category": 1}', "'category'"),
        ('{"text": "t", "label": "buy", "id": true}', "'id'"),
    ],
)
def test_a_malformed_line_names_its_number_and_problem(line: str, problem: str) -> None:
    """Each kind of bad line raises PoisonInput saying where (file and line) and what."""
    text = '{"text": "fine", "label": "hold"}\n' + line + "\n"
    with pytest.raises(PoisonInput) as caught:
        list(parse_items("set.jsonl", text))
    assert caught.value.detail.startswith("set.jsonl line 2: ")
    assert problem in caught.value.detail


def test_load_items_refuses_a_missing_or_empty_file(tmp_path: Path) -> None:
    """A missing file and a file with no items are input errors, not an empty report."""
    with pytest.raises(PoisonInput, match="no such file"):
        load_items(str(tmp_path / "absent.jsonl"))
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n")
    with pytest.raises(PoisonInput, match="no labeled items"):
        load_items(str(empty))


def test_llm_usage_sums_answered_calls_and_counts_failures() -> None:
    """Answered calls (cached included) are summed; a no-provider-answered marker is a failure;
    reach is the share of texts the LLM was asked about."""
    item = Item("a", "t", "buy")
    paid = ModelCall("openai", "m", tokens_in=100, tokens_out=20, cost_usd=0.001)
    cached = ModelCall("openai", "m", tokens_in=100, tokens_out=20, cached=True)
    failed = ModelCall("", "", errors=("openai: server",))
    scored = [
        Scored(item, "buy", Status.OK, (paid,), reached_llm=True),
        Scored(item, "buy", Status.OK, (cached,), reached_llm=True),
        Scored(item, "buy", Status.DEGRADED, (failed,), reached_llm=True),
        Scored(item, "hold", Status.OK),
    ]
    assert llm_usage(scored) == {
        "calls": 2,
        "cached": 1,
        "failed": 1,
        "tokens_in": 200,
        "tokens_out": 40,
        "cost_usd": 0.001,
        "texts_reaching_llm": 3,
        "share_of_texts_reaching_llm": 0.75,
        "texts_calling_llm": 1,  # the reused (cached) answer cost nothing
        "share_of_texts_calling_llm": 0.25,
    }


def test_report_counts_statuses_and_lists_misclassified_in_order() -> None:
    """Statuses count all four values; by_category appears when categories do; misclassified
    lists the first N wrong ones with their text shortened."""
    long_text = "word " * 100
    scored = [
        Scored(Item("a", "t", "buy", category="news"), "buy", Status.OK),
        Scored(Item("b", long_text, "sell", ("AMD",), "social"), "hold", Status.ERROR),
        Scored(Item("c", "t", "hold"), "buy", Status.DEGRADED),
    ]
    result = report(scored, 0.5, "offline", show_errors=5)
    assert result["statuses"] == {"ok": 1, "degraded": 1, "abstain": 0, "error": 1}
    assert result["texts_per_s"] == 6.0
    assert result["analyzer"] == "offline"
    assert set(result["by_category"]) == {"news", "social", "uncategorized"}  # type: ignore[call-overload]
    wrong = misclassified(scored, 1)
    assert len(wrong) == 1
    assert wrong[0]["id"] == "b"
    assert wrong[0]["tickers"] == ["AMD"]
    assert len(str(wrong[0]["text"])) == 160
    assert [w["id"] for w in result["misclassified"]] == ["b", "c"]  # type: ignore[attr-defined]
    assert "by_category" not in report(scored[2:], 0.5, "offline")
    assert "misclassified" not in report(scored, 0.5, "offline")


def test_describe_names_models_and_policy_only() -> None:
    """No provider: "offline"; otherwise provider/model list and policy."""
    from signalsmith.analyze.llm.providers import ProviderConfig

    config = ProviderConfig(
        "openai",
        "http://x/v1",
        "gpt-x",
        "sk-secret",
        "json_schema",
        5,
        4,
        None,
        None,
        None,
        0,
        0,
        0,
    )
    assert describe([], "always") == "offline"
    assert describe([config], "uncertain") == "llm:openai/gpt-x policy=uncertain"


def _by_ticker(post: Post, ticker: str) -> Opinion:
    if "fail" in post.text:
        raise TransientError("every LLM provider failed: test")
    verdict = {"NVDA": Verdict.BUY, "AMD": Verdict.SELL}.get(ticker, Verdict.HOLD)
    score = {Verdict.BUY: 0.8, Verdict.SELL: -0.8, Verdict.HOLD: 0.0}[verdict]
    return Opinion(verdict, 0.9, score)


async def test_prediction_follows_the_items_tickers() -> None:
    """One ticker: that ticker's decision; several or none: the whole text's (opposite views
    cancel out); a failed analysis is an error predicted hold; results keep input order."""
    shot = OneShot([FunctionAnalyzer(_by_ticker)])
    items = [
        Item("1", "NVDA up, AMD down", "buy", ("NVDA",)),
        Item("2", "NVDA up, AMD down", "sell", ("AMD",)),
        Item("3", "nothing named here", "hold"),
        Item("4", "this will fail", "sell", ("AMD",)),
        Item("5", "NVDA up, AMD down", "hold", ("NVDA", "AMD")),
    ]
    scored = await score_all(shot, items, concurrency=2)
    assert [s.item.id for s in scored] == ["1", "2", "3", "4", "5"]
    assert [s.predicted for s in scored] == ["buy", "sell", "hold", "hold", "hold"]
    assert [s.status for s in scored][:4] == [Status.OK, Status.OK, Status.OK, Status.ERROR]
