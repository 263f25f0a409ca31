"""What the dashboard reads, through `signalsmith run` over the real Redis: the page and its
assets (headers that forbid inline script, revalidation, nothing outside the assets folder),
``/api/operations`` (counts, pending and lag from Redis 7, dead letters by reason, today's
spend), ``/api/candles`` (the market pipeline's candle sources), and API_TOKEN's sign-in
(the session cookie reads, never writes). Hostile sign-in forms and candle requests, generated,
get a clear answer and never a 500."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
import redis as sync_redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis

from signalsmith.demo import demo_candles
from signalsmith.query.access import SESSION_COOKIE, session_valid, session_value
from signalsmith.source.redis_streams import unread_after
from tests.serving import serving

pytestmark = [pytest.mark.redis, pytest.mark.slow]
DROPPED = {"REDIS_ADDR", "SIGNALSMITH_CONFIG", "HTTP_HOST", "LLM_PROVIDERS", "API_TOKEN"}
TOKEN = "dash-" + uuid.uuid4().hex


def _env(stream_env: dict[str, str], **extra: str) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if k not in DROPPED},
        **stream_env,
        "MARKET_CANDLES": str(demo_candles()),
        "MARKET_EXCHANGE": "",
        "LOG_LEVEL": "WARNING",
        **extra,
    }


@pytest.fixture
def served(stream_env: dict[str, str], tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    env = _env(stream_env)
    with serving(["run"], env) as url:
        yield url, env


@pytest.fixture
def guarded(stream_env: dict[str, str]) -> Iterator[str]:
    with serving(["run"], _env(stream_env, API_TOKEN=TOKEN, STRATEGY_ENABLED="false")) as url:
        yield url


def test_the_page_and_its_assets(served: tuple[str, dict[str, str]]) -> None:
    url, _ = served
    page = httpx.get(url + "/", timeout=10)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy
    assert "frame-ancestors 'none'" in policy
    assert page.headers["x-content-type-options"] == "nosniff"
    assert 'src="/assets/app.js"' in page.text
    assert "http://" not in page.text.replace('href="/', "")  # nothing from elsewhere

    script = httpx.get(url + "/assets/app.js", timeout=10)
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    for markup in ("innerHTML", "outerHTML", "insertAdjacentHTML", "DOMParser", "document.write"):
        assert markup not in script.text  # texts go in as text nodes
    again = httpx.get(url + "/assets/app.js", headers={"If-None-Match": script.headers["etag"]})
    assert again.status_code == 304
    licence = httpx.get(url + "/assets/vendor/uplot.LICENSE", timeout=10)
    assert "MIT License" in licence.text
    for path in (
        "/assets/nothing.js",
        "/assets/../routes.py",
        "/assets/%2e%2e/routes.py",
        "/assets/..%2f..%2fsettings.py",
        "/assets/vendor",
    ):
        assert httpx.get(url + path, timeout=10).status_code == 404, path


def _xadd(env: dict[str, str], *entries: dict[str, str]) -> None:
    client = sync_redis.Redis.from_url(env["REDIS_URL"])
    try:
        for fields in entries:
            client.xadd(env["STREAM"], fields)
    finally:
        client.close()


def test_operations_shows_counts_backlog_dead_letters_and_spend(
    served: tuple[str, dict[str, str]],
) -> None:
    url, env = served
    _xadd(
        env,
        {"title": "$NVDA calls, buying", "body": "beat and raise"},
        {"title": "$TSLA puts, selling", "body": "crash"},
        {"data": "{not json"},
    )
    deadline = time.monotonic() + 15
    while True:
        body = httpx.get(url + "/api/operations", timeout=10).json()
        posts = next(p for p in body["pipelines"] if p["name"] == "posts")
        today = body["today"]
        if posts["acknowledged"] >= 3 and today and today["decisions"] >= 2:
            break
        assert time.monotonic() < deadline, body
        time.sleep(0.2)
    assert posts["read"] >= 3
    assert posts["dead_lettered"] == 1
    assert posts["stream"] == env["STREAM"]
    assert posts["pending"] == 0
    assert posts["lag"] == 0  # Redis 7 reports it
    names = {p["name"] for p in body["pipelines"]}
    assert {"posts", "market", "strategy", "store"} <= names
    reasons = body["dead_letters"]["by_reason"]
    assert reasons == [{"pipeline": "posts", "reason": "bad_json", "count": 1}]
    lengths = {s["stream"]: s["length"] for s in body["dead_letters"]["streams"]}
    assert lengths[env["STREAM"] + ":dlq"] == 1
    assert body["providers"] == []  # offline analyzers only
    assert today["tokens_in"] == 0
    assert today["cost_usd"] == 0


def test_candles_come_from_the_market_pipelines_sources(
    served: tuple[str, dict[str, str]],
) -> None:
    url, _ = served
    got = httpx.get(url + "/api/candles/btc-usd", params={"lookback": 50}, timeout=10)
    assert got.status_code == 200, got.text
    body = got.json()
    assert body["product_id"] == "BTC-USD"
    assert body["source"] == "file"
    columns = [body[name] for name in ("time", "open", "high", "low", "close", "volume")]
    assert {len(column) for column in columns} == {50}
    assert body["time"] == sorted(body["time"])
    assert all(low <= high for low, high in zip(body["low"], body["high"], strict=True))
    assert httpx.get(url + "/api/candles/NOPE", timeout=10).status_code == 404
    for path, params in (
        ("/api/candles/BTC-USD", {"granularity": "2m"}),
        ("/api/candles/BTC-USD", {"lookback": "1"}),
        ("/api/candles/BTC-USD", {"lookback": "100000"}),
        ("/api/candles/BTC-USD", {"other": "1"}),
        ("/api/candles/%3Cscript%3E", {}),
    ):
        assert httpx.get(url + path, params=params, timeout=10).status_code == 422, path


def test_a_token_guards_everything_and_the_session_only_reads(guarded: str) -> None:
    url = guarded
    with httpx.Client(base_url=url, timeout=10) as http:
        for path in ("/api/decisions", "/api/operations", "/api/live", "/api/candles/BTC-USD"):
            assert http.get(path).status_code == 401, path
        page = http.get("/")
        assert page.status_code == 200  # the sign-in, which holds no data
        assert 'action="/login"' in page.text
        assert 'id="feed"' not in page.text
        assert http.get("/assets/app.js").status_code == 404
        assert http.get("/assets/login.js").status_code == 200

        wrong = http.post("/login", data={"token": TOKEN + "x"})
        assert wrong.status_code == 303
        assert wrong.headers["location"] == "/?signin=failed"
        assert SESSION_COOKIE not in wrong.cookies
        right = http.post("/login", data={"token": TOKEN})
        assert right.status_code == 303
        cookie = right.headers["set-cookie"]
        assert "HttpOnly" in cookie
        assert "SameSite=strict" in cookie or "SameSite=Strict" in cookie
        assert TOKEN not in cookie
        assert session_valid(right.cookies[SESSION_COOKIE], TOKEN, time.time())

    session = {SESSION_COOKIE: session_value(TOKEN, int(time.time()))}
    with httpx.Client(base_url=url, timeout=10, cookies=session) as browser:
        assert browser.get("/").status_code == 200
        assert browser.get("/api/decisions").status_code == 200
        assert browser.get("/assets/app.js").status_code == 200
        # A page elsewhere cannot make the browser write with the cookie.
        asked = browser.post("/api/insights", json={"product_id": "BTC-USD"})
        assert asked.status_code == 401
    for value in (session_value(TOKEN + "x", int(time.time())), session_value(TOKEN, 1_000)):
        forged = {SESSION_COOKIE: value}
        assert httpx.get(url + "/api/decisions", cookies=forged, timeout=10).status_code == 401
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    assert httpx.get(url + "/api/decisions", headers=bearer, timeout=10).status_code == 200


def test_sign_in_forms_that_are_hostile(guarded: str) -> None:
    url = guarded
    with httpx.Client(base_url=url, timeout=10) as http:
        huge = http.post("/login", content=b"token=" + b"a" * 100_000)
        assert huge.status_code == 413
        many = http.post("/login", content="&".join(f"f{i}=1" for i in range(50)))
        assert many.status_code == 303
        assert many.headers["location"] == "/?signin=failed"

        @settings(
            max_examples=60,
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture],
        )
        @given(body=st.binary(max_size=600) | st.text(max_size=300).map(str.encode))
        def fuzz(body: bytes) -> None:
            answer = http.post("/login", content=body)
            assert answer.status_code == 303, body
            assert answer.headers["location"] == "/?signin=failed"

        fuzz()
    assert TOKEN not in huge.text


def test_candle_requests_that_are_hostile(served: tuple[str, dict[str, str]]) -> None:
    url, _ = served
    with httpx.Client(base_url=url, timeout=10) as http:

        @settings(max_examples=80, deadline=None)
        @given(
            product=st.text(min_size=1, max_size=60),
            granularity=st.text(max_size=8),
            lookback=st.text(max_size=12),
        )
        def fuzz(product: str, granularity: str, lookback: str) -> None:
            path = "/api/candles/" + quote(product, safe="")
            answer = http.get(path, params={"granularity": granularity, "lookback": lookback})
            assert answer.status_code in (200, 404, 422), (product, answer.text)

        fuzz()


async def test_a_lag_redis_does_not_report_is_counted(embedded_url: str, prefix: str) -> None:
    """Redis 6.2 (the embedded one) reports no lag: the entries after the group's last
    delivered one are counted, up to a limit beyond which the lag is unknown."""
    client = Redis.from_url(embedded_url)
    stream = f"{prefix}:lag"
    try:
        await client.xgroup_create(stream, "g", id="0", mkstream=True)
        for number in range(5):
            await client.xadd(stream, {"n": str(number)})
        await client.xreadgroup("g", "c", {stream: ">"}, count=2)
        (info,) = await client.xinfo_groups(stream)
        assert "lag" not in info or info["lag"] is None
        last = info["last-delivered-id"]
        assert await unread_after(client, stream, last, 10) == 3
        assert await unread_after(client, stream, last, 2) is None
        assert await unread_after(client, stream, None, 10) is None
    finally:
        await client.delete(stream)
        await client.aclose()


def test_a_page_elsewhere_that_rebinds_its_name_gets_nothing(
    served: tuple[str, dict[str, str]],
) -> None:
    """Without a token, a request must be addressed to this machine: a hostile page whose name
    now points at 127.0.0.1 sends its own name in Host and gets 421, reading and writing."""
    url, _ = served
    port = url.rsplit(":", 1)[1]
    for host in ("evil.example", f"evil.example:{port}", "127.0.0.1.evil.example", "[::2]:80"):
        for path in ("/", "/api/decisions", "/api/operations", "/api/live", "/assets/app.js"):
            answer = httpx.get(url + path, headers={"Host": host}, timeout=10)
            assert answer.status_code == 421, (host, path)
        posted = httpx.post(
            url + "/api/insights", json={"product_id": "BTC-USD"}, headers={"Host": host}
        )
        assert posted.status_code == 421
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", "localhost", f"[::1]:{port}"):
        assert httpx.get(url + "/api/decisions", headers={"Host": host}).status_code == 200, host


def test_signing_out_drops_the_session(guarded: str) -> None:
    with httpx.Client(base_url=guarded, timeout=10) as http:
        assert http.post("/login", data={"token": TOKEN}).status_code == 303
        assert http.get("/api/decisions").status_code == 200  # the cookie reads
        out = http.get("/logout")
        assert out.status_code == 303
        assert SESSION_COOKIE not in http.cookies
        assert http.get("/api/decisions").status_code == 401
