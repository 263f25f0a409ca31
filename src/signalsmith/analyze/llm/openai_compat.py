"""The one wire protocol: OpenAI-compatible chat completions through the ``openai`` SDK.

One I/O call, one function that maps the SDK's errors to ``ProviderError``, and a pure function
that maps the reply. Retries are the chain's business, so the SDK's own are off. The call goes
through the SDK's ``post`` with a plain-JSON result: it skips the SDK's request-parameter
transformation and response models, which cost about 40% of its CPU per call (0.9 ms against
1.5 ms, measured), while keeping its transport, headers and error types. The body goes as JSON
bytes (the same bytes the SDK would encode) to the endpoint's absolute URL, which spares the SDK
re-encoding the body and re-parsing the base URL on every call: another 10% (about 1.0 against
1.15 ms per call at 64 in flight, measured). The SDK's telemetry headers are left out of every
call: a few per cent of its CPU per call, and some 270 bytes less on the wire; so is the random
idempotency key it would draw for every call and never send.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import openai

from signalsmith.analyze.llm.providers import ProviderConfig
from signalsmith.errors import ProviderError
from signalsmith.observe.logging import SecretScrubber
from signalsmith.redact import url_secrets

_REJECTED_REASONS = {
    400: "bad request",
    401: "bad API key",
    403: "forbidden (key lacks access)",
    404: "unknown model or endpoint",
    422: "request not accepted",
}


@dataclass(frozen=True, slots=True)
class Completion:
    """What a successful call returned."""

    content: str
    tokens_in: int
    tokens_out: int
    latency_ms: float
    model: str
    tokens_cached: int = 0  # of tokens_in, the prompt prefix the provider billed as cached


HttpPool = openai.DefaultAioHttpClient

# The SDK's own telemetry (its platform, retry count and read timeout), which no provider needs:
# 9 of the 13 headers it would send, each one costing its header handling on every call. And no
# idempotency key: the SDK sends none to these providers (it has no header for it), yet would
# draw a random UUID for every call to keep for its retries, which are off.
_CALL_OPTIONS: Final[openai.RequestOptions] = {
    "idempotency_key": "",
    "headers": dict.fromkeys(
        (
            "X-Stainless-Lang",
            "X-Stainless-Package-Version",
            "X-Stainless-OS",
            "X-Stainless-Arch",
            "X-Stainless-Runtime",
            "X-Stainless-Runtime-Version",
            "X-Stainless-Async",
            "X-Stainless-Retry-Count",
            "X-Stainless-Read-Timeout",
        ),
        openai.omit,
    ),
}


def shared_pool() -> HttpPool:
    """One HTTP connection pool for every provider's client: the SDK's aiohttp transport (its
    ``aiohttp`` extra), which costs half the CPU per call of the default one with many calls in
    flight (0.65 against 1.29 ms, measured at 64). Each provider's MAX_IN_FLIGHT bounds its share.
    """
    return openai.DefaultAioHttpClient()


class OpenAICompatClient:
    """Chat completions against one provider, over a shared HTTP connection pool."""

    def __init__(self, config: ProviderConfig, http: HttpPool) -> None:
        self.config = config
        self._scrubber = SecretScrubber([config.api_key, *url_secrets(config.base_url)])
        base_url, query = _split_query(config.base_url)
        self._endpoint = f"{base_url.rstrip('/')}/chat/completions"
        self._client = openai.AsyncOpenAI(
            api_key=config.api_key,
            base_url=base_url,
            default_query=query or None,
            timeout=config.timeout,
            max_retries=0,
            http_client=http,
        )

    def _scrubbed(self, error: ProviderError) -> ProviderError:
        """The error without this provider's key or URL secrets, which a provider may echo in
        its error body: the message travels into dead letters and published envelopes."""
        text = str(error).removeprefix(f"{error.kind}: ")
        scrubbed = self._scrubber.scrub(text)
        if scrubbed == text:
            return error
        return ProviderError(error.kind, scrubbed, status=error.status, headers=error.headers)

    async def complete(
        self,
        messages: Sequence[Mapping[str, str]],
        *,
        response_format: Mapping[str, object] | None,
        max_tokens: int,
        temperature: float,
    ) -> Completion:
        """One call; raises ProviderError for every failure."""
        started = time.perf_counter()
        body: dict[str, object] = {
            "model": self.config.model,
            "messages": [dict(message) for message in messages],
            "max_tokens": max_tokens,
            "temperature": temperature,
        }
        if response_format is not None:
            body["response_format"] = dict(response_format)
        try:
            content = json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
            reply = await self._client.post(
                self._endpoint, content=content.encode(), cast_to=object, options=_CALL_OPTIONS
            )
        except Exception as exc:  # every failure, not only the SDK's; CancelledError passes
            raise self._scrubbed(provider_error(exc)) from None
        return to_completion(reply, (time.perf_counter() - started) * 1000, self.config.model)


def to_completion(reply: object, latency_ms: float, model: str) -> Completion:
    """The content and usage of a chat-completion reply; any other shape is a server failure."""
    body = reply if isinstance(reply, dict) else {}
    choices = body.get("choices")
    first = choices[0] if isinstance(choices, list) and choices else None
    message = first.get("message") if isinstance(first, dict) else None
    content = message.get("content") if isinstance(message, dict) else None
    if not isinstance(content, str):
        raise ProviderError("server", "the reply is not a chat completion with content")
    usage = body.get("usage")
    tokens_in = _count(usage, "prompt_tokens")
    return Completion(
        content=content,
        tokens_in=tokens_in,
        tokens_out=_count(usage, "completion_tokens"),
        latency_ms=latency_ms,
        model=str(body.get("model") or model),
        tokens_cached=min(tokens_in, _cached(usage)),
    )


def _count(usage: object, name: str) -> int:
    value = usage.get(name) if isinstance(usage, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _cached(usage: object) -> int:
    """The cached share of the prompt, as OpenAI, Groq and Gemini report it
    (``prompt_tokens_details.cached_tokens``) or as DeepSeek does (``prompt_cache_hit_tokens``)."""
    if not isinstance(usage, dict):
        return 0
    details = usage.get("prompt_tokens_details")
    return _count(details, "cached_tokens") or _count(usage, "prompt_cache_hit_tokens")


def provider_error(exc: Exception) -> ProviderError:
    """The call's exception as the chain's ProviderError; never carries the request's key."""
    if not isinstance(exc, openai.OpenAIError):
        return _transport_error(exc)
    if isinstance(exc, openai.APITimeoutError):
        return ProviderError("timeout", "no answer within the timeout")
    if isinstance(exc, openai.APIConnectionError):
        return ProviderError("connection", "connection failed or dropped")
    if isinstance(exc, openai.APIStatusError):
        return _status_error(exc)
    return ProviderError("server", type(exc).__name__)


