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
