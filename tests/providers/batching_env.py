"""The settings the batching tests share: one OpenAI-compatible provider (the fake) taking one
call at a time, so questions that arrive while it answers wait and go together."""

from __future__ import annotations

from signalsmith.strategy.contract import SignalFacts


def batching_env(base_url: str, **extra: str) -> dict[str, str]:
    return {
        "LLM_PROVIDERS": "openai",
        "OPENAI_BASE_URL": base_url,
        "OPENAI_API_KEY": "sk-batch-test",
        "OPENAI_MAX_IN_FLIGHT": "1",
        "LLM_POLICY": "always",
        "LLM_CACHE": "off",
        "DEDUP_ENABLED": "false",
        "LLM_BATCH_SIZE": "10",
        "LLM_BATCH_WAIT_MS": "20",
        **extra,
    }


def strategy_signal(index: int, rsi: float) -> SignalFacts:
    """A trading system's buy signal ``index`` with the RSI that decides its rating."""
    return {
        "signal_id": f"s{index}",
        "symbol": f"SYM{index}",
        "side": "buy",
        "price": 100.0 + index,
        "timestamp": "2026-12-05T10:00:00Z",
        "strategy": "bands",
        "indicators": {"rsi": rsi},
    }
