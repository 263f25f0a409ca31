"""A fake OpenAI-compatible chat-completions server for tests, benchmarks and keyless demos.

It owns the fake's config, seeded fault draws, canned and batched replies, admin endpoints and
uvicorn runner; per-key quotas and prompt caching live in ``fakequota``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import json
import logging
import math
import random
import re
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from types import TracebackType
from typing import Final

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import TypeAdapter, ValidationError
from starlette.types import Receive, Scope, Send

from signalsmith.analyze.lexicon import Lexicon
from signalsmith.domain import Opinion, Verdict
from signalsmith.fakeoracle import Answers
from signalsmith.fakequota import (
    Admission,
    Quotas,
    Ticket,
    Usage,
    decimal_seconds,
    duration,
    key_id,
    tokens_of,
)

__all__ = ["OUTCOMES", "FakeConfig", "FakeLLMServer", "FakeStats", "create_app", "serve"]

JSONObject = dict[str, object]


@dataclass
class FakeConfig:
    """How the fake answers; mutable at run time (attributes or ``POST /_fake/config``).

    Fault rates are fractions of chat calls. One uniform draw per call is matched against the
    rates stacked in a fixed order (429, 5xx, timeout, drop, malformed, prose, think,
    wrong_ticker, seed000): if they sum past 1 the earlier ones win.

    ``replies`` scripts free-text answers: each answered call (one not failed with a status)
    takes the next one as its content, whatever the request asked and whatever content fault
    was drawn; once they are used up, the usual answers resume. In a reply to a batch, the
    JSON string ``"@N"`` stands for the id of the batch's N-th item.

    ``rpm`` and ``tpm`` are per-API-key quotas over a sliding 60-second window, checked after
    auth and before any fault: a call past either is answered 429 (outcome "quota").

    ``max_output_tokens`` is the most a call may ask for in ``max_tokens`` (or
    ``max_completion_tokens``): a call asking for more is answered 400 like a real provider's
    "max_tokens is too large" (outcome "max_tokens"), before quotas and faults.
    """

    latency_ms: float = 0.0  # added to every answer
    jitter_ms: float = 0.0  # latency varies uniformly within ±jitter_ms (never below 0)
    seed: int | None = None  # fault draws are random.Random(seed): reproducible
    rate_429: float = 0.0
    retry_after_s: float = 1.0
    rate_5xx: float = 0.0  # answered 500, 502 or 503
    rate_timeout: float = 0.0  # held for timeout_s (or until the client hangs up)
    timeout_s: float = 30.0
    rate_drop: float = 0.0  # connection closed mid-body
    rate_malformed: float = 0.0  # content is truncated JSON
    rate_prose: float = 0.0  # JSON inside prose and ```json fences
    rate_think: float = 0.0  # <think> block with a decoy JSON object first
    rate_wrong_ticker: float = 0.0  # first signal names a ticker the request did not
    rate_seed000: float = 0.0  # legacy "analysis---TICKER---code" lines
    status_override: int | None = None  # every /v1 call answers this status (400-599)
    model_name: str = "fake-1"
    replies: list[str] = field(default_factory=list)  # scripted contents, consumed in order
    rpm: int | None = None  # requests per minute per API key; None: no quota
    tpm: int | None = None  # prompt + completion tokens per minute per API key; None: no quota
    max_output_tokens: int | None = None  # past it, max_tokens is refused with 400; None: any

    def bands(self) -> tuple[tuple[str, float], ...]:
        """The random outcomes with their rates, in draw order."""
        return (
            ("429", self.rate_429),
            ("5xx", self.rate_5xx),
            ("timeout", self.rate_timeout),
            ("drop", self.rate_drop),
            ("malformed", self.rate_malformed),
            ("prose", self.rate_prose),
            ("think", self.rate_think),
            ("wrong_ticker", self.rate_wrong_ticker),
            ("seed000", self.rate_seed000),
        )


def check_config(config: FakeConfig) -> None:
    """Raise ValueError naming the first field whose value the fake cannot honour."""
    for name, rate in config.bands():
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"rate_{name} must be within 0..1, got {rate}")
    for name in ("latency_ms", "jitter_ms", "retry_after_s", "timeout_s"):
        value = getattr(config, name)
        if not (math.isfinite(value) and value >= 0):
            raise ValueError(f"{name} must be a finite number >= 0, got {value}")
    if config.status_override is not None and not 400 <= config.status_override <= 599:
        raise ValueError(
            f"status_override must be an error status 400-599, got {config.status_override}"
        )
    if not config.model_name:
        raise ValueError("model_name must not be empty")
    for name in ("rpm", "tpm", "max_output_tokens"):
        value = getattr(config, name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise ValueError(f"{name} must be a whole number >= 1 or null, got {value!r}")
        if value is not None and value < 1:
            raise ValueError(f"{name} must be >= 1 (or null for no limit), got {value}")


# Every outcome a chat call can have; stats always list all of them.
OUTCOMES: Final = (
    "ok",
    "429",
    "quota",  # refused by the rpm/tpm quota, not by the random 429 fault
    "5xx",
    "timeout",
    "drop",
    "malformed",
    "prose",
    "think",
    "wrong_ticker",
    "seed000",
    "status_override",
    "unauthorized",
    "bad_request",
    "max_tokens",  # asked for more output tokens than max_output_tokens allows: 400
)


@dataclass(frozen=True, slots=True)
class FakeStats:
    """A snapshot of what the fake has answered since start or the last reset."""

    calls: int  # chat-completion calls, whatever their outcome
    outcomes: dict[str, int]
    response_formats: dict[str, int]  # response_format.type requested -> count ("none" if absent)
    authorization_seen: dict[str, int]  # {"present": n, "missing": m}: never the key itself
    in_flight: int
    max_in_flight: int
    labeled: int = 0  # answers taken from the --answers file rather than the lexicon
    items: int = 0  # questions answered: 1 per single prompt, N per batch of N items
    batched: int = 0  # answered calls whose prompt was a batch of <item> blocks
    prompt_tokens: int = 0  # usage reported over answered calls, as a provider would bill it
    completion_tokens: int = 0
    cached_tokens: int = 0  # the part of prompt_tokens reported as a cached prefix

    def as_dict(self) -> JSONObject:
        return asdict(self)


class _Counters:
    """Mutable stats behind a lock: handlers run on the server thread, readers anywhere."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._calls = 0
            self._outcomes = dict.fromkeys(OUTCOMES, 0)
            self._formats: dict[str, int] = {}
            self._auth = {"present": 0, "missing": 0}
            self._in_flight = 0
            self._max_in_flight = 0
            self._labeled = 0
            self._items = 0
            self._batched = 0
            self._tokens = {"prompt": 0, "completion": 0, "cached": 0}

    def begin(self) -> None:
        with self._lock:
            self._calls += 1
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)

    def end(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def outcome(self, name: str) -> None:
        with self._lock:
            self._outcomes[name] += 1

    def authorization(self, present: bool) -> None:
        with self._lock:
            self._auth["present" if present else "missing"] += 1

    def labeled(self) -> None:
        with self._lock:
            self._labeled += 1

    def questions(self, items: int, batched: bool) -> None:
        with self._lock:
            self._items += items
            self._batched += batched

    def usage(self, prompt: int, completion: int, cached: int) -> None:
        with self._lock:
            self._tokens["prompt"] += prompt
            self._tokens["completion"] += completion
            self._tokens["cached"] += cached

    def response_format(self, kind: str) -> None:
        with self._lock:
            self._formats[kind] = self._formats.get(kind, 0) + 1

    def snapshot(self) -> FakeStats:
        with self._lock:
            return FakeStats(
                calls=self._calls,
                outcomes=dict(self._outcomes),
                response_formats=dict(self._formats),
                authorization_seen=dict(self._auth),
                in_flight=self._in_flight,
                max_in_flight=self._max_in_flight,
                labeled=self._labeled,
                items=self._items,
                batched=self._batched,
                prompt_tokens=self._tokens["prompt"],
                completion_tokens=self._tokens["completion"],
                cached_tokens=self._tokens["cached"],
            )


@dataclass(frozen=True, slots=True)
class _Draw:
    """The random numbers one call consumes; always all three, so call k's draws never shift."""

    fault: float  # 0..1, matched against FakeConfig.bands()
    variant: float  # 0..1, picks which 5xx
    jitter: float  # -1..1, scaled by jitter_ms


RECEIVED_KEPT: Final = 256  # requests whose messages are kept: bounded for long benchmarks


class _Fake:
    """The state one app serves from: config, RNG, counters, request ids, labeled answers and
    each key's quota window and cached prompts."""

    def __init__(self, config: FakeConfig, answers: Answers | None = None) -> None:
        check_config(config)
        self.config = config
        self.answers = answers
        self.stats = _Counters()
        self._rng_lock = threading.Lock()
        self._rng = random.Random(config.seed)
        self._ids = itertools.count(1)
        self._replies_lock = threading.Lock()
        self.quotas = Quotas()
        # The messages of the latest requests, oldest first, for tests to read what was asked.
        self.received: deque[object] = deque(maxlen=RECEIVED_KEPT)

    def draw(self) -> _Draw:
        with self._rng_lock:
            return _Draw(self._rng.random(), self._rng.random(), self._rng.uniform(-1.0, 1.0))

    def reseed(self) -> None:
        with self._rng_lock:
            self._rng = random.Random(self.config.seed)

    def reset(self) -> None:
        """Zero the stats, reseed, forget the requests received and every key's window and
        cached prompts: a reset server answers like a fresh one."""
        self.stats.reset()
        self.reseed()
        self.received.clear()
        self.quotas.clear()

    def next_id(self) -> int:
        return next(self._ids)

    def next_reply(self) -> str | None:
        """The next scripted reply, taken off the queue, or None when none is left."""
        with self._replies_lock:
            return self.config.replies.pop(0) if self.config.replies else None

    def update(self, changes: object) -> None:
        """Apply admin changes atomically: all validated first, then copied onto the live config."""
        if not isinstance(changes, dict):
            raise TypeError("the body must be a JSON object of FakeConfig fields")
        known = {f.name for f in dataclasses.fields(FakeConfig)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ValueError(f"unknown FakeConfig fields: {', '.join(unknown)}")
        merged = {**asdict(self.config), **changes}
        candidate = TypeAdapter(FakeConfig).validate_python(merged)
        check_config(candidate)
        # Copy in place: callers holding server.config keep seeing the live object.
        for name in known:
            setattr(self.config, name, getattr(candidate, name))
        if "seed" in changes:
            self.reseed()


# ---------------------------------------------------------------------------------------------
# Reading the request
# ---------------------------------------------------------------------------------------------

_TICKERS_LINE: Final = re.compile(r"^[ \t]*Tickers:[ \t]*(.*)$", re.MULTILINE | re.IGNORECASE)
_SYMBOL: Final = re.compile(r"^[A-Z0-9][A-Z0-9.\-=^]{0,14}$")
_CASHTAG: Final = re.compile(r"\$([A-Za-z][A-Za-z0-9.]{0,9})\b")
_POST: Final = re.compile(r"<post>(.*?)</post>", re.DOTALL | re.IGNORECASE)
# One question of a batched request: <item id="3"> ... </item>, spaces and quotes as they come.
_ITEM: Final = re.compile(
    r"<\s*item\s+id\s*=\s*([\"'])([A-Za-z0-9_-]{1,16})\1\s*>(.*?)<\s*/\s*item\s*>",
    re.DOTALL | re.IGNORECASE,
)
# A scripted batch reply's stand-in for the id of the batch's N-th item: "@1", "@2", ...
_ITEM_POSITION: Final = re.compile(r'"@([0-9]{1,3})"')
ANY_TICKER: Final = "*"


def _message_text(message: object) -> str:
    """A message's text, whether content is a string or a list of content parts."""
    if not isinstance(message, dict):
        return ""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text") for p in content if isinstance(p, dict)]
        return "\n".join(p for p in parts if isinstance(p, str))
    return ""


def _last_user_text(messages: Sequence[object]) -> str:
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            return _message_text(message)
    return ""


def _dedupe(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def requested_tickers(text: str) -> list[str]:
    """The ``Tickers:`` line's symbols, else the cashtags in the text, else ``["*"]``."""
    line = _TICKERS_LINE.search(text)
    if line:
        named = [item.strip().lstrip("$").upper() for item in line.group(1).split(",")]
        listed = _dedupe([s for s in named if _SYMBOL.match(s)])
        if listed:
            return listed
    tags = _dedupe([tag.rstrip(".").upper() for tag in _CASHTAG.findall(text)])
    return tags or [ANY_TICKER]


def post_text(text: str) -> str:
    """The text between ``<post>`` and ``</post>``, or the whole message without markers."""
    found = _POST.search(text)
    return found.group(1).strip() if found else text


def item_blocks(text: str) -> list[tuple[str, str]]:
    """The ``(id, block)`` of each ``<item id="...">`` block in asked order; [] when none."""
    return [(found.group(2), found.group(3).strip()) for found in _ITEM.finditer(text)]


def _response_format_kind(body: JSONObject) -> str:
    wanted = body.get("response_format")
    if wanted is None:
        return "none"
    kind = wanted.get("type") if isinstance(wanted, dict) else None
    # Only short strings are recorded so stats stay small whatever a client sends.
    return kind if isinstance(kind, str) and len(kind) <= 40 else "other"


def _bearer(request: Request) -> str | None:
    """The bearer token, or None when the request has none."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def _has_bearer(request: Request) -> bool:
    return _bearer(request) is not None


# ---------------------------------------------------------------------------------------------
# Writing the reply
# ---------------------------------------------------------------------------------------------

_LEGACY_CODE: Final = {Verdict.HOLD: 0, Verdict.BUY: 1, Verdict.SELL: 2}
_FLIP: Final = {Verdict.BUY: Verdict.SELL, Verdict.SELL: Verdict.BUY, Verdict.HOLD: Verdict.BUY}


@lru_cache(maxsize=1)
def _lexicon() -> Lexicon:
    # Built once per process: the tables are read-only after construction.
    return Lexicon()


@lru_cache(maxsize=32_768)
def _opinions(text: str, tickers: tuple[str, ...]) -> dict[str, Opinion]:
    # Cached because benchmarks replay the same posts (up to ~20,000 a round, each at most a few
    # KB here): a real provider's work happens elsewhere, the fake's shares the client's CPU.
    # Opinion is frozen, so sharing is safe.
    if tickers == (ANY_TICKER,):
        return {ANY_TICKER: _lexicon().judge(text)}
    return _lexicon().judge_for(text, tickers)


def _reasoning(opinion: Opinion) -> str:
    if not opinion.evidence:
        return "No clear buy or sell cues in the post."
    return "Cues in the post: " + "; ".join(opinion.evidence) + "."


def _signals(text: str, tickers: Sequence[str]) -> list[JSONObject]:
    opinions = _opinions(text, tuple(tickers))
    return [
        {
            "ticker": ticker,
            "verdict": opinions[ticker].verdict.value,
            "confidence": round(opinions[ticker].confidence, 2),
            "reasoning": _reasoning(opinions[ticker]),
        }
        for ticker in tickers
    ]


def _labeled_signals(
    text: str, tickers: Sequence[str], answers: Answers
) -> list[JSONObject] | None:
    """The labels' verdicts for a known text (the lexicon's for tickers they do not cover)."""
    labeled = answers.lookup(text)
    if labeled is None:
        return None
    signals = _signals(text, tickers)
    for signal in signals:
        verdict = labeled.verdict(str(signal["ticker"]))
        if verdict is not None:
            signal["verdict"] = verdict.value
            signal["confidence"] = answers.confidence
            signal["reasoning"] = f"The labeled answer for this post is {verdict.value}."
    return signals


def _wrong_ticker(tickers: Sequence[str]) -> str:
    return next(t for t in ("ZZZZ", "ZZZY", "ZZZX", "QQQQQ") if t not in tickers)


def _decoys(signals: list[JSONObject]) -> list[JSONObject]:
    return [
        {
            **s,
            "verdict": _FLIP[Verdict(str(s["verdict"]))].value,
            "confidence": 0.01,
            "reasoning": "draft, superseded below",
        }
        for s in signals
    ]


def _think(draft: JSONObject, answer: str) -> str:
    return (
        f"<think>\nFirst draft: {json.dumps(draft)}\nThat draft misreads the post; the final "
        f"answer follows.\n</think>\n{answer}"
    )


def _prose(answer: JSONObject, about: str) -> str:
    pretty = json.dumps(answer, indent=2)
    return f"Here is my read of {about}.\n\n```json\n{pretty}\n```\n\nNot financial advice."


def _seed000(signals: list[JSONObject]) -> str:
    return "\n".join(
        f"{s['reasoning']}---{s['ticker']}---{_LEGACY_CODE[Verdict(str(s['verdict']))]}"
        for s in signals
    )


def post_signals(
    text: str, tickers: Sequence[str], answers: Answers | None = None
) -> list[JSONObject]:
    """One signal per ticker: the labels' when ``answers`` know the text, else the lexicon's."""
    labeled = _labeled_signals(text, tickers, answers) if answers is not None else None
    return labeled if labeled is not None else _signals(text, tickers)


def reply_content(
    outcome: str, text: str, tickers: Sequence[str], answers: Answers | None = None
) -> str:
    """The assistant's content for an answered call; transport outcomes get the normal reply.
    With ``answers``, a text they know is answered with its labels (an oracle)."""
    signals = post_signals(text, tickers, answers)
    if outcome == "wrong_ticker":
        signals[0] = {**signals[0], "ticker": _wrong_ticker(tickers)}
    answer = json.dumps({"signals": signals})
    if outcome == "malformed":
        # Cut inside the first key after "ticker" so no repair short of guessing can succeed.
        cut = answer.find('"verdict"')
        return answer[: cut + 5] if cut >= 0 else answer[: len(answer) // 2]
    if outcome == "prose":
        return _prose({"signals": signals}, "the post")
    if outcome == "think":
        return _think({"signals": _decoys(signals)}, answer)
    if outcome == "seed000":
        return _seed000(signals)
    return answer


def batch_content(outcome: str, answers: Sequence[tuple[str, JSONObject]]) -> str:
    """The content answering a batch: ``{"items": [{"id": ..., <that item's answer>}, ...]}`` in
    asked order, with a content fault applied to the whole reply (seed000 has no batched form,
    so it answers plain JSON)."""
    entries: list[JSONObject] = [{"id": item, **answer} for item, answer in answers]
    if outcome == "wrong_ticker":
        _misname_first_signal(entries)
    answer = json.dumps({"items": entries})
    if outcome == "malformed":
        return answer[: len(answer) * 3 // 5]  # cut mid-way: the last entries never close
    if outcome == "prose":
        return _prose({"items": entries}, "each post")
    if outcome == "think":
        return _think({"items": [_decoy_entry(entry) for entry in entries]}, answer)
    return answer


def _entry_signals(entry: JSONObject) -> list[JSONObject]:
    signals = entry.get("signals")
    if not isinstance(signals, list):
        return []
    return [s for s in signals if isinstance(s, dict)]


def _misname_first_signal(entries: list[JSONObject]) -> None:
    """The first item's first signal names a ticker no item asked about."""
    first = _entry_signals(entries[0]) if entries else []
    if not first:
        return
    asked = [str(s.get("ticker")) for entry in entries for s in _entry_signals(entry)]
    entries[0] = {
        **entries[0],
        "signals": [{**first[0], "ticker": _wrong_ticker(asked)}, *first[1:]],
    }


def _decoy_entry(entry: JSONObject) -> JSONObject:
    signals = _entry_signals(entry)
    if signals:
        return {**entry, "signals": _decoys(signals)}
    return {**entry, "confidence": 0.01, "reasoning": "draft, superseded below"}


STRATEGY_QUESTION: Final = "You review a trading signal"  # the strategy pipeline's prompt
_STRATEGY_SIDE: Final = re.compile(r"wants to (buy|sell) (\S+)")
_STRATEGY_RSI: Final = re.compile(r"^- rsi: (-?[0-9.]+)$", re.MULTILINE)


def strategy_reply(prompt: str) -> str:
    """A rating of the signal the strategy prompt states: a buy with RSI under 70 (a sell
    with RSI over 30) is confirmed at 7, one past it rejected at 3, one without RSI 5."""
    return json.dumps(strategy_answer(prompt))


def strategy_answer(prompt: str) -> JSONObject:
    """``strategy_reply``'s answer as an object."""
    side = _STRATEGY_SIDE.search(prompt)
    rsi = _STRATEGY_RSI.search(prompt)
    buying = side is None or side[1] == "buy"
    symbol = side[2] if side is not None else "it"
    if rsi is None:
        rating, agreement, why = 5, "caution", "no RSI to judge momentum by"
    else:
        value = float(rsi[1])
        stretched = value >= 70 if buying else value <= 30
        rating, agreement = (3, "reject") if stretched else (7, "confirm")
        why = f"RSI {value:g} {'is stretched' if stretched else 'leaves room'} for this side"
    return {
        "rating": rating,
        "agreement": agreement,
        "confidence": 0.7,
        "reasoning": f"{symbol}: {why}.",
        "risks": ["a reversal at the band's edge"],
        "key_factors": [why],
    }


def _prompt_tokens(messages: object) -> int:
    listed = messages if isinstance(messages, list) else []
    return tokens_of(sum(len(_message_text(m)) for m in listed))


def _leading_system(messages: object) -> str | None:
    """The first message's text when it is a system message: the prefix a provider caches."""
    if not isinstance(messages, list) or not messages:
        return None
    first = messages[0]
    if not isinstance(first, dict) or first.get("role") != "system":
        return None
    return _message_text(first)


def _usage(prompt: int, completion: int, cached: int) -> JSONObject:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached},
    }


def _completion(
    fake: _Fake, call_id: int, body: JSONObject, content: str, usage: JSONObject
) -> JSONObject:
    model = body.get("model")
    return {
        "id": f"chatcmpl-fake{call_id:08d}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model if isinstance(model, str) and model else fake.config.model_name,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ],
        "usage": usage,
    }


# ---------------------------------------------------------------------------------------------
# Headers and error bodies
# ---------------------------------------------------------------------------------------------

_LIMIT_REQUESTS: Final = 10_000
_LIMIT_TOKENS: Final = 2_000_000
# What the headers say for a dimension without a quota: as roomy as before quotas existed.
_NO_REQUEST_QUOTA: Final = Usage(_LIMIT_REQUESTS, _LIMIT_REQUESTS - 1, 1.0)
_NO_TOKEN_QUOTA: Final = Usage(_LIMIT_TOKENS, _LIMIT_TOKENS, 1.0)

Limits = tuple[Usage | None, Usage | None]  # (requests, tokens); None: no quota configured
_NO_QUOTA: Final[Limits] = (None, None)

_ERRORS: Final[dict[int, tuple[str, str | None, str]]] = {
    400: (
        "invalid_request_error",
        None,
        "Expected a JSON chat completion with a messages list; stream=true is not supported.",
    ),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect or missing API key provided."),
    403: ("invalid_request_error", "permission_denied", "You are not allowed to do this."),
    404: ("invalid_request_error", "model_not_found", "The model does not exist."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached for requests (fake)."),
}
_SERVER_ERROR: Final = ("server_error", None, "The server had an error processing your request.")
_5XX: Final = (500, 502, 503)
_RATE_LIMITED: Final = "rate_limit_exceeded"


def _headers(call_id: int, outcome: str, limits: Limits = _NO_QUOTA) -> dict[str, str]:
    requests = limits[0] or _NO_REQUEST_QUOTA
    tokens = limits[1] or _NO_TOKEN_QUOTA
    return {
        "x-request-id": f"req_fake{call_id:08d}",
        "x-fake-outcome": outcome,
        "x-ratelimit-limit-requests": str(requests.limit),
        "x-ratelimit-remaining-requests": str(requests.remaining),
        "x-ratelimit-reset-requests": duration(requests.reset_s),
        "x-ratelimit-limit-tokens": str(tokens.limit),
        "x-ratelimit-remaining-tokens": str(tokens.remaining),
        "x-ratelimit-reset-tokens": duration(tokens.reset_s),
    }


def _error(
    fake: _Fake, call_id: int, status: int, outcome: str, limits: Limits = _NO_QUOTA
) -> JSONResponse:
    kind, code, message = _ERRORS.get(status, _SERVER_ERROR if status >= 500 else _ERRORS[400])
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    if status != 429:
        return JSONResponse(body, status_code=status, headers=_headers(call_id, outcome, limits))
    # The random 429 fault: the provider says it is out of requests for retry_after_s.
    wait = fake.config.retry_after_s
    requests = dataclasses.replace(limits[0] or _NO_REQUEST_QUOTA, remaining=0, reset_s=wait)
    tokens = dataclasses.replace(limits[1] or _NO_TOKEN_QUOTA, reset_s=wait)
    headers = {
        **_headers(call_id, outcome, (requests, tokens)),
        "retry-after": decimal_seconds(wait),
    }
    return JSONResponse(body, status_code=429, headers=headers)


def _asked_tokens(body: JSONObject) -> int | None:
    """The output tokens a call asks for at most (``max_tokens`` or ``max_completion_tokens``,
    the larger when both are given); None when it names no limit."""
    asked = [body.get("max_tokens"), body.get("max_completion_tokens")]
    numbers = [n for n in asked if isinstance(n, int) and not isinstance(n, bool)]
    return max(numbers) if numbers else None


def _max_tokens_error(call_id: int, asked: int, allowed: int, limits: Limits) -> JSONResponse:
    """400 for a call asking for more output tokens than the model allows, worded like
    OpenAI's."""
    message = (
        f"max_tokens is too large: {asked}. This model supports at most {allowed} completion "
        f"tokens, whereas you provided {asked}."
    )
    error = {"message": message, "type": "invalid_request_error", "param": "max_tokens"}
    body = {"error": {**error, "code": "invalid_value"}}
    headers = _headers(call_id, "max_tokens", limits)
    return JSONResponse(body, status_code=400, headers=headers)


def _quota_error(call_id: int, admission: Admission) -> JSONResponse:
    """429 for a call past the key's rpm or tpm, worded like OpenAI's, with a true Retry-After
    (none when the request is larger than the whole token quota: no wait makes it fit)."""
    kind, message = admission.refusal()
    body = {"error": {"message": message, "type": kind, "param": None, "code": _RATE_LIMITED}}
    headers = _headers(call_id, "quota", (admission.requests, admission.tokens))
    if admission.retry_after_s is not None:
        headers["retry-after"] = decimal_seconds(admission.retry_after_s)
    return JSONResponse(body, status_code=429, headers=headers)


class _DeliberateDrop(Exception):
    """Raised after a partial body so uvicorn closes the connection mid-response."""


class _DroppedResponse(Response):
    """Declares the full content-length, sends half the body, then aborts the connection."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        start = {"type": "http.response.start", "status": self.status_code}
        await send({**start, "headers": self.raw_headers})
        await send(
            {
                "type": "http.response.body",
                "body": self.body[: len(self.body) // 2],
                "more_body": True,
            }
        )
        # uvicorn answers an exception after the response started by closing the transport,
        # which is exactly a dropped connection; _QuietDrops keeps it out of the error log.
        raise _DeliberateDrop


class _QuietDrops(logging.Filter):
    """Hides uvicorn's "Exception in ASGI application" record for deliberate drops only."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return not isinstance(error, _DeliberateDrop)


_QUIET_DROPS: Final = _QuietDrops()


# ---------------------------------------------------------------------------------------------
# The app
# ---------------------------------------------------------------------------------------------


async def _read_body(request: Request) -> JSONObject | None:
    try:
        body = json.loads(await request.body())
    except (ValueError, UnicodeDecodeError):
        return None
    valid = isinstance(body, dict) and isinstance(body.get("messages"), list)
    return body if valid and not body.get("stream") else None


async def _until_disconnect(request: Request) -> None:
    # With the body consumed, uvicorn's receive() only returns once the client hangs up.
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def _hold(request: Request, seconds: float) -> None:
    """Sleep like a stuck upstream, but stop early once the client has given up."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(_until_disconnect(request), timeout=seconds)


def _delay_s(config: FakeConfig, draw: _Draw) -> float:
    return max(0.0, config.latency_ms + draw.jitter * config.jitter_ms) / 1000.0


def _pick(config: FakeConfig, fault: float) -> str:
    edge = 0.0
    for outcome, rate in config.bands():
        edge += rate
        if fault < edge:
            return outcome
    return "ok"


async def _gate(fake: _Fake, request: Request, call_id: int, delay: float) -> Response | None:
    """The answers that come before any fault draw: status override and missing auth."""
    override = fake.config.status_override
    if override is not None:
        fake.stats.outcome("status_override")
        await asyncio.sleep(delay)
        return _error(fake, call_id, override, "status_override")
    present = _has_bearer(request)
    fake.stats.authorization(present)
    if present:
        return None
    fake.stats.outcome("unauthorized")
    await asyncio.sleep(delay)
    return _error(fake, call_id, 401, "unauthorized")


@dataclass(frozen=True, slots=True)
class _Call:
    """A chat call the quota admitted: what answering it needs."""

    id: int
    key: str  # key_id() of the bearer token, never the token
    body: JSONObject
    prompt_tokens: int
    ticket: Ticket  # its quota window entry, which the completion tokens are added to
    delay: float
    limits: Limits  # the key's quota state right after admission


async def _answer(fake: _Fake, request: Request, draw: _Draw) -> Response:
    call_id = fake.next_id()
    delay = _delay_s(fake.config, draw)
    gated = await _gate(fake, request, call_id, delay)
    if gated is not None:
        return gated
    key = key_id(_bearer(request) or "")
    body = await _read_body(request)
    if body is None:
        fake.stats.outcome("bad_request")
        return _error(fake, call_id, 400, "bad_request", _limits(fake, key))
    fake.stats.response_format(_response_format_kind(body))
    fake.received.append(body["messages"])
    asked, allowed = _asked_tokens(body), fake.config.max_output_tokens
    if asked is not None and allowed is not None and asked > allowed:
        fake.stats.outcome("max_tokens")
        await asyncio.sleep(delay)
        return _max_tokens_error(call_id, asked, allowed, _limits(fake, key))
    prompt = _prompt_tokens(body["messages"])
    admission = fake.quotas.admit(key, fake.config.rpm, fake.config.tpm, prompt)
    if admission.ticket is None:
        fake.stats.outcome("quota")
        await asyncio.sleep(delay)
        return _quota_error(call_id, admission)
    limits = (admission.requests, admission.tokens)
    call = _Call(call_id, key, body, prompt, admission.ticket, delay, limits)
    return await _respond(fake, request, draw, call)


async def _respond(fake: _Fake, request: Request, draw: _Draw, call: _Call) -> Response:
    """An admitted call: the drawn fault, else the answer with its usage and quota headers."""
    outcome = _pick(fake.config, draw.fault)
    fake.stats.outcome(outcome)
    await asyncio.sleep(call.delay)
    if outcome == "429":
        return _error(fake, call.id, 429, outcome, call.limits)
    if outcome == "5xx":
        return _error(fake, call.id, _5XX[int(draw.variant * len(_5XX))], outcome, call.limits)
    if outcome == "timeout":
        await _hold(request, fake.config.timeout_s)
    content = _content(fake, outcome, call.body["messages"])
    usage = _bill(fake, call, content)
    payload = json.dumps(_completion(fake, call.id, call.body, content, usage)).encode()
    headers = _headers(call.id, outcome, _limits(fake, call.key))
    kind = _DroppedResponse if outcome == "drop" else Response
    return kind(payload, headers=headers, media_type="application/json")


def _limits(fake: _Fake, key: str) -> Limits:
    return fake.quotas.usage(key, fake.config.rpm, fake.config.tpm)


def _bill(fake: _Fake, call: _Call, content: str) -> JSONObject:
    """The call's usage: its completion tokens join its quota entry, and a system prompt this
    key sent before is reported as a cached prefix."""
    completion = tokens_of(len(content))
    fake.quotas.spend(call.key, call.ticket, completion)
    system = _leading_system(call.body["messages"])
    cached = 0
    if system is not None and fake.quotas.cached(call.key, system):
        cached = tokens_of(len(system))
    fake.stats.usage(call.prompt_tokens, completion, cached)
    return _usage(call.prompt_tokens, completion, cached)


def _content(fake: _Fake, outcome: str, messages: object) -> str:
    """A scripted reply when one is queued, else the answer the request asks for: one item
    by item when the prompt is a batch of ``<item>`` blocks."""
    user = _last_user_text(messages if isinstance(messages, list) else [])
    blocks = item_blocks(user)
    fake.stats.questions(len(blocks) or 1, batched=bool(blocks))
    scripted = fake.next_reply()
    if scripted is not None:
        return _with_item_ids(scripted, [item for item, _block in blocks])
    if blocks:
        return batch_content(outcome, [(item, _item_answer(fake, block)) for item, block in blocks])
    if STRATEGY_QUESTION in user:
        return strategy_reply(user)
    text = post_text(user)
    _count_labeled(fake, text)
    return reply_content(outcome, text, requested_tickers(user), fake.answers)


def _with_item_ids(reply: str, ids: Sequence[str]) -> str:
    """A scripted reply to a batch names its items by position, ``"@1"`` for the first: each
    becomes the id the request gave that item (a client may draw ids anew per request, so a
    script cannot know them). A position the batch does not have stays as written."""

    def swap(found: re.Match[str]) -> str:
        position = int(found.group(1))
        return json.dumps(ids[position - 1]) if 1 <= position <= len(ids) else found.group(0)

    return _ITEM_POSITION.sub(swap, reply) if ids else reply


def _item_answer(fake: _Fake, block: str) -> JSONObject:
    """One item's answer, exactly what the fake would answer were the block asked alone."""
    if STRATEGY_QUESTION in block:
        return strategy_answer(block)
    text = post_text(block)
    _count_labeled(fake, text)
    return {"signals": post_signals(text, requested_tickers(block), fake.answers)}


def _count_labeled(fake: _Fake, text: str) -> None:
    if fake.answers is not None and fake.answers.lookup(text) is not None:
        fake.stats.labeled()


def _build_app(fake: _Fake) -> FastAPI:
    app = FastAPI(title="signalsmith fake LLM", docs_url=None, redoc_url=None, openapi_url=None)

    @app.post("/v1/chat/completions", response_model=None)
    async def chat_completions(request: Request) -> Response:
        draw = fake.draw()  # first, before any await: arrival order fixes each call's draws
        fake.stats.begin()
        try:
            return await _answer(fake, request, draw)
        finally:
            fake.stats.end()

    @app.get("/v1/models", response_model=None)
    async def models(request: Request) -> Response:
        override = fake.config.status_override
        if override is not None or not _has_bearer(request):
            outcome = "unauthorized" if override is None else "status_override"
            return _error(fake, 0, override or 401, outcome)
        model = {"id": fake.config.model_name, "object": "model", "created": 0, "owned_by": "fake"}
        return JSONResponse({"object": "list", "data": [model]})

    _admin_routes(app, fake)
    return app


def _admin_routes(app: FastAPI, fake: _Fake) -> None:
    @app.get("/_fake/stats")
    async def stats() -> JSONObject:
        return fake.stats.snapshot().as_dict()

    @app.get("/_fake/config")
    async def get_config() -> JSONObject:
        return asdict(fake.config)

    @app.post("/_fake/config", response_model=None)
    async def set_config(request: Request) -> Response:
        try:
            fake.update(json.loads(await request.body()))
        except (ValueError, TypeError, ValidationError) as exc:
            message = {"error": {"message": str(exc), "type": "invalid_request_error"}}
            return JSONResponse(message, status_code=422)
        return JSONResponse(asdict(fake.config))

    @app.post("/_fake/reset")
    async def reset() -> JSONObject:
        # Reseeding too means a reset server replays the same fault sequence as a fresh one.
        fake.reset()
        return fake.stats.snapshot().as_dict()


def create_app(config: FakeConfig, answers: Answers | None = None) -> FastAPI:
    """The fake as an ASGI app serving ``config`` (kept by reference, so edits apply live)."""
    return _build_app(_Fake(config, answers))


# ---------------------------------------------------------------------------------------------
# Running it
# ---------------------------------------------------------------------------------------------


def _bind(host: str, port: int) -> socket.socket:
    # Bound here rather than by uvicorn so port 0's real port is known before serving starts.
    # proto must say TCP: asyncio only sets TCP_NODELAY on accepted sockets whose proto is
    # IPPROTO_TCP, and without it every answer stalls ~40 ms on Nagle vs delayed ACK.
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def _base_url(host: str, sock: socket.socket) -> str:
    port = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/v1"


def _uvicorn_server(app: FastAPI, host: str, port: int) -> uvicorn.Server:
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        loop="asyncio",
        ws="none",  # no websocket stack: nothing to import, nothing to warn
        lifespan="off",
        log_level="warning",
        access_log=False,
        limit_concurrency=None,
        timeout_keep_alive=30,
        # Bounds stop(): a held "timeout" call whose client is still connected is cancelled.
        timeout_graceful_shutdown=3,
    )
    # After Config(): its logging setup runs in __init__ and must not clobber the filter.
    logging.getLogger("uvicorn.error").addFilter(_QUIET_DROPS)
    return uvicorn.Server(config)


class FakeLLMServer:
    """The fake on a background thread; ``start()`` returns the base URL for ``openai``."""

    def __init__(
        self,
        config: FakeConfig | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        answers: Answers | None = None,
    ) -> None:
        self._fake = _Fake(config if config is not None else FakeConfig(), answers)
        self._host = host
        self._port = port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._url: str | None = None

    @property
    def config(self) -> FakeConfig:
        """The live config: attribute changes apply to the next call."""
        return self._fake.config

    @property
    def stats(self) -> FakeStats:
        return self._fake.stats.snapshot()

    @property
    def base_url(self) -> str:
        if self._url is None:
            raise RuntimeError("FakeLLMServer is not started")
        return self._url

    @property
    def received(self) -> list[object]:
        """The ``messages`` of the latest chat requests (at most ``RECEIVED_KEPT``), oldest
        first, as the client sent them: what a test reads to see what was asked."""
        return list(self._fake.received)

    def reset(self) -> None:
        """Zero the stats, reseed the fault RNG, forget the requests received and clear the
        quota windows and cached prompts, as ``POST /_fake/reset`` does."""
        self._fake.reset()

    def start(self, ready_timeout_s: float = 10.0) -> str:
        """Serve on a daemon thread and return the base URL once connections are accepted."""
        if self._url is not None:
            return self._url
        sock = _bind(self._host, self._port)
        url = _base_url(self._host, sock)
        server = _uvicorn_server(_build_app(self._fake), self._host, self._port)
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="fakellm"
        )
        thread.start()
        deadline = time.monotonic() + ready_timeout_s
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                server.should_exit = True
                thread.join(timeout=5)
                sock.close()
                raise RuntimeError(f"fake LLM server did not start on {self._host}:{self._port}")
            time.sleep(0.01)
        self._server, self._thread, self._url = server, thread, url
        return url

    def stop(self) -> None:
        """Stop serving and join the thread; safe to call twice or before start."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        server.should_exit = True
        thread.join(timeout=10)
        if thread.is_alive():
            server.force_exit = True
            thread.join(timeout=5)
        self._server = self._thread = None
        self._url = None

    def __enter__(self) -> FakeLLMServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def serve(config: FakeConfig, host: str, port: int, answers: Answers | None = None) -> None:
    """Serve in the foreground until Ctrl-C; prints the base URL to stderr first."""
    fake = _Fake(config, answers)
    sock = _bind(host, port)
    try:
        server = _uvicorn_server(_build_app(fake), host, port)
        print(
            f"fake LLM at {_base_url(host, sock)} (any API key works)", file=sys.stderr, flush=True
        )
        # uvicorn re-raises the captured Ctrl-C after its graceful shutdown; uvicorn.run()
        # swallows it the same way, so stopping is quiet rather than a traceback.
        with contextlib.suppress(KeyboardInterrupt):
            server.run(sockets=[sock])
    finally:
        sock.close()
