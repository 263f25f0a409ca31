"""Secrets inside URLs, through the real ``signalsmith run``: a Redis password given as a URL
parameter and a gateway key in a provider base URL appear nowhere (stdout, logs, /health,
/metrics); a URL that can never work stops start-up with one line that does not quote it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator

import pytest
import redis as sync_redis

from signalsmith.fakellm import FakeConfig, FakeLLMServer
from tests.conftest import private_redis_server
from tests.serving import announced_url

pytestmark = [pytest.mark.redis, pytest.mark.slow]
CLI = [sys.executable, "-m", "signalsmith"]
PASSWORD = "hunter2secret"
GATEWAY_KEY = "gw-canary-5d2a9e"
API_KEY = "sk-canary-2c8b71"


@pytest.fixture(scope="module")
def locked_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A private redis-server on a free port that requires PASSWORD; its port."""
    with private_redis_server(tmp_path_factory.mktemp("locked-redis"), PASSWORD) as port:
        yield port


@pytest.fixture
def fake_llm() -> Iterator[FakeLLMServer]:
    with FakeLLMServer(FakeConfig(seed=11)) as server:
        yield server


def _env(extra: dict[str, str]) -> dict[str, str]:
    """The parent's environment without any Redis or provider configuration, plus ``extra``."""
    dropped = {"REDIS_URL", "REDIS_ADDR", "REDIS_PASSWORD", "SIGNALSMITH_CONFIG", "LLM_PROVIDERS"}
    base = {
        k: v
        for k, v in os.environ.items()
        if k not in dropped and not k.endswith(("_API_KEY", "_BASE_URL"))
    }
    return {**base, "PYTHONUNBUFFERED": "1", "HTTP_PORT": "0", **extra}


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_url_secrets_appear_nowhere_while_running(
    locked_redis: int, fake_llm: FakeLLMServer, stream_env: dict[str, str]
) -> None:
    """REDIS_URL=...?password=... against a Redis that requires it, and a provider base URL with
    ?api_key=...: the worker runs and calls the provider, and neither secret (nor the API key)
    shows in stdout, the logs (DEBUG), /health or /metrics; both URLs show masked in /health and
    in the start-up log line."""
    redis_url = f"redis://127.0.0.1:{locked_redis}/0?password={PASSWORD}"
    env = _env(
        {
            **stream_env,
            "REDIS_URL": redis_url,
            "CUSTOM_BASE_URL": f"{fake_llm.base_url}?api_key={GATEWAY_KEY}",
            "CUSTOM_API_KEY": API_KEY,
            "CUSTOM_MODEL": "fake-1",
            "LLM_CACHE": "off",
            "LOG_LEVEL": "DEBUG",
        }
    )
    process = subprocess.Popen(
        [*CLI, "run"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    shown: list[str] = []
    try:
        url = announced_url(process)
        client = sync_redis.Redis(port=locked_redis, password=PASSWORD)
        try:
            client.xadd(stream_env["STREAM"], {"text": "$NVDA calls, loading up 🚀"})
            deadline = time.monotonic() + 20
            while json.loads(_get(url + "/health")[1])["counts"]["processed"] < 1:
                assert time.monotonic() < deadline, "the post was never processed"
                time.sleep(0.1)
        finally:
            client.close()
        status, health_text = _get(url + "/health")
        shown += [health_text, _get(url + "/metrics")[1]]
        health = json.loads(health_text)
        assert status == 200
        assert health["redis"]["where"] == f"redis://127.0.0.1:{locked_redis}/0?password=***"
        (provider,) = health["providers"]
        assert provider["base_url"] == f"{fake_llm.base_url}?api_key=***"
        assert provider["calls"] == {"ok": 1}
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=10)
    assert process.returncode == 0, err[-2000:]
    shown += [out, err]
    assert "password=***" in next(
        line for line in err.splitlines() if "signalsmith started" in line
    )
    for text in shown:
        for secret in (PASSWORD, GATEWAY_KEY, API_KEY):
            assert secret not in text


def _one_line(result: subprocess.CompletedProcess[str], setting: str) -> str:
    assert result.returncode == 2, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr[-2000:]
    assert lines[0].startswith(f"signalsmith: configuration error: {setting}: ")
    return lines[0]


def _run(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, "run", "--until-idle", "1"],
        env=_env(env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    "base_url",
    [f"https://user:{PASSWORD}@gw.example/v1?key={GATEWAY_KEY}", f"https://sk-{PASSWORD}@gw/v1"],
)
def test_a_provider_base_url_with_user_info_stops_start_up(
    stream_env: dict[str, str], base_url: str
) -> None:
    """Credentials in a base URL would make every call fail: exit 2 at start-up with one line
    naming OPENAI_BASE_URL and the fix, and no secret in anything printed."""
    result = _run({**stream_env, "OPENAI_BASE_URL": base_url, "OPENAI_API_KEY": API_KEY})
    line = _one_line(result, "OPENAI_BASE_URL")
    assert line.endswith("must not carry user:password@ (put the key in OPENAI_API_KEY)")
    for secret in (PASSWORD, GATEWAY_KEY, API_KEY):
        assert secret not in result.stderr + result.stdout


def test_an_impossible_redis_port_stops_start_up_with_one_line(
    stream_env: dict[str, str],
) -> None:
    """REDIS_URL with port 99999: exit 2 and one line naming REDIS_URL, not a traceback at
    connect time, and the URL's password nowhere."""
    result = _run({**stream_env, "REDIS_URL": f"redis://:{PASSWORD}@127.0.0.1:99999/0"})
    line = _one_line(result, "REDIS_URL")
    assert "port" in line
    assert PASSWORD not in result.stderr + result.stdout
