import asyncio
import os
import signal
import sys

import pytest

from signalsmith import eventloop
from signalsmith.service import stop_on_signals


async def _running_loop() -> asyncio.AbstractEventLoop:
    await asyncio.sleep(0)
    return asyncio.get_running_loop()


def test_commands_run_on_uvloop_where_it_is_installed() -> None:
    uvloop = pytest.importorskip("uvloop")
    loop = eventloop.run(_running_loop())
    assert isinstance(loop, uvloop.Loop)
    assert loop.is_closed()


def test_without_uvloop_commands_run_on_asyncios_own_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # as where it is not installed
    loop = eventloop.run(_running_loop())
    assert type(loop).__module__.startswith("asyncio.")
    assert loop.is_closed()


def test_the_coroutines_result_is_returned() -> None:
    async def answer() -> int:
        return 42

    assert eventloop.run(answer()) == 42


def test_a_signal_sets_stop_and_the_default_handling_comes_back_afterwards() -> None:
    async def serve() -> bool:
        stop = asyncio.Event()
        with stop_on_signals(stop):
            os.kill(os.getpid(), signal.SIGTERM)
            await asyncio.wait_for(stop.wait(), 5)
        return stop.is_set()

    assert eventloop.run(serve())
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
