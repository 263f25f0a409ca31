"""``signalsmith eval`` through the real entry point with the offline analyzer: metrics that add
up, error analysis, --output, and one-line exit 2 for bad input. No Redis involved."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.resources import files
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
CLI = [sys.executable, "-m", "signalsmith"]
SMALL = Path(__file__).resolve().parents[1] / "data" / "eval_small.jsonl"


def _offline_env() -> dict[str, str]:
    """The parent's environment without any provider, LLM or config-file setting."""
    return {
        key: value
        for key, value in os.environ.items()
        if not key.endswith(("_API_KEY", "_BASE_URL"))
        and not key.startswith("LLM_")
        and key != "SIGNALSMITH_CONFIG"
    }


def _eval(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: PLW1510 - the tests check returncode themselves
        [*CLI, "eval", *args],
        env=_offline_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_offline_eval_prints_metrics_that_add_up(tmp_path: Path) -> None:
    """Exit 0; the confusion matrix, supports, accuracy and statuses agree with each other and
    the file; categories get their own metrics; the mislabeled item is listed by --errors; and
    --output holds the same JSON as stdout."""
    out = tmp_path / "metrics.json"
    result = _eval(str(SMALL), "--errors", "20", "--output", str(out), "--concurrency", "3")
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout)
    assert json.loads(out.read_text()) == metrics
    assert metrics["analyzer"] == "offline"
    assert metrics["n"] == 9
    matrix = metrics["confusion"]
    assert sum(sum(row.values()) for row in matrix.values()) == 9
    assert {k: v["support"] for k, v in metrics["per_class"].items()} == {
        "buy": 3,
        "sell": 4,
        "hold": 2,
    }
    right = sum(matrix[label][label] for label in matrix)
    assert metrics["accuracy"] == round(right / 9, 4)
    assert sum(metrics["statuses"].values()) == 9
    assert metrics["directional"]["support"] == 7
    assert metrics["llm"]["calls"] == 0
    assert metrics["llm"]["share_of_texts_reaching_llm"] == 0.0
    assert metrics["texts_per_s"] > 0
    assert set(metrics["by_category"]) == {"news_sentence", "headline", "social"}
    assert sum(c["n"] for c in metrics["by_category"].values()) == 9
    wrong = metrics["misclassified"]
    assert len(wrong) == 9 - right
    assert "x1" in [w["id"] for w in wrong]
    assert {"id", "text", "label", "predicted", "status"} <= wrong[0].keys()


def test_per_ticker_labels_on_one_text_are_scored_separately() -> None:
    """The same post labeled buy for NVDA and sell for AMD: each is judged on its own ticker."""
    result = _eval(str(SMALL), "--errors", "20")
    assert result.returncode == 0, result.stderr
    wrong = {w["id"] for w in json.loads(result.stdout)["misclassified"]}
    assert not {"s1", "s2"} & wrong


def test_a_malformed_line_exits_2_with_one_line_naming_it(tmp_path: Path) -> None:
    """A bad label on line 3: exit 2, one stderr line naming the file, line and problem, no
    traceback and nothing on stdout (no analysis was started)."""
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        '{"text": "Nvidia beat estimates", "label": "buy"}\n\n'
        '{"text": "Intel cut its outlook", "label": "bearish"}\n'
    )
    result = _eval(str(bad))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "bad.jsonl line 3" in lines[0]
    assert "'bearish'" in lines[0]
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_a_missing_file_exits_2(tmp_path: Path) -> None:
    """A path that does not exist is an input error, exit 2, one line."""
    result = _eval(str(tmp_path / "nope.jsonl"))
    assert result.returncode == 2
    assert "no such file" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.skipif(
    not (files("signalsmith") / "data" / "eval" / "dev.jsonl").is_file()
    or not (files("signalsmith") / "data" / "eval" / "test.jsonl").is_file(),
    reason="the bundled eval sets are not installed yet",
)
def test_bundled_names_resolve_to_the_packaged_halves() -> None:
    """`dev` and `test` are the bundled halves and `all` is both."""
    sizes = {}
    for name in ("dev", "test", "all"):
        result = _eval(name)
        assert result.returncode == 0, result.stderr
        sizes[name] = json.loads(result.stdout)["n"]
    assert sizes["dev"] > 0
    assert sizes["test"] > 0
    assert sizes["all"] == sizes["dev"] + sizes["test"]


TICKERS = Path(__file__).resolve().parents[1] / "data" / "eval_tickers.jsonl"


