"""A `signalsmith run` for a benchmark: started with its environment, its HTTP base URL read
from the line it prints."""

from __future__ import annotations

import os
import subprocess
import sys


def start_service(env: dict[str, str], *args: str) -> tuple[subprocess.Popen[str], str]:
    """``signalsmith run *args`` with ``env`` over this environment; the process and its base
    URL once it announces its HTTP endpoints."""
    process = subprocess.Popen(
        [sys.executable, "-m", "signalsmith", "run", *args],
        env={**os.environ, **env, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("HTTP: "):
            return process, line.split()[1].removesuffix("/health")
    raise RuntimeError("the service did not start")
