"""Once per (insight, channel) across a real SIGKILL of ``signalsmith run``, at both edges of the
send. The kill points are exact, not timed: a proxy in front of Redis kills the worker at the
notification commit and never forwards it; the webhook kills it when the message arrives."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis as sync_redis

from signalsmith.notify import NotifyConfig, parse_channels
from tests.integration.kill_switches import RedisTap, Webhook, commit_of, committed_ids
from tests.integration.test_market_pipeline import SEED_REQUEST, bundled_rows

pytestmark = [
    pytest.mark.redis,
    pytest.mark.slow,
    pytest.mark.timeout(60),
]
RUN_TIMEOUT_S = 30
CLAIM_IDLE_MS = 3_000
CLAIM_IDLE_S = CLAIM_IDLE_MS / 1000
# Between the claim and the webhook seeing the message: apprise's thread and one local POST.
CLAIM_TO_ARRIVAL_S = 0.5
KILLED = -signal.SIGKILL


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    try:
        yield hook
    finally:
        hook.close()


@pytest.fixture
def client(stream_env: dict[str, str]) -> Iterator[sync_redis.Redis]:
    redis = sync_redis.Redis.from_url(stream_env["REDIS_URL"])
    try:
        yield redis
    finally:
        redis.close()


def _notify_env(stream_env: dict[str, str], webhook: Webhook) -> dict[str, str]:
    return {
        **stream_env,
        "MARKET_EXCHANGE": "",
        "STORE_ENABLED": "false",
        "NOTIFY_URLS": webhook.url("hook"),
        "NOTIFY_GROUP": f"{stream_env['GROUP']}-notify",
        "NOTIFY_PREFIX": f"{stream_env['DECISION_HASH_PREFIX']}:notify",
        "CLAIM_IDLE_MS": str(CLAIM_IDLE_MS),
        "NOTIFY_BACKOFF_S": "0.1",
        "NOTIFY_BACKOFF_MAX_S": "0.2",
    }


def _config(env: dict[str, str]) -> NotifyConfig:
    """The names the worker derives from ``env``: the channel's group and sent-marks."""
    return NotifyConfig(
        channels=parse_channels(env["NOTIFY_URLS"]),
        group=env["NOTIFY_GROUP"],
        prefix=env["NOTIFY_PREFIX"],
    )


def _environ(env: dict[str, str]) -> dict[str, str]:
    dropped = {"REDIS_URL", "REDIS_ADDR", "GROQ_API_KEY", "LLM_PROVIDERS", "SIGNALSMITH_CONFIG"}
    return {**{k: v for k, v in os.environ.items() if k not in dropped}, **env}


def _start(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """``signalsmith run --until-idle 1``: it ends by itself if the kill never comes."""
    with log.open("wb") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "signalsmith", "run", "--until-idle", "1"],
            env=_environ(env),
            stdout=output,
            stderr=subprocess.STDOUT,
        )


def _run(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "signalsmith", "run", "--until-idle", "1"],
        env=_environ(env),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )


def _request(client: sync_redis.Redis, env: dict[str, str]) -> None:
    """Seed 001's request, with its candles, for the market pipeline to make an insight of."""
    rows = bundled_rows("SOL-USD")
    fields = {**SEED_REQUEST, "product_id": "SOL-USD", "candles": json.dumps(rows)}
    client.xadd(env["MARKET_STREAM"], fields)


def _killed(worker: subprocess.Popen[bytes], log: Path) -> None:
    worker.wait(RUN_TIMEOUT_S)
    assert worker.returncode == KILLED, log.read_text()[-2000:]


def _entry_ids(client: sync_redis.Redis, stream: str) -> list[str]:
    return [entry_id.decode() for entry_id, _fields in client.xrange(stream)]


def _pending(client: sync_redis.Redis, stream: str, group: str) -> list[str]:
    rows = client.xpending_range(stream, group, min="-", max="+", count=10)
    return [row["message_id"].decode() for row in rows]


def test_a_kill_after_the_mark_and_before_the_acknowledgement_sends_nothing_again(
    stream_env: dict[str, str], client: sync_redis.Redis, webhook: Webhook, tmp_path: Path
) -> None:
    """The worker is SIGKILLed as it sends the commit that would acknowledge the sent insight:
    one message went out, the entry is still pending, the mark says "sent". A new run takes
    the entry back, finds the mark and only acknowledges it: still one message."""
    env = _notify_env(stream_env, webhook)
    config = _config(env)
    (channel,) = config.channels
    group = config.group_of(channel)
    log = tmp_path / "killed.log"
    with RedisTap(env["REDIS_URL"], cut=commit_of(group)) as tap:
        _request(client, env)
        worker = _start({**env, "REDIS_URL": tap.url}, log)
        tap.arm(worker)
        _killed(worker, log)
    assert tap.cut_command is not None
    (insight_id,) = _entry_ids(client, env["INSIGHT_STREAM"])
    assert committed_ids(tap.cut_command) == [insight_id]
    assert len(webhook.messages()) == 1
    assert _pending(client, env["INSIGHT_STREAM"], group) == [insight_id]
    assert client.get(config.sent_key(channel, SEED_REQUEST["correlation_id"])) == b"sent"

    again = _run(env)

    assert again.returncode == 0, again.stderr[-2000:]
    assert "already sent; acknowledging" in again.stdout + again.stderr
    assert _pending(client, env["INSIGHT_STREAM"], group) == []
    assert client.xlen(config.dlq_of(env["INSIGHT_STREAM"], channel)) == 0
    (message,) = webhook.messages()
    assert message.title.startswith("SOL-USD ")


def test_a_kill_while_the_webhook_takes_the_message_sends_it_once_more_after_the_claim(
    stream_env: dict[str, str], client: sync_redis.Redis, webhook: Webhook, tmp_path: Path
) -> None:
    """The documented window: the worker is SIGKILLed when the webhook receives the message,
    before it answers, so no mark is written. The claim is left and expires after
    CLAIM_IDLE_MS; a new run then sends the message once more (one duplicate, no more) and
    marks and acknowledges it."""
    env = _notify_env(stream_env, webhook)
    config = _config(env)
    (channel,) = config.channels
    group = config.group_of(channel)
    key = config.sent_key(channel, SEED_REQUEST["correlation_id"])
    log = tmp_path / "killed.log"
    _request(client, env)
    worker = _start(env, log)
    webhook.arm(worker)
    _killed(worker, log)
    (first,) = webhook.messages()
    claim, left_ms = client.get(key), client.pttl(key)
    assert claim is not None
    assert claim.startswith(b"sending ")
    assert 0 < left_ms <= CLAIM_IDLE_MS
    (insight_id,) = _entry_ids(client, env["INSIGHT_STREAM"])
    assert _pending(client, env["INSIGHT_STREAM"], group) == [insight_id]

    again = _run(env)

    assert again.returncode == 0, again.stderr[-2000:]
    first_again, second = webhook.messages()
    assert first_again == first
    assert (second.title, second.message) == (first.title, first.message)
    assert second.at - first.at >= CLAIM_IDLE_S - CLAIM_TO_ARRIVAL_S, (
        "sent before the claim expired"
    )
    assert client.get(key) == b"sent"
    assert _pending(client, env["INSIGHT_STREAM"], group) == []
    assert client.xlen(config.dlq_of(env["INSIGHT_STREAM"], channel)) == 0
