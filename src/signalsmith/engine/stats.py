"""A pipeline's counts since start, for /health, /readyz and the exit summary."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from signalsmith.normalize import utc_now


@dataclass
class EngineStats:
    """Counts since start, and whether Redis and commits work right now."""

    read: int = 0
    acknowledged: int = 0
    published: int = 0
    dead_lettered: int = 0
    retried: int = 0
    skipped: int = 0  # no longer ours when we came to acknowledge (reclaimed or acked elsewhere)
    last_error: str = ""
    last_error_at: datetime | None = None
    started_at: datetime = field(default_factory=utc_now)
    redis_ok: bool = False
    group_ready: bool = False
    commits_ok: bool = True  # False while commits fail (an outage or a store that cannot write)

    def error(self, message: str) -> None:
        self.last_error = message[:500]
        self.last_error_at = utc_now()
