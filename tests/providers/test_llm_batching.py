"""Adaptive batching through the real openai client over real HTTP against the fake provider:
questions that wait for a busy provider share one request, every entry of its reply is taken
on its own, and whatever entry is missing, doubled, foreign or broken is asked again alone.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from collections.abc import AsyncIterator, Iterator, Sequence

import pytest

from signalsmith.analyze.llm.asking import Asker, AskOptions
from signalsmith.analyze.llm.batch_reply import usage_shares
from signalsmith.analyze.llm.batching import _ITEM_OVERHEAD_CHARS
from signalsmith.domain import Analysis, ModelCall, Post, Status, Verdict
from signalsmith.errors import ProvidersFailed
from signalsmith.fakellm import FakeConfig, FakeLLMServer, reply_content
from signalsmith.lifecycle import AnalyzerStack, build_analyzers
from signalsmith.observe.metrics import Metrics
from signalsmith.settings import load_settings
from tests.providers.batching_env import batching_env, strategy_signal

pytestmark = pytest.mark.slow

# Each post names one ticker; the first is asked alone while the provider is free, the others
# arrive while it is busy (one call at a time, 300 ms each) and go together as items 1..4 (their
# ids are random; a scripted reply names item N "@N", which the fake turns into its id).
POSTS = [
    ("NVDA", "Loading up on $NVDA calls", "They beat estimates and raised guidance."),
    ("AMD", "$AMD puts printing", "Missed estimates, guidance cut, selling everything."),
    ("TSLA", "$TSLA to the moon", "Record deliveries, buying more shares tomorrow."),
    ("AAPL", "Dumping $AAPL", "Weak iPhone sales, I sold my position and bought puts."),
    ("MSFT", "$MSFT calls", "Azure growth accelerating, strong buy, adding to my position."),
]


@pytest.fixture
def fake() -> Iterator[FakeLLMServer]:
    with FakeLLMServer(FakeConfig(latency_ms=300, seed=3)) as server:
        yield server


@pytest.fixture
async def stack(
    fake: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[AnalyzerStack]:
    env = batching_env(fake.base_url, OPENAI_PRICE_IN="1.5", OPENAI_PRICE_OUT="6")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    built = build_analyzers(load_settings(), Metrics(), None)
    try:
        yield built
    finally:
        await built.aclose()


def _post(index: int) -> Post:
    _ticker, title, body = POSTS[index]
    return Post(id=f"p{index}", title=title, body=body)


async def _analyze_all(stack: AnalyzerStack, count: int = len(POSTS)) -> list[Analysis]:
    analyzer = stack.analyzers[0]

    async def one(index: int) -> Analysis:
        await asyncio.sleep(0.02 * index)  # arrival order fixes the items: post k is item k
        return await analyzer.analyze(_post(index), [POSTS[index][0]])

    return await asyncio.gather(*(one(index) for index in range(count)))


def _single(ticker: str, verdict: str, confidence: float) -> dict[str, object]:
    return {"ticker": ticker, "verdict": verdict, "confidence": confidence, "reasoning": "r"}


def _entry(item: str, ticker: str, verdict: str, confidence: float) -> dict[str, object]:
    """The entry for the batch's item number ``item`` (the fake puts in its id)."""
    return {"id": f"@{item}", "signals": [_single(ticker, verdict, confidence)]}


def _first_alone() -> str:
    return json.dumps({"signals": [_single("NVDA", "BUY", 0.91)]})


def _llm_vote(analysis: Analysis, ticker: str) -> tuple[Verdict | None, float | None]:
    vote = analysis.votes[ticker][-1]
    assert vote.analyzer == "llm"
    assert vote.status is Status.OK, vote.error
    assert vote.opinion is not None
    return vote.opinion.verdict, round(vote.opinion.confidence, 2)


