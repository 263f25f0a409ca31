"""Uniquely named Redis keys for one benchmark case, deleted afterwards."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from redis import Redis


@contextmanager
def fresh_keys(url: str, tag: str) -> Iterator[dict[str, str]]:
    """The settings (environment variables) that name every key of a run under a new prefix."""
    prefix = f"{tag}-{uuid.uuid4().hex[:8]}"
    names = {
        "STREAM": f"{prefix}:in",
        "GROUP": "g",
        "CONSUMER": "bench",
        "SIGNAL_STREAM": f"{prefix}:out",
        # BENCH_DECISION_LOG=off measures the pipeline without its decision log (for the store).
        "DECISION_STREAM": "" if os.environ.get("BENCH_DECISION_LOG") == "off" else f"{prefix}:log",
        "DECISION_HASH_PREFIX": f"{prefix}:d",
        "DLQ_STREAM": f"{prefix}:dlq",
        "LLM_CACHE_PREFIX": f"{prefix}:cache",
        "HEARTBEAT_PREFIX": f"{prefix}:hb",
    }
    try:
        yield names
    finally:
        client = Redis.from_url(url)
        keys = list(client.scan_iter(match=f"{prefix}*", count=10_000))
        for first in range(0, len(keys), 10_000):
            client.delete(*keys[first : first + 10_000])
        client.close()
