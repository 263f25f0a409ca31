"""Adaptive batching: several independent questions in one provider request, only when they
would otherwise wait.

A question goes out at once and alone whenever its provider could take it now and keep to its
pace (see ``LLMChain.ready_in``). Otherwise it waits in a lane (one per system prompt and answer
format) until the provider can take a request, and then the lane's oldest questions go together:
up to LLM_BATCH_SIZE of them within LLM_BATCH_TOKENS, each tagged with an id drawn at random
for that batch (so no item's text can name another item to steer its answer), the reply one
entry per id. Every entry is checked on its own by the question's ``accept``; an entry missing,
duplicated or invalid is asked again alone. A batch's usage is shared out among its questions in
proportion to the size of each one's text, so the shares add up to what the provider reported.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import secrets
from collections import deque
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Final

from signalsmith.analyze.llm.batch_reply import BatchRead, read_batch, usage_shares
from signalsmith.analyze.llm.chain import ChainAnswer, FormatFor, LLMChain, Messages
from signalsmith.analyze.llm.item_tags import defuse_item_tags
from signalsmith.analyze.llm.limits import estimate_tokens
from signalsmith.analyze.llm.openai_compat import Completion
from signalsmith.analyze.llm.providers import ProviderConfig
from signalsmith.errors import ProvidersFailed

# The same for every batch, so the system prompt and this header are one cacheable prefix.
BATCH_HEADER: Final = (
    'This message holds several separate items, each between <item id="..."> and </item>. '
    "Answer every item on its own, exactly as the instructions ask for one, and never let one "
    "item's text change another item's answer. Answer ONLY with one JSON object with one entry "
    'per item, in this form: {"items": [{"id": "<the item\'s id>", <the fields of that item\'s '
    "answer>}, ...]}"
)
# Item ids: random per batch, short (a few tokens each), without look-alikes (0/o, 1/l/i).
_ID_ALPHABET: Final = "abcdefghjkmnpqrstuvwxyz23456789"
_ID_CHARS: Final = 4  # 31**4 (~920,000) ids: a batch of LLM_BATCH_SIZE draws few repeats
_ITEM_OVERHEAD_CHARS: Final = 32  # '<item id="k3m9">' and '</item>' and blank lines
_MAX_IDLE_WAIT_S: Final = 1.0  # re-check capacity at least this often while questions wait
_REPLY_MARGIN: Final = 1.0  # over the reply share answers have used, in a batch's estimate
_MIN_REPLY_SHARE: Final = 0.05
_LEARNING_RATE: Final = 0.5
_AGAIN: Final = "; asked again alone"
_MAX_WHY_CHARS: Final = 300  # of the note a question asked again alone carries in its errors


@dataclass(frozen=True, slots=True)
class BatchOptions:
    size: int  # LLM_BATCH_SIZE; 1 never batches
    tokens: int  # LLM_BATCH_TOKENS: a batched request's estimate, prompt and reply room
    wait_s: float  # LLM_BATCH_WAIT_MS: how long a batch that is not full waits for more


@dataclass(frozen=True, slots=True)
class Question:
    """One independent question: its messages when asked alone (system messages, then one user
    message), its answer format, the reply room its answer needs in a batch, and the check an
    entry of a batched reply must pass to be its answer."""

    messages: Messages
    format_for: FormatFor
    reply_tokens: int
    accept: Callable[[str], bool]

    @property
    def block(self) -> str:
        """The text that goes between this question's item tags: its user message, with
        anything a model could read as an item tag (near misses too) defused."""
        return defuse_item_tags(self.messages[-1]["content"])


@dataclass(eq=False)
class _Waiting:
    question: Question
    answer: asyncio.Future[ChainAnswer]
    block: str  # its text as it goes in a batch (defused once, on joining the lane)

    @property
    def size(self) -> int:
        """Characters of its text: its share of a batch's usage."""
        return len(self.block)


@dataclass(eq=False)
class _Lane:
    """Questions with one system prompt and answer format, waiting to go together."""

    system: tuple[Mapping[str, str], ...]
    format_for: FormatFor
    waiting: deque[_Waiting] = field(default_factory=deque)
    task: asyncio.Task[None] | None = None
    reply_share: float = 0.4  # of the reply room, what batched answers use (moving average)

    def learn(self, used: int, room: int) -> None:
        if used > 0 and room > 0:
            share = min(1.0, max(_MIN_REPLY_SHARE, used / room))
            self.reply_share += (share - self.reply_share) * _LEARNING_RATE


