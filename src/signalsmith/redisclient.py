"""The Redis client signalsmith talks through: one server, or a Redis Cluster (REDIS_CLUSTER=true).

Both take every command signalsmith sends; on a cluster the keys of one script call or
transaction must hash to one slot, which ``signalsmith.cluster`` checks at start-up. The
cluster client's failures read like a single server's: redis-py raises "no node reachable"
and "slot not covered" outside ``RedisError``, where every caller would miss an outage.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from typing import Any, TypeAlias

from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterPipeline, RedisCluster
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import (
    RedisClusterException,
    RedisClusterUnreachableError,
    RedisError,
    SlotNotCoveredError,
)
from redis.typing import EncodableT

from signalsmith.errors import TransientError

RedisClient: TypeAlias = Redis | RedisCluster

# What redis-py says, with no error class of its own, when the nodes describe a cluster that is
# not whole yet (a master down, slots moving): waited out like an outage, not a mistake.
_NOT_READY = ("All slots are not covered", "startup_nodes could not agree")


class ClusterClient(RedisCluster):
    """``RedisCluster`` raising a node's own error (a refused connection, a timeout, a refused
    password) where it wrapped one, and ``ConnectionError`` when no node or no owner of a slot
    answers; what it raises for a mistake (keys in different slots) is left as it is."""

    async def execute_command(self, *args: EncodableT, **kwargs: Any) -> Any:
        try:
            # redis-py routes a command before it initialises the client: of several first
            # commands at once, one could route while another learns the cluster and fail
            # with "Missing key". Each waits for the first initialisation (run once, under
            # redis-py's lock); once done, this returns at once.
            await self.initialize()
            return await super().execute_command(*args, **kwargs)
        except RedisClusterException as exc:
            failure = node_error(exc)
        raise failure  # outside the handler: the node error keeps its own cause and context

    def pipeline(
        self, transaction: Any | None = None, shard_hint: Any | None = None
    ) -> ClusterPipeline:
        if shard_hint:
            raise RedisClusterException("shard_hint is deprecated in cluster mode")
        # redis-py builds its own pipeline the same way; its typing marks the class abstract
        return _ClusterPipeline(self, transaction)  # type: ignore[abstract]


class _ClusterPipeline(ClusterPipeline):
    async def execute(
        self, raise_on_error: bool = True, allow_redirections: bool = True
    ) -> list[Any]:
        try:
            return await super().execute(raise_on_error, allow_redirections)
        except RedisClusterException as exc:
            failure = node_error(exc)
        raise failure


def node_error(exc: RedisClusterException) -> Exception:
    """The error a cluster client's failure stands for: the node's own (the explicit cause it
    was raised from); a ``ConnectionError`` when no node answers, a slot has no node, or the
    cluster is not whole yet; else ``exc`` itself (a mistake, such as keys in two slots)."""
    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, RedisError):
        cause = cause.__cause__
    if isinstance(cause, Exception):
        return cause
    outage = isinstance(exc, RedisClusterUnreachableError | SlotNotCoveredError)
    if outage or str(exc).startswith(_NOT_READY):
        return RedisConnectionError(str(exc))
    return exc


@contextlib.contextmanager
def redis_errors(doing: str) -> Iterator[None]:
    """Redis failing (down, timing out, refusing) while ``doing`` something, as a
    ``TransientError`` naming the error's class (never its text, which may quote an address)."""
    try:
        yield
    except RedisError as exc:
        raise TransientError(f"Redis failed while {doing}: {type(exc).__name__}") from None


class LoopClient:
    """A client made on first use, on the event loop that uses it (the HTTP thread's), and
    closed there when the loop's runner cancels what is left at shutdown."""

    def __init__(self, connect: Callable[[], RedisClient]) -> None:
        self._connect = connect
        self._client: RedisClient | None = None
        self._keeper: asyncio.Task[None] | None = None

    def get(self) -> RedisClient:
        if self._client is None:
            self._client = self._connect()
            self._keeper = asyncio.get_running_loop().create_task(self._close_at_loop_end())
        return self._client

    async def _close_at_loop_end(self) -> None:
        try:
            await asyncio.Event().wait()
        finally:
            client, self._client = self._client, None
            if client is not None:
                await client.aclose()
