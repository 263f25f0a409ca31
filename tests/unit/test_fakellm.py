"""The fake OpenAI-compatible server, driven through the real ``openai`` async client."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from signalsmith.analyze.llm.batch_reply import read_batch
from signalsmith.analyze.llm.batching import Question, _batch_ids, _batch_text, _Waiting
from signalsmith.fakellm import FakeConfig, FakeLLMServer, reply_content
from signalsmith.fakeoracle import Answers

pytestmark = pytest.mark.slow

API_KEY = "sk-test-key-do-not-echo-7f3a"
POST = "Loading up on NVDA calls, AMD is going to zero"
TICKERS = ["NVDA", "AMD"]
EXPECTED = {"NVDA": "BUY", "AMD": "SELL"}


def _messages(user: str | None = None) -> list[ChatCompletionMessageParam]:
    if user is None:
        user = f"Tickers: {', '.join(TICKERS)}\n<post>{POST}</post>"
    return [
        {"role": "system", "content": "Answer with JSON signals."},
        {"role": "user", "content": user},
    ]


def _client(url: str, timeout: float = 5.0) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=url, api_key=API_KEY, max_retries=0, timeout=timeout)


async def _content(client: openai.AsyncOpenAI, user: str | None = None) -> str:
    reply = await client.chat.completions.create(model="fake-1", messages=_messages(user))
    content = reply.choices[0].message.content
    assert content is not None
    return content


def _verdicts(content: str) -> dict[str, str]:
    return {s["ticker"]: s["verdict"] for s in json.loads(content)["signals"]}


@pytest.fixture
def server() -> Iterator[FakeLLMServer]:
    with FakeLLMServer(FakeConfig(seed=7)) as fake:
        yield fake


@pytest.fixture
async def client(server: FakeLLMServer) -> AsyncIterator[openai.AsyncOpenAI]:
    async with _client(server.base_url) as api:
        yield api


async def test_normal_call_returns_one_signal_per_ticker_with_usage(
    client: openai.AsyncOpenAI,
) -> None:
    """A clean call answers chat.completion JSON: one lexicon-judged signal per ticker, usage."""
    raw = await client.chat.completions.with_raw_response.create(
        model="fake-1",
        messages=_messages(),
        response_format={"type": "json_object"},
    )
    reply = raw.parse()
    assert reply.object == "chat.completion"
    assert reply.model == "fake-1"
    assert reply.choices[0].finish_reason == "stop"
    assert reply.choices[0].message.role == "assistant"
    content = reply.choices[0].message.content
    assert content is not None
    signals = json.loads(content)["signals"]
    assert [s["ticker"] for s in signals] == TICKERS
    assert _verdicts(content) == EXPECTED
    assert all(0 <= s["confidence"] <= 1 and s["reasoning"] for s in signals)
    assert reply.usage is not None
    assert reply.usage.prompt_tokens > 0
    assert reply.usage.completion_tokens == -(-len(content) // 4)
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens
    for name in ("limit-requests", "remaining-requests", "reset-requests", "reset-tokens"):
        assert raw.headers[f"x-ratelimit-{name}"]


async def test_tickers_fall_back_to_cashtags_then_wildcard(client: openai.AsyncOpenAI) -> None:
    """Without a Tickers line the cashtags are used; with neither, the single ticker "*"."""
    tagged = await _content(client, "Tickers:\n<post>Bought more $tsla and $AMD today</post>")
    assert [s["ticker"] for s in json.loads(tagged)["signals"]] == ["TSLA", "AMD"]
    bare = await _content(client, "Very bullish, to the moon 🚀")
    assert json.loads(bare)["signals"][0]["ticker"] == "*"
    assert _verdicts(bare) == {"*": "BUY"}


async def test_rate_limit_fault_raises_rate_limit_error_with_retry_after(
    server: FakeLLMServer, client: openai.AsyncOpenAI
) -> None:
    """rate_429=1 answers 429 with Retry-After and the x-ratelimit reset headers."""
    server.config.rate_429 = 1.0
    server.config.retry_after_s = 2.5
    with pytest.raises(openai.RateLimitError) as caught:
        await _content(client)
    headers = caught.value.response.headers
    assert headers["retry-after"] == "2.5"
    assert headers["x-ratelimit-reset-requests"] == "2.5s"
    assert headers["x-ratelimit-remaining-requests"] == "0"
    assert caught.value.code == "rate_limit_exceeded"


async def test_server_error_fault_raises_internal_server_error(
    server: FakeLLMServer, client: openai.AsyncOpenAI
) -> None:
    """rate_5xx=1 answers 500/502/503 with an OpenAI-style JSON error body."""
    server.config.rate_5xx = 1.0
    for _ in range(5):
        with pytest.raises(openai.InternalServerError) as caught:
            await _content(client)
        assert caught.value.status_code in {500, 502, 503}
        assert caught.value.type == "server_error"


async def test_timeout_fault_makes_the_client_time_out(server: FakeLLMServer) -> None:
    """rate_timeout=1 holds the answer past the client's timeout: APITimeoutError, promptly."""
    server.config.rate_timeout = 1.0
    server.config.timeout_s = 30.0
    started = time.perf_counter()
    async with _client(server.base_url, timeout=0.5) as api:
        with pytest.raises(openai.APITimeoutError):
            await _content(api)
    assert time.perf_counter() - started < 5
    assert server.stats.outcomes["timeout"] == 1


