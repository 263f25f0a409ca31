"""The posts pipeline's part of the commit: each decision folded into the (ticker, trade date)
consensus hash and the ticker's rolling view, which may raise a mention spike
(``consensus.lua``, run inside the commit script, atomic with the post's records and ack).

``signalsmith.consensus`` holds the same arithmetic in Python, as its reference.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources

from signalsmith.sink.redis_publish import Batch


@dataclass(frozen=True, slots=True)
class HashUpdate:
    """One decision folded into the (ticker, trade date) consensus hash."""

    key: str
    ticker: str
    trade_date: str
    confidence: float
    score: float
    verdict: str
    published_at: str
    correlation_id: str
    arena_id: str
    envelope: bytes  # the post's envelope JSON; the day's consensus envelope is this one...
    synthesis_at: int  # ...with the consensus synthesis in place of the bytes from here...
    synthesis_len: int  # ...this long...
    kind: str  # ...and "consensus" as the decision kind instead of this
    rolling_key: str  # the ticker's rolling view
    story_key: str  # counts this story's copies on the ticker in the window
    author_key: str  # counts the author's posts on the ticker in the window ("": no author)
    asset_class: str


@dataclass(frozen=True, slots=True)
class RollingConfig:
    """The commit script's settings for the daily hash, the rolling view and spikes."""

    dead_zone: float
    hash_ttl_s: int  # daily hashes expire after this (0: never)
    window_s: int  # the rolling view covers this many seconds...
    bucket_s: int  # ...in buckets of this size, which are also the spike detector's
    baseline_buckets: int  # a spike is measured against this many buckets before it
    spike_factor: float
    spike_min_mentions: float
    spike_stream: str  # where spikes are published ("": kept in the hash only)
    spike_maxlen: int
    log_stream: str = ""  # the decision log, where spikes are logged too ("": none)
    log_maxlen: int = 0


class ConsensusPart:
    """Folds ``HashUpdate`` parts; spikes are published to the signal stream and the log."""

    def __init__(self, config: RollingConfig) -> None:
        self._config = config
        self.lua = resources.files("signalsmith.sink").joinpath("consensus.lua").read_text("utf-8")

    def encode(self, batch: Batch, parts: Sequence[object]) -> list[object]:
        return [_encode(batch, part) for part in parts if isinstance(part, HashUpdate)]

    def settings(self, batch: Batch) -> dict[str, object]:
        config, now = self._config, time.time()
        # Only a batch that folds decisions can raise a spike: a batch of dead letters and
        # plain acknowledgements must not depend on the signal stream's or the log's key.
        folds = batch.folds
        return {
            "dead_zone": config.dead_zone,
            "ttl": config.hash_ttl_s,
            "window_s": config.window_s,
            "bucket_s": config.bucket_s,
            "baseline_buckets": config.baseline_buckets,
            "spike_factor": config.spike_factor,
            "spike_min": config.spike_min_mentions,
            "signal": batch.key(config.spike_stream) if config.spike_stream and folds else 0,
            "signal_maxlen": config.spike_maxlen,
            "log": batch.key(config.log_stream) if config.log_stream and folds else 0,
            "log_maxlen": config.log_maxlen,
            "now": now,
            "now_iso": datetime.fromtimestamp(now, UTC).isoformat(),
        }


def _encode(batch: Batch, u: HashUpdate) -> list[object]:
    return [
        batch.key(u.key, "h"),
        u.ticker,
        u.trade_date,
        u.confidence,
        u.score,
        u.verdict,
        u.published_at,
        u.correlation_id,
        u.arena_id,
        batch.raw_index(u.envelope),
        u.synthesis_at,
        u.synthesis_len,
        u.kind,
        batch.key(u.rolling_key, "h"),
        batch.key(u.story_key, "k"),
        batch.key(u.author_key, "k") if u.author_key else 0,
        u.asset_class,
    ]