def _asked_alone(index: int) -> tuple[Verdict, float]:
    """What the fake answers for post ``index`` asked alone (its lexicon reading)."""
    ticker = POSTS[index][0]
    content = json.loads(reply_content("ok", _post(index).text, [ticker]))
    signal = content["signals"][0]
    return Verdict(signal["verdict"]), round(float(signal["confidence"]), 2)


def _call(analysis: Analysis) -> ModelCall:
    assert len(analysis.calls) == 1
    return analysis.calls[0]


def _requests(fake: FakeLLMServer) -> list[str]:
    return [str(messages[-1]["content"]) for messages in fake.received]  # type: ignore[index]


async def test_waiting_questions_share_one_request_and_entries_in_any_order_land_by_id(
    fake: FakeLLMServer, stack: AnalyzerStack
) -> None:
    batch = [
        _entry("4", "MSFT", "BUY", 0.64),
        _entry("2", "TSLA", "BUY", 0.62),
        _entry("1", "AMD", "SELL", 0.61),
        _entry("3", "AAPL", "SELL", 0.63),
    ]
    fake.config.replies = [_first_alone(), json.dumps({"items": batch})]
    results = await _analyze_all(stack)
    assert [_llm_vote(result, POSTS[i][0]) for i, result in enumerate(results)] == [
        (Verdict.BUY, 0.91),
        (Verdict.SELL, 0.61),
        (Verdict.BUY, 0.62),
        (Verdict.SELL, 0.63),
        (Verdict.BUY, 0.64),
    ]
    assert fake.stats.calls == 2
    asked = _requests(fake)
    assert "<item" not in asked[0]
    assert len(set(re.findall(r'<item id="(\w+)">', asked[1]))) == 4
    # Instructions first and identical, the items last: one cacheable prefix.
    assert fake.received[0][0] == fake.received[1][0]  # type: ignore[index]
    assert (_call(results[0]).batch_size, _call(results[0]).parse_method) == (1, "json")
    for result in results[1:]:
        assert (_call(result).batch_size, _call(result).parse_method) == (4, "batch_json")


@pytest.mark.parametrize(
    "case",
    [
        ("missing", [("1", "AMD"), ("2", "TSLA"), ("4", "MSFT")], {3}, "no entry for it"),
        (
            "duplicated",
            [("1", "AMD"), ("2", "TSLA"), ("3", "AAPL"), ("3", "AAPL"), ("4", "MSFT")],
            {3},
            "answered 2 times",
        ),
        ("unknown id", [("1", "AMD"), ("2", "TSLA"), ("7", "AAPL"), ("4", "MSFT")], {3}, "'@7'"),
        (
            "another post's ticker",
            [("1", "AMD"), ("2", "AAPL"), ("3", "AAPL"), ("4", "MSFT")],
            {2},
            "not a valid answer",
        ),
    ],
)
async def test_an_entry_missing_doubled_or_foreign_is_asked_again_alone(
    fake: FakeLLMServer,
    stack: AnalyzerStack,
    case: tuple[str, Sequence[tuple[str, str]], set[int], str],
) -> None:
    name, entries, asked_again, why = case
    verdicts = {"AMD": "SELL", "TSLA": "BUY", "AAPL": "SELL", "MSFT": "BUY"}
    batch = [
        _entry(item, ticker, verdicts[ticker], 0.6 + 0.01 * int(item)) for item, ticker in entries
    ]
    fake.config.replies = [_first_alone(), json.dumps({"items": batch})]
    results = await _analyze_all(stack)
    for index in range(1, len(POSTS)):
        call = _call(results[index])
        ticker = POSTS[index][0]
        if index in asked_again:
            assert _llm_vote(results[index], ticker) == _asked_alone(index), name
            assert call.batch_size == 1
            assert any(why in error and "asked again alone" in error for error in call.errors)
        else:
            assert _llm_vote(results[index], ticker) == (
                Verdict(verdicts[ticker]),
                round(0.6 + 0.01 * index, 2),
            )
            assert call.batch_size == 4
    assert fake.stats.calls == 2 + len(asked_again)


