"""The generic commit: publish an entry's records, fold its updates (the pipeline's part), and
acknowledge it, all in one Lua script (``commit.lua``, with the part's Lua inserted): an entry's
writes and its acknowledgement happen together, so a redelivered entry is never published twice.
One script call commits a whole batch (one round trip, its arguments as one JSON document rather
than hundreds of separately packed ones).

For each entry the script first checks that it is still pending for this consumer; if another
consumer reclaimed or acknowledged it meanwhile, it does nothing for that entry and says so.
Before writing anything it checks every key's type and every record's size: a Lua script that
fails half-way is not rolled back, so a refusal (``CommitRefused``) must come before the first
write, and a refused batch can be committed again entry by entry without writing anything twice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from importlib import resources
from typing import Protocol

from pydantic_core import to_json
from redis.exceptions import ResponseError
from redis.typing import EncodableT, FieldT

from signalsmith.engine.outcome import Commit
from signalsmith.errors import CommitRefused
from signalsmith.redisclient import RedisClient
from signalsmith.source.redis_streams import GroupRef

_FIRST_RAW_ARG = 5  # ARGV index of the first raw value (see commit.lua)
MAX_RECORD_FIELDS = 3_500  # field-value pairs in one XADD: Lua's unpack() takes about 8,000 values
_REFUSED = "REFUSED "  # the script's own refusal, made before its first write
_PART_MARK = "--@part\n"


class CommitPart(Protocol):
    """A pipeline's own updates inside the commit: Lua defining ``fold(update)`` and
    ``finish()``, how its parts travel, and its settings."""

    @property
    def lua(self) -> str: ...

    def encode(self, batch: Batch, parts: Sequence[object]) -> list[object]: ...

    def settings(self, batch: Batch) -> dict[str, object]: ...


class PlainPart:
    """No updates: records and the acknowledgement only."""

    lua = "local function fold(u) end\nlocal function finish() end\n"

    def encode(self, batch: Batch, parts: Sequence[object]) -> list[object]:
        return []

    def settings(self, batch: Batch) -> dict[str, object]:
        return {}


def script_text(part: CommitPart) -> str:
    """The commit script with the part's Lua in its place."""
    core = resources.files("signalsmith.sink").joinpath("commit.lua").read_text("utf-8")
    return core.replace(_PART_MARK, part.lua, 1)


class RedisCommitter:
    """Commits a batch in one script call: one round trip, and each commit atomic on its own."""

    def __init__(self, redis: RedisClient, ref: GroupRef, part: CommitPart | None = None) -> None:
        self._redis = redis
        self._stream, self._group, self._consumer = ref.stream, ref.group, ref.consumer
        self._part: CommitPart = part if part is not None else PlainPart()
        self._script = redis.register_script(script_text(self._part))

    async def commit(self, commits: Sequence[Commit]) -> list[bool]:
        """True for each commit applied; False where the entry was no longer ours to acknowledge."""
        if not commits:
            return []
        batch = Batch(self._stream)
        payload = to_json([batch.commit(item, self._part) for item in commits])
        settings = {
            **self._part.settings(batch),
            "types": "".join(batch.types),
            "max_values": 2 * MAX_RECORD_FIELDS,
        }
        args: list[str | bytes] = [
            self._group,
            self._consumer,
            payload,
            to_json(settings),
            *batch.raw,
        ]
        try:
            results = await self._script(keys=batch.keys, args=args)
        except ResponseError as exc:
            if not str(exc).startswith(_REFUSED):  # an outage, or a failure we did not foresee
                raise  # (possibly after a write): the batch stays pending, never re-sent apart
            raise CommitRefused(str(exc)[:500]) from None
        return [bool(result) for result in results]


class Batch:
    """The script's KEYS and raw ARGV for a batch, and each commit in its JSON form.

    Field values and envelopes travel as raw arguments, referenced by index: the large strings
    are then neither escaped into the batch JSON here nor decoded from it in Redis. A value
    used twice (a post's envelope, published, logged and folded) travels once.
    """

    def __init__(self, stream: str) -> None:
        self.keys = [stream]
        self.folds = False  # some commit has updates for the part
        self.types = ["s"]  # per key, what it must hold: s(tream), h(ash) or k (a counter)
        self._index = {stream: 1}
        self.raw: list[str | bytes] = []  # holds every value, so the ids below stay theirs
        self._raw_index: dict[int, int] = {}  # id(value) -> its ARGV index

    def commit(self, item: Commit, part: CommitPart) -> list[object]:
        records = [[self.key(r.stream), r.maxlen, self._fields(r.fields)] for r in item.records]
        updates = part.encode(self, item.parts) if item.parts else []
        self.folds = self.folds or bool(updates)
        return [item.entry_id, records, updates]

    def key(self, name: str, kind: str = "s") -> int:
        index = self._index.get(name)
        if index is None:
            self.keys.append(name)
            self.types.append(kind)
            index = self._index[name] = len(self.keys)
        return index

    def raw_index(self, value: str | bytes) -> int:
        index = self._raw_index.get(id(value))
        if index is None:
            self.raw.append(value)
            index = self._raw_index[id(value)] = _FIRST_RAW_ARG + len(self.raw) - 1
        return index

    def _fields(self, fields: Mapping[str, str | bytes]) -> list[object]:
        flat: list[object] = []
        for name, value in fields.items():
            flat += (name, self.raw_index(value))
        return flat


async def publish_and_ack(redis: RedisClient, ref: GroupRef, commits: Sequence[Commit]) -> None:
    """A fan-out consumer's acknowledgement: the batch's records (its dead letters) and the
    XACK of every entry in one MULTI/EXEC, after the consumer's own write is done."""
    pipe = redis.pipeline(transaction=True)
    for commit in commits:
        for record in commit.records:
            fields: dict[FieldT, EncodableT] = {k: v for k, v in record.fields.items()}
            pipe.xadd(record.stream, fields, maxlen=record.maxlen or None, approximate=True)
    pipe.xack(ref.stream, ref.group, *(commit.entry_id for commit in commits))
    await pipe.execute()
