"""``signalsmith eval`` with an LLM provider: the fake OpenAI-compatible server on loopback is
asked, and the report counts its calls, tokens and reach, and its failures, never its key."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from signalsmith.fakellm import FakeConfig, FakeLLMServer

pytestmark = pytest.mark.slow
CLI = [sys.executable, "-m", "signalsmith"]
SMALL = Path(__file__).resolve().parents[1] / "data" / "eval_small.jsonl"
ITEMS = 9
CHATTER = 1  # "what a nice weekend": no ticker, no market vocabulary -> HOLD, no LLM call
CANARY = "sk-canary-eval-3b8e41"


@pytest.fixture
def fake_llm() -> Iterator[FakeLLMServer]:
    with FakeLLMServer(FakeConfig(seed=5, latency_ms=20)) as server:
        yield server


def _eval(llm: dict[str, str], *args: str, path: Path = SMALL) -> subprocess.CompletedProcess[str]:
    """eval on the small fixture (or ``path``) with only the given provider settings."""
    base = {
        key: value
        for key, value in os.environ.items()
        if not key.endswith(("_API_KEY", "_BASE_URL"))
        and not key.startswith("LLM_")
        and key != "SIGNALSMITH_CONFIG"
    }
    return subprocess.run(  # noqa: PLW1510 - the tests check returncode themselves
        [*CLI, "eval", str(path), *args],
        env={**base, **llm},
        capture_output=True,
        text=True,
        timeout=90,
    )


def _provider(server: FakeLLMServer, policy: str) -> dict[str, str]:
    return {
        "OPENAI_BASE_URL": server.base_url,
        "OPENAI_API_KEY": CANARY,
        "LLM_PROVIDERS": "openai",
        "LLM_POLICY": policy,
    }


def test_policy_always_asks_the_llm_about_every_text(fake_llm: FakeLLMServer) -> None:
    """Every market text reaches the LLM, once (chatter with no ticker and no market vocabulary
    is HOLD without a call); calls and tokens are counted; the analyzer line names the provider,
    model and policy and the key appears nowhere."""
    result = _eval(_provider(fake_llm, "always"), "--concurrency", "4", "--errors", "9")
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout)
    llm = metrics["llm"]
    assert llm["calls"] == ITEMS - CHATTER == fake_llm.stats.calls
    assert llm["texts_reaching_llm"] == ITEMS - CHATTER
    assert llm["share_of_texts_reaching_llm"] == round((ITEMS - CHATTER) / ITEMS, 4)
    assert llm["tokens_in"] > 0
    assert llm["tokens_out"] > 0
    assert llm["cost_usd"] > 0
    assert llm["failed"] == 0
    assert metrics["analyzer"] == "llm:openai/gpt-4o-mini policy=always"
    assert metrics["statuses"]["ok"] == ITEMS
    assert CANARY not in result.stdout + result.stderr


def test_policy_uncertain_reaches_only_some_texts(fake_llm: FakeLLMServer, tmp_path: Path) -> None:
    """Only texts the lexicon cannot settle are sent: a hedged text with cues both ways is, the
    small fixture's clear texts are not; the share reaching the LLM matches the fake's calls."""
    mixed = tmp_path / "mixed.jsonl"
    contested = "Not sure about $MSFT, great cloud numbers but the capex is ugly"
    line = json.dumps({"text": contested, "label": "hold", "tickers": ["MSFT"]})
    mixed.write_text(SMALL.read_text(encoding="utf-8") + line + "\n", encoding="utf-8")
    result = _eval(_provider(fake_llm, "uncertain"), path=mixed)
    assert result.returncode == 0, result.stderr
    llm = json.loads(result.stdout)["llm"]
    assert 0 < llm["calls"] == fake_llm.stats.calls < ITEMS + 1
    assert llm["share_of_texts_reaching_llm"] == round(llm["calls"] / (ITEMS + 1), 4)


def test_failed_analyses_are_counted_as_errors_not_dropped(fake_llm: FakeLLMServer) -> None:
    """A provider answering 5xx to everything: each text is an 'error' (scored as hold), the run
    still exits 0 with all items counted."""
    fake_llm.config.rate_5xx = 1.0
    llm = {**_provider(fake_llm, "always"), "LLM_ATTEMPTS": "1", "LLM_MAX_WAIT_S": "0"}
    result = _eval(llm)
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout)
    assert metrics["n"] == ITEMS
    assert metrics["statuses"]["error"] == ITEMS - CHATTER
    assert metrics["statuses"]["ok"] == CHATTER
    assert metrics["confusion"]["buy"]["hold"] == 3
    assert metrics["llm"]["calls"] == 0
    assert metrics["llm"]["share_of_texts_reaching_llm"] == round((ITEMS - CHATTER) / ITEMS, 4)
    assert CANARY not in result.stdout + result.stderr
