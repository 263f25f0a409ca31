"""The fake LLM's per-key quotas: RPM and TPM over a sliding minute, answered like a provider."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from signalsmith.fakellm import FakeConfig, FakeLLMServer
from signalsmith.fakequota import WINDOW_S, Quotas, key_id

pytestmark = pytest.mark.slow

KEY = "sk-quota-key-do-not-echo-51c9"
OTHER_KEY = "sk-quota-other-key-2e77"
POST = "Loading up on NVDA calls, AMD is going to zero"
MESSAGES: list[ChatCompletionMessageParam] = [
    {"role": "system", "content": "Answer with JSON signals."},
    {"role": "user", "content": f"Tickers: NVDA, AMD\n<post>{POST}</post>"},
]


def _body(user: str | None = None) -> dict[str, object]:
    messages = MESSAGES if user is None else [MESSAGES[0], {"role": "user", "content": user}]
    return {"model": "fake-1", "messages": messages}


@pytest.fixture
def server() -> Iterator[FakeLLMServer]:
    with FakeLLMServer(FakeConfig(seed=7)) as fake:
        yield fake


@pytest.fixture
async def http(server: FakeLLMServer) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"authorization": f"Bearer {KEY}"}
    async with httpx.AsyncClient(base_url=server.base_url, headers=headers) as client:
        yield client


async def _ask(http: httpx.AsyncClient, key: str = KEY, user: str | None = None) -> httpx.Response:
    headers = {"authorization": f"Bearer {key}"}
    return await http.post("/chat/completions", json=_body(user), headers=headers)


def _limits(answer: httpx.Response) -> dict[str, str]:
    return {
        name.removeprefix("x-ratelimit-"): value
        for name, value in answer.headers.items()
        if name.startswith("x-ratelimit-")
    }


def _go_seconds(text: str) -> float:
    return float(text.removesuffix("ms")) / 1000 if text.endswith("ms") else float(text[:-1])


async def test_past_the_rpm_a_call_gets_openais_429_with_a_true_retry_after(
    server: FakeLLMServer, http: httpx.AsyncClient
) -> None:
    """rpm=2: the calls count down remaining-requests, the third is refused with
    rate_limit_exceeded and a Retry-After that ends when the oldest call leaves the minute."""
    server.config.rpm = 2
    first = await _ask(http)
    await asyncio.sleep(0.2)
    second = await _ask(http)
    refused = await _ask(http)
    assert [first.status_code, second.status_code, refused.status_code] == [200, 200, 429]
    assert _limits(first)["limit-requests"] == "2"
    assert [_limits(a)["remaining-requests"] for a in (first, second, refused)] == ["1", "0", "0"]
    error = refused.json()["error"]
    assert (error["code"], error["type"]) == ("rate_limit_exceeded", "requests")
    assert "Limit 2, Used 2, Requested 1" in error["message"]
    wait = float(refused.headers["retry-after"])
    assert WINDOW_S - 1.0 < wait <= WINDOW_S - 0.2  # the first call entered >= 0.2 s earlier
    # The window is full until the second call leaves, a little after the first.
    assert wait < _go_seconds(_limits(refused)["reset-requests"]) <= WINDOW_S
    assert refused.headers["x-fake-outcome"] == "quota"
    assert server.stats.outcomes["quota"] == 1
    assert server.stats.outcomes["429"] == 0
    assert server.stats.calls == 3


async def test_the_sdk_sees_a_quota_refusal_as_a_rate_limit_error(server: FakeLLMServer) -> None:
    """Through the openai client the refusal is a RateLimitError carrying the headers."""
    server.config.rpm = 1
    async with openai.AsyncOpenAI(base_url=server.base_url, api_key=KEY, max_retries=0) as api:
        await api.chat.completions.create(model="fake-1", messages=MESSAGES)
        with pytest.raises(openai.RateLimitError) as caught:
            await api.chat.completions.create(model="fake-1", messages=MESSAGES)
    assert caught.value.code == "rate_limit_exceeded"
    assert float(caught.value.response.headers["retry-after"]) > WINDOW_S - 5


async def test_each_api_key_has_its_own_window_and_none_is_kept(
    server: FakeLLMServer, http: httpx.AsyncClient
) -> None:
    """A key at its limit does not limit another key; neither key shows up in stats or config."""
    server.config.rpm = 1
    assert (await _ask(http)).status_code == 200
    assert (await _ask(http)).status_code == 429
    other = await _ask(http, OTHER_KEY)
    assert other.status_code == 200
    assert _limits(other)["remaining-requests"] == "0"
    async with httpx.AsyncClient(base_url=server.base_url.removesuffix("/v1")) as admin:
        stats, config = await admin.get("/_fake/stats"), await admin.get("/_fake/config")
    assert stats.json()["outcomes"]["quota"] == 1
    shown = stats.text + config.text
    for key in (KEY, OTHER_KEY):
        assert key not in shown
        assert key not in json.dumps(server.stats.as_dict())
    assert key_id(KEY) != key_id(OTHER_KEY)
    assert KEY not in key_id(KEY)


async def test_tpm_counts_prompt_then_completion_tokens(
    server: FakeLLMServer, http: httpx.AsyncClient
) -> None:
    """The window holds the first call's prompt and completion tokens: a second prompt that
    would pass the TPM is refused, a smaller one that fits is admitted."""
    server.config.tpm = 10_000
    first = await _ask(http)
    usage = first.json()["usage"]
    spent = usage["prompt_tokens"] + usage["completion_tokens"]
    assert _limits(first)["remaining-tokens"] == str(10_000 - spent)
    server.config.tpm = spent + usage["prompt_tokens"] - 1
    refused = await _ask(http)
    assert refused.status_code == 429
    error = refused.json()["error"]
    assert (error["code"], error["type"]) == ("rate_limit_exceeded", "tokens")
    assert f"Used {spent}, Requested {usage['prompt_tokens']}" in error["message"]
    assert _limits(refused)["limit-tokens"] == str(server.config.tpm)
    assert _limits(refused)["remaining-tokens"] == str(usage["prompt_tokens"] - 1)
    assert float(refused.headers["retry-after"]) > WINDOW_S - 5
    small = await _ask(http, user="NVDA up")  # a prompt a few tokens smaller fits
    assert small.status_code == 200
    assert _limits(small)["limit-requests"] == "10000"  # no RPM quota: the roomy constants


async def test_a_request_larger_than_the_whole_tpm_is_refused_without_retry_after(
    server: FakeLLMServer, http: httpx.AsyncClient
) -> None:
    """No wait makes it fit, so there is no Retry-After; the message says it is too large."""
    server.config.tpm = 5
    refused = await _ask(http)
    assert refused.status_code == 429
    assert "retry-after" not in refused.headers
    assert "Request too large" in refused.json()["error"]["message"]
    assert _limits(refused)["remaining-tokens"] == "5"


async def test_the_quota_is_checked_after_auth_and_before_faults_without_shifting_draws(
    server: FakeLLMServer, http: httpx.AsyncClient
) -> None:
    """A call without a key costs no quota; an admitted call that draws a fault still counts;
    a refused call still consumes its fault draw, so later calls see the same faults."""
    server.config.rate_prose = 0.5
    unquoted = [(await _ask(http)).json()["choices"][0]["message"]["content"] for _ in range(8)]
    server.reset()
    server.config.rpm = 2
    anonymous = await http.post("/chat/completions", json=_body(), headers={"authorization": ""})
    assert anonymous.status_code == 401
    server.reset()  # the anonymous call drew too: start the sequence again
    seen = [await _ask(http) for _ in range(6)] + [await _ask(http, OTHER_KEY) for _ in range(2)]
    assert [a.status_code for a in seen] == [200, 200, 429, 429, 429, 429, 200, 200]
    contents = [a.json()["choices"][0]["message"]["content"] for a in seen if a.status_code == 200]
    assert contents == [*unquoted[:2], *unquoted[6:]]
    server.reset()
    server.config.rpm, server.config.rate_prose, server.config.rate_429 = 1, 0.0, 1.0
    assert (await _ask(http)).headers["x-fake-outcome"] == "429"
    assert (await _ask(http)).headers["x-fake-outcome"] == "quota"


async def test_concurrent_calls_never_share_the_last_slot(
    server: FakeLLMServer, http: httpx.AsyncClient
) -> None:
    """20 calls at once against rpm=5: exactly 5 are admitted."""
    server.config.rpm = 5
    server.config.latency_ms = 50.0
    answers = await asyncio.gather(*(_ask(http) for _ in range(20)))
    assert sorted(a.status_code for a in answers) == [200] * 5 + [429] * 15
    assert server.stats.outcomes["quota"] == 15


async def test_admin_endpoints_set_quotas_and_reset_clears_the_windows(
    server: FakeLLMServer, http: httpx.AsyncClient
) -> None:
    """POST /_fake/config takes rpm and tpm (validated); /_fake/reset empties every window."""
    admin = server.base_url.removesuffix("/v1")
    async with httpx.AsyncClient(base_url=admin) as control:
        assert (await control.post("/_fake/config", json={"rpm": 0})).status_code == 422
        assert (await control.post("/_fake/config", json={"tpm": -3})).status_code == 422
        updated = (await control.post("/_fake/config", json={"rpm": 1, "tpm": 100_000})).json()
        assert (updated["rpm"], updated["tpm"]) == (1, 100_000)
        assert (await _ask(http)).status_code == 200
        assert (await _ask(http)).status_code == 429
        await control.post("/_fake/reset")
        assert (await _ask(http)).status_code == 200
        await control.post("/_fake/config", json={"rpm": None, "tpm": None})
    assert {(await _ask(http)).status_code for _ in range(3)} == {200}


# --- the window itself, on a clock the test moves ----------------------------------------------


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_requests_leave_the_window_a_minute_after_they_entered() -> None:
    """rpm=2 with calls at t=0 and t=10: at t=20 the wait is 40 s (the oldest leaves at 60),
    at t=60 a call fits again, and at t=70 the t=10 call has left too."""
    clock = _Clock()
    quotas = Quotas(clock)
    start = clock.now
    assert quotas.admit("k", 2, None, 10).ticket is not None
    clock.now = start + 10
    assert quotas.admit("k", 2, None, 10).ticket is not None
    clock.now = start + 20
    refused = quotas.admit("k", 2, None, 10)
    assert refused.ticket is None
    assert refused.reason == "requests"
    assert refused.retry_after_s == pytest.approx(40.0)
    assert refused.requests is not None
    assert refused.requests.remaining == 0
    assert refused.requests.reset_s == pytest.approx(50.0)  # until the t=10 call leaves
    clock.now = start + 60
    admitted = quotas.admit("k", 2, None, 10)
    assert admitted.ticket is not None
    assert admitted.requests is not None
    assert admitted.requests.remaining == 0
    clock.now = start + 70
    requests, tokens = quotas.usage("k", 2, None)
    assert requests is not None
    assert (requests.remaining, tokens) == (1, None)


def test_tokens_wait_for_just_enough_of_the_oldest_entries_to_leave() -> None:
    """tpm=100 with 40 tokens at t=0 (prompt 30 + completion 10) and 50 at t=5: a 40-token
    prompt at t=10 waits until t=60, when the first entry has left and 50 + 40 fits."""
    clock = _Clock()
    quotas = Quotas(clock)
    start = clock.now
    first = quotas.admit("k", None, 100, 30).ticket
    assert first is not None
    quotas.spend("k", first, 10)
    clock.now = start + 5
    assert quotas.admit("k", None, 100, 50).ticket is not None
    clock.now = start + 10
    refused = quotas.admit("k", None, 100, 40)
    assert (refused.ticket, refused.reason) == (None, "tokens")
    assert refused.retry_after_s == pytest.approx(50.0)
    assert refused.tokens is not None
    assert refused.tokens.remaining == 10
    assert (refused.used_tokens, refused.requested_tokens) == (90, 40)
    assert quotas.admit("k", None, 100, 101).retry_after_s is None  # never fits
    clock.now = start + 60
    assert quotas.admit("k", None, 100, 40).ticket is not None


def test_system_prompts_are_cached_per_key_and_cleared_on_reset() -> None:
    """The second sighting of a system prompt is cached for that key only; clear() forgets."""
    quotas = Quotas(_Clock())
    assert not quotas.cached("a", "system")
    assert quotas.cached("a", "system")
    assert not quotas.cached("b", "system")
    quotas.clear()
    assert not quotas.cached("a", "system")


def test_the_fake_takes_monotonic_time_by_default() -> None:
    """Without a clock the windows run on time.monotonic, so wall-clock jumps do not matter."""
    quotas = Quotas()
    before = time.monotonic()
    ticket = quotas.admit("k", 1, None, 1).ticket
    assert ticket is not None
    assert before <= ticket.at <= time.monotonic()


def test_completion_tokens_of_an_entry_that_has_left_the_window_are_not_counted() -> None:
    """A call answered after its entry left the window (a 70 s reply) adds nothing: the
    running total matches the entries still in, so 100 tokens fit again."""
    clock = _Clock()
    quotas = Quotas(clock)
    start = clock.now
    slow = quotas.admit("k", None, 100, 60).ticket
    assert slow is not None
    clock.now = start + 30
    assert quotas.admit("k", None, 100, 40).ticket is not None
    clock.now = start + 70  # the first entry has left; the second holds 40
    assert quotas.admit("k", None, 100, 61).reason == "tokens"
    quotas.spend("k", slow, 500)
    _, tokens = quotas.usage("k", None, 100)
    assert tokens is not None
    assert tokens.remaining == 60
    assert quotas.admit("k", None, 100, 60).ticket is not None
