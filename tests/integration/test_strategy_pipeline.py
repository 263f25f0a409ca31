"""The strategy pipeline end to end through ``signalsmith run``: seed 002's signal XADDed (flat
fields or one ``data`` field) or POSTed becomes a rated envelope on ENHANCED_STREAM and rows in
both SQL tables; a signal too old is published ``expired`` with no model call; the model's
rating is used when a provider answers, and an unusable reply twice leaves the rules' rating
with status ``degraded``; malformed signals are dead-lettered with the field named."""

from __future__ import annotations

import asyncio
import csv
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import pytest
import redis as sync_redis
from sqlalchemy import select

from signalsmith.fakellm import FakeConfig, FakeLLMServer
from signalsmith.sink.outputs import dead_letter_commit
from signalsmith.store.database import create_engine, parse_database_url
from signalsmith.store.schema import AnalysisResultRow, EnhancementTaskRow
from tests.conftest import in_thread
from tests.contracts.v1 import decode
from tests.integration.test_notify import Webhook, webhook  # noqa: F401
from tests.serving import serving

pytestmark = [pytest.mark.redis, pytest.mark.slow]
INDICATORS = {
    "rsi": 58.2,
    "atr": 2.1,
    "sma_20": 186.4,
    "sma_50": 181.9,
    "volume_ratio": 1.6,
    "bb_upper": 193.0,
    "bb_lower": 179.8,
    "bb_middle": 186.4,
    "stochastic_k": 62.0,
    "stochastic_d": 58.5,
}


def seed_signal(signal_id: str, *, age_s: float = 0, **changes: Any) -> dict[str, Any]:
    stamp = datetime.now(UTC) - timedelta(seconds=age_s)
    return {
        "signal_id": signal_id,
        "symbol": "AAPL",
        "side": "buy",
        "price": 189.5,
        "timestamp": stamp.isoformat(),
        "strategy": "sma_cross",
        "indicators": INDICATORS,
        **changes,
    }


