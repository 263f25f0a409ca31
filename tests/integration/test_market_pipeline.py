"""The market pipeline end to end through ``signalsmith run --until-idle``: seed 001's request
in, an insight envelope out (on the insight stream, in the day's hash, in SQL); requests that
can never succeed dead-lettered with the reason and the request."""

from __future__ import annotations

import asyncio
import csv
import json
import os
import subprocess
import sys
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest
import redis as sync_redis
from sqlalchemy import select

from signalsmith.fakellm import FakeConfig, FakeLLMServer
from signalsmith.store.database import create_engine, parse_database_url
from signalsmith.store.schema import DecisionRow
from tests.conftest import in_thread
from tests.contracts.v1 import decode
from tests.integration.test_market_exchange import FakeCoinbase, coinbase  # noqa: F401
from tests.integration.test_notify import Webhook, webhook  # noqa: F401

pytestmark = [pytest.mark.redis, pytest.mark.slow]
SEED_REQUEST = {"correlation_id": "abc-123", "product_id": "BTC-USD", "prompt": "trend_analysis"}


def bundled_rows(product: str) -> list[list[float]]:
    path = files("signalsmith").joinpath("data", "candles", f"{product}.csv")
    with path.open() as handle:
        return [
            [float(row[name]) for name in ("time", "open", "high", "low", "close", "volume")]
            for row in csv.DictReader(handle)
        ]


