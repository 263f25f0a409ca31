"""Operator mistakes about Redis at start-up: one line and exit status 2, not endless retries;
an outage at start-up is still waited out."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import free_port, private_redis_server

pytestmark = [pytest.mark.redis, pytest.mark.slow]
CLI = [sys.executable, "-m", "signalsmith"]
PASSWORD = "right-horse-battery-7"


@pytest.fixture(scope="module")
def locked_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A private redis-server on a free port that requires a password; its port."""
    with private_redis_server(tmp_path_factory.mktemp("locked-redis"), PASSWORD) as port:
        yield port


def _run(env: dict[str, str], timeout: float = 30) -> subprocess.CompletedProcess[str]:
    dropped = {"REDIS_URL", "REDIS_ADDR", "REDIS_PASSWORD", "SIGNALSMITH_CONFIG"}
    base = {k: v for k, v in os.environ.items() if k not in dropped}
    return subprocess.run(
        [*CLI, "run", "--until-idle", "1"],
        env={**base, "HTTP_PORT": "0", **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _one_line(result: subprocess.CompletedProcess[str], setting: str) -> str:
    assert result.returncode == 2, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"signalsmith: configuration error: {setting}:")
    return lines[0]


def test_a_wrong_redis_password_stops_start_up(locked_redis: int) -> None:
    """Wrong password in REDIS_URL or in REDIS_PASSWORD: exit 2, one line naming the setting,
    and the password nowhere in it."""
    url = f"redis://:wrong-secret-pass@127.0.0.1:{locked_redis}/0"
    line = _one_line(_run({"REDIS_URL": url}), "REDIS_URL")
    assert "wrong-secret-pass" not in line
    addr = {"REDIS_ADDR": f"127.0.0.1:{locked_redis}", "REDIS_PASSWORD": "wrong-secret-pass"}
    assert "wrong-secret-pass" not in _one_line(_run(addr), "REDIS_PASSWORD")
    assert _one_line(_run({"REDIS_ADDR": f"127.0.0.1:{locked_redis}"}), "REDIS_ADDR")


def test_the_right_password_runs(locked_redis: int, tmp_path: Path) -> None:
    """The same server with the right password: the worker runs and exits 0 when idle."""
    url = f"redis://:{PASSWORD}@127.0.0.1:{locked_redis}/0"
    result = _run({"REDIS_URL": url, "STATE_DIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr[-2000:]
    assert PASSWORD not in result.stderr + result.stdout


def test_a_host_name_that_does_not_resolve_stops_start_up() -> None:
    """An unresolvable host: exit 2 and one line, instead of retrying for ever."""
    _one_line(_run({"REDIS_URL": "redis://no-such-host.invalid:6379/0"}), "REDIS_URL")


def test_strict_start_off_waits_out_a_wrong_password(locked_redis: int) -> None:
    """REDIS_STRICT_START=false: the same mistake is waited out like an outage (the process is
    still running when stopped), for a Redis whose password is set after the worker starts."""
    env = {
        "REDIS_URL": f"redis://:wrong-secret-pass@127.0.0.1:{locked_redis}/0",
        "REDIS_STRICT_START": "false",
    }
    with pytest.raises(subprocess.TimeoutExpired):
        _run(env, timeout=4)


def test_an_outage_at_start_up_is_waited_out() -> None:
    """Nothing listening on the port (Redis not up yet) is no configuration error: the worker
    waits for it."""
    with pytest.raises(subprocess.TimeoutExpired):
        _run({"REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}, timeout=4)


def test_a_server_that_never_answers_at_start_up_is_waited_out() -> None:
    """A listener that accepts and never replies (a Redis hung or still loading): no traceback
    and no exit; the worker waits for it."""
    with socket.socket() as mute:
        mute.bind(("127.0.0.1", 0))
        mute.listen(16)
        port = mute.getsockname()[1]
        with pytest.raises(subprocess.TimeoutExpired):
            _run({"REDIS_URL": f"redis://127.0.0.1:{port}/0"}, timeout=12)
