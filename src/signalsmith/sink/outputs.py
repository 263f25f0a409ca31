"""Turn one post's decisions into what gets written: envelopes, legacy records, consensus updates.

Pure: the worker hands the result to the committer, which writes it atomically with the ack.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from pydantic import JsonValue

from signalsmith.domain import Decision, Post, Status, Verdict
from signalsmith.engine.outcome import Commit, Record
from signalsmith.envelopes import (
    EnvelopeV1,
    SourceRef,
    build_envelope,
    dump_locating_synthesis,
    legacy_record,
)
from signalsmith.sink.consensus import HashUpdate

ACTIONABLE = frozenset({Verdict.BUY, Verdict.SELL})
FLAT_ORIGINALS = 256  # up to this many original fields stay readable as orig.<name>


@dataclass(frozen=True, slots=True)
class OutputPolicy:
    """Where and what to publish; built once from settings."""

    signal_stream: str
    legacy_stream: str
    output_format: str  # envelope | legacy | both
    publish_all: bool  # False: only BUY and SELL reach the signal stream
    hash_prefix: str
    arena_id: str
    signal_maxlen: int
    decision_stream: str = ""  # every decision's envelope, for the store ("": none)
    decision_maxlen: int = 0


@dataclass(frozen=True, slots=True)
class PostContext:
    """What the outputs need to know about the post besides its decisions."""

    post: Post
    source: SourceRef
    trade_date: str
    now: datetime
    timings: Mapping[str, float]
    meta: Mapping[str, JsonValue]
    story: str  # the post's exact-copy key (copies count less in the rolling view)
    author: str  # a key for its author ("" when unknown)


def build_commit(
    entry_id: str,
    decisions: Sequence[Decision],
    context: PostContext,
    policy: OutputPolicy,
    asset_class: Mapping[str, str],
) -> Commit:
    """The records and consensus updates for one post; an entry with none is just acknowledged."""
    records: list[Record] = []
    hashes: list[HashUpdate] = []
    for decision in decisions:
        envelope = build_envelope(
            decision,
            source=context.source,
            trade_day=context.trade_date,
            asset_class=asset_class.get(decision.ticker, "equity"),
            published_at=context.now,
            arena_id=policy.arena_id,
            timings=context.timings,
            meta=context.meta,
        )
        body, start, length = dump_locating_synthesis(envelope)
        records += _records(decision, body, context, policy)
        if decision.status in (Status.OK, Status.DEGRADED):
            hashes.append(_hash_update(decision, envelope, (body, start, length), context, policy))
    return Commit(entry_id=entry_id, records=tuple(records), parts=tuple(hashes))


def _records(
    decision: Decision, body: bytes, context: PostContext, policy: OutputPolicy
) -> list[Record]:
    records: list[Record] = []
    published = decision.verdict in ACTIONABLE or policy.publish_all
    if published and policy.output_format in ("envelope", "both"):
        records.append(Record(policy.signal_stream, {"data": body}, policy.signal_maxlen))
    if policy.decision_stream:
        records.append(Record(policy.decision_stream, {"data": body}, policy.decision_maxlen))
    if decision.verdict in ACTIONABLE and policy.output_format in ("legacy", "both"):
        fields = legacy_record(decision, context.post, context.source["entry_id"], context.now)
        records.append(Record(policy.legacy_stream, fields, policy.signal_maxlen))
    return records


def _hash_update(
    decision: Decision,
    envelope: EnvelopeV1,
    located: tuple[bytes, int, int],
    context: PostContext,
    policy: OutputPolicy,
) -> HashUpdate:
    # The consensus envelope is this post's envelope with kind "consensus" and the consensus
    # synthesis, which the commit script computes and writes in place of the post's.
    target = envelope["decision"]["target"]
    ticker_key = f"{policy.hash_prefix}:{target['ticker']}"
    return HashUpdate(
        key=f"{ticker_key}:{target['trade_date']}",
        ticker=target["ticker"],
        trade_date=target["trade_date"],
        confidence=decision.confidence,
        score=decision.score,
        verdict=decision.verdict.value,
        published_at=envelope["published_at"],
        correlation_id=envelope["correlation_id"],
        arena_id=envelope["arena_id"],
        envelope=located[0],
        synthesis_at=located[1],
        synthesis_len=located[2],
        kind=envelope["decision"]["kind"],
        rolling_key=f"{ticker_key}:rolling",
        story_key=f"{ticker_key}:story:{context.story}",
        author_key=f"{ticker_key}:author:{context.author}" if context.author else "",
        asset_class=target["asset_class"],
    )


def dead_letter_commit(
    entry_id: str,
    fields: Mapping[bytes, bytes] | None,
    *,
    stream: str,
    dlq_stream: str,
    reason: str,
    detail: str,
    now: datetime,
    maxlen: int,
) -> Commit:
    """Move an entry to the dead-letter stream with its original fields, reason and time."""
    record: dict[str, str | bytes] = {
        "reason": reason,
        "detail": detail[:1000],
        "stream": stream,
        "entry_id": entry_id,
        "failed_at": now.isoformat(),
        **original_fields(fields or {}),
    }
    return Commit(entry_id=entry_id, records=(Record(dlq_stream, record, maxlen),))


def original_fields(fields: Mapping[bytes, bytes]) -> dict[str, str | bytes]:
    """An entry's fields as a dead letter keeps them: ``orig.<name>`` each, or, for an entry with
    very many fields or a name that is not UTF-8, all in one field ``orig`` (a JSON list of
    [name, value] pairs; bytes that are not UTF-8 as escaped surrogates), so that a dead letter is
    one bounded record and a replay restores every byte."""
    names = [_utf8(name) for name in fields]
    if len(fields) <= FLAT_ORIGINALS and all(name is not None for name in names):
        return {f"orig.{name}": value for name, value in zip(names, fields.values(), strict=True)}
    pairs = [
        [name.decode("utf-8", "surrogateescape"), value.decode("utf-8", "surrogateescape")]
        for name, value in fields.items()
    ]
    return {"orig": json.dumps(pairs)}


def _utf8(name: bytes) -> str | None:
    try:
        return name.decode("utf-8")
    except UnicodeDecodeError:
        return None
