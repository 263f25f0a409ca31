"""The fake LLM's oracle mode: labeled texts are answered with their labels, the rest with the
lexicon; existing behaviour without answers is unchanged."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from signalsmith.fakellm import FakeConfig, FakeLLMServer, reply_content
from signalsmith.fakeoracle import Answers

NEWS = "Kestrel Marine wins a EUR 40 mn order for two ferries."
PAIR = "Loading up on $NVDA calls, AMD is going to zero"


@pytest.fixture
def answers() -> Answers:
    return Answers(
        [
            {"text": NEWS, "label": "hold"},  # deliberately not what the lexicon says
            {"text": PAIR, "label": "buy", "tickers": ["NVDA"]},
            {"text": PAIR, "label": "sell", "tickers": ["AMD"]},
            {
                "text": "$INTC to $AMD",
                "label": "hold",
                "per_ticker": {"INTC": "sell", "AMD": "buy"},
            },
            {"text": "", "label": "invalid"},
        ]
    )


def _verdicts(content: str) -> dict[str, str]:
    return {s["ticker"]: s["verdict"] for s in json.loads(content)["signals"]}


def test_a_known_text_gets_its_label_per_ticker(answers: Answers) -> None:
    """Per-ticker labels from separate lines or from per_ticker; the whole-text label for '*'."""
    assert _verdicts(reply_content("ok", PAIR, ["NVDA", "AMD"], answers)) == {
        "NVDA": "BUY",
        "AMD": "SELL",
    }
    assert _verdicts(reply_content("ok", "$INTC to $AMD", ["INTC", "AMD"], answers)) == {
        "INTC": "SELL",
        "AMD": "BUY",
    }
    assert _verdicts(reply_content("ok", NEWS, ["*"], answers)) == {"*": "HOLD"}


def test_matching_ignores_quoting_spacing_and_the_source_line(answers: Answers) -> None:
    """The post as the prompt shows it (defused, with a Source line) still matches."""
    shown = f">  {NEWS.upper()}\n\nSource: r/stocks by someone"
    assert answers.lookup(shown) is not None


def test_unknown_texts_fall_back_to_the_lexicon(answers: Answers) -> None:
    """Without a label the fake answers as it always did."""
    text = "Sold all my $TSLA, deliveries missed badly"
    assert reply_content("ok", text, ["TSLA"], answers) == reply_content("ok", text, ["TSLA"])


def test_the_server_answers_labels_and_counts_them(tmp_path: Path) -> None:
    """Over HTTP: a labeled text is answered with its label and counted in /_fake/stats."""
    path = tmp_path / "answers.jsonl"
    path.write_text(json.dumps({"text": NEWS, "label": "sell"}) + "\n", encoding="utf-8")
    with FakeLLMServer(FakeConfig(), answers=Answers.load(path)) as server:
        body = {
            "model": "fake-1",
            "messages": [{"role": "user", "content": f"Tickers: *\n\n<post>\n{NEWS}\n</post>"}],
        }
        reply = httpx.post(
            f"{server.base_url}/chat/completions",
            json=body,
            headers={"Authorization": "Bearer x"},
        ).json()
        assert _verdicts(reply["choices"][0]["message"]["content"]) == {"*": "SELL"}
        assert server.stats.labeled == 1
