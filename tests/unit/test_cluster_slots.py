"""Redis Cluster key layout: with REDIS_CLUSTER=true, start-up refuses key names that one commit
(or the store's acknowledgement) would touch across hash slots, with one line naming the
settings and a tagged example; names that share a hash tag pass."""

from __future__ import annotations

import itertools
import os

import pytest
from redis.crc import key_slot

from signalsmith.cluster import check_cluster_slots, commit_keys, hash_tag, tagged
from signalsmith.errors import ConfigError
from signalsmith.settings import PROVIDER_NAMES, Settings, load_settings

TAGGED = {
    "redis_cluster": True,
    "redis_addr": "127.0.0.1:7000",
    "stream": "{ss}:reddit-events",
    "signal_stream": "{ss}:trade-signals",
    "decision_stream": "{ss}:trade-decisions",
    "decision_hash_prefix": "{ss}:decisions",
    "market_stream": "{ss}:market-requests",
    "insight_stream": "{ss}:market-insights",
    "strategy_stream": "{ss}:strategy-signals",
    "enhanced_stream": "{ss}:enhanced-signals",
}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No setting from the environment of the machine running the tests."""
    providers = tuple(f"{name.upper()}_" for name in PROVIDER_NAMES)
    for name in list(os.environ):
        if name.lower() in Settings.model_fields or name.upper().startswith(providers):
            monkeypatch.delenv(name)
    monkeypatch.delenv("SIGNALSMITH_CONFIG", raising=False)


def _refusal(**overrides: object) -> str:
    with pytest.raises(ConfigError) as caught:
        check_cluster_slots(load_settings(**{**TAGGED, **overrides}))
    return str(caught.value)


def test_hash_tag_is_what_the_cluster_hashes() -> None:
    """The text between the first { and the next }, when there is such text."""
    assert hash_tag("{ss}:in") == "ss"
    assert hash_tag("pre:{ss}:in{other}") == "ss"
    assert hash_tag("{}:in") is None
    assert hash_tag("in}{") is None
    assert hash_tag("plain") is None


def test_without_redis_cluster_any_names_pass() -> None:
    """A single server takes any names: nothing is checked."""
    check_cluster_slots(load_settings(redis_addr="127.0.0.1:6379"))


def test_names_under_one_hash_tag_pass_and_derived_names_follow() -> None:
    """One tag on STREAM, SIGNAL_STREAM, DECISION_STREAM and DECISION_HASH_PREFIX is enough:
    DLQ_STREAM, LEGACY_STREAM and STORE_DLQ_STREAM default to names derived from them."""
    settings = load_settings(**TAGGED, output_format="both")
    check_cluster_slots(settings)
    group, pending, failed = commit_keys(settings, ("posts", "store"))
    assert {key.setting for key in pending} == {"STRATEGY_STREAM", "STRATEGY_STORE_DLQ_STREAM"}
    assert {key.setting for key in failed} == {
        "STRATEGY_DLQ_STREAM",
        "STRATEGY_DLQ_STORE_DLQ_STREAM",
    }
    assert {key.slot for key in [*pending, *failed]} == {key_slot(b"ss")}
    assert {key.setting for key in group} == {
        "STREAM",
        "DLQ_STREAM",
        "SIGNAL_STREAM",
        "LEGACY_STREAM",
        "DECISION_STREAM",
        "DECISION_HASH_PREFIX",
        "STORE_DLQ_STREAM",
    }
    assert {key.slot for key in group} == {key_slot(b"ss")}


def test_the_default_names_are_refused_with_one_line_naming_the_settings() -> None:
    """Seed 000's names carry no tag: one line names every setting to change and gives an
    example with a common tag."""
    message = _refusal(
        stream="reddit-events",
        signal_stream="trade-signals",
        decision_stream="trade-decisions",
        decision_hash_prefix="signalsmith:decisions",
        market_stream="market-requests",
        insight_stream="market-insights",
        strategy_stream="strategy-signals",
        enhanced_stream="enhanced-signals",
    )
    assert "\n" not in message
    assert message.startswith(
        "STREAM, SIGNAL_STREAM, DECISION_STREAM, DECISION_HASH_PREFIX, MARKET_STREAM,"
        " INSIGHT_STREAM, STRATEGY_STREAM, ENHANCED_STREAM:"
    )
    assert "STRATEGY_STREAM={signalsmith}:strategy-signals" in message
    assert "MARKET_STREAM={signalsmith}:market-requests" in message
    assert "DECISION_HASH_PREFIX has no hash tag" in message
    assert "STREAM={signalsmith}:reddit-events" in message
    assert "SIGNAL_STREAM={signalsmith}:trade-signals" in message
    assert "DECISION_HASH_PREFIX={signalsmith}:decisions" in message


def test_one_stream_under_another_tag_is_refused_and_the_example_keeps_the_stream_tag() -> None:
    """SIGNAL_STREAM under a different tag lands in another slot; the example moves it under
    STREAM's tag."""
    message = _refusal(signal_stream="{other}:trade-signals")
    assert "they span 2 slots" in message
    assert "SIGNAL_STREAM={ss}:trade-signals" in message


