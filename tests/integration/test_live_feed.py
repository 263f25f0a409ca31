"""GET /api/live through `signalsmith run` over the real Redis: posts XADDed to the input stream
arrive as server-sent events, filtered as asked, their texts as JSON strings (never markup); a
client that reconnects with the id of the last event it had misses nothing, from the ring or,
once it fell behind the ring, from the stream after being told so; the number of clients is
bounded; bad parameters are a 422."""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis as sync_redis

from tests.serving import serving

pytestmark = [pytest.mark.redis, pytest.mark.slow]
DROPPED = {"REDIS_ADDR", "SIGNALSMITH_CONFIG", "HTTP_HOST", "LLM_PROVIDERS"}
XSS = '<script>alert(1)</script><img src=x onerror="alert(2)">'


@pytest.fixture
def live(stream_env: dict[str, str], tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    env = {
        **{k: v for k, v in os.environ.items() if k not in DROPPED},
        **stream_env,
        "MARKET_ENABLED": "false",
        "STRATEGY_ENABLED": "false",
        "STORE_ENABLED": "false",
        "LIVE_BUFFER": "16",
        "LIVE_MAX_CLIENTS": "3",
        "LOG_LEVEL": "WARNING",
    }
    with serving(["run"], env) as url:
        yield url, env


def _events(url: str, count: int, **options: Any) -> list[dict[str, Any]]:
    """The first ``count`` events (decisions and notices) the feed sends, each as
    ``{"event", "id", "data"}``."""
    events: list[dict[str, Any]] = []
    current: dict[str, Any] = {}
    timeout = httpx.Timeout(10.0, read=10.0)
    with httpx.stream("GET", url + "/api/live", timeout=timeout, **options) as answer:
        assert answer.status_code == 200, answer.read()
        assert answer.headers["content-type"].startswith("text/event-stream")
        for line in answer.iter_lines():
            if line.startswith(("event: ", "id: ", "data: ")):
                name, _, value = line.partition(": ")
                current[name] = json.loads(value) if name == "data" else value
            elif not line and current:
                events.append(current)
                current = {}
                if len(events) == count:
                    break
    return events


def _post(env: dict[str, str], title: str) -> str:
    client = sync_redis.Redis.from_url(env["REDIS_URL"])
    try:
        return client.xadd(env["STREAM"], {"title": title, "body": "buying calls"}).decode()
    finally:
        client.close()


def _log_ids(env: dict[str, str], count: int) -> list[str]:
    """The decision log's entry ids once it holds ``count`` entries."""
    client = sync_redis.Redis.from_url(env["REDIS_URL"])
    deadline = time.monotonic() + 20
    try:
        while client.xlen(env["DECISION_STREAM"]) < count:
            assert time.monotonic() < deadline, "the decisions never reached the log"
            time.sleep(0.05)
        return [entry_id.decode() for entry_id, _f in client.xrange(env["DECISION_STREAM"])]
    finally:
        client.close()


def test_posts_arrive_as_events_filtered_with_their_texts_as_text(
    live: tuple[str, dict[str, str]],
) -> None:
    url, env = live
    _post(env, "TSLA calls into earnings")
    _post(env, f"NVDA to the moon {XSS}")
    ids = _log_ids(env, 2)
    (nvda,) = _events(url, 1, params={"ticker": "nvda", "verdict": "BUY,SELL"})
    assert (nvda["event"], nvda["id"]) == ("decision", ids[1])
    assert nvda["data"]["title"] == f"NVDA to the moon {XSS}"  # a string, for the page to show
    assert (nvda["data"]["ticker"], nvda["data"]["kind"]) == ("NVDA", "post")
    assert nvda["data"]["analyzers"] == ["lexicon"]
    (tsla,) = _events(url, 1, params={"kind": "post", "ticker": "TSLA"})
    assert tsla["id"] == ids[0]
    with ThreadPoolExecutor(1) as pool:  # a client waiting when the post comes
        waiting = pool.submit(_events, url, 1, params={"ticker": "AMD"})
        time.sleep(0.5)
        _post(env, "AMD breakout, loading calls")
        (amd,) = waiting.result(timeout=30)
    assert amd["data"]["ticker"] == "AMD"


def test_a_client_that_reconnects_misses_nothing_from_the_ring_or_the_stream(
    live: tuple[str, dict[str, str]],
) -> None:
    """LIVE_BUFFER=16: after 5 posts the ring still holds what follows the second; after 40,
    a client that had the second is told it is behind, then gets every later decision, in
    order, from the stream and then the ring."""
    url, env = live
    for number in range(5):
        _post(env, f"MSFT calls {number}")
    ids = _log_ids(env, 5)
    resumed = _events(url, 3, headers={"Last-Event-ID": ids[1]})
    assert [event["id"] for event in resumed] == ids[2:5]
    for number in range(5, 40):
        _post(env, f"MSFT calls {number}")
    ids = _log_ids(env, 40)
    time.sleep(0.5)  # the feed's reader takes a busy stream a tenth of a second at a time
    caught_up = _events(url, 39, headers={"Last-Event-ID": ids[1]})
    assert caught_up[0] == {"event": "behind", "data": {"last_event_id": ids[1]}}
    assert [event["id"] for event in caught_up[1:]] == ids[2:40]


def test_a_client_resumes_without_a_gap_after_the_service_restarts(
    stream_env: dict[str, str], tmp_path: Path
) -> None:
    """The browser had the first decision when the service stopped; decisions were made
    before and after the restart; reconnecting with its Last-Event-ID it gets every later one,
    in order, once."""
    env = {
        **{k: v for k, v in os.environ.items() if k not in DROPPED},
        **stream_env,
        "MARKET_ENABLED": "false",
        "STRATEGY_ENABLED": "false",
        "STORE_ENABLED": "false",
        "LOG_LEVEL": "WARNING",
    }
    with serving(["run"], env) as url:
        for number in range(3):
            _post(env, f"AAPL calls {number}")
        ids = _log_ids(env, 3)
        first = _events(url, 1)  # the oldest of the newest decisions a new client starts with
    _post(env, "AAPL calls while stopped")
    with serving(["run"], env) as url:
        _post(env, "AAPL calls after the restart")
        ids = _log_ids(env, 5)
        resumed = _events(url, 4, headers={"Last-Event-ID": first[0]["id"]})
    assert first[0]["id"] == ids[0]
    assert [event["id"] for event in resumed] == ids[1:5]


def test_clients_are_bounded_and_a_place_comes_back_when_one_leaves(
    live: tuple[str, dict[str, str]],
) -> None:
    url, _env = live
    with httpx.Client(base_url=url, timeout=10) as client, contextlib.ExitStack() as held:
        for _ in range(10):  # clients gone as soon as they are answered give their place back
            with client.stream("GET", "/api/live") as gone:
                assert gone.status_code == 200
        _until_admitted(client)
        for _ in range(3):
            held.enter_context(client.stream("GET", "/api/live"))
        refused = client.get("/api/live")
        assert refused.status_code == 503
        assert refused.headers["retry-after"] == "5"
        held.close()
        _until_admitted(client)


def _until_admitted(client: httpx.Client) -> None:
    """Wait until a new client is let in (the places of clients gone are given back)."""
    deadline = time.monotonic() + 10
    while True:
        with client.stream("GET", "/api/live") as probe:
            if probe.status_code == 200:
                return
        assert time.monotonic() < deadline, "the places never came back"
        time.sleep(0.1)


@pytest.mark.parametrize(
    ("params", "headers"),
    [
        ({"kind": "post,nope"}, {}),
        ({"verdict": "MAYBE"}, {}),
        ({"ticker": "NV DA"}, {}),
        ({"min_confidence": "2"}, {}),
        ({"since": "yesterday"}, {}),
        ({}, {"Last-Event-ID": "not-an-id"}),
        ({"last_event_id": "1-2-3"}, {}),
    ],
)
def test_bad_parameters_are_a_422(
    live: tuple[str, dict[str, str]], params: dict[str, str], headers: dict[str, str]
) -> None:
    url, _env = live
    answer = httpx.get(url + "/api/live", params=params, headers=headers, timeout=10)
    assert answer.status_code == 422, answer.text
