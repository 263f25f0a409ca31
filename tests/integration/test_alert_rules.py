"""ALERT_RULES and ALERT_COOLDOWN_S through the notification consumers, against a local webhook
server and the real Redis: the rules choose what is sent; a storm of posts on one ticker is one
message per channel within the cooldown; a failed send gives the cooldown back; a send cut short
by a crash is still sent once on redelivery; a rule that does not parse stops `run` with one
line naming it."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from signalsmith.errors import TransientError
from signalsmith.notify.config import NotifyConfig
from signalsmith.notify.rules import parse_rules, rule_kinds
from signalsmith.source.redis_streams import GroupRef, StreamSource
from tests.integration.test_notify import Webhook, _add, _config, _handler, _run, webhook  # noqa: F401
from tests.integration.test_startup import _one_line
from tests.integration.test_startup import _run as _run_cli
from tests.unit.test_notify_message import insight_bytes, strategy_bytes
from tests.unit.test_store_rows import envelope_bytes, spike_envelope

pytestmark = [pytest.mark.redis]
RULES = (
    "kind=post verdict=BUY,SELL confidence>=0.8 tickers=NVDA,TSLA; kind=spike\n"
    "kind=strategy agreement=reject"
)


def _rules_config(
    prefix: str, urls: list[str], cooldown_s: float = 0.0, **changes: Any
) -> NotifyConfig:
    rules = parse_rules(RULES)
    config = _config(prefix, urls, start="all", rules=rules, kinds=rule_kinds(rules))
    return replace(config, cooldown_s=cooldown_s, **changes)


def _post(ticker: str, number: int) -> bytes:
    return envelope_bytes(ticker, entry_id=f"{number}-0")


async def test_the_rules_choose_what_is_sent(redis: Redis, prefix: str, webhook: Webhook) -> None:  # noqa: F811
    config = _rules_config(prefix, [webhook.url("rules")])
    raws = [
        _post("NVDA", 1),  # BUY at 0.80: the first rule
        _post("AMD", 2),  # a ticker no rule names
        spike_envelope("GME"),  # the second rule
        insight_bytes(),  # no rule is about insights
        strategy_bytes(agreement="reject", rating=2),  # the third rule
        strategy_bytes("ok", signal_id="sig-2"),  # confirmed: no rule
    ]
    await _add(redis, config.streams[0], raws)
    stats = await _run(config, redis)
    titles = [message.title for message in webhook.messages("rules")]
    assert titles == [
        "NVDA BUY (conf 0.80) · post",
        "GME BUY (conf 0.80) · mention spike",
        "AAPL buy 187.25 · reject 2/10 (conf 0.80) · ema_cross",
    ]
    (counts,) = stats.values()
    assert (counts.read, counts.acknowledged, counts.dead_lettered) == (6, 6, 0)


async def test_a_storm_on_one_ticker_is_one_message_per_channel_within_the_cooldown(
    redis: Redis,
    prefix: str,
    webhook: Webhook,  # noqa: F811
) -> None:
    config = _rules_config(prefix, [webhook.url("a"), webhook.url("b")], cooldown_s=60)
    storm = [_post("NVDA", number) for number in range(1, 9)] + [_post("TSLA", 20)]
    await _add(redis, config.streams[0], storm)
    await _run(config, redis)
    for path in ("a", "b"):
        assert [m.title.split()[0] for m in webhook.messages(path)] == ["NVDA", "TSLA"]
    for channel in config.channels:
        key = config.cooldown_key(channel, "NVDA")
        assert 0 < await redis.pttl(key) <= 60_000
    quiet = _rules_config(f"{prefix}-0", [webhook.url("none")], cooldown_s=0)
    await _add(redis, quiet.streams[0], storm)
    await _run(quiet, redis)
    assert len(webhook.messages("none")) == 9


async def test_a_failed_send_gives_the_cooldown_back_and_the_retry_sends(
    redis: Redis,
    prefix: str,
    webhook: Webhook,  # noqa: F811
) -> None:
    config = _rules_config(prefix, [webhook.url("flaky")], cooldown_s=60, max_deliveries=5)
    (channel,) = config.channels
    await _add(redis, config.streams[0], [_post("NVDA", 1)])
    webhook.failing.add("flaky")
    ref = GroupRef(config.streams[0], config.group_of(channel), config.consumer)
    source = StreamSource(redis, ref, block_ms=50, claim_idle_ms=config.claim_idle_ms)
    await source.ensure_group()
    (entry,) = await source.read(1, wait=False)
    with pytest.raises(TransientError, match="not delivered"):
        await _handler(config, channel, redis).handle(entry)
    assert await redis.exists(config.cooldown_key(channel, "NVDA")) == 0
    webhook.failing.clear()
    await _run(config, redis)
    assert len(webhook.messages("flaky")) == 1


async def test_a_send_cut_short_by_a_crash_is_sent_once_on_redelivery(
    redis: Redis,
    prefix: str,
    webhook: Webhook,  # noqa: F811
) -> None:
    """The process died after taking the cooldown for this record and before sending: the
    cooldown it holds is its own, so the redelivery sends; another record on the ticker is
    still held off."""
    config = _rules_config(prefix, [webhook.url("crash")], cooldown_s=60, max_deliveries=10)
    (channel,) = config.channels
    first = json.loads(_post("NVDA", 1))["correlation_id"]
    await redis.set(config.cooldown_key(channel, "NVDA"), first, px=60_000)
    await _add(redis, config.streams[0], [_post("NVDA", 1), _post("NVDA", 2)])
    await _run(config, redis)
    (message,) = webhook.messages("crash")
    assert message.title.startswith("NVDA BUY")


def test_a_rule_that_does_not_parse_stops_run_with_one_line(tmp_path: Path) -> None:
    """Before anything runs (an embedded Redis starts and stops): exit 2, one line naming
    ALERT_RULES, the rule by its number and what is wrong."""
    result = _run_cli(
        {
            "STATE_DIR": str(tmp_path / "state"),
            "NOTIFY_URLS": "json://127.0.0.1:9/x",
            "ALERT_RULES": "kind=post; kind=pots",
        }
    )
    line = _one_line(result, "ALERT_RULES")
    assert "rule 2" in line
    assert "pots" in line