def _cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    dropped = {"REDIS_URL", "REDIS_ADDR", "GROQ_API_KEY", "LLM_PROVIDERS", "SIGNALSMITH_CONFIG"}
    environ = {k: v for k, v in os.environ.items() if k not in dropped}
    return subprocess.run(
        [sys.executable, "-m", "signalsmith", *args],
        env={**environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


async def _rows(url: str) -> list[dict[str, Any]]:
    engine = create_engine(parse_database_url(url))
    try:
        async with engine.connect() as connection:
            table = DecisionRow.__table__
            return [dict(row) for row in (await connection.execute(select(table))).mappings()]
    finally:
        await engine.dispose()


def test_seed_requests_become_insights_in_the_stream_the_hash_and_sql(
    stream_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**stream_env, "MARKET_EXCHANGE": ""}
    url = f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"
    env["DATABASE_URL"] = url
    client = sync_redis.Redis.from_url(env["REDIS_URL"])
    try:
        rows = bundled_rows("BTC-USD")
        client.xadd(env["MARKET_STREAM"], {**SEED_REQUEST, "candles": json.dumps(rows)})
        data = {
            "correlation_id": "eth-1",
            "product_id": "eth-usd",
            "candles": bundled_rows("ETH-USD"),
        }
        client.xadd(env["MARKET_STREAM"], {"data": json.dumps(data)})
        client.xadd(env["MARKET_STREAM"], {**SEED_REQUEST, "prompt": "price_prediction"})
        client.xadd(env["MARKET_STREAM"], {"product_id": "BTC-USD", "candles": "[[1, 2"})
        client.xadd(env["MARKET_STREAM"], {"product_id": "NOPE-USD"})  # no candle source
        result = _cli(["run", "--until-idle", "1"], env)
        assert result.returncode == 0, result.stderr[-2000:]
        insights = [json.loads(f[b"data"]) for _id, f in client.xrange(env["INSIGHT_STREAM"])]
        dead = [f for _id, f in client.xrange(f"{env['MARKET_STREAM']}:dlq")]
        day_hash = client.hgetall(f"{env['DECISION_HASH_PREFIX']}:BTC-USD:2026-12-01")
        pending = client.xpending(env["MARKET_STREAM"], env["MARKET_GROUP"])["pending"]
    finally:
        client.close()
    assert pending == 0
    insights.sort(key=lambda insight: insight["correlation_id"])  # handled concurrently
    assert [i["correlation_id"] for i in insights] == ["abc-123", "eth-1"]
    for insight in insights:
        assert decode(json.dumps(insight)) is not None, "not a valid v1 envelope"
        decision = insight["decision"]
        assert decision["kind"] == "insight"
        assert decision["status"] == "ok"
        text = insight["meta"]["insight"]["text"]
        assert text.startswith(decision["target"]["ticker"])
        assert len(text.split()) <= 100
        assert decision["synthesis"]["reasoning"] == text
        assert insight["meta"]["insight"]["candles"]["source"] == "request"
        assert insight["meta"]["insight"]["indicators"]["rsi"] > 0
    assert insights[0]["decision"]["target"] == {
        "ticker": "BTC-USD",
        "trade_date": "2026-12-01",
        "exchange": "",
        "asset_class": "crypto",
    }
    assert json.loads(day_hash[b"json"])["correlation_id"] == "abc-123"
    assert day_hash[b"verdict"].decode() == insights[0]["decision"]["synthesis"]["verdict"]
    reasons = sorted(f[b"reason"].decode() for f in dead)
    assert reasons == ["bad_request", "no_candles", "unknown_prompt"]
    assert all(b"orig.product_id" in f or b"orig.data" in f for f in dead)
    stored = in_thread(_rows(url))
    assert {(r["correlation_id"], r["kind"], r["ticker"]) for r in stored} == {
        ("abc-123", "insight", "BTC-USD"),
        ("eth-1", "insight", "ETH-USD"),
    }


def _stream_candles(client: sync_redis.Redis, key: str, rows: list[list[float]]) -> None:
    for row in rows:
        fields = dict(zip(("time", "open", "high", "low", "close", "volume"), row, strict=True))
        client.xadd(key, {name: str(value) for name, value in fields.items()})


async def test_requests_without_candles_take_the_file_the_stream_then_the_exchange(
    stream_env: dict[str, str],
    tmp_path: Path,
    coinbase: FakeCoinbase,  # noqa: F811 - the fixture, imported
) -> None:
    """MARKET_CANDLES holds BTC-USD, the candle stream ETH-USD, the exchange (a local server
    speaking Coinbase Exchange's API, through ccxt) SOL-USD; a product none has is dead-lettered
    with the exchange's reason."""
    candles = tmp_path / "candles"
    candles.mkdir()
    source = files("signalsmith").joinpath("data", "candles", "BTC-USD.csv")
    (candles / "BTC-USD.csv").write_text(source.read_text())
    env = {
        **stream_env,
        "MARKET_CANDLES": str(candles),
        "MARKET_EXCHANGE_URL": coinbase.url,
        "MARKET_LOOKBACK": "120",
        "STORE_ENABLED": "false",
    }
    client = sync_redis.Redis.from_url(env["REDIS_URL"])
    try:
        _stream_candles(client, f"{env['MARKET_CANDLE_PREFIX']}:ETH-USD", bundled_rows("ETH-USD"))
        for product in ("BTC-USD", "ETH-USD", "SOL-USD", "DOGE-USD"):
            client.xadd(env["MARKET_STREAM"], {"correlation_id": product, "product_id": product})
        dropped = {"REDIS_URL", "REDIS_ADDR", "GROQ_API_KEY", "LLM_PROVIDERS"}
        environ = {k: v for k, v in os.environ.items() if k not in dropped}
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "signalsmith",
            "run",
            "--until-idle",
            "1",
            env={**environ, **env},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        _out, err = await asyncio.wait_for(process.communicate(), 120)
        assert process.returncode == 0, err.decode()[-2000:]
        insights = [json.loads(f[b"data"]) for _id, f in client.xrange(env["INSIGHT_STREAM"])]
        dead = [f for _id, f in client.xrange(f"{env['MARKET_STREAM']}:dlq")]
    finally:
        client.close()
    sources = {i["correlation_id"]: i["meta"]["insight"]["candles"]["source"] for i in insights}
    assert sources == {"BTC-USD": "file", "ETH-USD": "stream", "SOL-USD": "exchange"}
    counts = {i["correlation_id"]: i["meta"]["insight"]["candles"]["count"] for i in insights}
    assert counts["BTC-USD"] == counts["ETH-USD"] == 120
    assert counts["SOL-USD"] in (119, 120)  # the still-forming candle is left out
    exchanged = next(i for i in insights if i["correlation_id"] == "SOL-USD")
    assert exchanged["decision"]["target"]["exchange"] == "coinbaseexchange"
    assert [(f[b"orig.product_id"], f[b"reason"]) for f in dead] == [
        (b"DOGE-USD", b"unknown_product")
    ]
    assert coinbase.candle_calls == 1


def test_seed_request_reaches_a_webhook_once_through_the_running_service(
    stream_env: dict[str, str],
    webhook: Webhook,  # noqa: F811 - the fixture, imported
) -> None:
    """Seed 001's example XADDed → an insight → one message at the channel; a second run over
    the same stream (a restart) sends nothing again."""
    env = {
        **stream_env,
        "MARKET_EXCHANGE": "",
        "STORE_ENABLED": "false",
        "NOTIFY_URLS": webhook.url("hook"),
        "NOTIFY_GROUP": f"{stream_env['GROUP']}-notify",
        "NOTIFY_PREFIX": f"{stream_env['DECISION_HASH_PREFIX']}:notify",
    }
    client = sync_redis.Redis.from_url(env["REDIS_URL"])
    try:
        rows = bundled_rows("SOL-USD")
        client.xadd(
            env["MARKET_STREAM"],
            {**SEED_REQUEST, "product_id": "SOL-USD", "candles": json.dumps(rows)},
        )
        first = _cli(["run", "--until-idle", "1"], env)
        assert first.returncode == 0, first.stderr[-2000:]
        assert "notifications: json://127.0.0.1" in first.stdout
        again = _cli(["run", "--until-idle", "0.5"], env)
        assert again.returncode == 0, again.stderr[-2000:]
    finally:
        client.close()
    messages = webhook.messages("hook")
    assert len(messages) == 1
    assert messages[0].title.startswith("SOL-USD ")
    assert messages[0].message.startswith("SOL-USD")


GOOD = "BTC-USD trends higher: buyers lead and price holds above its averages, momentum intact."
INVENTED = "BTC-USD will reach 250000 by Friday as RSI hits 91.3."


@pytest.mark.parametrize(
    ("replies", "status", "calls"),
    [([INVENTED, GOOD], "ok", 2), ([INVENTED, INVENTED], "degraded", 2), ([GOOD], "ok", 1)],
)
def test_the_model_writes_the_insight_and_an_invented_number_is_asked_for_again(
    stream_env: dict[str, str], replies: list[str], status: str, calls: int
) -> None:
    """Through the running service with a provider configured (the local fake): a reply that
    quotes a number the indicators do not hold is asked for once more; a second bad reply
    publishes the trend read's own text with status degraded and both rejected texts kept."""
    with FakeLLMServer(FakeConfig(seed=3, replies=list(replies))) as fake:
        env = {
            **stream_env,
            "MARKET_EXCHANGE": "",
            "STORE_ENABLED": "false",
            "LLM_PROVIDERS": "custom",
            "CUSTOM_BASE_URL": fake.base_url,
            "CUSTOM_API_KEY": "sk-market-e2e",
            "CUSTOM_MODEL": "fake-1",
            "LLM_CACHE": "off",
        }
        client = sync_redis.Redis.from_url(env["REDIS_URL"])
        try:
            request = {**SEED_REQUEST, "candles": json.dumps(bundled_rows("BTC-USD"))}
            client.xadd(env["MARKET_STREAM"], request)
            result = _cli(["run", "--until-idle", "1"], env)
            assert result.returncode == 0, result.stderr[-2000:]
            (insight,) = [json.loads(f[b"data"]) for _id, f in client.xrange(env["INSIGHT_STREAM"])]
        finally:
            client.close()
        assert fake.stats.calls == calls
    decision, meta = insight["decision"], insight["meta"]
    assert decision["status"] == status
    assert meta["insight"]["llm"]["calls"] == calls
    assert meta["analyzers"] == ["technicals", "llm"]
    assert meta["models"]
    assert meta["tokens"]["input"] > 0
    if status == "ok":
        assert decision["synthesis"]["reasoning"] == GOOD
    else:
        assert [r["text"] for r in meta["insight"]["llm"]["rejected"]] == [INVENTED, INVENTED]
        assert decision["synthesis"]["reasoning"] == meta["insight"]["text"] != INVENTED
        assert decision["synthesis"]["reasoning"].startswith("BTC-USD:")
    assert "sk-market-e2e" not in result.stdout + result.stderr
