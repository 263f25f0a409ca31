"""The one wire protocol: OpenAI-compatible chat completions through the ``openai`` SDK.

One I/O call, one function that maps the SDK's errors to ``ProviderError``, and a pure function
that maps the reply. Retries are the chain's business, so the SDK's own are off.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import cast

import openai
from openai.types.chat import ChatCompletion, ChatCompletionMessageParam
from openai.types.chat.completion_create_params import ResponseFormat

from signalsmith.analyze.llm.providers import ProviderConfig
from signalsmith.errors import ProviderError

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


def shared_pool() -> openai.DefaultAsyncHttpxClient:
    """One HTTP connection pool for every provider's client (the SDK's own transport, with its
    default limits of 1,000 connections; each provider's MAX_IN_FLIGHT bounds its share)."""
    return openai.DefaultAsyncHttpxClient()


class OpenAICompatClient:
    """Chat completions against one provider, over a shared HTTP connection pool."""

    def __init__(self, config: ProviderConfig, http: openai.DefaultAsyncHttpxClient) -> None:
        self.config = config
        self._client = openai.AsyncOpenAI(
            api_key=config.api_key,
            base_url=config.base_url,
            timeout=config.timeout,
            max_retries=0,
            http_client=http,
        )

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
        try:
            reply = await self._client.chat.completions.create(
                model=self.config.model,
                messages=cast(list[ChatCompletionMessageParam], [dict(m) for m in messages]),
                max_tokens=max_tokens,
                temperature=temperature,
                response_format=(
                    cast(ResponseFormat, dict(response_format)) if response_format else openai.omit
                ),
            )
        except openai.OpenAIError as exc:
            raise provider_error(exc) from None
        return to_completion(reply, (time.perf_counter() - started) * 1000, self.config.model)


def to_completion(reply: ChatCompletion, latency_ms: float, model: str) -> Completion:
    """The content and usage of a reply; an empty answer is a server failure."""
    if not reply.choices or reply.choices[0].message.content is None:
        raise ProviderError("server", "the reply had no content")
    usage = reply.usage
    return Completion(
        content=reply.choices[0].message.content,
        tokens_in=usage.prompt_tokens if usage else 0,
        tokens_out=usage.completion_tokens if usage else 0,
        latency_ms=latency_ms,
        model=reply.model or model,
    )


def provider_error(exc: openai.OpenAIError) -> ProviderError:
    """The SDK's exception as the chain's ProviderError; never carries the request's key."""
    if isinstance(exc, openai.APITimeoutError):
        return ProviderError("timeout", "no answer within the timeout")
    if isinstance(exc, openai.APIConnectionError):
        return ProviderError("connection", "connection failed or dropped")
    if isinstance(exc, openai.APIStatusError):
        return _status_error(exc)
    return ProviderError("server", type(exc).__name__)


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