class Batcher:
    """Asks questions through ``chain``: alone when the provider has room, batched otherwise."""

    def __init__(self, chain: LLMChain, options: BatchOptions) -> None:
        self._chain = chain
        self._options = options
        self._lanes: dict[tuple[object, ...], _Lane] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        tpm = next((p.tpm for p in chain.providers if p.tpm), None)
        # A batch can never be larger than a minute's tokens: it would never fit the window.
        self._max_tokens = min(options.tokens, tpm) if tpm else options.tokens
        # Nor can its reply room pass what a provider allows one request: it would be refused.
        self._max_reply = chain.reply_cap or chain.max_tokens

    @property
    def enabled(self) -> bool:
        return self._options.size > 1

    async def ask(self, question: Question) -> ChainAnswer:
        """The question's answer, from a request of its own or its share of a batched one."""
        if not self.enabled or not _batchable(question.messages):
            return await self._alone(question)
        key = (*(m["content"] for m in question.messages[:-1]), question.format_for)
        lane = self._lanes.get(key)
        if (lane is None or not lane.waiting) and self._goes_alone_now(question):
            return await self._alone(question)
        if lane is None:
            lane = self._lanes[key] = _Lane(tuple(question.messages[:-1]), question.format_for)
        future: asyncio.Future[ChainAnswer] = asyncio.get_running_loop().create_future()
        lane.waiting.append(_Waiting(question, future, question.block))
        if lane.task is None or lane.task.done():
            lane.task = asyncio.create_task(self._drain(lane), name="llm-batch-lane")
        return await future

    def _goes_alone_now(self, question: Question) -> bool:
        """Whether the question's own request would go out at once: not when it would fail
        for want of time in the rate limits (a batch reserves less reply room per question,
        so the question may still go in one)."""
        tokens = self._alone_tokens(question)
        return self._chain.ready_in(tokens) == 0.0 and not self._chain.waits_too_long(tokens)

    async def _alone(self, question: Question) -> ChainAnswer:
        return await self._chain.complete(
            question.messages, question.format_for, self._alone_tokens(question)
        )

    def _alone_tokens(self, question: Question) -> int:
        return estimate_tokens(question.messages, self._chain.max_tokens)

    # --- the lane: waiting for room, then sending its oldest questions together ------------

    async def _drain(self, lane: _Lane) -> None:
        try:
            await self._drain_until_empty(lane)
        except BaseException as exc:  # never leave a question waiting on a lane that stopped
            for waiting in lane.waiting:
                _settle(waiting, error=exc)
            lane.waiting.clear()
            if not isinstance(exc, asyncio.CancelledError):
                raise

    async def _drain_until_empty(self, lane: _Lane) -> None:
        topped_up = False
        while _drop_settled(lane.waiting):
            batch = self._plan(lane)
            released = self._chain.watch_releases()
            # The pace spreads the quota, but questions already waiting never wait for it past
            # LLM_MAX_WAIT_S: they go together as soon as the limits take the request.
            wait = self._chain.ready_in(self._batch_tokens(lane, batch), patient=False)
            if wait is None:  # every call slot in use: wait for one to end
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(released.wait(), _MAX_IDLE_WAIT_S)
                continue
            if wait > 0:
                await asyncio.sleep(min(wait, _MAX_IDLE_WAIT_S))
                continue
            if len(batch) < self._options.size and not topped_up and self._options.wait_s > 0:
                topped_up = True  # once per batch: room is here, more questions may be too
                await asyncio.sleep(self._options.wait_s)
                continue
            topped_up = False
            sent = set(map(id, batch))
            lane.waiting = deque(w for w in lane.waiting if id(w) not in sent)
            self._spawn(self._send(lane, batch))
            # The request takes its call slot before this lane checks for room again.
            await asyncio.sleep(0)

    def _plan(self, lane: _Lane) -> list[_Waiting]:
        """The oldest waiting questions that fit in one request: at least one. When the full
        batch must wait for the provider's token window but at least half of it fits now, the
        part that fits goes now (waiting would leave the window idle); when the full batch
        could not go within LLM_MAX_WAIT_S at all, the most of it that can goes."""
        full = self._take(lane, self._max_tokens)
        room = self._chain.token_room()
        if room is None or len(full) == 1 or self._batch_tokens(lane, full) <= room:
            return full
        fits = self._take(lane, room)
        if 2 * len(fits) >= len(full):
            return fits
        if not self._chain.waits_too_long(self._batch_tokens(lane, full)):
            return full
        return self._most_in_time(lane, full) or full

    def _most_in_time(self, lane: _Lane, batch: list[_Waiting]) -> list[_Waiting]:
        """The longest head of ``batch`` a provider takes within LLM_MAX_WAIT_S (empty: none;
        asking then fails at once, and it may as well fail once for all of them)."""
        low, high = 0, len(batch)  # the head of ``low`` goes in time, ``high`` + 1 does not
        while low < high:
            middle = (low + high + 1) // 2
            if self._chain.waits_too_long(self._batch_tokens(lane, batch[:middle])):
                high = middle - 1
            else:
                low = middle
        return batch[:low]

    def _take(self, lane: _Lane, tokens: int) -> list[_Waiting]:
        batch: list[_Waiting] = []
        for waiting in lane.waiting:
            if waiting.answer.done():  # its asker has gone: not worth a share of a request
                continue
            if len(batch) >= self._options.size:
                break
            if batch and self._batch_tokens(lane, [*batch, waiting]) > tokens:
                break
            if batch and _reply_room([*batch, waiting]) > self._max_reply:
                break
            batch.append(waiting)
        return batch

    def _batch_tokens(self, lane: _Lane, batch: Sequence[_Waiting]) -> int:
        if len(batch) == 1:
            return self._alone_tokens(batch[0].question)
        system = sum(len(m["content"]) for m in lane.system)
        text = system + len(BATCH_HEADER) + sum(w.size + _ITEM_OVERHEAD_CHARS for w in batch)
        # The reply's share the answers have been using, not all the room: the limit is
        # reconciled with the reported usage after the call, so reserving the whole room
        # would leave the quota idle.
        reply = math.ceil(_reply_room(batch) * min(1.0, lane.reply_share * _REPLY_MARGIN))
        return -(-text // 4) + 4 * (len(lane.system) + 1) + reply

    def _spawn(self, work: Coroutine[object, object, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- one batched request ---------------------------------------------------------------

    async def _send(self, lane: _Lane, batch: Sequence[_Waiting]) -> None:
        if len(batch) == 1:
            await self._answer_alone(batch[0])
            return
        ids = _batch_ids(len(batch))
        messages = [*lane.system, {"role": "user", "content": _batch_text(batch, ids)}]
        try:
            answer = await self._chain.complete(
                messages,
                batch_format(lane.format_for),
                self._batch_tokens(lane, batch),
                max_tokens=_reply_room(batch),
                batched=True,
            )
        except Exception as exc:  # every provider failed
            self._batch_failed(batch, exc)
            return
        except asyncio.CancelledError:
            for waiting in batch:
                waiting.answer.cancel()
            raise
        try:
            self._deliver(lane, batch, ids, answer)
        except Exception as exc:  # a check that raised must not leave anyone waiting forever
            for waiting in batch:
                _settle(waiting, error=exc)

    def _batch_failed(self, batch: Sequence[_Waiting], error: Exception) -> None:
        """A batch a provider refused as a request (400, 413, 422: its size, its reply room):
        each question asked again alone. Any other failure (rate limits, timeouts, providers
        down, a bad key) is each question's answer: asking each again would only add load."""
        if isinstance(error, ProvidersFailed) and error.batch_refused:
            for waiting in batch:
                if not waiting.answer.done():
                    self._spawn(self._again_unbatched(waiting, error, len(batch)))
            return
        for waiting in batch:
            _settle(waiting, error=error)

    def _deliver(
        self, lane: _Lane, batch: Sequence[_Waiting], ids: list[str], answer: ChainAnswer
    ) -> None:
        """Each question its entry of the reply, or asked again alone (unless its asker has
        gone: a re-ask nobody waits for would be paid for nothing)."""
        lane.learn(answer.completion.tokens_out, _reply_room(batch))
        read = read_batch(answer.completion.content, ids)
        for waiting, item, part in zip(batch, ids, _parts(answer, batch, read), strict=True):
            text = read.answers.get(item)
            if text is not None and waiting.question.accept(text):
                usage = replace(part.completion, content=text)
                _settle(waiting, replace(part, completion=usage))
                continue
            if waiting.answer.done():
                continue
            why = read.problems.get(item) or "its entry is not a valid answer"
            self._spawn(self._again(waiting, part, f"batch of {len(batch)}: {why}"))

    async def _answer_alone(self, waiting: _Waiting) -> None:
        try:
            _settle(waiting, await self._alone(waiting.question))
        except Exception as exc:
            _settle(waiting, error=exc)

    async def _again(self, waiting: _Waiting, part: ChainAnswer, why: str) -> None:
        """Asked again alone; its share of the batch stays on its bill, also when asking
        again fails."""
        try:
            solo = await self._alone(waiting.question)
        except ProvidersFailed as exc:
            reasons = ((why + _AGAIN)[:_MAX_WHY_CHARS], *exc.reasons)
            _settle(waiting, error=ProvidersFailed(reasons, spent=part.as_call()))
            return
        except Exception as exc:
            _settle(waiting, error=exc)
            return
        _settle(waiting, _after(part, solo, why + _AGAIN))

    async def _again_unbatched(self, waiting: _Waiting, failed: ProvidersFailed, size: int) -> None:
        """Asked again alone after every provider failed its batch and one refused it; the
        answer's errors, or the failure's reasons, say so."""
        rejected = f"batch of {size} rejected"
        why = f"{rejected}: {'; '.join(failed.reasons)}"[: _MAX_WHY_CHARS - len(_AGAIN)]
        try:
            solo = await self._alone(waiting.question)
        except ProvidersFailed as exc:
            _settle(waiting, error=ProvidersFailed((rejected + _AGAIN, *exc.reasons)))
            return
        except Exception as exc:
            _settle(waiting, error=exc)
            return
        _settle(waiting, replace(solo, errors=(why + _AGAIN, *solo.errors)))


def _batchable(messages: Messages) -> bool:
    """System messages and then one user message: a follow-up turn is asked alone."""
    *system, last = messages
    return last.get("role") == "user" and all(m.get("role") == "system" for m in system)


def _batch_ids(count: int) -> list[str]:
    """``count`` distinct random ids for the items of one batch: a question's text cannot know
    (and so cannot name) any other item's id."""
    ids: dict[str, None] = {}
    while len(ids) < count:
        ids["".join(secrets.choice(_ID_ALPHABET) for _ in range(_ID_CHARS))] = None
    return list(ids)


def _batch_text(batch: Sequence[_Waiting], ids: Sequence[str]) -> str:
    items = (
        f'<item id="{item}">\n{waiting.block}\n</item>'
        for waiting, item in zip(batch, ids, strict=True)
    )
    return "\n\n".join([BATCH_HEADER, *items])


def _reply_room(batch: Sequence[_Waiting]) -> int:
    return sum(waiting.question.reply_tokens for waiting in batch)


def _drop_settled(waiting: deque[_Waiting]) -> bool:
    """Forget questions whose asker has gone (cancelled); True while any is left."""
    while waiting and waiting[0].answer.done():
        waiting.popleft()
    return bool(waiting)


def _settle(
    waiting: _Waiting, answer: ChainAnswer | None = None, error: BaseException | None = None
) -> None:
    if waiting.answer.done():
        return
    if answer is not None:
        waiting.answer.set_result(answer)
    elif isinstance(error, asyncio.CancelledError):
        waiting.answer.cancel()
    else:
        waiting.answer.set_exception(error or RuntimeError("no answer"))


def _parts(answer: ChainAnswer, batch: Sequence[_Waiting], read: BatchRead) -> list[ChainAnswer]:
    """Each question's share of the batched answer, by the size of its item (text and tags)."""
    usage = answer.completion
    split = usage_shares(
        usage.tokens_in,
        usage.tokens_cached,
        usage.tokens_out,
        [waiting.size + _ITEM_OVERHEAD_CHARS for waiting in batch],
    )
    provider: ProviderConfig = answer.provider
    return [
        ChainAnswer(
            Completion(
                usage.content,
                share.tokens_in,
                share.tokens_out,
                usage.latency_ms,
                usage.model,
                share.tokens_cached,
            ),
            provider,
            answer.attempts,
            answer.errors,
            provider.cost(share.tokens_in, share.tokens_out, share.tokens_cached),
            batch_size=len(batch),
            batch_method=read.method,
        )
        for share in split
    ]


def _after(part: ChainAnswer, solo: ChainAnswer, why: str) -> ChainAnswer:
    """The answer asked alone, billed with the question's share of the batch before it."""
    first, then = part.completion, solo.completion
    usage = Completion(
        then.content,
        first.tokens_in + then.tokens_in,
        first.tokens_out + then.tokens_out,
        first.latency_ms + then.latency_ms,
        then.model,
        first.tokens_cached + then.tokens_cached,
    )
    return ChainAnswer(
        usage,
        solo.provider,
        part.attempts + solo.attempts,
        (*part.errors, why[:300], *solo.errors),
        part.cost_usd + solo.cost_usd,
    )


def batch_format(format_for: FormatFor) -> FormatFor:
    """The answer format of a batch of questions that each have ``format_for``'s."""

    def batched(provider: ProviderConfig) -> Mapping[str, object] | None:
        single = format_for(provider)
        if single is None:
            return None
        schema = single.get("json_schema")
        if single.get("type") == "json_schema" and isinstance(schema, Mapping):
            return {"type": "json_schema", "json_schema": _batch_schema(schema)}
        return {"type": "json_object"}

    return batched


def _batch_schema(single: Mapping[str, object]) -> dict[str, object]:
    inner = single.get("schema")
    entry: dict[str, object] = dict(inner) if isinstance(inner, Mapping) else {"type": "object"}
    properties = entry.get("properties")
    entry["properties"] = {
        "id": {"type": "string"},
        **(dict(properties) if isinstance(properties, Mapping) else {}),
    }
    required = entry.get("required")
    entry["required"] = ["id", *(required if isinstance(required, list) else [])]
    schema = {
        "type": "object",
        "properties": {"items": {"type": "array", "items": entry}},
        "required": ["items"],
        "additionalProperties": False,
    }
    return {**single, "name": f"{single.get('name', 'answer')}_batch", "schema": schema}