async def test_an_invalid_entry_and_a_reply_cut_short_are_asked_again_alone(
    fake: FakeLLMServer, stack: AnalyzerStack
) -> None:
    batch = [
        _entry("1", "AMD", "SELL", 0.61),
        _entry("2", "TSLA", "MAYBE", 0.62),  # not a verdict
        _entry("3", "AAPL", "SELL", 0.63),
        _entry("4", "MSFT", "BUY", 0.64),
    ]
    whole = json.dumps({"items": batch})
    cut = whole[: whole.index('"id": "@4"') + 16]  # entry 4 never closes
    fake.config.replies = [_first_alone(), cut]
    results = await _analyze_all(stack)
    assert _llm_vote(results[1], "AMD") == (Verdict.SELL, 0.61)
    assert _llm_vote(results[3], "AAPL") == (Verdict.SELL, 0.63)
    assert _call(results[1]).parse_method == "batch_partial"
    for index in (2, 4):
        assert _llm_vote(results[index], POSTS[index][0]) == _asked_alone(index)
        assert any("asked again alone" in error for error in _call(results[index]).errors)
    assert fake.stats.calls == 4


async def test_batched_items_get_random_ids_and_each_its_own_answer(
    fake: FakeLLMServer, stack: AnalyzerStack
) -> None:
    """Item ids are drawn at random per batch (short, distinct, never 1..n, so no post can name
    another item to steer its answer); the fake answers item by item under those ids, and each
    post gets exactly the answer it gets alone."""
    results = await _analyze_all(stack)
    ids = re.findall(r'<item id="(\w+)">', _requests(fake)[1])
    assert len(ids) == len(set(ids)) == 4
    assert all(re.fullmatch(r"[a-z2-9]{4}", item) for item in ids), ids
    assert not set(ids) & {"1", "2", "3", "4"}
    for index, result in enumerate(results):
        assert _llm_vote(result, POSTS[index][0]) == _asked_alone(index)
    assert [_call(result).batch_size for result in results] == [1, 4, 4, 4, 4]
    assert fake.stats.calls == 2


async def test_a_batched_reply_with_nothing_readable_asks_every_question_again(
    fake: FakeLLMServer, stack: AnalyzerStack
) -> None:
    fake.config.replies = [_first_alone(), "Sorry, I can only answer one question at a time."]
    results = await _analyze_all(stack)
    for index in range(1, len(POSTS)):
        assert _llm_vote(results[index], POSTS[index][0]) == _asked_alone(index)
    assert fake.stats.calls == 2 + 4


async def test_tokens_and_cost_per_question_add_up_to_the_providers_usage(
    fake: FakeLLMServer, stack: AnalyzerStack
) -> None:
    batch = [_entry("1", "AMD", "SELL", 0.6), _entry("2", "TSLA", "BUY", 0.6)]
    fake.config.replies = [_first_alone(), json.dumps({"items": batch})]
    results = await _analyze_all(stack)  # ids 3 and 4 are missing: asked again alone
    calls = [_call(result) for result in results]
    assert stack.chain is not None
    slot = stack.chain.slots[0]
    assert sum(call.tokens_in for call in calls) == slot.tokens_in
    assert sum(call.tokens_out for call in calls) == slot.tokens_out
    # The fake caches the instructions the requests share: cached tokens add up too, each
    # question's within its own prompt tokens.
    assert slot.tokens_cached > 0
    assert sum(call.tokens_cached for call in calls) == slot.tokens_cached
    assert all(call.tokens_cached <= call.tokens_in for call in calls)
    assert math.isclose(sum(call.cost_usd for call in calls), slot.cost_usd, rel_tol=1e-9)
    assert all(call.tokens_in > 0 and call.cost_usd > 0 for call in calls)
    # The batch's share follows each question's size: the longer post pays more of it.
    assert calls[1].tokens_in != calls[2].tokens_in


