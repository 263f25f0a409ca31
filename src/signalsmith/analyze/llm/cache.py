"""Content-addressed cache of LLM replies in Redis: (provider, model, prompt, parameters) ->
reply, with a TTL, so duplicate posts and re-runs never pay twice.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, cast

from redis.asyncio import Redis
from redis.exceptions import RedisError

from signalsmith.analyze.llm.prompt import prompt_fingerprint
from signalsmith.analyze.llm.providers import ProviderConfig

CacheMode = Literal["readwrite", "readonly", "off"]


@dataclass(frozen=True, slots=True)
class CachedReply:
    provider: str
    model: str
    content: str
    tokens_in: int
    tokens_out: int


class ReplyCache:
    """Get/put replies; a Redis failure is a miss, never a failed analysis."""

    def __init__(self, redis: Redis, *, prefix: str, ttl_seconds: int, mode: CacheMode) -> None:
        self._redis = redis
        self._prefix = prefix
        self._ttl = ttl_seconds
        self.mode = mode

    def key(
        self,
        provider: ProviderConfig,
        messages: Sequence[Mapping[str, str]],
        params: Mapping[str, object],
    ) -> str:
        material = json.dumps(
            [provider.name, provider.model, prompt_fingerprint(messages), params],
            sort_keys=True,
            default=str,
        )
        return f"{self._prefix}:{hashlib.sha256(material.encode()).hexdigest()}"

    async def first_hit(self, keys: Sequence[str]) -> CachedReply | None:
        """The cached reply under the first key (in provider priority order) that has one."""
        if self.mode == "off" or not keys:
            return None
        try:
            values = cast(list[bytes | None], await self._redis.mget(list(keys)))
        except RedisError:
            return None
        for value in values:
            if value is not None:
                return CachedReply(**json.loads(value))
        return None

    async def put(self, key: str, reply: CachedReply) -> None:
        if self.mode != "readwrite":
            return
        payload = json.dumps(
            {
                "provider": reply.provider,
                "model": reply.model,
                "content": reply.content,
                "tokens_in": reply.tokens_in,
                "tokens_out": reply.tokens_out,
            }
        )
        try:
            await self._redis.set(key, payload, ex=self._ttl or None)
        except RedisError:
            return
