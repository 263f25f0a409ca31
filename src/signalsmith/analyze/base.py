"""The one interface every analyzer implements: a post and its tickers in, a vote per ticker out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from signalsmith.domain import Post, Vote


class Analyzer(Protocol):
    """Reads a post and votes on each ticker; raises ``TransientError`` to retry later."""

    @property
    def name(self) -> str: ...

    @property
    def description(self) -> str: ...

    async def analyze(self, post: Post, tickers: Sequence[str]) -> Mapping[str, Vote]: ...
