"""The real entry points as a user runs them: ``signalsmith`` subprocesses against a real Redis."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis as sync_redis

from signalsmith.fakellm import FakeConfig, FakeLLMServer
from tests.contracts import v1
from tests.serving import announced_url

pytestmark = [pytest.mark.redis, pytest.mark.slow]
CLI = [sys.executable, "-m", "signalsmith"]
CANARY = "sk-canary-7f3e9d1c5b"


def _env(extra: dict[str, str]) -> dict[str, str]:
    """The parent's environment without any Redis or provider configuration, plus ``extra``."""
    dropped = {"REDIS_URL", "REDIS_ADDR", "REDIS_PASSWORD", "GROQ_API_KEY", "SIGNALSMITH_CONFIG"}
    base = {k: v for k, v in os.environ.items() if k not in dropped}
    return {**base, "PYTHONUNBUFFERED": "1", **extra}


def _cli(
    args: list[str], env: dict[str, str], **kwargs: object
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # type: ignore[call-overload, no-any-return]
        [*CLI, *args],
        env=_env(env),
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
        **kwargs,
    )


def _sync(url: str) -> sync_redis.Redis:
    return sync_redis.Redis.from_url(url)


def test_version_and_help() -> None:
    """--version prints the version; the subcommands of DESIGN.md exist."""
    assert _cli(["--version"], {}).stdout.startswith("signalsmith ")
    help_text = _cli(["--help"], {}).stdout
    for command in ("run", "replay", "analyze"):
        assert command in help_text


def test_bad_configuration_stops_with_one_line_and_exit_2(stream_env: dict[str, str]) -> None:
    """A bad value: exit status 2, one line on stderr naming the variable, no traceback."""
    result = _cli(["run"], {**stream_env, "HTTP_PORT": "99999"})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "HTTP_PORT" in lines[0]
    assert "Traceback" not in result.stderr


def test_replay_then_run_until_idle(stream_env: dict[str, str], tmp_path: Path) -> None:
    """1,000 replayed posts (some malformed) are all acknowledged: valid ones decided, malformed
    ones dead-lettered, nothing pending; the process exits 0."""
    posts = tmp_path / "posts.jsonl"
    tickers = ["NVDA", "TSLA", "AMD", "AAPL", "BTC"]
    with posts.open("w") as handle:
        for i in range(1000):
            if i % 100 == 7:
                handle.write("{broken json\n")
                continue
            mood = (
                "loading up on calls, to the moon 🚀"
                if i % 2
                else "buying puts, this is going to zero"
            )
            handle.write(json.dumps({"title": f"${tickers[i % 5]} post {i}", "body": mood}) + "\n")
    replayed = _cli(["replay", str(posts)], stream_env)
    assert replayed.returncode == 0, replayed.stderr
    assert "replayed 1000 posts" in replayed.stdout
    ran = _cli(["run", "--until-idle", "1"], {**stream_env, "OUTPUT_FORMAT": "both"})
    assert ran.returncode == 0, ran.stderr
    client = _sync(stream_env["REDIS_URL"])
    try:
        assert client.xpending(stream_env["STREAM"], stream_env["GROUP"])["pending"] == 0
        assert client.xlen(stream_env["STREAM"] + ":dlq") == 10
        rows = client.xrange(stream_env["SIGNAL_STREAM"])
        raw = [json.loads(f[b"data"]) for _id, f in rows if b"data" in f]
        assert all(v1.decode(f[b"data"]) is not None for _id, f in rows if b"data" in f)
        legacy = [f for _id, f in rows if b"decision" in f]
        assert len([r for r in raw if v1.is_post(r)]) == len(legacy) == 990
        # ~200 mentions of each ticker at once, all new to the rolling view: one spike each.
        spiked = sorted(r["decision"]["target"]["ticker"] for r in raw if not v1.is_post(r))
        assert spiked == sorted(tickers)
        assert all({k.decode() for k in f} == v1.SEED_000_LEGACY_FIELDS for f in legacy)
    finally:
        client.close()