async def test_questions_go_alone_and_at_once_while_the_provider_has_room(
    fake: FakeLLMServer, stack: AnalyzerStack
) -> None:
    analyzer = stack.analyzers[0]
    for index in range(3):
        result = await analyzer.analyze(_post(index), [POSTS[index][0]])
        assert _call(result).batch_size == 1
        assert _llm_vote(result, POSTS[index][0]) == _asked_alone(index)
    assert not any("<item" in text for text in _requests(fake))


async def test_when_every_provider_fails_each_waiting_question_gets_the_failure(
    fake: FakeLLMServer, stack: AnalyzerStack
) -> None:
    fake.config.status_override = 401
    analyzer = stack.analyzers[0]
    outcomes = await asyncio.gather(
        *(analyzer.analyze(_post(i), [POSTS[i][0]]) for i in range(len(POSTS))),
        return_exceptions=True,
    )
    assert all(isinstance(outcome, ProvidersFailed) for outcome in outcomes)


def _many_posts() -> list[tuple[Post, str]]:
    """Posts whose answers differ: verdicts both ways and a spread of confidences."""
    lines = [
        ("NVDA", "Loading $NVDA calls, beat estimates"),
        ("AMD", "$AMD is a short, guidance cut and margins shrinking"),
        ("TSLA", "Holding $TSLA, no idea where it goes"),
        ("AAPL", "$AAPL strong buy, record services revenue, raised dividend"),
        ("INTC", "Sold all my $INTC, bankruptcy risk, puts loaded"),
        ("MSFT", "$MSFT upgraded, buying the dip"),
        ("GME", "$GME squeeze incoming, buying more calls, to the moon"),
        ("PLTR", "$PLTR overvalued, downgrade, taking profits and shorting"),
        ("META", "What do you think about $META?"),
        ("AMZN", "$AMZN crushed earnings, bullish, adding shares"),
        ("NFLX", "$NFLX subscriber loss, bearish, selling"),
        ("COIN", "$COIN bought calls after the beat"),
    ]
    return [
        (Post(id=f"m{i}", title=text, body=""), ticker) for i, (ticker, text) in enumerate(lines)
    ]


async def test_answers_that_differ_per_post_each_land_on_their_own_post(
    fake: FakeLLMServer, stack: AnalyzerStack
) -> None:
    fake.config.latency_ms = 100
    analyzer = stack.analyzers[0]
    posts = _many_posts()
    results = await asyncio.gather(*(analyzer.analyze(post, [ticker]) for post, ticker in posts))
    batched = 0
    for (post, ticker), result in zip(posts, results, strict=True):
        alone = json.loads(reply_content("ok", post.text, [ticker]))["signals"][0]
        vote = result.votes[ticker][-1]
        assert vote.status is Status.OK, vote.error
        assert vote.opinion is not None
        assert (vote.opinion.verdict.value, round(vote.opinion.confidence, 2)) == (
            alone["verdict"],
            round(alone["confidence"], 2),
        ), post.text
        assert alone["reasoning"][:150] in vote.opinion.evidence[0]
        batched += _call(result).batch_size > 1
    assert len({json.dumps(json.loads(reply_content("ok", p.text, [t]))) for p, t in posts}) > 8
    assert batched >= len(posts) - 2
    assert fake.stats.batched >= 1
    assert fake.stats.calls < len(posts)


