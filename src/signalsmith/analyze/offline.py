"""The offline analyzer: the finance lexicon behind the ``Analyzer`` interface. No network."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace

from signalsmith.analyze.lexicon import Lexicon
from signalsmith.domain import Analysis, Opinion, Post, Status, Vote

DOMAIN = "sentiment"


class OfflineAnalyzer:
    """Votes with the lexicon's per-ticker opinions; always available, costs microseconds."""

    name = "lexicon"
    description = "offline finance lexicon"

    def __init__(self, lexicon: Lexicon | None = None) -> None:
        self._lexicon = lexicon or Lexicon()

    async def analyze(self, post: Post, tickers: Sequence[str]) -> Analysis:
        votes = self.analyze_now(post, tickers)
        return Analysis(votes={ticker: (vote,) for ticker, vote in votes.items()})

    def analyze_now(self, post: Post, tickers: Sequence[str]) -> dict[str, Vote]:
        """The same, synchronously: the lexicon never waits on anything."""
        started = time.perf_counter()
        opinions = self._lexicon.judge_for(post.text, tickers)
        if post.raters:
            opinions = _rated_by(opinions, post.raters)
        latency_ms = (time.perf_counter() - started) * 1000
        return {
            ticker: Vote(
                analyzer=self.name,
                domain=DOMAIN,
                status=Status.OK,
                opinion=opinion,
                latency_ms=latency_ms,
            )
            for ticker, opinion in opinions.items()
        }


def _rated_by(opinions: dict[str, Opinion], raters: Sequence[str]) -> dict[str, Opinion]:
    """Each opinion with the firms that rated the stock in its evidence: who said it matters
    to a trader, and those firms get no decision of their own."""
    note = f"rated by {', '.join(raters)}"
    return {
        ticker: replace(opinion, evidence=(*opinion.evidence, note))
        for ticker, opinion in opinions.items()
    }
