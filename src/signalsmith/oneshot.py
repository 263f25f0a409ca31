"""``signalsmith analyze``: the analysis stages on texts given directly, no Redis involved."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TextIO

from signalsmith.analyze.base import Analyzer
from signalsmith.analyze.offline import OfflineAnalyzer
from signalsmith.decide import decide, overall
from signalsmith.domain import Decision, ModelCall, Post, Vote
from signalsmith.errors import PoisonInput, TransientError
from signalsmith.lifecycle import build_analyzers
from signalsmith.normalize import to_post
from signalsmith.observe.metrics import Metrics
from signalsmith.settings import Settings
from signalsmith.source.files import jsonl_fields
from signalsmith.tickers import TickerExtractor, load_symbol_book

WHOLE_TEXT = "*"  # the pseudo-ticker for the text as a whole


@dataclass(frozen=True, slots=True)
class Outcome:
    """One text's decisions: per ticker, and under ``WHOLE_TEXT`` for the text as a whole."""

    tickers: tuple[str, ...]
    decisions: Mapping[str, Decision]
    calls: tuple[ModelCall, ...]


class OneShot:
    """Normalize, extract tickers, analyze and decide, for one text at a time."""

    def __init__(self, analyzers: Sequence[Analyzer] = ()) -> None:
        self._extractor = TickerExtractor(load_symbol_book())
        self._analyzers = list(analyzers) or [OfflineAnalyzer()]

    async def run(self, post: Post) -> dict[str, object]:
        outcome = await self.outcome(post)
        return _result(post, outcome.tickers, outcome.decisions)

    async def outcome(self, post: Post) -> Outcome:
        """The decisions per ticker and for the whole text, and the model calls they cost."""
        tickers, raters = self._extractor.subjects(post.text, post.tickers)
        if raters:
            post = replace(post, raters=tuple(rater.name for rater in raters))
        targets = list(tickers) or [WHOLE_TEXT]
        votes: dict[str, list[Vote]] = {target: [] for target in targets}
        calls: list[ModelCall] = []
        for analyzer in self._analyzers:
            analysis = await analyzer.analyze(post, targets)
            calls += analysis.calls
            for target, cast in analysis.votes.items():
                votes[target] += cast
        decisions = {target: decide(target, votes[target]) for target in targets}
        if tickers:  # the text as a whole follows its tickers' decisions (see ``overall``)
            decisions[WHOLE_TEXT] = overall(WHOLE_TEXT, [decisions[t] for t in tickers])
        return Outcome(tuple(tickers), decisions, tuple(calls))


def _result(
    post: Post, tickers: Sequence[str], decisions: Mapping[str, Decision]
) -> dict[str, object]:
    overall = decisions[WHOLE_TEXT]
    evidence = [cue for vote in overall.votes if vote.opinion for cue in vote.opinion.evidence]
    return {
        "id": post.id,
        "verdict": overall.verdict.value,
        "confidence": overall.confidence,
        "score": overall.score,
        "tickers": list(tickers),
        "status": overall.status.value,
        "evidence": list(dict.fromkeys(evidence)),
        "per_ticker": {
            t: {"verdict": d.verdict.value, "confidence": d.confidence, "score": d.score}
            for t, d in decisions.items()
            if t != WHOLE_TEXT
        },
        "reasoning": overall.reasoning,
    }


async def analyze_text(settings: Settings, text: str) -> dict[str, object]:
    """The result for one text, with the analyzers the settings configure."""
    stack = build_analyzers(settings, Metrics(), None)
    try:
        return await OneShot(stack.analyzers).run(to_post({"text": text}, "arg"))
    finally:
        await stack.aclose()


async def analyze_lines(settings: Settings, lines: TextIO, out: TextIO) -> int:
    """One JSON result per JSONL input line; a bad line gets an error line. Returns the failures."""
    stack = build_analyzers(settings, Metrics(), None)
    try:
        return await _analyze_lines(OneShot(stack.analyzers), lines, out)
    finally:
        await stack.aclose()


async def _analyze_lines(shot: OneShot, lines: TextIO, out: TextIO) -> int:
    failures = 0
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            result = await shot.run(to_post(jsonl_fields(line), f"line-{number}"))
        except (PoisonInput, TransientError) as exc:
            failures += 1
            result = {"id": f"line-{number}", "status": "error", "error": str(exc)}
        out.write(json.dumps(result, ensure_ascii=False) + "\n")
        out.flush()
    return failures