def _cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    dropped = {"REDIS_ADDR", "GROQ_API_KEY", "LLM_PROVIDERS", "SIGNALSMITH_CONFIG"}
    environ = {k: v for k, v in os.environ.items() if k not in dropped}
    return subprocess.run(
        [sys.executable, "-m", "signalsmith", *args],
        env={**environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _env(stream_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    return {
        **stream_env,
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'store.db'}",
        "MARKET_ENABLED": "false",
        "LOG_LEVEL": "WARNING",
    }


def _model_env(
    stream_env: dict[str, str], tmp_path: Path, base_url: str, **extra: str
) -> dict[str, str]:
    """``_env`` with the fake model as the one provider (no reply cache)."""
    return {
        **_env(stream_env, tmp_path),
        "LLM_PROVIDERS": "custom",
        "CUSTOM_BASE_URL": base_url,
        "CUSTOM_API_KEY": "sk-strategy-e2e",
        "CUSTOM_MODEL": "fake-model",
        "LLM_CACHE": "off",
        **extra,
    }


def _environ(env: dict[str, str]) -> dict[str, str]:
    """The test process's environment without what would point the service elsewhere, and
    ``env``."""
    dropped = {"REDIS_ADDR", "SIGNALSMITH_CONFIG", "HTTP_HOST", "LLM_PROVIDERS"}
    return {**{k: v for k, v in os.environ.items() if k not in dropped}, **env}


async def _tables(url: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    engine = create_engine(parse_database_url(url))
    try:
        async with engine.connect() as connection:
            tasks = (await connection.execute(select(EnhancementTaskRow.__table__))).mappings()
            task_rows = [dict(row) for row in tasks]
            ratings = (await connection.execute(select(AnalysisResultRow.__table__))).mappings()
            return task_rows, [dict(row) for row in ratings]
    finally:
        await engine.dispose()


def _rated(client: sync_redis.Redis, stream: str) -> dict[str, dict[str, Any]]:
    rated: dict[str, dict[str, Any]] = {}
    for _id, fields in client.xrange(stream):
        assert decode(fields[b"data"]) is not None  # what a v1 consumer reads
        envelope = json.loads(fields[b"data"])
        rated[envelope["correlation_id"]] = envelope
    return rated


def test_signals_become_rated_envelopes_and_rows_in_both_tables(
    stream_env: dict[str, str], tmp_path: Path
) -> None:
    env = _env(stream_env, tmp_path)
    client = sync_redis.Redis.from_url(env["REDIS_URL"])
    try:
        flat = {
            k: json.dumps(v) if isinstance(v, dict) else str(v)
            for k, v in seed_signal("flat-1").items()
        }
        client.xadd(env["STRATEGY_STREAM"], flat)
        client.xadd(
            env["STRATEGY_STREAM"], {"data": json.dumps(seed_signal("data-1", side="short"))}
        )
        client.xadd(env["STRATEGY_STREAM"], {"data": json.dumps(seed_signal("old-1", age_s=900))})
        client.xadd(env["STRATEGY_STREAM"], {"symbol": "AAPL", "side": "up", "price": "1"})
        client.xadd(env["STRATEGY_STREAM"], {"data": json.dumps(seed_signal("bad-1", price="abc"))})
        result = _cli(["run", "--until-idle", "1", "--only", "strategy,store,csv"], env)
        assert result.returncode == 0, result.stderr
        rated = _rated(client, env["ENHANCED_STREAM"])
        letters = client.xrange(f"{env['STRATEGY_STREAM']}:dlq")
    finally:
        client.close()
    assert set(rated) == {"flat-1", "data-1", "old-1"}
    flat_one = rated["flat-1"]
    assert flat_one["decision"]["kind"] == "strategy"
    assert flat_one["decision"]["status"] == "ok"
    meta = flat_one["meta"]["strategy"]
    assert meta["signal"]["side"] == "buy"
    assert meta["agreement"] == "confirm"
    assert flat_one["decision"]["synthesis"]["verdict"] == "BUY"
    assert rated["data-1"]["meta"]["strategy"]["signal"]["side"] == "sell"
    assert rated["data-1"]["decision"]["synthesis"]["verdict"] == "HOLD"
    expired = rated["old-1"]
    assert expired["decision"]["status"] == "expired"
    assert expired["meta"]["strategy"]["offline"] is None
    reasons = sorted(fields[b"detail"].decode() for _id, fields in letters)
    assert len(reasons) == 2
    assert reasons[0].startswith("price") or reasons[0].startswith("side")
    assert {reason.split(":")[0] for reason in reasons} == {"price", "side"}
    tasks, ratings = in_thread(_tables(env["DATABASE_URL"]))
    by_id = {task["signal_id"]: task for task in tasks}
    assert {k: v["status"] for k, v in by_id.items()} == {
        "flat-1": "done",
        "data-1": "done",
        "old-1": "expired",
    }
    assert sorted((r["signal_id"], r["analyst"]) for r in ratings) == [
        ("data-1", "rules"),
        ("flat-1", "rules"),
    ]
    exported = Path(env["STATE_DIR"]) / "llm_enhanced" / "llm_signals.csv"
    with exported.open(newline="") as handle:
        lines = list(csv.DictReader(handle))
    assert {row["signal_id"]: (row["status"], row["rating"]) for row in lines} == {
        task["signal_id"]: (
            {"done": "ok"}.get(task["status"], task["status"]),
            "" if task["rating"] is None else str(task["rating"]),
        )
        for task in tasks
    }
    summary = json.loads((exported.parent / "llm_processing_summary.json").read_text())
    assert (summary["processed"], summary["expired"]) == (2, 1)


@pytest.fixture
def fake_llm() -> Iterator[FakeLLMServer]:
    with FakeLLMServer(FakeConfig(seed=7)) as server:
        yield server


def test_the_model_rates_and_an_unusable_reply_twice_degrades(
    stream_env: dict[str, str], tmp_path: Path, fake_llm: FakeLLMServer
) -> None:
    env = _model_env(stream_env, tmp_path, fake_llm.base_url)
    client = sync_redis.Redis.from_url(env["REDIS_URL"])
    try:
        client.xadd(env["STRATEGY_STREAM"], {"data": json.dumps(seed_signal("good-1"))})
        result = _cli(["run", "--until-idle", "1", "--only", "strategy,store"], env)
        assert result.returncode == 0, result.stderr
        fake_llm.config.replies = ["I like it.", "Still prose, no JSON."]
        client.xadd(env["STRATEGY_STREAM"], {"data": json.dumps(seed_signal("prose-1"))})
        client.xadd(env["STRATEGY_STREAM"], {"data": json.dumps(seed_signal("old-2", age_s=600))})
        calls_before = fake_llm.stats.calls
        result = _cli(["run", "--until-idle", "1", "--only", "strategy,store"], env)
        assert result.returncode == 0, result.stderr
        rated = _rated(client, env["ENHANCED_STREAM"])
    finally:
        client.close()
    good = rated["good-1"]["meta"]["strategy"]
    assert good["llm"]["rating"] == 7
    assert good["llm"]["agreement"] == "confirm"
    assert good["llm"]["model"].endswith("fake-model")
    assert rated["good-1"]["decision"]["status"] == "ok"
    prose = rated["prose-1"]
    assert prose["decision"]["status"] == "degraded"
    assert "no valid rating in two replies" in prose["meta"]["strategy"]["llm_error"]
    assert prose["meta"]["strategy"]["offline"]["agreement"] == "confirm"
    assert rated["old-2"]["decision"]["status"] == "expired"
    assert fake_llm.stats.calls - calls_before == 2  # the prose twice; the expired one none
    tasks, ratings = in_thread(_tables(env["DATABASE_URL"]))
    status = {task["signal_id"]: task["status"] for task in tasks}
    assert status == {"good-1": "done", "prose-1": "failed", "old-2": "expired"}
    assert ("good-1", "llm") in {(r["signal_id"], r["analyst"]) for r in ratings}


@pytest.fixture
def service(stream_env: dict[str, str], tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    env = _env(stream_env, tmp_path)
    with serving(["run", "--only", "strategy,store"], _environ(env)) as url:
        yield url, env


def test_a_posted_signal_is_answered_at_once_then_read_back(
    service: tuple[str, dict[str, str]],
) -> None:
    url, env = service
    with httpx.Client(base_url=url, timeout=10) as client:
        asked = client.post("/api/strategy-signals", json=seed_signal("http-1"))
        assert asked.status_code == 202, asked.text
        assert asked.json()["signal_id"] == "http-1"
        again = client.post("/api/strategy-signals", json=seed_signal("http-1"))
        assert again.json()["queued"] is False
        bad = client.post("/api/strategy-signals", json=seed_signal("http-2", side="up"))
        assert bad.status_code == 422
        assert "side" in bad.json()["detail"]
        future = seed_signal("http-3", age_s=-3600)
        assert client.post("/api/strategy-signals", json=future).status_code == 422
        deadline = time.monotonic() + 30
        while (answer := client.get("/api/strategy-signals/http-1")).status_code == 202:
            assert answer.json()["state"] in ("pending", "processing", "decided")
            assert answer.headers["retry-after"] == "1"
            assert time.monotonic() < deadline, "never stored"
            time.sleep(0.1)
        assert answer.status_code == 200
        assert answer.json()["signal_id"] == "http-1"
        assert client.get("/api/strategy-signals/never-posted").status_code == 404
        stats = client.get("/api/strategy-signals/stats").json()
        assert stats["processed"] == 1
    redis = sync_redis.Redis.from_url(env["REDIS_URL"])
    try:
        assert redis.xlen(env["STRATEGY_STREAM"]) == 1  # the repeated POST queued nothing
    finally:
        redis.close()


@pytest.mark.parametrize("batch_size", ["1", "30"])
def test_under_seed_002s_rate_limit_nothing_waits_in_memory_and_stale_signals_expire(
    stream_env: dict[str, str], tmp_path: Path, fake_llm: FakeLLMServer, batch_size: str
) -> None:
    """The provider limited to 14 requests/min (seed 002): 40 fresh signals and 10 already
    stale. Each fresh one is published at once, by the model while it has quota and by the
    rules (degraded, with the reason) when it would have to wait past LLM_MAX_WAIT_S; the stale
    ones are expired without a call. Nothing is lost and the model is asked at most 14 times.
    With batching, the signals that would wait share requests: the model rates every one."""
    env = _model_env(
        stream_env,
        tmp_path,
        fake_llm.base_url,
        CUSTOM_RPM="14",
        CUSTOM_TPM="950000",
        LLM_MAX_WAIT_S="0.5",
        LLM_BATCH_SIZE=batch_size,
    )
    client = sync_redis.Redis.from_url(env["REDIS_URL"])
    try:
        for n in range(10):
            stale = seed_signal(f"stale-{n}", age_s=400)
            client.xadd(env["STRATEGY_STREAM"], {"data": json.dumps(stale)})
        for n in range(40):
            client.xadd(env["STRATEGY_STREAM"], {"data": json.dumps(seed_signal(f"fresh-{n}"))})
        started = time.monotonic()
        result = _cli(["run", "--until-idle", "1", "--only", "strategy"], env)
        elapsed = time.monotonic() - started
        assert result.returncode == 0, result.stderr
        rated = _rated(client, env["ENHANCED_STREAM"])
        pending = client.xpending(env["STRATEGY_STREAM"], stream_env["STRATEGY_GROUP"])
    finally:
        client.close()
    assert len(rated) == 50
    assert pending["pending"] == 0
    statuses = {key: envelope["decision"]["status"] for key, envelope in rated.items()}
    assert {statuses[f"stale-{n}"] for n in range(10)} == {"expired"}
    by_model = [k for k, v in rated.items() if v["meta"]["strategy"]["llm"] is not None]
    degraded = [k for k, status in statuses.items() if status == "degraded"]
    assert fake_llm.stats.calls <= 14
    assert len(by_model) + len(degraded) == 40
    if batch_size == "1":
        assert 1 <= len(by_model) <= 14
    else:
        assert len(by_model) == 40
        assert fake_llm.stats.batched >= 1
        batched = [
            v
            for v in rated.values()
            if (v["meta"]["strategy"]["llm"] or {}).get("batch_size", 1) > 1
        ]
        assert batched
    for key in degraded:
        assert "rate_limited" in rated[key]["meta"]["strategy"]["llm_error"]
        assert rated[key]["meta"]["strategy"]["offline"] is not None
    assert elapsed < 60  # published at once, not held until the quota refills


def test_a_kill_9_mid_run_leaves_each_signal_once_in_the_stream_sql_and_csv(
    stream_env: dict[str, str], tmp_path: Path
) -> None:
    """3,000 signals; the worker (pipeline, store and CSV export in one process) is SIGKILLed
    while it holds signals it has not acknowledged, and a new run finishes: every signal is
    published once, has one row in each table and one line in llm_signals.csv."""
    env = {**_env(stream_env, tmp_path), "CLAIM_IDLE_MS": "500", "READ_COUNT": "50"}
    total = 3_000
    client = sync_redis.Redis.from_url(env["REDIS_URL"])
    try:
        for first in range(0, total, 500):
            pipe = client.pipeline(transaction=False)
            for n in range(first, first + 500):
                pipe.xadd(env["STRATEGY_STREAM"], {"data": json.dumps(seed_signal(f"k{n}"))})
            pipe.execute()
        dropped = {"REDIS_ADDR", "LLM_PROVIDERS", "SIGNALSMITH_CONFIG"}
        environ = {k: v for k, v in os.environ.items() if k not in dropped}
        worker = subprocess.Popen(
            [sys.executable, "-m", "signalsmith", "run", "--only", "strategy,store,csv"],
            env={**environ, **env, "HTTP_PORT": "0"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        group = stream_env["STRATEGY_GROUP"]
        while (
            client.xlen(env["ENHANCED_STREAM"]) < 300
            or client.xpending(env["STRATEGY_STREAM"], group)["pending"] == 0
        ):
            assert worker.poll() is None, "the worker exited"
            assert time.monotonic() < deadline, "the worker never got going"
            time.sleep(0.002)
        worker.kill()
        worker.wait()
        assert client.xlen(env["ENHANCED_STREAM"]) < total, "the kill did not land mid-run"
        time.sleep(0.6)  # past CLAIM_IDLE_MS: the dead worker's entries are reclaimed
        result = _cli(["run", "--until-idle", "1.5", "--only", "strategy,store,csv"], env)
        assert result.returncode == 0, result.stderr[-2000:]
        published = [json.loads(f[b"data"]) for _id, f in client.xrange(env["ENHANCED_STREAM"])]
    finally:
        client.close()
    ids = [envelope["correlation_id"] for envelope in published]
    assert sorted(ids) == sorted(f"k{n}" for n in range(total))  # each once
    tasks, ratings = in_thread(_tables(env["DATABASE_URL"]))
    assert len(tasks) == total
    assert len({task["signal_id"] for task in tasks}) == total
    assert len(ratings) == total  # one rules' rating each
    exported = Path(env["STATE_DIR"]) / "llm_enhanced" / "llm_signals.csv"
    with exported.open(newline="") as handle:
        lines = [row["signal_id"] for row in csv.DictReader(handle)]
    assert sorted(lines) == sorted(ids)


def test_posting_500_signals_a_second_never_waits_on_a_slow_model(
    stream_env: dict[str, str], tmp_path: Path
) -> None:
    """The model answers in 2 s; 1,000 signals are POSTed at 500/s (open loop). Every POST is
    answered 202 well before the model could have answered once, and every signal is then
    published: rated by the model while it had a slot, the rest expired (STRATEGY_MAX_AGE_S=3)."""
    with FakeLLMServer(FakeConfig(seed=5, latency_ms=2_000)) as fake:
        env = _model_env(stream_env, tmp_path, fake.base_url, STRATEGY_MAX_AGE_S="3")
        with serving(["run", "--only", "strategy"], _environ(env)) as url:
            latencies = asyncio.run(_post_open_loop(url, count=1_000, rate=500.0))
            client = sync_redis.Redis.from_url(env["REDIS_URL"])
            try:
                deadline = time.monotonic() + 60
                while client.xlen(env["ENHANCED_STREAM"]) < 1_000:
                    assert time.monotonic() < deadline, "signals were lost"
                    time.sleep(0.1)
                rated = _rated(client, env["ENHANCED_STREAM"])
            finally:
                client.close()
    assert len(latencies) == 1_000  # every POST answered 202
    assert max(latencies) < 1_000  # ms: never the model's 2 s
    statuses = {envelope["decision"]["status"] for envelope in rated.values()}
    assert statuses <= {"ok", "expired"}
    assert sum(1 for e in rated.values() if e["decision"]["status"] == "ok") >= 1


def test_a_posted_signal_reads_pending_then_processing_then_rated(
    stream_env: dict[str, str], tmp_path: Path
) -> None:
    """One signal rated at a time by a model answering in 1.5 s: while the first is being
    rated, GET says so (``processing``, delivered once); the worker may hold the next one
    already (read ahead), and the third still waits in the stream (``pending``, and listed so
    from its SQL row); all then read back rated, from the store."""
    with FakeLLMServer(FakeConfig(seed=3, latency_ms=1_500)) as fake:
        env = _model_env(stream_env, tmp_path, fake.base_url, STRATEGY_MAX_IN_FLIGHT="1")
        command = ["run", "--only", "strategy,store"]
        with serving(command, _environ(env)) as url, httpx.Client(base_url=url) as client:
            for signal_id in ("first", "second", "third"):
                answer = client.post("/api/strategy-signals", json=seed_signal(signal_id))
                assert answer.status_code == 202, answer.text
            waiting = _listed_pending(client, "third")
            seen = _states_until_rated(client, ["first", "second", "third"])
            rated = [client.get(f"/api/strategy-signals/{n}") for n in ("first", "third")]
    assert {"signal_id": "first", "state": "processing", "deliveries": 1} in seen["first"]
    assert {"signal_id": "third", "state": "pending"} in seen["third"]
    assert (waiting["status"], waiting["ratings"], waiting["symbol"]) == ("pending", [], "AAPL")
    for answer in rated:
        assert answer.status_code == 200
        assert answer.json()["status"] == "done"
        assert [r["analyst"] for r in answer.json()["ratings"]] == ["rules", "llm"]


def test_the_store_lists_a_signal_pending_then_failed_once_it_is_dead_lettered(
    stream_env: dict[str, str], tmp_path: Path
) -> None:
    """A store running alone: a signal queued is listed pending; when the pipeline
    dead-letters it (its dead letter written as the engine writes one), its row becomes
    failed with the reason, and reads back so."""
    env = _env(stream_env, tmp_path)
    stream = env["STRATEGY_STREAM"]
    redis = sync_redis.Redis.from_url(env["REDIS_URL"])
    try:
        with (
            serving(["run", "--only", "store"], _environ(env)) as url,
            httpx.Client(base_url=url) as client,
        ):
            fields = {b"data": json.dumps(seed_signal("dl-1")).encode()}
            entry_id = redis.xadd(stream, fields).decode()
            assert _listed_pending(client, "dl-1")["status"] == "pending"
            letter = dead_letter_commit(
                entry_id,
                fields,
                stream=stream,
                dlq_stream=f"{stream}:dlq",
                reason="internal_error",
                detail="RuntimeError",
                now=datetime.now(UTC),
                maxlen=0,
            ).records[0]
            redis.xadd(letter.stream, dict(letter.fields))
            deadline = time.monotonic() + 10
            while (answer := client.get("/api/strategy-signals/dl-1")).status_code != 200:
                assert time.monotonic() < deadline, answer.text
                time.sleep(0.05)
    finally:
        redis.close()
    row = answer.json()
    assert (row["status"], row["last_error"]) == (
        "failed",
        "dead-lettered: internal_error: RuntimeError",
    )
    assert row["ratings"] == []


def _listed_pending(client: httpx.Client, signal_id: str) -> dict[str, Any]:
    """The signal as the store lists it among the pending ones (its row written as it was
    queued, before any rating)."""
    deadline = time.monotonic() + 10
    while True:
        page = client.get("/api/strategy-signals", params={"status": "pending"}).json()
        found = [item for item in page["items"] if item["signal_id"] == signal_id]
        if found:
            return found[0]
        assert time.monotonic() < deadline, "never listed as pending"
        time.sleep(0.05)


def _states_until_rated(
    client: httpx.Client, signal_ids: list[str]
) -> dict[str, list[dict[str, Any]]]:
    """Each signal's 202 answers, polled until every one is stored (200)."""
    seen: dict[str, list[dict[str, Any]]] = {signal_id: [] for signal_id in signal_ids}
    waiting, deadline = list(signal_ids), time.monotonic() + 30
    while waiting:
        assert time.monotonic() < deadline, f"never rated: {waiting}"
        for signal_id in list(waiting):
            answer = client.get(f"/api/strategy-signals/{signal_id}")
            if answer.status_code == 200:
                waiting.remove(signal_id)
            else:
                assert answer.status_code == 202, answer.text
                seen[signal_id].append(answer.json())
        time.sleep(0.05)
    return seen


async def _post_open_loop(url: str, *, count: int, rate: float) -> list[float]:
    """POST ``count`` signals at ``rate`` per second, each at its time; the latency in ms of
    each answered 202."""
    latencies: list[float] = []
    bodies = [json.dumps(seed_signal(f"p{n}")).encode() for n in range(count)]
    async with aiohttp.ClientSession(url, connector=aiohttp.TCPConnector(limit=64)) as session:
        start = time.perf_counter()

        async def one(number: int) -> None:
            due = start + number / rate
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            headers = {"Content-Type": "application/json"}
            async with session.post(
                "/api/strategy-signals", data=bodies[number], headers=headers
            ) as answer:
                await answer.read()
                if answer.status == 202:
                    latencies.append((time.perf_counter() - due) * 1000)

        await asyncio.gather(*(one(n) for n in range(count)))
    return latencies


def test_with_notify_kinds_strategy_a_rated_signal_reaches_a_webhook_once(
    stream_env: dict[str, str],
    webhook: Webhook,  # noqa: F811 - the fixture, imported
) -> None:
    """NOTIFY_KINDS=strategy reads ENHANCED_STREAM by default: one message per signal, none
    again on a restart."""
    env = {
        **stream_env,
        "MARKET_ENABLED": "false",
        "STORE_ENABLED": "false",
        "NOTIFY_URLS": webhook.url("trades"),
        "NOTIFY_KINDS": "strategy",
        "NOTIFY_GROUP": f"{stream_env['GROUP']}-notify",
        "NOTIFY_PREFIX": f"{stream_env['DECISION_HASH_PREFIX']}:notify",
    }
    client = sync_redis.Redis.from_url(env["REDIS_URL"])
    try:
        client.xadd(env["STRATEGY_STREAM"], {"data": json.dumps(seed_signal("n-1"))})
        first = _cli(["run", "--until-idle", "1", "--only", "strategy,notify"], env)
        assert first.returncode == 0, first.stderr[-2000:]
        again = _cli(["run", "--until-idle", "0.5", "--only", "strategy,notify"], env)
        assert again.returncode == 0, again.stderr[-2000:]
    finally:
        client.close()
    messages = webhook.messages("trades")
    assert len(messages) == 1
    title = messages[0].title
    assert title.startswith("AAPL buy 189.5 · "), title
    assert re.search(r" (confirm|caution|reject) \d+/10 \(conf [01]\.\d\d\) · sma_cross$", title)
