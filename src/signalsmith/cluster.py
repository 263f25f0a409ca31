"""Redis Cluster (REDIS_CLUSTER=true): the client, and the key layout it needs. The keys one commit
script or transaction touches must hash to one slot, so their names need one hash tag; that is
checked at start-up, before the first command, so a name without the tag stops with one line
rather than the first commit failing with CROSSSLOT.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot

from signalsmith.analyze.llm.providers import provider_order
from signalsmith.errors import ConfigError
from signalsmith.redact import redact_url
from signalsmith.redisclient import ClusterClient
from signalsmith.settings import Settings

DEFAULT_TAG = "signalsmith"
_SAMPLE = "X"  # stands for the rest of a key under a prefix (a ticker, a date, a fingerprint)


@dataclass(frozen=True, slots=True)
class KeyName:
    """A key name (or, with ``prefix``, the start of many) and the setting that gives it."""

    setting: str
    name: str
    prefix: bool = False
    derived: bool = False  # not set itself: follows another setting (DLQ_STREAM from STREAM)

    @property
    def slot(self) -> int:
        return key_slot((f"{self.name}:{_SAMPLE}" if self.prefix else self.name).encode())

    @property
    def spread(self) -> bool:
        """A prefix without a hash tag: its keys land on many slots."""
        return self.prefix and hash_tag(self.name) is None


def hash_tag(name: str) -> str | None:
    """What Redis Cluster hashes instead of the whole name: the text between the first ``{``
    and the next ``}``, when there is such text."""
    start = name.find("{")
    end = name.find("}", start + 1) if start >= 0 else -1
    return name[start + 1 : end] if end > start + 1 else None


def commit_keys(settings: Settings, pipelines: Collection[str]) -> list[list[KeyName]]:
    """Groups of key names each of which one script call or transaction touches together:
    the posts commit (input, dead letters, outputs, the decision log, the consensus hashes and
    rolling view), the market commit (requests, dead letters, insights, the decision log, the
    per-product hashes), the strategy commit (signals, dead letters, rated signals, the decision
    log) and the store's acknowledgement (the decision log and its dead
    letters). They share the decision log, so they make one group. The store's readers of
    STRATEGY_STREAM and of its dead letters (each one's acknowledgement and dead letters) make
    one each."""
    groups: list[list[KeyName]] = []
    log = [KeyName("DECISION_STREAM", settings.decision_stream)] if settings.decision_stream else []
    if "posts" in pipelines:
        posts = [
            KeyName("STREAM", settings.stream),
            KeyName("DLQ_STREAM", settings.dead_letter_stream, derived=not settings.dlq_stream),
            KeyName("SIGNAL_STREAM", settings.signal_stream),
        ]
        if settings.output_format != "envelope":
            legacy = settings.legacy_signal_stream
            posts.append(KeyName("LEGACY_STREAM", legacy, derived=not settings.legacy_stream))
        posts += [*log, KeyName("DECISION_HASH_PREFIX", settings.decision_hash_prefix, prefix=True)]
        groups.append(posts)
    if "market" in pipelines:
        market = [
            KeyName("MARKET_STREAM", settings.market_stream),
            KeyName(
                "MARKET_DLQ_STREAM",
                settings.market_dead_letter_stream,
                derived=not settings.market_dlq_stream,
            ),
            KeyName("INSIGHT_STREAM", settings.insight_stream),
            *log,
            KeyName("DECISION_HASH_PREFIX", settings.decision_hash_prefix, prefix=True),
        ]
        # Shares the decision log and the hashes with the posts commit: one slot for both.
        _join(groups, market)
    if "strategy" in pipelines:
        strategy = [
            KeyName("STRATEGY_STREAM", settings.strategy_stream),
            KeyName(
                "STRATEGY_DLQ_STREAM",
                settings.strategy_dead_letter_stream,
                derived=not settings.strategy_dlq_stream,
            ),
            KeyName("ENHANCED_STREAM", settings.enhanced_stream),
            *log,
        ]
        _join(groups, strategy)  # shares the decision log with the other commits
        if settings.csv_enabled:  # the CSV export's acknowledgement and dead letters
            csv = KeyName("CSV_DLQ_STREAM", f"{settings.enhanced_stream}:csv:dlq", derived=True)
            _join(groups, [KeyName("ENHANCED_STREAM", settings.enhanced_stream), csv])
    if "store" in pipelines and settings.store_enabled and log:
        store = KeyName(
            "STORE_DLQ_STREAM",
            settings.store_dead_letter_stream,
            derived=not settings.store_dlq_stream,
        )
        _join(groups, [*log, store])  # shares the decision log with the pipelines' commits
        if settings.strategy_enabled:  # its strategy readers: acknowledgement, dead letters
            (signals, pending), (dead, failed) = settings.strategy_store_dead_letter_streams
            groups.append(
                [
                    KeyName("STRATEGY_STREAM", signals),
                    KeyName("STRATEGY_STORE_DLQ_STREAM", pending, derived=True),
                ]
            )
            derived = not settings.strategy_dlq_stream
            groups.append(
                [
                    KeyName("STRATEGY_DLQ_STREAM", dead, derived=derived),
                    KeyName("STRATEGY_DLQ_STORE_DLQ_STREAM", failed, derived=True),
                ]
            )
    return groups


def _join(groups: list[list[KeyName]], keys: list[KeyName]) -> None:
    """Add ``keys`` to the first group (each name once), or make them the first."""
    if not groups:
        groups.append(keys)
        return
    known = {(key.setting, key.name) for key in groups[0]}
    groups[0] += [key for key in keys if (key.setting, key.name) not in known]


def prefix_keys(settings: Settings) -> list[KeyName]:
    """Prefixes whose keys one call reads together: the story index (one script) and the LLM
    reply cache (one MGET), when an LLM is asked at all."""
    if settings.llm_policy == "never" or not provider_order(settings):
        return []
    prefixes = []
    if settings.dedup_enabled:
        prefixes.append(KeyName("DEDUP_PREFIX", settings.dedup_prefix, prefix=True))
    if settings.llm_cache != "off":
        prefixes.append(KeyName("LLM_CACHE_PREFIX", settings.llm_cache_prefix, prefix=True))
    return prefixes


def check_cluster_slots(settings: Settings, pipelines: Collection[str] | None = None) -> None:
    """With REDIS_CLUSTER=true, raise ConfigError unless every group of keys touched together
    shares one slot and every prefix carries a hash tag; the message names the settings and
    gives tagged examples."""
    if not settings.redis_cluster:
        return
    if pipelines is None:
        pipelines = (
            "posts",
            "store",
            *(["market"] if settings.market_enabled else []),
            *(["strategy"] if settings.strategy_enabled else []),
        )
    for group in commit_keys(settings, pipelines):
        slots = {key.slot for key in group}
        if len(slots) > 1 or any(key.spread for key in group):
            raise _spread_error(group, len(slots))
    for key in prefix_keys(settings):
        if key.spread:
            example = f"{key.setting}={{{key.name}}}"
            raise ConfigError(
                key.setting,
                "REDIS_CLUSTER=true and keys under this prefix are read together, "
                f"so it needs a hash tag: e.g. {example}",
            )


def _spread_error(group: Sequence[KeyName], slots: int) -> ConfigError:
    named = [key for key in group if not key.derived]
    tag = next((t for key in group if (t := hash_tag(key.name)) is not None), DEFAULT_TAG)
    examples = " ".join(f"{key.setting}={tagged(key.name, tag)}" for key in named)
    untagged = [key.setting for key in group if key.spread]
    why = [f"they span {slots} slots"] if slots > 1 else []
    why += [f"{name} has no hash tag" for name in untagged]
    return ConfigError(
        ", ".join(key.setting for key in named),
        f"REDIS_CLUSTER=true and one commit writes these keys together, so they need one "
        f"hash tag (now {' and '.join(why)}): e.g. {examples}",
    )


def tagged(name: str, tag: str) -> str:
    """``name`` under the hash tag ``tag``: ``reddit-events`` -> ``{tag}:reddit-events``."""
    own = hash_tag(name)
    if own is not None:
        start = name.index("{" + own + "}")
        name = (name[:start] + name[start + len(own) + 2 :]).strip(":")
    if name == tag or name.startswith(f"{tag}:"):
        return "{" + tag + "}" + name[len(tag) :]
    return f"{{{tag}}}:{name}" if name else f"{{{tag}}}"


def open_cluster(
    settings: Settings, password: str | None, options: Mapping[str, Any]
) -> tuple[RedisCluster, str, str]:
    """A cluster client that learns the cluster from the node REDIS_URL or REDIS_ADDR names,
    with where it points and how to look with redis-cli (both without the password)."""
    if settings.redis_url is not None:
        url = settings.redis_url.get_secret_value()
        shown = redact_url(url)
        client = ClusterClient.from_url(url, password=password, **options)
        return client, f"{shown} (cluster)", f"redis-cli -c -u {shown}"
    host, _, port = (settings.redis_addr or "").rpartition(":")
    client = ClusterClient(host=host, port=int(port), password=password, **options)
    shown = redact_url(f"redis://{settings.redis_addr}")
    return client, f"{shown} (cluster)", f"redis-cli -c -h {host} -p {port}"