async def test_drop_fault_raises_connection_error(
    server: FakeLLMServer, client: openai.AsyncOpenAI
) -> None:
    """rate_drop=1 closes the connection mid-body: APIConnectionError, not a timeout."""
    server.config.rate_drop = 1.0
    with pytest.raises(openai.APIConnectionError) as caught:
        await _content(client)
    assert not isinstance(caught.value, openai.APITimeoutError)
    server.config.rate_drop = 0.0
    assert _verdicts(await _content(client)) == EXPECTED  # the client recovers on a new connection


async def test_malformed_fault_returns_truncated_json(
    server: FakeLLMServer, client: openai.AsyncOpenAI
) -> None:
    """rate_malformed=1 answers 200 with content cut off inside the first signal."""
    server.config.rate_malformed = 1.0
    content = await _content(client)
    assert content == '{"signals": [{"ticker": "NVDA", "verd'
    with pytest.raises(json.JSONDecodeError):
        json.loads(content)


async def test_prose_fault_wraps_json_in_text_and_fences(
    server: FakeLLMServer, client: openai.AsyncOpenAI
) -> None:
    """rate_prose=1 answers prose first, then the real object inside ```json fences."""
    server.config.rate_prose = 1.0
    content = await _content(client)
    assert not content.lstrip().startswith("{")
    fenced = re.search(r"```json\n(.*?)\n```", content, re.DOTALL)
    assert fenced is not None
    assert _verdicts(fenced.group(1)) == EXPECTED


async def test_think_fault_puts_a_decoy_object_before_the_real_one(
    server: FakeLLMServer, client: openai.AsyncOpenAI
) -> None:
    """rate_think=1 opens with <think> holding a wrong JSON object; the real one follows."""
    server.config.rate_think = 1.0
    content = await _content(client)
    assert content.startswith("<think>")
    thought, _, answer = content.partition("</think>")
    decoy = thought[thought.index("{") : thought.rindex("}") + 1]
    assert _verdicts(decoy) != EXPECTED
    assert _verdicts(answer.strip()) == EXPECTED


async def test_wrong_ticker_fault_names_an_unrequested_ticker(
    server: FakeLLMServer, client: openai.AsyncOpenAI
) -> None:
    """rate_wrong_ticker=1 replaces the first requested ticker with one not asked for."""
    server.config.rate_wrong_ticker = 1.0
    verdicts = _verdicts(await _content(client))
    assert "NVDA" not in verdicts
    assert verdicts == {"ZZZZ": "BUY", "AMD": "SELL"}


