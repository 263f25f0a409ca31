"""``signalsmith analyze``: the analysis stages on texts given directly, no Redis involved."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TextIO

from signalsmith.analyze.offline import OfflineAnalyzer
from signalsmith.decide import decide
from signalsmith.domain import Decision, Post, Vote
from signalsmith.errors import PoisonInput
from signalsmith.normalize import to_post
from signalsmith.source.files import jsonl_fields
from signalsmith.tickers import TickerExtractor, load_symbol_book

WHOLE_TEXT = "*"  # the pseudo-ticker for the text as a whole


class OneShot:
    """Normalize, extract tickers, analyze and decide, for one text at a time."""

    def __init__(self) -> None:
        self._extractor = TickerExtractor(load_symbol_book())
        self._analyzers = [OfflineAnalyzer()]

    async def run(self, post: Post) -> dict[str, object]:
        tickers = post.tickers or self._extractor.extract(post.text)
        targets = [WHOLE_TEXT, *tickers]
        votes: dict[str, list[Vote]] = {target: [] for target in targets}
        for analyzer in self._analyzers:
            for target, cast in (await analyzer.analyze(post, targets)).votes.items():
                votes[target] += cast
        decisions = {target: decide(target, votes[target]) for target in targets}
        return _result(post, tickers, decisions)


def _result(
    post: Post, tickers: Sequence[str], decisions: dict[str, Decision]
) -> dict[str, object]:
    overall = decisions[WHOLE_TEXT]
    opinion = overall.votes[0].opinion if overall.votes else None
    return {
        "id": post.id,
        "verdict": overall.verdict.value,
        "confidence": overall.confidence,
        "score": overall.score,
        "tickers": list(tickers),
        "status": overall.status.value,
        "evidence": list(opinion.evidence) if opinion else [],
        "per_ticker": {
            t: {"verdict": d.verdict.value, "confidence": d.confidence, "score": d.score}
            for t, d in decisions.items()
            if t != WHOLE_TEXT
        },
        "reasoning": overall.reasoning,
    }


async def analyze_text(text: str) -> dict[str, object]:
    """The result for one text."""
    return await OneShot().run(to_post({"text": text}, "arg"))


async def analyze_lines(lines: TextIO, out: TextIO) -> int:
    """One JSON result per JSONL input line; a bad line gets an error line. Returns the failures."""
    shot = OneShot()
    failures = 0
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            result = await shot.run(to_post(jsonl_fields(line), f"line-{number}"))
        except PoisonInput as exc:
            failures += 1
            result = {"id": f"line-{number}", "status": "error", "error": str(exc)}
        out.write(json.dumps(result, ensure_ascii=False) + "\n")
        out.flush()
    return failures
