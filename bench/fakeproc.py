"""A fake OpenAI-compatible provider in its own process, for the benchmarks."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from typing import Any

import httpx


class FakeProcess:
    """``signalsmith fake-llm`` in its own process, so it does not share the worker's GIL."""

    def __init__(self, seed: int, latency_ms: float, faults: dict[str, float]) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        command = [sys.executable, "-m", "signalsmith", "fake-llm", "--port", str(self.port)]
        self._process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self.admin = f"http://127.0.0.1:{self.port}/_fake"
        self._admin_client = httpx.Client()
        settings = {"seed": seed, "latency_ms": latency_ms, **faults}
        for _ in range(200):
            try:
                httpx.post(f"{self.admin}/config", json=settings).raise_for_status()
            except httpx.TransportError:
                time.sleep(0.05)
            else:
                return
        raise RuntimeError("the fake LLM did not start")

    @property
    def pid(self) -> int:
        return self._process.pid

    def start(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def stats(self) -> dict[str, Any]:
        """The fake's counters (calls, outcomes, tokens billed, batched requests), over one
        kept-alive connection: a benchmark samples them every 50 ms, and a new client per read
        would cost the measuring process more CPU than what it measures."""
        stats: dict[str, Any] = self._admin_client.get(f"{self.admin}/stats").json()
        return stats

    def reset(self) -> None:
        """Zero the counters and forget the quota windows."""
        httpx.post(f"{self.admin}/reset").raise_for_status()

    @property
    def outcomes(self) -> dict[str, int]:
        counts = httpx.get(f"{self.admin}/stats").json()["outcomes"]
        return {name: count for name, count in counts.items() if count}

    def stop(self) -> None:
        self._admin_client.close()
        self._process.terminate()
        self._process.wait(timeout=10)
