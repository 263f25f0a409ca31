"""``signalsmith run --workers N``: N worker processes in one consumer group on this host.

Each child is an ordinary ``signalsmith run`` with its own consumer name and HTTP port; the
parent forwards SIGTERM/SIGINT and exits with the worst child's status. With no Redis
configured, the parent starts the embedded one and points every child at it.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from types import FrameType

from signalsmith.embedded import EmbeddedRedis
from signalsmith.settings import Settings, child_environment


@contextlib.contextmanager
def _shared_redis(settings: Settings) -> Iterator[dict[str, str]]:
    if not settings.embedded_redis:
        yield {}
        return
    server = EmbeddedRedis(settings.state_dir)
    socket_path = server.start()
    try:
        yield {"REDIS_URL": f"unix://{socket_path}"}
    finally:
        server.stop()


def _demo_candles(settings: Settings, demo: bool) -> dict[str, str]:
    """With --demo, every worker reads the bundled candles (any of them may take a market
    request), not only the one that sends the demo's inputs."""
    if not demo or settings.market_candles is None:
        return {}
    return {"MARKET_CANDLES": str(settings.market_candles)}


def run_workers(settings: Settings, count: int, args: Sequence[str], demo: bool) -> int:
    """Start ``count`` workers with ``args`` (the run options), wait for all, return the worst
    exit status."""
    command = [sys.executable, "-m", "signalsmith", "run", *args]
    with _shared_redis(settings) as redis_env:
        children = [
            subprocess.Popen(  # noqa: S603 - our own interpreter and module, fixed arguments
                [*command, *(["--demo"] if demo and index == 0 else [])],
                env=child_environment(
                    {
                        **redis_env,
                        "CONSUMER": f"{settings.consumer}-{index}",
                        "HTTP_PORT": str(settings.http_port + index if settings.http_port else 0),
                        **_demo_candles(settings, demo),
                    }
                ),
            )
            for index in range(count)
        ]

        def forward(signum: int, _frame: FrameType | None) -> None:
            for child in children:
                if child.poll() is None:
                    child.send_signal(signum)

        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, forward)
        return max(child.wait() for child in children)
