"""Provider base URLs over real HTTP on loopback: an exception the SDK lets through becomes a
ProviderError the chain falls back on (the post stays pending, never an error decision), and a
gateway key in the base URL's query is sent with every call but never shown."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import openai
import pytest

from signalsmith.analyze.llm.chain import LLMChain, ProviderSlot, slot_health
from signalsmith.analyze.llm.limits import CircuitBreaker, DailyBudget, RateLimiter, SystemClock
from signalsmith.analyze.llm.openai_compat import HttpPool, OpenAICompatClient, shared_pool
from signalsmith.analyze.llm.providers import ProviderConfig
from signalsmith.errors import ProviderError, ProvidersFailed, TransientError
from signalsmith.fakellm import FakeConfig, FakeLLMServer
from signalsmith.observe.metrics import Metrics

pytestmark = pytest.mark.slow
SECRET = "hunter2secret"
API_KEY = "sk-canary-transport-41"
MESSAGES = [{"role": "user", "content": "Loading up on $NVDA calls 🚀"}]


def _config(name: str, base_url: str) -> ProviderConfig:
    return ProviderConfig(
        name=name,
        base_url=base_url,
        model="fake-1",
        api_key=API_KEY,
        structured="none",
        timeout=5,
        max_in_flight=4,
        rpm=None,
        tpm=None,
        daily_tokens=None,
        price_in=0.0,
        price_out=0.0,
        price_cached=0.0,
    )


def _with_user_info(base_url: str) -> str:
    """The fake's base URL with credentials in it: aiohttp refuses to send such a request beside
    an Authorization header, with a ValueError the SDK does not translate."""
    return base_url.replace("http://", f"http://user:{SECRET}@")


def _slot(config: ProviderConfig, pool: HttpPool, clock: SystemClock) -> ProviderSlot:
    return ProviderSlot(
        client=OpenAICompatClient(config, pool),
        limiter=RateLimiter(None, None, clock),
        budget=DailyBudget(None, clock),
        breaker=CircuitBreaker(5, 30.0, clock),
        gate=asyncio.Semaphore(4),
    )


def _chain(slots: list[ProviderSlot], clock: SystemClock) -> LLMChain:
    return LLMChain(
        slots,
        clock=clock,
        metrics=Metrics(),
        max_wait_s=1.0,
        attempts=2,
        max_tokens=100,
        temperature=0.0,
    )


@pytest.fixture
def fake() -> Iterator[FakeLLMServer]:
    with FakeLLMServer(FakeConfig(seed=3)) as server:
        yield server


@pytest.fixture
async def pool() -> AsyncIterator[HttpPool]:
    http = shared_pool()
    try:
        yield http
    finally:
        await http.aclose()


async def test_an_exception_the_sdk_lets_through_is_a_provider_error(
    fake: FakeLLMServer, pool: HttpPool
) -> None:
    """The transport's ValueError comes out as a ProviderError that the chain falls back on,
    naming neither the URL, its password nor the key; nothing reached the server."""
    client = OpenAICompatClient(_config("custom", _with_user_info(fake.base_url)), pool)
    with pytest.raises(ProviderError) as raised:
        await client.complete(MESSAGES, response_format=None, max_tokens=50, temperature=0.0)
    assert raised.value.kind == "rejected"
    message = str(raised.value)
    host = fake.base_url.removeprefix("http://").split("/")[0]
    for secret in (SECRET, API_KEY, host):
        assert secret not in message
    assert fake.stats.calls == 0


async def test_the_chain_falls_back_past_a_provider_whose_transport_raises(
    fake: FakeLLMServer, pool: HttpPool
) -> None:
    """The broken provider is skipped for a while, the next one answers, and /health shows the
    broken one failing with its password masked."""
    clock = SystemClock()
    broken = _slot(_config("openai", _with_user_info(fake.base_url)), pool, clock)
    steady = _slot(_config("custom", fake.base_url), pool, clock)
    chain = _chain([broken, steady], clock)
    answer = await chain.complete(MESSAGES, lambda _config: None, 100)
    assert answer.provider.name == "custom"
    health = slot_health(broken, chain, clock.monotonic())
    assert health["state"] == "failing"
    assert health["base_url"] == _with_user_info(fake.base_url).replace(SECRET, "***")
    assert SECRET not in json.dumps(health)
    assert all(SECRET not in error for error in answer.errors)


async def test_a_post_whose_only_provider_raises_is_left_to_retry(
    fake: FakeLLMServer, pool: HttpPool
) -> None:
    """With no other provider, the chain raises ProvidersFailed, a TransientError: the worker
    leaves the post pending instead of acknowledging an error decision."""
    clock = SystemClock()
    chain = _chain([_slot(_config("openai", _with_user_info(fake.base_url)), pool, clock)], clock)
    with pytest.raises(ProvidersFailed) as raised:
        await chain.complete(MESSAGES, lambda _config: None, 100)
    assert isinstance(raised.value, TransientError)
    assert SECRET not in str(raised.value)


class _Recorder(BaseHTTPRequestHandler):
    """Answers every POST with a chat completion and records the request line's path."""

    paths: list[str]

    def do_POST(self) -> None:
        self.paths.append(self.path)
        _reply(self, 200, {"choices": [{"message": {"content": "{}"}}]})

    def log_message(self, *_args: object) -> None:
        return


