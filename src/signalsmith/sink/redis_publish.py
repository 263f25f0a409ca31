"""Publish a post's records, fold its decisions into the day's consensus hashes and acknowledge
it, all in one Lua script: either everything happens or nothing does, so a redelivered post is
never published twice.

The script first checks that the entry is still pending for this consumer; if another consumer
reclaimed or acknowledged it meanwhile, it does nothing and says so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from redis.asyncio import Redis

from signalsmith.source.redis_streams import GroupRef

# ARGV: group, consumer, entry id, dead zone, hash ttl seconds, n records,
#   per record: key index, maxlen, n fields, field, value, ...
#   n hashes, per hash: key index, ticker, trade date, confidence, score, verdict,
#   published_at, correlation id, arena id, json head, json tail
_COMMIT_LUA = """
local group, consumer, id = ARGV[1], ARGV[2], ARGV[3]
local pending = redis.call('XPENDING', KEYS[1], group, id, id, 1, consumer)
if #pending == 0 then return 0 end
local dead_zone, ttl = tonumber(ARGV[4]), tonumber(ARGV[5])
local i = 6
local n_records = tonumber(ARGV[i]); i = i + 1
for _ = 1, n_records do
  local key = KEYS[tonumber(ARGV[i])]
  local maxlen, n_fields = tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])
  local args = {key}
  if maxlen > 0 then
    table.insert(args, 'MAXLEN'); table.insert(args, '~'); table.insert(args, maxlen)
  end
  table.insert(args, '*')
  for j = 1, 2 * n_fields do table.insert(args, ARGV[i + 2 + j]) end
  redis.call('XADD', unpack(args))
  i = i + 3 + 2 * n_fields
end
local n_hashes = tonumber(ARGV[i]); i = i + 1
for _ = 1, n_hashes do
  local key = KEYS[tonumber(ARGV[i])]
  local conf, score, vote = tonumber(ARGV[i + 3]), tonumber(ARGV[i + 4]), ARGV[i + 5]
  local h = redis.call('HMGET', key, 'posts', 'buy', 'sell', 'hold',
                       'weight_sum', 'weighted_score', 'confidence_sum')
  local posts, buy, sell, hold = tonumber(h[1]) or 0, tonumber(h[2]) or 0,
                                 tonumber(h[3]) or 0, tonumber(h[4]) or 0
  local wsum, wscore, csum = tonumber(h[5]) or 0, tonumber(h[6]) or 0, tonumber(h[7]) or 0
  local w = math.max(conf, 0.05)
  posts = posts + 1
  wsum = wsum + w; wscore = wscore + w * score; csum = csum + conf
  if vote == 'BUY' then buy = buy + 1
  elseif vote == 'SELL' then sell = sell + 1
  else hold = hold + 1 end
  local s = 0
  if wsum > 0 then s = math.max(-1, math.min(1, wscore / wsum)) end
  local verdict, agree = 'HOLD', hold
  if s >= dead_zone then verdict, agree = 'BUY', buy
  elseif s <= -dead_zone then verdict, agree = 'SELL', sell end
  local c = 0
  if posts > 0 then c = math.max(0, math.min(1, (csum / posts) * (agree / posts))) end
  local reasoning = string.format(
    'consensus of %d posts today: %d buy, %d sell, %d hold; confidence-weighted score %+.3f',
    posts, buy, sell, hold, s)
  local synthesis = string.format(
    '{"verdict":"%s","confidence":%.4f,"ensemble_score":%.4f,"reasoning":%s}',
    verdict, c, s, cjson.encode(reasoning))
  redis.call('HSET', key,
    'json', ARGV[i + 9] .. synthesis .. ARGV[i + 10],
    'ticker', ARGV[i + 1], 'trade_date', ARGV[i + 2], 'verdict', verdict,
    'confidence', string.format('%.4f', c), 'ensemble_score', string.format('%.4f', s),
    'published_at', ARGV[i + 6], 'correlation_id', ARGV[i + 7], 'arena_id', ARGV[i + 8],
    'posts', posts, 'buy', buy, 'sell', sell, 'hold', hold,
    'weight_sum', tostring(wsum), 'weighted_score', tostring(wscore),
    'confidence_sum', tostring(csum))
  if ttl > 0 then redis.call('EXPIRE', key, ttl) end
  i = i + 11
end
redis.call('XACK', KEYS[1], group, id)
return 1
"""


@dataclass(frozen=True, slots=True)
class Record:
    """One XADD: fields to append to ``stream``."""

    stream: str
    fields: Mapping[str, str | bytes]
    maxlen: int = 0


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
    json_head: str  # the consensus envelope JSON up to its synthesis object...
    json_tail: str  # ...and after it; the script writes the synthesis in between


@dataclass(frozen=True, slots=True)
class Commit:
    """Everything that must happen, together, before an entry is acknowledged."""

    entry_id: str
    records: Sequence[Record] = ()
    hashes: Sequence[HashUpdate] = field(default_factory=tuple)


class RedisCommitter:
    """Runs commits in one pipelined round trip; each commit is atomic on its own."""

    def __init__(
        self, redis: Redis, ref: GroupRef, *, dead_zone: float, hash_ttl_seconds: int
    ) -> None:
        self._redis = redis
        self._stream, self._group, self._consumer = ref.stream, ref.group, ref.consumer
        self._dead_zone = dead_zone
        self._ttl = hash_ttl_seconds
        self._script = redis.register_script(_COMMIT_LUA)

    async def commit(self, commits: Sequence[Commit]) -> list[bool]:
        """True for each commit applied; False where the entry was no longer ours to acknowledge."""
        if not commits:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for item in commits:
                keys, args = self._arguments(item)
                await self._script(keys=keys, args=args, client=pipe)
            results = await pipe.execute()
        return [bool(result) for result in results]

    def _arguments(self, item: Commit) -> tuple[list[str], list[str | bytes | int | float]]:
        keys = [self._stream]
        index: dict[str, int] = {}

        def key_index(name: str) -> int:
            if name not in index:
                keys.append(name)
                index[name] = len(keys)
            return index[name]

        args: list[str | bytes | int | float] = [
            self._group,
            self._consumer,
            item.entry_id,
            self._dead_zone,
            self._ttl,
            len(item.records),
        ]
        for record in item.records:
            args += [key_index(record.stream), record.maxlen, len(record.fields)]
            for name, value in record.fields.items():
                args += [name, value]
        args.append(len(item.hashes))
        for update in item.hashes:
            args += [
                key_index(update.key),
                update.ticker,
                update.trade_date,
                update.confidence,
                update.score,
                update.verdict,
                update.published_at,
                update.correlation_id,
                update.arena_id,
                update.json_head,
                update.json_tail,
            ]
        return keys, args
