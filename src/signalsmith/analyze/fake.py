"""Test doubles users need too: an analyzer whose behaviour is a plain function."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from signalsmith.domain import Analysis, Opinion, Post, Status, Vote

Behaviour = Callable[[Post, str], Opinion]


class FunctionAnalyzer:
    """Votes with ``behaviour(post, ticker)``; whatever it raises propagates like a real failure."""

    description = "function analyzer (tests)"

    def __init__(self, behaviour: Behaviour, name: str = "function") -> None:
        self._behaviour = behaviour
        self.name = name

    async def analyze(self, post: Post, tickers: Sequence[str]) -> Analysis:
        votes = {
            ticker: Vote(
                analyzer=self.name,
                domain="sentiment",
                status=Status.OK,
                opinion=self._behaviour(post, ticker),
            )
            for ticker in tickers
        }
        return Analysis(votes={ticker: (vote,) for ticker, vote in votes.items()})