async def test_seed000_fault_answers_in_the_legacy_format(
    server: FakeLLMServer, client: openai.AsyncOpenAI
) -> None:
    """rate_seed000=1 answers "analysis---TICKER---code" lines (0 none, 1 buy, 2 sell)."""
    server.config.rate_seed000 = 1.0
    lines = (await _content(client)).splitlines()
    parsed = [re.fullmatch(r"(.+)---([A-Z*]+)---([012])", line) for line in lines]
    assert [(m.group(2), m.group(3)) if m else None for m in parsed] == [
        ("NVDA", "1"),
        ("AMD", "2"),
    ]
    assert all(m and m.group(1).strip() for m in parsed)  # the analysis text is not empty


async def test_status_override_maps_to_the_matching_sdk_errors(
    server: FakeLLMServer, client: openai.AsyncOpenAI
) -> None:
    """status_override 401 is an AuthenticationError and 404 a NotFoundError, key or not."""
    server.config.status_override = 401
    with pytest.raises(openai.AuthenticationError) as unauthorized:
        await _content(client)
    assert unauthorized.value.code == "invalid_api_key"
    server.config.status_override = 404
    with pytest.raises(openai.NotFoundError):
        await _content(client)
    assert server.stats.outcomes["status_override"] == 2


async def test_missing_authorization_is_401_like_openai(server: FakeLLMServer) -> None:
    """A call without a Bearer token gets 401 with OpenAI's invalid_api_key error body."""
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        answer = await http.post("/chat/completions", json={"model": "x", "messages": _messages()})
    assert answer.status_code == 401
    error = answer.json()["error"]
    assert (error["type"], error["code"]) == ("invalid_request_error", "invalid_api_key")
    assert server.stats.authorization_seen == {"present": 0, "missing": 1}


async def test_models_lists_the_configured_model(client: openai.AsyncOpenAI) -> None:
    """GET /v1/models lists the config's model_name."""
    listed = [model.id async for model in client.models.list()]
    assert listed == ["fake-1"]


async def test_admin_config_changes_behaviour_at_run_time(
    server: FakeLLMServer, client: openai.AsyncOpenAI
) -> None:
    """POST /_fake/config switches faults on and off live and returns the full config."""
    admin = server.base_url.removesuffix("/v1")
    assert _verdicts(await _content(client)) == EXPECTED
    async with httpx.AsyncClient(base_url=admin) as http:
        updated = (await http.post("/_fake/config", json={"rate_429": 1.0})).json()
        assert updated["rate_429"] == 1.0
        assert updated["model_name"] == "fake-1"
        with pytest.raises(openai.RateLimitError):
            await _content(client)
        await http.post("/_fake/config", json={"rate_429": 0.0})
        assert _verdicts(await _content(client)) == EXPECTED
        assert (await http.post("/_fake/config", json={"rate_nope": 1})).status_code == 422
        assert (await http.post("/_fake/config", json={"rate_5xx": 2})).status_code == 422
        assert (await http.get("/_fake/config")).json()["rate_5xx"] == 0.0
        stats = (await http.get("/_fake/stats")).json()
        assert stats["calls"] == 3
        assert stats["outcomes"]["429"] == 1
        reset = (await http.post("/_fake/reset")).json()
        assert reset["calls"] == 0


async def _outcomes(server: FakeLLMServer, calls: int) -> list[str]:
    """What the client saw for each of ``calls`` sequential calls."""
    seen: list[str] = []
    async with _client(server.base_url) as api:
        for _ in range(calls):
            try:
                content = await _content(api)
            except openai.APIStatusError as error:
                seen.append(str(error.status_code))
            else:
                seen.append(content[:12])
    return seen


async def test_seeded_fault_draws_are_reproducible() -> None:
    """Two servers with the same seed give the same outcome sequence; another seed differs."""
    sequences = []
    for seed in (42, 42, 43):
        config = FakeConfig(
            seed=seed, rate_429=0.2, rate_5xx=0.2, rate_malformed=0.2, rate_prose=0.2
        )
        with FakeLLMServer(config) as fake:
            sequences.append(await _outcomes(fake, 40))
            if seed == 43:
                fake.reset()  # reset reseeds: the same server replays its own sequence
                assert await _outcomes(fake, 40) == sequences[-1]
    assert sequences[0] == sequences[1]
    assert sequences[0] != sequences[2]
    assert len(set(sequences[0])) >= 4


