"""A commit part that writes hashes: each update sets a hash's fields (and its time to live)
together with the entry's records and acknowledgement. The market pipeline keeps its
per-(product, trade date) hash with it: the newest insight of the day, in seed 003's fields."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from signalsmith.sink.redis_publish import Batch

_LUA = """
local function fold(u)
  -- u: [key index, ttl seconds, field, value, ...]; a number value n stands for ARGV[n]
  local args = {}
  for i = 3, #u, 2 do
    local value = u[i + 1]
    if type(value) == 'number' then value = ARGV[value] end
    args[#args + 1] = u[i]
    args[#args + 1] = value
  end
  redis.call('HSET', KEYS[u[1]], unpack(args))
  if u[2] > 0 then redis.call('EXPIRE', KEYS[u[1]], u[2]) end
end
local function finish() end
"""


@dataclass(frozen=True, slots=True)
class HashWrite:
    """Set ``fields`` of the hash ``key``; it expires ``ttl_s`` seconds later (0: never)."""

    key: str
    fields: Mapping[str, str | bytes]
    ttl_s: int = 0


class HashPart:
    """The commit part for ``HashWrite`` updates."""

    lua = _LUA

    def encode(self, batch: Batch, parts: Sequence[object]) -> list[object]:
        updates: list[object] = []
        for part in parts:
            if not isinstance(part, HashWrite):
                raise TypeError(f"a hash part folds HashWrite, not {type(part).__name__}")
            update: list[object] = [batch.key(part.key, "h"), part.ttl_s]
            for name, value in part.fields.items():
                update += (name, batch.raw_index(value))
            updates.append(update)
        return updates

    def settings(self, batch: Batch) -> dict[str, object]:
        return {}
