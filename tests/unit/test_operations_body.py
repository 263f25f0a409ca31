"""The operations view's body from the process' own state: providers without where they are
reached (a key can hide in a base URL's path), dead letters by reason, unknowns as null."""

from __future__ import annotations

import json

from signalsmith.engine.stats import EngineStats
from signalsmith.observe.metrics import Metrics
from signalsmith.query.operations import OperationsSources, operations_body
from signalsmith.source.redis_streams import GroupRef


class _Pipeline:
    def __init__(self) -> None:
        self.ref = GroupRef("in", "group", "consumer")
        self.stats = EngineStats()


async def test_the_body_hides_provider_addresses_and_counts_dead_letters() -> None:
    metrics = Metrics()
    metrics.dead_lettered.labels(pipeline="posts", reason="bad_json").inc(3)
    metrics.dead_lettered.labels(pipeline="posts", reason="no_text").inc()
    provider = {"name": "groq", "state": "ok", "base_url": "https://api.example/v1/sk-abc123"}
    sources = OperationsSources(
        pipelines={"posts": _Pipeline()},
        metrics=metrics,
        providers=lambda: [dict(provider)],
        dead_letter_streams=("in:dlq",),
        redis=None,
        database=None,
    )
    raw = await operations_body(sources)
    body = json.loads(raw)
    assert b"sk-abc123" not in raw
    assert body["providers"] == [{"name": "groq", "state": "ok"}]
    assert body["dead_letters"]["by_reason"] == [
        {"pipeline": "posts", "reason": "bad_json", "count": 3},
        {"pipeline": "posts", "reason": "no_text", "count": 1},
    ]
    assert body["dead_letters"]["streams"] == [{"stream": "in:dlq", "length": None}]
    (posts,) = body["pipelines"]
    assert posts["pending"] is None
    assert posts["lag"] is None
    assert body["today"] is None