async def test_concurrent_calls_overlap(server: FakeLLMServer, client: openai.AsyncOpenAI) -> None:
    """100 concurrent calls with 200 ms latency overlap: far under 100 x 200 ms in total."""
    server.config.latency_ms = 200.0
    started = time.perf_counter()
    replies = await asyncio.gather(*(_content(client) for _ in range(100)))
    elapsed = time.perf_counter() - started
    assert elapsed < 5.0
    assert all(_verdicts(reply) == EXPECTED for reply in replies)
    assert server.stats.max_in_flight >= 20


async def test_stats_never_contain_the_api_key(
    server: FakeLLMServer, client: openai.AsyncOpenAI
) -> None:
    """Stats record that a key was present and the response_format type, never the key."""
    await client.chat.completions.create(
        model="fake-1",
        messages=_messages(),
        response_format={"type": "json_object"},
    )
    await _content(client)
    async with httpx.AsyncClient(base_url=server.base_url.removesuffix("/v1")) as http:
        served = (await http.get("/_fake/stats")).text
    local = json.dumps(server.stats.as_dict())
    for text in (served, local):
        assert API_KEY not in text
        assert "test-key" not in text
    assert server.stats.authorization_seen == {"present": 2, "missing": 0}
    assert server.stats.response_formats == {"json_object": 1, "none": 1}


# --- batched prompts -------------------------------------------------------------------------

# The posts of one batch: each judged differently, so an answer given to the wrong item shows.
BATCH_POSTS = {
    "1": (["NVDA", "AMD"], POST),
    "2": (["TSLA"], "Dumping all my TSLA, this is going to crash hard"),
    "3": (["AAPL"], "Holding AAPL, waiting for earnings next week"),
}
# Written like the client's batch header: its literal <item id="..."> is not an item.
BATCH_HEADER = 'Answer every item between <item id="..."> and </item> on its own.'


def _batch(posts: dict[str, tuple[list[str], str]]) -> str:
    blocks = [
        f'<item id="{item}">\nTickers: {", ".join(tickers)}\n<post>\n{text}\n</post>\n</item>'
        for item, (tickers, text) in posts.items()
    ]
    return "\n\n".join([BATCH_HEADER, *blocks])


def _alone(tickers: list[str], text: str) -> list[dict[str, object]]:
    """What the fake answers for one post asked on its own."""
    signals: list[dict[str, object]] = json.loads(reply_content("ok", text, tickers))["signals"]
    return signals


def _items(content: str) -> list[dict[str, object]]:
    items: list[dict[str, object]] = json.loads(content)["items"]
    return items


async def test_a_batch_is_answered_item_by_item_in_asked_order(
    server: FakeLLMServer, client: openai.AsyncOpenAI
) -> None:
    """Each <item> gets exactly the signals its post gets alone, under its id, in order."""
    items = _items(await _content(client, _batch(BATCH_POSTS)))
    assert [item["id"] for item in items] == ["1", "2", "3"]
    for item in items:
        assert item["signals"] == _alone(*BATCH_POSTS[str(item["id"])])
    verdicts = [_verdicts(json.dumps(item)) for item in items]
    assert verdicts == [EXPECTED, {"TSLA": "SELL"}, {"AAPL": "HOLD"}]
    assert (server.stats.items, server.stats.batched) == (3, 1)
    await _content(client)  # a single prompt is one question
    assert (server.stats.items, server.stats.batched) == (4, 1)


async def test_item_tags_tolerate_spacing_and_either_quote(client: openai.AsyncOpenAI) -> None:
    """< item id = 'b-2' > ... </ item > is an item; ids keep the order they were asked in."""
    user = (
        "< item id = 'b-2' >\nTickers: TSLA\n<post>TSLA is going to crash</post>\n</ item >\n"
        '<ITEM id="a_1">\nTickers: NVDA\n<post>Loading up on NVDA calls</post>\n</ITEM>'
    )
    items = _items(await _content(client, user))
    assert [item["id"] for item in items] == ["b-2", "a_1"]
    assert [_verdicts(json.dumps(item)) for item in items] == [{"TSLA": "SELL"}, {"NVDA": "BUY"}]