def test_per_ticker_accuracy_and_rater_false_signals_on_the_fixture() -> None:
    """The offline analyzer on eval_tickers.jsonl: 12 subject pairs, 8 right (GM and MSFT are
    labeled against the text, ZRBX is missed twice); of 5 raters, UBS (a1, SELL) and MS (a2,
    a line with raters but no per_ticker, BUY) are found and given a signal, while BCS is not
    found and GS and C get none; the 12 items still count in the item-level figures, each
    predicted from its first ticker (m1's whole text is a hold, its NVDA a buy)."""
    result = _eval(str(TICKERS), "--errors", "20")
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout)
    assert metrics["n"] == 12
    assert metrics["confusion"] == {
        "buy": {"buy": 5, "sell": 0, "hold": 1},  # z1: ZRBX not found, so no signal
        "sell": {"buy": 0, "sell": 3, "hold": 0},
        "hold": {"buy": 0, "sell": 0, "hold": 3},
    }
    assert metrics["accuracy"] == 0.9167
    assert set(metrics["by_category"]) == {"analyst", "multi_ticker", "headline", "social"}
    assert metrics["per_ticker"] == {
        "pairs": 12,
        "correct": 8,
        "accuracy": 0.6667,
        "missed": 2,
        "by_category": {
            "analyst": {"pairs": 4, "correct": 4, "accuracy": 1.0, "missed": 0},
            "headline": {"pairs": 2, "correct": 0, "accuracy": 0.0, "missed": 2},
            "multi_ticker": {"pairs": 6, "correct": 4, "accuracy": 0.6667, "missed": 0},
        },
    }
    assert metrics["raters"] == {
        "pairs": 5,
        "false_signals": 2,
        "false_signal_rate": 0.4,
        "offending": [
            {"id": "a1", "rater": "UBS", "verdict": "sell"},
            {"id": "a2", "rater": "MS", "verdict": "buy"},
        ],
    }
    wrong = [
        (w["id"], w.get("ticker"), w["label"], w["predicted"]) for w in metrics["misclassified"]
    ]
    assert wrong == [
        ("m2", "GM", "buy", "sell"),
        ("m3", "MSFT", "hold", "sell"),
        ("z1", "ZRBX", "buy", None),
        ("z2", "ZRBX", "hold", None),
    ]


def test_errors_limit_caps_the_rater_and_ticker_lists() -> None:
    """--errors 1 lists one offending rater and one wrong entry; without --errors neither list
    appears but the counts do."""
    capped = json.loads(_eval(str(TICKERS), "--errors", "1").stdout)
    assert capped["raters"]["offending"] == [{"id": "a1", "rater": "UBS", "verdict": "sell"}]
    assert [w["id"] for w in capped["misclassified"]] == ["m2"]
    plain = json.loads(_eval(str(TICKERS)).stdout)
    assert "offending" not in plain["raters"]
    assert "misclassified" not in plain
    assert plain["raters"]["false_signals"] == 2


def test_eval_agrees_with_analyze_on_every_ticker_of_the_fixture() -> None:
    """Whatever the analyzer answers, eval's per-ticker and rater counts are the ones worked out
    from `signalsmith analyze` on the same texts: its per_ticker verdict for each subject (absent:
    missed) and for each rater (BUY or SELL: a false signal)."""
    records = [json.loads(line) for line in TICKERS.read_text().splitlines() if line.strip()]
    lines = "".join(json.dumps({"id": r["id"], "text": r["text"]}) + "\n" for r in records)
    analyzed = subprocess.run(  # noqa: PLW1510 - returncode checked below
        [*CLI, "analyze"],
        input=lines,
        env=_offline_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert analyzed.returncode == 0, analyzed.stderr
    verdicts = {
        r["id"]: {t: d["verdict"].lower() for t, d in r["per_ticker"].items()}
        for r in map(json.loads, analyzed.stdout.splitlines())
    }
    subjects = [
        (verdicts[r["id"]].get(t.lstrip("$").upper()), label.strip().lower())
        for r in records
        for t, label in r.get("per_ticker", {}).items()
    ]
    raters = [verdicts[r["id"]].get(rater) for r in records for rater in r.get("raters", [])]
    metrics = json.loads(_eval(str(TICKERS)).stdout)
    assert metrics["per_ticker"]["pairs"] == len(subjects)
    assert metrics["per_ticker"]["correct"] == sum(got == want for got, want in subjects)
    assert metrics["per_ticker"]["missed"] == sum(got is None for got, _ in subjects)
    assert metrics["raters"]["pairs"] == len(raters)
    assert metrics["raters"]["false_signals"] == sum(got in ("buy", "sell") for got in raters)


def test_a_file_without_the_keys_reports_neither_section() -> None:
    """No item with per_ticker or raters: the report is the same shape as before."""
    metrics = json.loads(_eval(str(SMALL), "--errors", "20").stdout)
    assert "per_ticker" not in metrics
    assert "raters" not in metrics


def test_a_rater_that_is_also_a_subject_exits_2(tmp_path: Path) -> None:
    """A ticker both labeled and listed as a rater stops the run before any analysis, with one
    line naming the file, the line and the ticker."""
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        '{"text": "Nvidia beat estimates", "label": "buy"}\n'
        '{"text": "Tesla downgraded to sell at UBS", "per_ticker": {"TSLA": "sell"}, '
        '"raters": ["UBS", "TSLA"]}\n'
    )
    result = _eval(str(bad))
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "bad.jsonl line 2" in lines[0]
    assert "TSLA is both" in lines[0]