def _transport_error(exc: Exception) -> ProviderError:
    """An exception the SDK let through (the HTTP client refusing the request, a ValueError or
    TypeError from the transport): the same request would fail the same way, so the provider is
    rejected for a while and the chain falls back. Only the type is kept: the exception's text
    can quote the URL, which may hold a key."""
    return ProviderError("rejected", f"the HTTP client failed ({type(exc).__name__})")


def _split_query(base_url: str) -> tuple[str, dict[str, str]]:
    """The base URL without its query, and the query's parameters: the SDK appends each request's
    path to the base URL as text, so a query left in it (a gateway's key) would end up inside
    every path instead of being sent."""
    parts = urlsplit(base_url)
    if not parts.query:
        return base_url, {}
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    return urlunsplit(parts._replace(query="", fragment="")), query


def _status_error(exc: openai.APIStatusError) -> ProviderError:
    status = exc.status_code
    headers = {key.lower(): value for key, value in exc.response.headers.items()}
    if status == 429:
        return ProviderError(
            "rate_limited", "429 too many requests", status=status, headers=headers
        )
    if status >= 500 or status == 408:
        return ProviderError(
            "server", f"{status} from the provider", status=status, headers=headers
        )
    reason = _REJECTED_REASONS.get(status, f"HTTP {status}")
    return ProviderError("rejected", f"{status} {reason}: {_message(exc)}", status=status)


def _message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])[:200]
    return exc.message[:200]
