"""A real headless Chromium (Debian's ``chromium``, driven by Playwright; never a downloaded
browser) and a real ``signalsmith run`` over the real Redis for it to open.

Without the browser the tests are skipped, except under ``CI=true``, where a missing browser
fails the run (``.ci/run`` installs it). Screenshots go to ``test-output/dashboard/`` (or
``$SIGNALSMITH_TEST_OUTPUT/dashboard``)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis as sync_redis
from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright

from signalsmith.demo import demo_candles
from tests.conftest import free_port
from tests.serving import CLI, START_S, announced_url

DROPPED = {"REDIS_ADDR", "SIGNALSMITH_CONFIG", "HTTP_HOST", "LLM_PROVIDERS", "API_TOKEN"}
BROWSER_FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-extensions",
    "--no-first-run",
]
ROOT = Path(__file__).resolve().parents[2]


def chromium_path() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.environ.get("CI") == "true":
        pytest.fail("Debian's chromium is not installed (.ci/run installs it with apt-get)")
    pytest.skip("no chromium on this machine: apt-get install chromium")


def output_dir() -> Path:
    base = Path(os.environ.get("SIGNALSMITH_TEST_OUTPUT", ROOT / "test-output"))
    folder = base / "dashboard"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Per module: sync Playwright keeps an event loop running in this thread while it is
    open, which the suite's asyncio tests after these could not start beside."""
    path = chromium_path()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=path, args=BROWSER_FLAGS)
        try:
            yield launched
        finally:
            launched.close()


@dataclass
class Watched:
    """A page and every console error or uncaught exception it had."""

    page: Page
    errors: list[str] = field(default_factory=list)

    def no_errors(self) -> None:
        assert not self.errors, self.errors


@pytest.fixture
def watched(browser: Browser) -> Iterator[Watched]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    seen = Watched(page)

    def console(message: ConsoleMessage) -> None:
        if message.type == "error":
            seen.errors.append(f"{message.text} at {message.location}")

    page.on("console", console)
    page.on("pageerror", lambda error: seen.errors.append(f"uncaught: {error}"))
    try:
        yield seen
    finally:
        context.close()


class Server:
    """``signalsmith run`` on one fixed port, which a test may stop and start again."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.url = ""
        self._process: subprocess.Popen[str] | None = None
        self._log = tempfile.TemporaryFile("w+")  # noqa: SIM115 - closed in close()

    def start(self) -> str:
        self._process = subprocess.Popen(
            [*CLI, "run"],
            env={**self.env, "PYTHONUNBUFFERED": "1"},
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
        )
        self.url = announced_url(self._process)
        deadline = time.monotonic() + START_S
        while httpx.get(self.url + "/readyz", timeout=START_S).status_code != 200:
            assert time.monotonic() < deadline, "never ready"
            time.sleep(0.1)
        return self.url

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)
        self._log.seek(0)
        assert process.returncode == 0, self._log.read()[-4000:]

    def close(self) -> None:
        with contextlib.suppress(Exception):
            if self._process is not None and self._process.poll() is None:
                self._process.kill()
                self._process.communicate(timeout=10)
        self._log.close()

    # --- what a test feeds it

    def post(self, title: str, *, url: str, body: str = "") -> str:
        client = sync_redis.Redis.from_url(self.env["REDIS_URL"])
        try:
            fields = {"title": title, "body": body, "url": url}
            return str(client.xadd(self.env["STREAM"], fields).decode())
        finally:
            client.close()

    def ask_insight(self, product: str) -> None:
        answer = httpx.post(self.url + "/api/insights", json={"product_id": product}, timeout=10)
        assert answer.status_code == 202, answer.text

    def signal(self, **fields: Any) -> str:
        body = {"side": "buy", "price": 189.5, "timestamp": int(time.time()), **fields}
        answer = httpx.post(self.url + "/api/strategy-signals", json=body, timeout=10)
        assert answer.status_code == 202, answer.text
        return str(answer.json()["signal_id"])


def server_env(stream_env: dict[str, str], **extra: str) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if k not in DROPPED},
        **stream_env,
        "HTTP_PORT": str(free_port()),
        "MARKET_CANDLES": str(demo_candles()),
        "MARKET_EXCHANGE": "",
        "LOG_LEVEL": "WARNING",
        **extra,
    }


@pytest.fixture
def server(stream_env: dict[str, str]) -> Iterator[Server]:
    running = Server(server_env(stream_env))
    try:
        running.start()
        yield running
        running.stop()
    finally:
        running.close()