async def test_a_429_storm_past_the_quota_never_gives_a_question_another_ones_answer(
    fake: FakeLLMServer, stack: AnalyzerStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The provider allows 3 requests a minute and says so with 429 + Retry-After; the client
    was not told. The first requests answer their questions, every later one fails with the
    rate limit (the wait is past LLM_MAX_WAIT_S): an error, never a verdict made up or moved."""
    fake.config.latency_ms = 50
    fake.config.rpm = 3
    analyzer = stack.analyzers[0]
    posts = _many_posts()
    outcomes = []
    for start in range(0, len(posts), 4):  # waves, so several requests go out
        wave = posts[start : start + 4]
        outcomes += await asyncio.gather(
            *(analyzer.analyze(post, [ticker]) for post, ticker in wave), return_exceptions=True
        )
    answered = 0
    for (post, ticker), outcome in zip(posts, outcomes, strict=True):
        if isinstance(outcome, ProvidersFailed):
            assert all("rate_limited" in reason for reason in outcome.reasons), outcome.reasons
            continue
        assert isinstance(outcome, Analysis)
        alone = json.loads(reply_content("ok", post.text, [ticker]))["signals"][0]
        assert _llm_vote(outcome, ticker)[0] == Verdict(alone["verdict"])
        answered += 1
    assert 0 < answered < len(posts)
    assert fake.stats.outcomes["quota"] >= 1
    assert fake.stats.outcomes["ok"] == 3


async def test_strategy_signals_waiting_for_the_provider_are_rated_together_each_on_its_own(
    fake: FakeLLMServer, stack: AnalyzerStack
) -> None:
    """The fake confirms a buy at RSI under 70 (rating 7) and rejects one past it (rating 3):
    each signal's rating follows its own RSI, whether it went alone or in a batch."""
    from signalsmith.lifecycle import strategy_rater

    rater, _ = strategy_rater(load_settings(), Metrics(), None, stack)
    assert rater is not None
    rsis = [40.0, 85.0, 55.0, 90.0, 20.0, 75.0]

    async def rate(index: int, rsi: float) -> tuple[int | None, int]:
        await asyncio.sleep(0.02 * index)
        answer = await rater.rate(strategy_signal(index, rsi), [])
        assert answer.rating is not None, answer.error
        assert answer.rating["reasoning"].startswith(f"SYM{index}:")
        return answer.rating["rating"], answer.rating["batch_size"]

    rated = await asyncio.gather(*(rate(i, rsi) for i, rsi in enumerate(rsis)))
    assert [rating for rating, _size in rated] == [7 if rsi < 70 else 3 for rsi in rsis]
    assert rated[0][1] == 1
    assert all(size == len(rsis) - 1 for _rating, size in rated[1:])
    assert fake.stats.calls == 2


def test_a_providers_in_flight_limit_follows_max_in_flight_unless_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from signalsmith.analyze.llm.providers import resolve_providers

    monkeypatch.setenv("LLM_PROVIDERS", "openai")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-x")
    monkeypatch.delenv("OPENAI_MAX_IN_FLIGHT", raising=False)
    monkeypatch.setenv("MAX_IN_FLIGHT", "48")
    assert resolve_providers(load_settings())[0].max_in_flight == 48
    monkeypatch.setenv("OPENAI_MAX_IN_FLIGHT", "8")
    assert resolve_providers(load_settings())[0].max_in_flight == 8


@pytest.mark.redis
def test_start_up_says_in_one_line_when_a_providers_limit_binds(
    fake: FakeLLMServer, stream_env: dict[str, str]
) -> None:
    import os
    import subprocess
    import sys

    dropped = {"REDIS_ADDR", "LLM_PROVIDER", "SIGNALSMITH_CONFIG"}
    base = {k: v for k, v in os.environ.items() if k not in dropped}
    env = {
        **base,
        **stream_env,
        "LLM_PROVIDERS": "openai",
        "OPENAI_BASE_URL": fake.base_url,
        "OPENAI_API_KEY": "sk-startup",
        "MAX_IN_FLIGHT": "64",
    }

    def lines(extra: dict[str, str]) -> list[str]:
        result = subprocess.run(
            [sys.executable, "-m", "signalsmith", "run", "--until-idle", "0.5"],
            env={**env, **extra},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr[-2000:]
        output = (result.stdout + result.stderr).splitlines()
        return [line for line in output if "MAX_IN_FLIGHT" in line]

    bound = lines({"OPENAI_MAX_IN_FLIGHT": "16"})
    assert len(bound) == 1
    assert "OPENAI_MAX_IN_FLIGHT=16 binds below MAX_IN_FLIGHT=64" in bound[0]
    assert lines({}) == []


async def test_a_question_whose_asker_gave_up_is_left_out_of_the_batch(
    fake: FakeLLMServer, stack: AnalyzerStack
) -> None:
    analyzer = stack.analyzers[0]
    first = asyncio.create_task(analyzer.analyze(_post(0), [POSTS[0][0]]))
    await asyncio.sleep(0.05)
    tasks = [asyncio.create_task(analyzer.analyze(_post(i), [POSTS[i][0]])) for i in (1, 2, 3)]
    await asyncio.sleep(0.05)
    tasks[1].cancel()  # post 2, waiting in the lane behind the busy provider
    done = await asyncio.gather(first, tasks[0], tasks[2])
    assert tasks[1].cancelled()
    for index, result in zip((0, 1, 3), done, strict=True):
        assert _llm_vote(result, POSTS[index][0]) == _asked_alone(index)
    batch = _requests(fake)[-1]
    assert len(re.findall(r'<item id="\w+">', batch)) == 2
    assert "$TSLA" not in batch
    assert _call(done[1]).batch_size == 2


async def test_an_entry_missing_for_an_asker_that_gave_up_in_flight_is_not_asked_again(
    fake: FakeLLMServer, stack: AnalyzerStack
) -> None:
    """Post 2's asker is cancelled while the batch is on its way and the reply has no entry
    for it: the others land, and no request is paid to ask post 2 again for nobody."""
    batch = [_entry("1", "AMD", "SELL", 0.61), _entry("3", "AAPL", "SELL", 0.63)]
    fake.config.replies = [_first_alone(), json.dumps({"items": batch})]
    analyzer = stack.analyzers[0]

    async def one(index: int) -> Analysis:
        await asyncio.sleep(0.02 * index)
        return await analyzer.analyze(_post(index), [POSTS[index][0]])

    tasks = [asyncio.create_task(one(index)) for index in range(4)]
    await asyncio.sleep(0.45)  # the first answered at ~0.3 s; the batch of 3 is in flight
    assert fake.stats.calls == 2
    tasks[2].cancel()
    done = await asyncio.gather(tasks[0], tasks[1], tasks[3])
    await asyncio.sleep(0.5)  # room for a re-ask to reach the fake, were one sent
    assert tasks[2].cancelled()
    assert [_llm_vote(result, POSTS[i][0]) for i, result in zip((0, 1, 3), done, strict=True)] == [
        (Verdict.BUY, 0.91),
        (Verdict.SELL, 0.61),
        (Verdict.SELL, 0.63),
    ]
    assert fake.stats.calls == 2


async def test_when_the_whole_batch_cannot_go_in_time_the_part_that_can_goes(
    fake: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """OPENAI_TPM leaves room, after the first post, for a batch of two or three of the eight
    that wait, and LLM_MAX_WAIT_S (1 s) is far shorter than the minute the window needs to
    take all eight. The part that fits goes now and is answered; only the rest fail (they
    could not go in time even alone), rather than the whole lane failing unasked."""
    for name, value in batching_env(fake.base_url, OPENAI_TPM="1160", LLM_MAX_WAIT_S="1").items():
        monkeypatch.setenv(name, value)
    built = build_analyzers(load_settings(), Metrics(), None)
    try:
        analyzer = built.analyzers[0]
        first = asyncio.create_task(analyzer.analyze(_post(0), [POSTS[0][0]]))
        await asyncio.sleep(0.05)
        posts = _many_posts()[:8]
        outcomes = await asyncio.gather(
            *(analyzer.analyze(post, [ticker]) for post, ticker in posts),
            return_exceptions=True,
        )
        assert _llm_vote(await first, POSTS[0][0]) == _asked_alone(0)
    finally:
        await built.aclose()
    answered = [o for o in outcomes if isinstance(o, Analysis)]
    failed = [o for o in outcomes if isinstance(o, ProvidersFailed)]
    assert len(answered) + len(failed) == len(posts)
    assert 2 <= len(answered) < len(posts)
    assert all(_call(result).batch_size == len(answered) for result in answered)
    assert all("own rate limit" in " ".join(error.reasons) for error in failed)
    assert fake.stats.calls == 2


async def test_a_question_whose_asking_again_fails_keeps_its_share_of_the_batch_on_the_bill(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Entries 3 and 4 are missing from the batched reply, and the provider's quota (two
    requests a minute) refuses asking them again alone: both fail, and what their share of the
    batch cost is counted all the same, so the tokens and money counted add up to the
    provider's usage."""
    batch = [_entry("1", "AMD", "SELL", 0.6), _entry("2", "TSLA", "BUY", 0.6)]
    config = FakeConfig(latency_ms=300, seed=3, rpm=2, retry_after_s=60)
    config.replies = [_first_alone(), json.dumps({"items": batch})]
    with FakeLLMServer(config) as server:
        env = batching_env(server.base_url, OPENAI_PRICE_IN="1.5", OPENAI_PRICE_OUT="6")
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        metrics = Metrics()
        built = build_analyzers(load_settings(), metrics, None)
        try:
            analyzer = built.analyzers[0]

            async def one(index: int) -> Analysis:
                await asyncio.sleep(0.02 * index)
                return await analyzer.analyze(_post(index), [POSTS[index][0]])

            results = await asyncio.gather(*(one(i) for i in range(5)), return_exceptions=True)
        finally:
            await built.aclose()
        assert server.stats.outcomes["ok"] == 2  # the question alone, then the batch
        assert server.stats.outcomes["quota"] >= 1  # asking again alone was refused
        assert built.chain is not None
        slot = built.chain.slots[0]
    assert [isinstance(result, Analysis) for result in results] == [True] * 3 + [False] * 2
    for failed in results[3:]:
        assert isinstance(failed, ProvidersFailed)
        assert "asked again alone" in failed.reasons[0]
        assert failed.take_spent() is None  # billed once, by the asker

    def counted(direction: str) -> float:
        labels = {"provider": "openai", "model": slot.config.model, "direction": direction}
        return metrics.registry.get_sample_value("signalsmith_llm_tokens_total", labels) or 0.0

    assert counted("input") == slot.tokens_in
    assert counted("output") == slot.tokens_out
    cost = metrics.registry.get_sample_value(
        "signalsmith_llm_cost_usd_total", {"provider": "openai", "model": slot.config.model}
    )
    assert cost is not None
    assert math.isclose(cost, slot.cost_usd, rel_tol=1e-9)
    paid_for = [result for result in results if isinstance(result, Analysis)]
    assert sum(_call(result).tokens_in for result in paid_for) < slot.tokens_in


async def test_questions_too_big_to_go_alone_in_time_go_together_while_the_provider_is_idle(
    fake: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """OPENAI_TPM=1200: after the first post's call (about 460 tokens used, reconciled), what is
    left of the minute's window is less than one question alone reserves (its prompt and the
    whole LLM_MAX_OUTPUT_TOKENS, about 830), so asked alone each of the next two would fail at
    once though the provider is idle; a batch reserves only the reply room its answers use,
    and the two go together in one request that fits (about 650)."""
    for name, value in batching_env(fake.base_url, OPENAI_TPM="1200").items():
        monkeypatch.setenv(name, value)
    built = build_analyzers(load_settings(), Metrics(), None)
    try:
        analyzer = built.analyzers[0]
        first = await analyzer.analyze(_post(0), [POSTS[0][0]])
        results = await asyncio.gather(
            *(analyzer.analyze(_post(i), [POSTS[i][0]]) for i in (1, 2)),
            return_exceptions=True,
        )
    finally:
        await built.aclose()
    assert _call(first).batch_size == 1
    assert all(isinstance(result, Analysis) for result in results), results
    for index, result in zip((1, 2), results, strict=True):
        assert isinstance(result, Analysis)
        assert _llm_vote(result, POSTS[index][0]) == _asked_alone(index)
        assert _call(result).batch_size == 2
    assert fake.stats.calls == 2


async def test_a_batchs_usage_is_shared_by_each_items_text_and_tags(
    fake: FakeLLMServer, stack: AnalyzerStack
) -> None:
    """A short post and a long one share a batch: each pays in proportion to its item's
    length with its tags, so the short one pays more than its text alone would say."""
    short = Post(id="s", title="$AMD puts", body="")
    long = Post(id="l", title="$TSLA", body="Record deliveries and margins, buying more. " * 8)
    batch = [_entry("1", "AMD", "SELL", 0.6), _entry("2", "TSLA", "BUY", 0.6)]
    fake.config.replies = [_first_alone(), json.dumps({"items": batch})]
    analyzer = stack.analyzers[0]
    first = asyncio.create_task(analyzer.analyze(_post(0), [POSTS[0][0]]))
    await asyncio.sleep(0.05)
    pair = await asyncio.gather(analyzer.analyze(short, ["AMD"]), analyzer.analyze(long, ["TSLA"]))
    alone, calls = _call(await first), [_call(result) for result in pair]
    assert [call.batch_size for call in calls] == [2, 2]
    assert stack.chain is not None
    slot = stack.chain.slots[0]
    blocks = re.findall(r'<item id="\w+">\n(.*?)\n</item>', _requests(fake)[1], re.DOTALL)
    assert len(blocks) == 2
    expected = usage_shares(
        slot.tokens_in - alone.tokens_in,
        slot.tokens_cached - alone.tokens_cached,
        slot.tokens_out - alone.tokens_out,
        [len(block) + _ITEM_OVERHEAD_CHARS for block in blocks],
    )
    assert [(c.tokens_in, c.tokens_cached, c.tokens_out) for c in calls] == [
        (share.tokens_in, share.tokens_cached, share.tokens_out) for share in expected
    ]
    text_only = usage_shares(slot.tokens_in - alone.tokens_in, 0, 0, [len(b) for b in blocks])
    assert calls[0].tokens_in > text_only[0].tokens_in


async def test_the_market_and_strategy_askers_count_cached_prompt_tokens_too(
    fake: FakeLLMServer, stack: AnalyzerStack
) -> None:
    """Two questions with the same instructions through the asker the market insight and the
    strategy rating use: the second's instructions are billed as a cached prefix, and the
    tokens counted (the cached share included) and the cost add up to the provider's usage."""
    assert stack.chain is not None
    metrics = Metrics()
    asker = Asker(stack.chain, AskOptions(max_tokens=200, temperature=0.0), None, metrics)
    system = {"role": "system", "content": "Rate the trade. " * 80}
    for text in ("$NVDA long into earnings", "$AMD short after the miss"):
        assert await asker.reply([system, {"role": "user", "content": text}])
    slot = stack.chain.slots[0]

    def counted(direction: str) -> float:
        labels = {"provider": "openai", "model": slot.config.model, "direction": direction}
        return metrics.registry.get_sample_value("signalsmith_llm_tokens_total", labels) or 0.0

    assert slot.tokens_cached > 0
    assert counted("cached") == slot.tokens_cached
    assert (counted("input"), counted("output")) == (slot.tokens_in, slot.tokens_out)
    cost = metrics.registry.get_sample_value(
        "signalsmith_llm_cost_usd_total", {"provider": "openai", "model": slot.config.model}
    )
    assert cost is not None
    assert math.isclose(cost, slot.cost_usd, rel_tol=1e-9)
