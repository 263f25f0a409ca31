"""Content-addressed cache of LLM replies in Redis: (provider, model, question) -> reply, with a
TTL, so duplicate stories and re-runs never pay twice. A question is the story (or the exact
prompt), the tickers asked about, the prompt template and the call parameters.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, cast

from redis.exceptions import RedisError

from signalsmith.analyze.llm.prompt import prompt_fingerprint
from signalsmith.analyze.llm.providers import ProviderConfig
from signalsmith.redisclient import RedisClient

CacheMode = Literal["readwrite", "readonly", "off"]


@dataclass(frozen=True, slots=True)
class CachedReply:
    provider: str
    model: str
    content: str
    tokens_in: int
    tokens_out: int
    tokens_cached: int = 0


def question_key(
    story: str | None,
    tickers: Sequence[str],
    messages: Sequence[Mapping[str, str]],
    template: str,
    params: Mapping[str, object],
) -> str:
    """What one LLM question is about, as a hash: with a story key, every copy of the story asks
    the same question about the same tickers; without one, the exact prompt is the question."""
    about: list[object] = (
        ["story", story, sorted(tickers), template]
        if story is not None
        else ["prompt", prompt_fingerprint(messages)]
    )
    material = json.dumps([*about, dict(params)], sort_keys=True, default=str)
    return hashlib.sha256(material.encode()).hexdigest()


class ReplyCache:
    """Get/put replies; a Redis failure is a miss, never a failed analysis."""

    def __init__(
        self, redis: RedisClient, *, prefix: str, ttl_seconds: int, mode: CacheMode
    ) -> None:
        self._redis = redis
        self._prefix = prefix
        self._ttl = ttl_seconds
        self.mode = mode

    def key(self, provider: ProviderConfig, question: str) -> str:
        """The key of ``question`` (see ``question_key``) as answered by ``provider``."""
        material = json.dumps([provider.name, provider.model, question])
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
                "tokens_cached": reply.tokens_cached,
            }
        )
        try:
            await self._redis.set(key, payload, ex=self._ttl or None)
        except RedisError:
            return
