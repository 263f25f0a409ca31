"""Publish a post's records, fold its decisions into the day's consensus hash and the ticker's
rolling view (which may raise a mention spike), and acknowledge it, all in one Lua script
(``commit.lua``): the post's writes and its acknowledgement happen together, so a redelivered post
is never published twice. One script call commits a whole batch of posts (one round trip, its
arguments as one JSON document rather than hundreds of separately packed ones).

For each post the script first checks that the entry is still pending for this consumer; if
another consumer reclaimed or acknowledged it meanwhile, it does nothing for that post and says so.
Before writing anything it checks every key's type and every record's size: a Lua script that
fails half-way is not rolled back, so a refusal (``CommitRefused``) must come before the first
write, and a refused batch can be committed again entry by entry without writing anything twice.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources

from pydantic_core import to_json
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from signalsmith.engine.outcome import Commit
from signalsmith.errors import CommitRefused
from signalsmith.source.redis_streams import GroupRef

_FIRST_RAW_ARG = 5  # ARGV index of the first raw value (see commit.lua)
MAX_RECORD_FIELDS = 3_500  # field-value pairs in one XADD: Lua's unpack() takes about 8,000 values
_REFUSED = "REFUSED "  # the script's own refusal, made before its first write


def _script_text() -> str:
    return resources.files("signalsmith.sink").joinpath("commit.lua").read_text("utf-8")


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


class RedisCommitter:
    """Commits a batch in one script call: one round trip, and each commit atomic on its own."""

    def __init__(self, redis: Redis, ref: GroupRef, config: RollingConfig) -> None:
        self._redis = redis
        self._stream, self._group, self._consumer = ref.stream, ref.group, ref.consumer
        self._config = config
        self._script = redis.register_script(_script_text())

    async def commit(self, commits: Sequence[Commit]) -> list[bool]:
        """True for each commit applied; False where the entry was no longer ours to acknowledge."""
        if not commits:
            return []
        batch = _Batch(self._stream)
        payload = to_json([batch.commit(item) for item in commits])
        args: list[str | bytes] = [
            self._group,
            self._consumer,
            payload,
            to_json(self._settings(batch)),
            *batch.raw,
        ]
        try:
            results = await self._script(keys=batch.keys, args=args)
        except ResponseError as exc:
            if not str(exc).startswith(_REFUSED):  # an outage, or a failure we did not foresee
                raise  # (possibly after a write): the batch stays pending, never re-sent apart
            raise CommitRefused(str(exc)[:500]) from None
        return [bool(result) for result in results]

    def _settings(self, batch: _Batch) -> dict[str, object]:
        config, now = self._config, time.time()
        return {
            "dead_zone": config.dead_zone,
            "ttl": config.hash_ttl_s,
            "window_s": config.window_s,
            "bucket_s": config.bucket_s,
            "baseline_buckets": config.baseline_buckets,
            "spike_factor": config.spike_factor,
            "spike_min": config.spike_min_mentions,
            # Only a batch that folds decisions can raise a spike: a batch of dead letters and
            # plain acknowledgements must not depend on the signal stream's key.
            "signal": batch.key(config.spike_stream) if config.spike_stream and batch.folds else 0,
            "signal_maxlen": config.spike_maxlen,
            "now": now,
            "now_iso": datetime.fromtimestamp(now, UTC).isoformat(),
            "types": "".join(batch.types),
            "max_values": 2 * MAX_RECORD_FIELDS,
        }


class _Batch:
    """The script's KEYS and raw ARGV for a batch, and each commit in its JSON form.

    Field values and envelopes travel as raw arguments, referenced by index: the large strings
    are then neither escaped into the batch JSON here nor decoded from it in Redis. A post's
    envelope, published and also the base of the day's consensus envelope, travels once.
    """

    def __init__(self, stream: str) -> None:
        self.keys = [stream]
        self.folds = False  # some commit updates the consensus (and may raise a spike)
        self.types = ["s"]  # per key, what it must hold: s(tream), h(ash) or k (a counter)
        self._index = {stream: 1}
        self.raw: list[str | bytes] = []  # holds every value, so the ids below stay theirs
        self._raw_index: dict[int, int] = {}  # id(value) -> its ARGV index

    def commit(self, item: Commit) -> list[object]:
        updates = [part for part in item.parts if isinstance(part, HashUpdate)]
        self.folds = self.folds or bool(updates)
        records = [[self.key(r.stream), r.maxlen, self._fields(r.fields)] for r in item.records]
        hashes = [
            [
                self.key(u.key, "h"),
                u.ticker,
                u.trade_date,
                u.confidence,
                u.score,
                u.verdict,
                u.published_at,
                u.correlation_id,
                u.arena_id,
                self._raw(u.envelope),
                u.synthesis_at,
                u.synthesis_len,
                u.kind,
                self.key(u.rolling_key, "h"),
                self.key(u.story_key, "k"),
                self.key(u.author_key, "k") if u.author_key else 0,
                u.asset_class,
            ]
            for u in updates
        ]
        return [item.entry_id, records, hashes]

    def key(self, name: str, kind: str = "s") -> int:
        index = self._index.get(name)
        if index is None:
            self.keys.append(name)
            self.types.append(kind)
            index = self._index[name] = len(self.keys)
        return index

    def _fields(self, fields: Mapping[str, str | bytes]) -> list[object]:
        flat: list[object] = []
        for name, value in fields.items():
            flat += (name, self._raw(value))
        return flat

    def _raw(self, value: str | bytes) -> int:
        index = self._raw_index.get(id(value))
        if index is None:
            self.raw.append(value)
            index = self._raw_index[id(value)] = _FIRST_RAW_ARG + len(self.raw) - 1
        return index