async def test_the_batchers_own_request_with_random_ids_is_answered_under_those_ids(
    client: openai.AsyncOpenAI,
) -> None:
    """The batcher's header and random ids, as it sends them: each item is answered under its
    id with exactly what its post gets alone, and the batcher reads every answer back."""
    loop = asyncio.get_running_loop()
    posts = list(BATCH_POSTS.values())
    users = [f"Tickers: {', '.join(tickers)}\n<post>{text}</post>" for tickers, text in posts]
    batch = [
        _Waiting(
            Question([{"role": "user", "content": user}], lambda _p: None, 100, lambda _t: True),
            loop.create_future(),
            user,
        )
        for user in users
    ]
    ids = _batch_ids(len(batch))
    content = await _content(client, _batch_text(batch, ids))
    items = _items(content)
    assert [item["id"] for item in items] == ids
    for item, (tickers, text) in zip(items, posts, strict=True):
        assert item["signals"] == _alone(tickers, text)
    read = read_batch(content, ids)
    assert read.problems == {}
    assert [json.loads(read.answers[item])["signals"] for item in ids] == [
        _alone(*post) for post in posts
    ]


async def test_malformed_batch_is_cut_short_mid_reply(
    server: FakeLLMServer, client: openai.AsyncOpenAI
) -> None:
    """rate_malformed=1 on a batch answers the first 60% of the JSON text: no valid object."""
    whole = await _content(client, _batch(BATCH_POSTS))
    server.config.rate_malformed = 1.0
    cut = await _content(client, _batch(BATCH_POSTS))
    assert cut == whole[: len(whole) * 3 // 5]
    with pytest.raises(json.JSONDecodeError):
        json.loads(cut)


async def test_prose_think_and_seed000_on_a_batch(
    server: FakeLLMServer, client: openai.AsyncOpenAI
) -> None:
    """prose fences the batched object, think puts a flipped decoy first, seed000 (no batched
    form) answers plain JSON: the real answer is the same in all three."""
    whole = _items(await _content(client, _batch(BATCH_POSTS)))
    server.config.rate_prose = 1.0
    prose = await _content(client, _batch(BATCH_POSTS))
    fenced = re.search(r"```json\n(.*?)\n```", prose, re.DOTALL)
    assert fenced is not None
    assert not prose.startswith("{")
    assert _items(fenced.group(1)) == whole
    server.config.rate_prose, server.config.rate_think = 0.0, 1.0
    thought, _, answer = (await _content(client, _batch(BATCH_POSTS))).partition("</think>")
    decoy = _items(thought[thought.index("{") : thought.rindex("}") + 1])
    for draft, final in zip(decoy, whole, strict=True):
        assert draft["id"] == final["id"]
        assert _verdicts(json.dumps(draft)) != _verdicts(json.dumps(final))
    assert _items(answer.strip()) == whole
    server.config.rate_think, server.config.rate_seed000 = 0.0, 1.0
    assert _items(await _content(client, _batch(BATCH_POSTS))) == whole


async def test_wrong_ticker_on_a_batch_misnames_the_first_items_first_signal(
    server: FakeLLMServer, client: openai.AsyncOpenAI
) -> None:
    """Only the first item's first signal changes, to a ticker no item asked about."""
    whole = _items(await _content(client, _batch(BATCH_POSTS)))
    server.config.rate_wrong_ticker = 1.0
    wrong = _items(await _content(client, _batch(BATCH_POSTS)))
    first, was = wrong[0]["signals"], whole[0]["signals"]
    assert isinstance(first, list)
    assert isinstance(was, list)
    asked = {ticker for tickers, _ in BATCH_POSTS.values() for ticker in tickers}
    assert first[0]["ticker"] not in asked
    assert first[1:] == was[1:]
    assert wrong[1:] == whole[1:]


async def test_scripted_replies_win_over_batched_answers(
    server: FakeLLMServer, client: openai.AsyncOpenAI
) -> None:
    """A scripted reply answers a batch as given, still counted as that batch's questions."""
    broken = '{"items": [{"id": "1", "signals": []}, {"id": "1", "signals": []}]}'
    server.config.replies = [broken]
    assert await _content(client, _batch(BATCH_POSTS)) == broken
    assert (server.stats.items, server.stats.batched) == (3, 1)


async def test_labeled_answers_apply_per_item() -> None:
    """With --answers, an item whose post is labeled gets its label; the others the lexicon."""
    tickers, text = BATCH_POSTS["2"]
    answers = Answers([{"text": text, "label": "buy", "tickers": tickers}])
    with FakeLLMServer(FakeConfig(seed=7), answers=answers) as fake:
        async with _client(fake.base_url) as api:
            items = _items(await _content(api, _batch(BATCH_POSTS)))
        assert [_verdicts(json.dumps(item)) for item in items] == [
            EXPECTED,
            {"TSLA": "BUY"},
            {"AAPL": "HOLD"},
        ]
        assert fake.stats.labeled == 1


# --- usage and prompt caching ----------------------------------------------------------------


async def test_a_repeated_system_prompt_is_reported_as_cached_tokens(
    server: FakeLLMServer, client: openai.AsyncOpenAI
) -> None:
    """The second call with the same system message (same key) has it as cached_tokens; a new
    system message or another key starts uncached; the stats add up what was reported."""
    system = "Answer with JSON signals."
    usages = []
    for messages in (_messages(), _messages("Tickers: TSLA\n<post>TSLA to zero</post>")):
        reply = await client.chat.completions.create(model="fake-1", messages=messages)
        assert reply.usage is not None
        usages.append(reply.usage)
    details = [u.prompt_tokens_details for u in usages]
    assert details[0] is not None
    assert details[1] is not None
    assert (details[0].cached_tokens, details[1].cached_tokens) == (0, -(-len(system) // 4))
    other_system: list[ChatCompletionMessageParam] = [
        {"role": "system", "content": "A different system prompt."},
        {"role": "user", "content": POST},
    ]
    fresh = await client.chat.completions.create(model="fake-1", messages=other_system)
    async with openai.AsyncOpenAI(
        base_url=server.base_url, api_key="sk-other", max_retries=0
    ) as other:
        other_key = await other.chat.completions.create(model="fake-1", messages=_messages())
    for reply in (fresh, other_key):
        assert reply.usage is not None
        assert reply.usage.prompt_tokens_details is not None
        assert reply.usage.prompt_tokens_details.cached_tokens == 0
    stats = server.stats
    all_usages = [*usages, fresh.usage, other_key.usage]
    assert stats.prompt_tokens == sum(u.prompt_tokens for u in all_usages if u)
    assert stats.completion_tokens == sum(u.completion_tokens for u in all_usages if u)
    assert stats.cached_tokens == -(-len(system) // 4)


async def test_max_output_tokens_refuses_a_larger_max_tokens_with_400_like_a_provider(
    server: FakeLLMServer, client: openai.AsyncOpenAI
) -> None:
    """With max_output_tokens set, a call asking for more (max_tokens or max_completion_tokens)
    is a BadRequestError naming max_tokens, before any quota or fault; up to it, an answer."""
    server.config.max_output_tokens = 100
    for asked in ({"max_tokens": 101}, {"max_completion_tokens": 500}):
        with pytest.raises(openai.BadRequestError) as refused:
            await client.chat.completions.create(model="fake-1", messages=_messages(), **asked)
        assert refused.value.param == "max_tokens"
        assert "at most 100 completion tokens" in refused.value.message
    reply = await client.chat.completions.create(
        model="fake-1", messages=_messages(), max_tokens=100
    )
    assert reply.choices[0].message.content
    assert server.stats.outcomes["max_tokens"] == 2
    assert server.stats.outcomes["ok"] == 1
    admin = server.base_url.removesuffix("/v1")
    async with httpx.AsyncClient(base_url=admin) as http:
        assert (await http.post("/_fake/config", json={"max_output_tokens": 0})).status_code == 422
        await http.post("/_fake/config", json={"max_output_tokens": None})
    await client.chat.completions.create(model="fake-1", messages=_messages(), max_tokens=9_000)
    assert server.stats.outcomes["ok"] == 2