def test_a_prefix_without_a_tag_is_refused_even_when_one_of_its_keys_matches() -> None:
    """DECISION_HASH_PREFIX's keys are <prefix>:<TICKER>:<date>: without a tag they spread over
    every slot, even when the streams happen to share the slot of one such key."""
    prefix = "decisions"
    slot = key_slot(f"{prefix}:X".encode())
    names = (f"n{i}" for i in itertools.count())
    same = list(itertools.islice((n for n in names if key_slot(n.encode()) == slot), 4))
    message = _refusal(
        stream=same[0],
        dlq_stream=same[1],
        signal_stream=same[2],
        decision_stream=same[3],
        decision_hash_prefix=prefix,
        store_enabled=False,
        market_enabled=False,
        strategy_enabled=False,
    )
    assert "DECISION_HASH_PREFIX has no hash tag" in message
    assert "they span" not in message


def test_explicit_dead_letter_and_legacy_streams_must_share_the_tag() -> None:
    """DLQ_STREAM and LEGACY_STREAM set on their own are named when they stray; LEGACY_STREAM
    only matters when legacy records are written."""
    assert "DLQ_STREAM" in _refusal(dlq_stream="dead-letters").split(":")[0]
    check_cluster_slots(load_settings(**TAGGED, legacy_stream="legacy"))  # envelope only
    message = _refusal(output_format="legacy", legacy_stream="legacy")
    assert "LEGACY_STREAM={ss}:legacy" in message


def test_the_decision_log_off_leaves_it_out() -> None:
    """DECISION_STREAM="" turns the log (and the store) off: nothing of it is checked."""
    settings = load_settings(**{**TAGGED, "decision_stream": ""}, store_dlq_stream="{x}:dlq")
    check_cluster_slots(settings)


def test_the_store_pair_alone_when_only_the_store_runs() -> None:
    """On a host that runs only the store, DECISION_STREAM and STORE_DLQ_STREAM must share a
    slot; the posts pipeline's names are not its business."""
    settings = load_settings(
        redis_cluster=True,
        redis_addr="127.0.0.1:7000",
        decision_stream="{d}:decisions",
        store_dlq_stream="{other}:store-dlq",
    )
    with pytest.raises(ConfigError) as caught:
        check_cluster_slots(settings, ("store",))
    assert caught.value.setting == "DECISION_STREAM, STORE_DLQ_STREAM"
    assert "STORE_DLQ_STREAM={d}:store-dlq" in str(caught.value)
    fixed = load_settings(
        redis_cluster=True, redis_addr="127.0.0.1:7000", decision_stream="{d}:decisions"
    )
    with pytest.raises(ConfigError) as caught:  # it also reads the strategy signals queued
        check_cluster_slots(fixed, ("store",))
    assert caught.value.setting == "STRATEGY_STREAM"
    check_cluster_slots(fixed.model_copy(update={"strategy_stream": "{s}:in"}), ("store",))
    check_cluster_slots(fixed.model_copy(update={"strategy_enabled": False}), ("store",))
    assert "STORE_DLQ_STREAM" in _refusal(store_dlq_stream="store-dlq").split(":")[0]
    check_cluster_slots(load_settings(**TAGGED, store_dlq_stream="x", store_enabled=False))


def test_llm_prefixes_need_a_tag_only_when_an_llm_is_asked() -> None:
    """The story index (one script) and the reply cache (one MGET) read keys under their
    prefix together: with a provider, each prefix needs a tag of its own."""
    llm = {**TAGGED, "llm_providers": "ollama"}
    with pytest.raises(ConfigError) as caught:
        check_cluster_slots(load_settings(**llm))
    assert caught.value.setting == "DEDUP_PREFIX"
    assert "DEDUP_PREFIX={signalsmith:dedup}" in str(caught.value)
    with pytest.raises(ConfigError) as caught:
        check_cluster_slots(load_settings(**llm, dedup_prefix="{dedup}"))
    assert caught.value.setting == "LLM_CACHE_PREFIX"
    check_cluster_slots(load_settings(**llm, dedup_prefix="{dedup}", llm_cache_prefix="{c}"))
    check_cluster_slots(load_settings(**llm, dedup_enabled=False, llm_cache="off"))
    check_cluster_slots(load_settings(**llm, llm_policy="never"))
    check_cluster_slots(load_settings(**TAGGED))  # no provider


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({}, "needs REDIS_URL or REDIS_ADDR"),
        ({"redis_url": "unix:///tmp/redis.sock"}, "over TCP"),
        ({"redis_url": "redis://127.0.0.1:7000/2"}, "database 0 only"),
    ],
)
def test_redis_cluster_needs_a_node_to_start_from(
    overrides: dict[str, object], problem: str
) -> None:
    """REDIS_CLUSTER=true with no node, a Unix socket or another database stops start-up."""
    with pytest.raises(ConfigError) as caught:
        load_settings(redis_cluster=True, **overrides)
    assert caught.value.setting == "REDIS_CLUSTER"
    assert problem in caught.value.problem


def test_a_cluster_url_of_database_0_is_fine() -> None:
    settings = load_settings(redis_cluster=True, redis_url="redis://127.0.0.1:7000/0")
    assert settings.redis_cluster


@pytest.mark.parametrize(
    ("name", "example"),
    [
        ("reddit-events", "{ss}:reddit-events"),
        ("{old}:reddit-events", "{ss}:reddit-events"),
        ("ss:decisions", "{ss}:decisions"),
        ("{ss}:in", "{ss}:in"),
        ("{old}", "{ss}"),
    ],
)
def test_examples_put_the_name_under_the_tag(name: str, example: str) -> None:
    assert tagged(name, "ss") == example
    assert hash_tag(example) == "ss"