class Running:
    """A ``signalsmith run`` process and the base URL it announced."""

    def __init__(self, process: subprocess.Popen[str], url: str) -> None:
        self.process = process
        self.url = url

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=5) as response:  # noqa: S310
                return int(response.status), bytes(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()


@pytest.fixture
def fake_llm() -> Iterator[FakeLLMServer]:
    with FakeLLMServer(FakeConfig(seed=7)) as server:
        yield server


@pytest.fixture
def running(stream_env: dict[str, str], fake_llm: FakeLLMServer) -> Iterator[Running]:
    """A long-running worker whose Groq provider (with a canary API key) is the fake LLM, with
    DEBUG logs; stopped by the test."""
    llm = {"GROQ_API_KEY": CANARY, "GROQ_BASE_URL": fake_llm.base_url, "LOG_LEVEL": "DEBUG"}
    env = _env({**stream_env, **llm})
    process = subprocess.Popen(
        [*CLI, "run"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        yield Running(process, announced_url(process))
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=10)  # reaps it and closes its pipes


def test_http_endpoints_and_sigterm(running: Running, stream_env: dict[str, str]) -> None:
    """/livez, /readyz, /health and /metrics answer while running; no secret shows anywhere;
    SIGTERM drains and exits 0 within 10 s."""
    deadline = time.monotonic() + 15
    while running.get("/readyz")[0] != 200 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert running.get("/livez")[0] == 200
    assert running.get("/readyz")[0] == 200
    client = _sync(stream_env["REDIS_URL"])
    try:
        client.xadd(stream_env["STREAM"], {"text": "$NVDA calls, loading up 🚀"})
        client.xadd(stream_env["STREAM"], {"data": "{nope"})
        deadline = time.monotonic() + 15
        while client.xpending(stream_env["STREAM"], stream_env["GROUP"])["pending"] and (
            time.monotonic() < deadline
        ):
            time.sleep(0.1)
        while json.loads(running.get("/health")[1])["counts"]["processed"] < 2:
            assert time.monotonic() < deadline
            time.sleep(0.1)
    finally:
        client.close()
    status, body = running.get("/health")
    health = json.loads(body)
    assert status == 200
    assert health["status"] == "ok"
    assert health["counts"]["dead_lettered"] == 1
    assert health["redis"]["reachable"]
    status, metrics = running.get("/metrics")
    text = metrics.decode()
    assert 'signalsmith_dead_lettered_total{pipeline="posts",reason="bad_json"} 1.0' in text
    assert 'signalsmith_llm_calls_total{outcome="ok",provider="groq"} 1.0' in text
    assert health["providers"][0]["name"] == "groq"
    assert health["providers"][0]["state"] == "ok"
    assert "signalsmith_analysis_seconds_bucket" in text
    assert "signalsmith_in_flight" in text
    started = time.monotonic()
    running.process.send_signal(signal.SIGTERM)
    out, err = running.process.communicate(timeout=10)
    assert running.process.returncode == 0
    assert time.monotonic() - started < 10
    for shown in (body.decode(), text, out, err):
        assert CANARY not in shown


def test_analyze_one_text_and_jsonl_on_stdin() -> None:
    """analyze TEXT prints one JSON object; JSONL on stdin gives one line per input, and a bad
    line gets an error line (exit 1) without stopping the rest."""
    one = _cli(["analyze", "Loading up on $NVDA calls before earnings 🚀"], {})
    assert one.returncode == 0, one.stderr
    result = json.loads(one.stdout)
    assert result["verdict"] == "BUY"
    assert result["tickers"] == ["NVDA"]
    assert {"id", "confidence", "score", "status"} <= result.keys()
    lines = "\n".join(
        [
            json.dumps({"id": "a", "text": "Intel cut its outlook, downgraded to sell"}),
            "{broken",
            json.dumps({"id": "c", "text": "what a nice weekend"}),
        ]
    )
    many = _cli(["analyze"], {}, input=lines)
    assert many.returncode == 1
    out = [json.loads(line) for line in many.stdout.splitlines()]
    assert [o["id"] for o in out] == ["a", "line-2", "c"]
    assert out[0]["verdict"] == "SELL"
    assert out[1]["status"] == "error"
    assert out[2]["verdict"] == "HOLD"
    assert out[2]["tickers"] == []


def test_demo_on_embedded_redis_prints_signals_and_keeps_data(tmp_path: Path) -> None:
    """No Redis configured: an embedded Redis starts, the demo prints signals, and the data is
    still there when signalsmith starts again on the same state directory."""
    env = {"STATE_DIR": str(tmp_path / "state"), "HTTP_PORT": "0"}
    first = _cli(["run", "--demo", "--until-idle", "1"], env)
    assert first.returncode == 0, first.stderr
    assert "embedded Redis" in first.stdout
    assert "redis-cli -s" in first.stdout
    assert "HTTP: http://127.0.0.1:" in first.stdout
    printed = ("BUY ", "SELL ", "SPIKE ")
    signals = [line for line in first.stdout.splitlines() if line.startswith(printed)]
    assert len(signals) >= 50
    insights = [line for line in first.stdout.splitlines() if line.startswith("insight ")]
    assert sorted(line.split()[4].rstrip(":") for line in insights) == [
        "BTC-USD",
        "ETH-USD",
        "SOL-USD",
    ]
    second = _cli(["run", "--until-idle", "0.5"], env)
    assert second.returncode == 0, second.stderr
    from signalsmith.embedded import EmbeddedRedis

    server = EmbeddedRedis(tmp_path / "state")
    client = sync_redis.Redis(unix_socket_path=server.start())
    try:
        assert client.xlen("trade-signals") == len(signals)
        assert client.xlen("reddit-events") >= 300
    finally:
        client.close()
        server.stop()


def test_demo_with_two_workers_answers_every_market_request_offline(tmp_path: Path) -> None:
    """--demo --workers 2: both workers read the bundled candles, so whichever takes a market
    request that carries no candles of its own answers it from them at once (no retry, no
    exchange asked); none is dead-lettered. Each worker is handed requests of its own before
    the run (pending for its consumer name), so the one without --demo must answer some,
    however fast the other reads."""
    from signalsmith.embedded import EmbeddedRedis

    env = {"STATE_DIR": str(tmp_path / "state"), "HTTP_PORT": "0", "CONSUMER": "w"}
    held = {"w-0": [f"bare-0-{n}" for n in range(4)], "w-1": [f"bare-1-{n}" for n in range(4)]}
    server = EmbeddedRedis(tmp_path / "state")
    client = sync_redis.Redis(unix_socket_path=server.start())
    try:
        client.xgroup_create("market-requests", "signalsmith-market", id="0", mkstream=True)
        for consumer, correlation_ids in held.items():
            for correlation_id in correlation_ids:
                request = {"correlation_id": correlation_id, "product_id": "ETH-USD"}
                client.xadd("market-requests", request)
            client.xreadgroup("signalsmith-market", consumer, {"market-requests": ">"})
    finally:
        client.close()
        server.stop()
    ran = _cli(["run", "--demo", "--workers", "2", "--until-idle", "2"], env)
    assert ran.returncode == 0, ran.stderr[-3000:]
    client = sync_redis.Redis(unix_socket_path=server.start())
    try:
        insights = [json.loads(f[b"data"]) for _id, f in client.xrange("market-insights")]
        group = client.xinfo_consumers("market-requests", "signalsmith-market")
        dead = client.xlen("market-requests:dlq")
    finally:
        client.close()
        server.stop()
    answered = {i["correlation_id"]: i["decision"]["status"] for i in insights}
    asked = [correlation_id for ids in held.values() for correlation_id in ids]
    assert {answered.get(correlation_id) for correlation_id in asked} == {"ok"}
    assert dead == 0
    assert {c["name"]: c["pending"] for c in group} == {b"w-0": 0, b"w-1": 0}
    stopped = [line for line in ran.stderr.splitlines() if "pipeline=market" in line]
    assert len(stopped) == 2
    assert all("retried=0" in line for line in stopped), stopped  # none waited on an exchange
    assert all("read=0" not in line for line in stopped), stopped  # each answered its own


def test_max_messages_stops_after_that_many(stream_env: dict[str, str], tmp_path: Path) -> None:
    """run --max-messages N reads N entries, acknowledges them, and exits 0 leaving the rest."""
    posts = tmp_path / "posts.csv"
    posts.write_text("title,body\n" + "".join(f"$AMD post {i},buying calls\n" for i in range(5)))
    assert _cli(["replay", str(posts)], stream_env).returncode == 0
    ran = _cli(["run", "--max-messages", "3"], stream_env)
    assert ran.returncode == 0, ran.stderr
    assert "read 3, acknowledged 3" in ran.stdout
    client = _sync(stream_env["REDIS_URL"])
    try:
        assert client.xlen(stream_env["SIGNAL_STREAM"]) == 3
        assert client.xpending(stream_env["STREAM"], stream_env["GROUP"])["pending"] == 0
    finally:
        client.close()


def test_analyze_gives_each_ticker_its_own_verdict_and_the_rater_none() -> None:
    """The issue's cases through the CLI: the bank that downgraded Tesla gets no verdict and is
    named in the evidence; two companies named by name get their own clause's verdict, and the
    top level agrees with them (mixed: HOLD with no confidence)."""
    rated = json.loads(_cli(["analyze", "Tesla downgraded to sell at UBS"], {}).stdout)
    assert rated["tickers"] == ["TSLA"]
    assert {t: d["verdict"] for t, d in rated["per_ticker"].items()} == {"TSLA": "SELL"}
    assert rated["verdict"] == "SELL"
    assert "rated by UBS" in rated["evidence"]
    cut = json.loads(_cli(["analyze", "Goldman Sachs cuts price target on AMD"], {}).stdout)
    assert cut["tickers"] == ["AMD"]
    assert "rated by Goldman Sachs" in cut["evidence"]
    both = json.loads(_cli(["analyze", "Netflix up, Disney down after earnings"], {}).stdout)
    per_ticker = {t: d["verdict"] for t, d in both["per_ticker"].items()}
    assert per_ticker == {"NFLX": "BUY", "DIS": "SELL"}
    assert (both["verdict"], both["confidence"]) == ("HOLD", 0.0)
    assert both["reasoning"] == "mixed: NFLX BUY, DIS SELL"


def test_analyze_uses_the_configured_provider(fake_llm: FakeLLMServer) -> None:
    """analyze with a provider configured asks it (one call per text) and reports both the
    lexicon's and the LLM's votes; the key never appears in the output."""
    env = {"OPENAI_BASE_URL": fake_llm.base_url, "OPENAI_API_KEY": CANARY}
    result = _cli(["analyze", "Loading up on $NVDA calls before earnings 🚀"], env)
    assert result.returncode == 0, result.stderr
    parsed = json.loads(result.stdout)
    assert parsed["verdict"] == "BUY"
    assert "lexicon:" in parsed["reasoning"]
    assert "llm:" in parsed["reasoning"]
    assert fake_llm.stats.calls == 1
    assert CANARY not in result.stdout + result.stderr


def test_check_passes_while_a_worker_runs(running: Running, stream_env: dict[str, str]) -> None:
    """signalsmith check exits 0 while a healthy worker beats, and 1 once it has stopped."""
    deadline = time.monotonic() + 15
    while running.get("/readyz")[0] != 200 and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.2)  # one heartbeat after the group became ready
    alive = _cli(["check"], stream_env)
    assert alive.returncode == 0, alive.stderr
    assert json.loads(alive.stdout.splitlines()[0])["healthy"] is True
    running.process.send_signal(signal.SIGTERM)
    running.process.communicate(timeout=10)
    assert _cli(["check"], stream_env).returncode == 1