def _reply(handler: BaseHTTPRequestHandler, status: int, payload: object) -> None:
    """Read the request's body, then answer ``status`` with ``payload`` as JSON."""
    handler.rfile.read(int(handler.headers.get("content-length", "0")))
    body = json.dumps(payload).encode()
    handler.send_response(status)
    handler.send_header("content-type", "application/json")
    handler.send_header("content-length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


@contextlib.contextmanager
def _serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """A plain HTTP server on loopback answering with ``handler``; its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def recorder() -> Iterator[tuple[str, list[str]]]:
    """A plain HTTP server on loopback: its base URL, and the paths it was asked for."""
    paths: list[str] = []
    with _serving(type("Handler", (_Recorder,), {"paths": paths})) as base:
        yield base, paths


async def test_a_gateway_key_in_the_base_url_is_sent_and_never_shown(
    recorder: tuple[str, list[str]], pool: HttpPool
) -> None:
    """?api_key=... in the base URL reaches the server as a query parameter of every call (not
    glued inside the path), and /health shows it masked."""
    base_url, paths = recorder
    clock = SystemClock()
    slot = _slot(_config("custom", f"{base_url}?api_key={SECRET}&tier=free"), pool, clock)
    chain = _chain([slot], clock)
    await chain.complete(MESSAGES, lambda _config: None, 100)
    assert paths == [f"/v1/chat/completions?api_key={SECRET}&tier=free"]
    health = slot_health(slot, chain, clock.monotonic())
    assert health["base_url"] == f"{base_url}?api_key=***&tier=free"


class _Echo(BaseHTTPRequestHandler):
    """Rejects every call with 401, quoting the key and the query it was sent, as some gateways
    do in their error bodies."""

    def do_POST(self) -> None:
        said = f"invalid key {self.headers.get('authorization')} for {self.path}"
        _reply(self, 401, {"error": {"message": said}})

    def log_message(self, *_args: object) -> None:
        return


async def test_a_provider_echoing_the_key_in_its_error_never_passes_it_on(
    pool: HttpPool,
) -> None:
    """A 401 whose message quotes the API key and the gateway key: the ProviderError (which
    travels into dead letters and envelopes) names neither."""
    with _serving(_Echo) as base:
        client = OpenAICompatClient(_config("custom", f"{base}?api_key={SECRET}"), pool)
        with pytest.raises(ProviderError) as caught:
            await client.complete(MESSAGES, response_format=None, max_tokens=16, temperature=0.0)
    assert caught.value.status == 401
    assert "invalid key" in str(caught.value)
    assert API_KEY not in str(caught.value)
    assert SECRET not in str(caught.value)


class _HeaderRecorder(BaseHTTPRequestHandler):
    """Answers every POST with a chat completion and records the request's headers."""

    seen: list[dict[str, str]]

    def do_POST(self) -> None:
        self.seen.append({key.lower(): value for key, value in self.headers.items()})
        _reply(self, 200, {"choices": [{"message": {"content": "{}"}}]})

    def log_message(self, *_args: object) -> None:
        return


async def test_a_call_sends_the_key_and_json_but_not_the_sdks_telemetry(
    pool: HttpPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The provider gets what it needs (the key, the body's type, the client's name) and none
    of the SDK's platform, retry-count or timeout headers, which cost CPU on every call; nor
    does the SDK draw a random idempotency key per call (it sends none to these providers and
    would keep it only for its own retries, which are off)."""
    drawn: list[str] = []
    draw = openai._base_client.BaseClient._idempotency_key

    def counted(sdk_client: openai._base_client.BaseClient[Any, Any]) -> str:
        drawn.append(key := draw(sdk_client))
        return key

    monkeypatch.setattr(openai._base_client.BaseClient, "_idempotency_key", counted)
    seen: list[dict[str, str]] = []
    with _serving(type("Handler", (_HeaderRecorder,), {"seen": seen})) as base:
        client = OpenAICompatClient(_config("custom", base), pool)
        for _ in range(2):
            await client.complete(MESSAGES, response_format=None, max_tokens=16, temperature=0.0)
    assert len(seen) == 2
    for headers in seen:
        assert headers["authorization"] == f"Bearer {API_KEY}"
        assert headers["content-type"] == "application/json"
        assert headers["user-agent"].startswith("AsyncOpenAI/Python")
        assert [name for name in headers if name.startswith("x-stainless")] == []
        assert "idempotency-key" not in headers
    assert drawn == []
