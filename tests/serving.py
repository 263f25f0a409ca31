"""``signalsmith run`` as a test starts it: a subprocess whose HTTP address is the one it
announces on stdout, stopped with SIGTERM (which must end it with status 0)."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator

import httpx

CLI = [sys.executable, "-m", "signalsmith"]
START_S = 30.0


def announced_url(process: subprocess.Popen[str], timeout_s: float = START_S) -> str:
    """The base URL from the process's ``HTTP: <url>/health`` line."""
    assert process.stdout is not None
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if line.startswith("HTTP: "):
            return line.split()[1].removesuffix("/health")
        if not line and process.poll() is not None:
            break
    raise AssertionError("the run command never announced its HTTP endpoints")


@contextlib.contextmanager
def serving(args: list[str], env: dict[str, str], *, ready: bool = True) -> Iterator[str]:
    """``signalsmith <args>`` in the environment ``env`` (all of it: nothing else is
    inherited); its base URL once announced and, with ``ready``, once /readyz answers 200.
    At the end SIGTERM, and the exit status must be 0. Its log goes to a file, so that a
    chatty run never blocks on a full pipe."""
    with tempfile.TemporaryFile("w+") as log:
        process = subprocess.Popen(
            [*CLI, *args],
            env={**env, "PYTHONUNBUFFERED": "1"},
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
        try:
            url = announced_url(process)
            deadline = time.monotonic() + START_S
            while ready and httpx.get(url + "/readyz", timeout=START_S).status_code != 200:
                assert time.monotonic() < deadline, "never ready"
                time.sleep(0.1)
            yield url
            process.send_signal(signal.SIGTERM)
            process.communicate(timeout=30)
            log.seek(0)
            assert process.returncode == 0, log.read()[-4000:]
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate(timeout=10)
