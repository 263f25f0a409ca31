import asyncio

import uvloop

from signalsmith import eventloop


async def _loop_type() -> type:
    await asyncio.sleep(0)
    return type(asyncio.get_running_loop())


def test_commands_run_on_uvloop_where_it_is_installed() -> None:
    assert eventloop.run(_loop_type()) is uvloop.Loop


def test_the_loop_is_closed_and_the_result_returned() -> None:
    async def answer() -> int:
        return 42

    assert eventloop.run(answer()) == 42
