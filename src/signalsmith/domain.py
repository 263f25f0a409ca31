"""Domain types shared by every stage: posts in, opinions and decisions out.

These are internal and may change; the versioned wire shapes live in ``envelopes.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class Verdict(StrEnum):
    """What a strategy engine should do about a ticker."""

    BUY = "BUY"
    HOLD = "HOLD"
    SELL = "SELL"


class Direction(StrEnum):
    """An analyzer's reading of sentiment, as the v1 envelope names it."""

    BULLISH = "BULLISH"
    BEARISH = "BEARISH"
    NEUTRAL = "NEUTRAL"


class Status(StrEnum):
    """How a decision came about; a failed analysis says so instead of defaulting to HOLD."""

    OK = "ok"
    DEGRADED = "degraded"
    ABSTAIN = "abstain"
    ERROR = "error"
    EXPIRED = "expired"  # a strategy signal too old to act on when its turn came


DIRECTION_OF: Mapping[Verdict, Direction] = {
    Verdict.BUY: Direction.BULLISH,
    Verdict.SELL: Direction.BEARISH,
    Verdict.HOLD: Direction.NEUTRAL,
}


@dataclass(frozen=True, slots=True)
class Post:
    """One piece of market chatter, normalized from whatever form it arrived in."""

    id: str
    title: str = ""
    body: str = ""
    url: str = ""
    author: str = ""
    subreddit: str = ""
    created: datetime | None = None
    source: str = ""
    tickers: tuple[str, ...] = ()
    metadata: Mapping[str, str] = field(default_factory=dict)
    # Firms the text names only as raters of its stocks ("downgraded at UBS"), as written:
    # they get no decision, and the decisions on the stocks they rated name them.
    raters: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        """Title and body as one text, the way a reader sees the post."""
        if self.title and self.body:
            return f"{self.title}\n\n{self.body}"
        return self.title or self.body


@dataclass(frozen=True, slots=True)
class Signals:
    """How the lexicon reached an opinion, counted, so routing need not parse its evidence.

    Cue counts are over the scored cues behind the opinion; the rest is what the text (or the
    ticker's share of it) holds whether or not any cue scored.
    """

    bullish: int = 0  # scored cues pushing the score up
    bearish: int = 0  # scored cues pushing it down
    negated: int = 0  # scored cues a negation flipped ("not bullish")
    hedged: int = 0  # scored cues in a sentence with a hedge word ("maybe", "I think")
    asked: int = 0  # scored cues in a question
    contrasted: int = 0  # scored cues after a contrast ("..., but")
    hedges: int = 0  # sentences read with a hedge word or a question mark, cue or not
    sarcasm: bool = False  # a sarcasm marker ("/s", "🙄", "any day now") anywhere in the text
    unscored: int = 0  # market terms recognised but not scored (see ``Lexicon``)
    scheduled: int = 0  # mentions of a date or an upcoming event ("to report on Tuesday")

    @property
    def cues(self) -> int:
        return self.bullish + self.bearish


@dataclass(frozen=True, slots=True)
class Opinion:
    """What one analyzer thinks about one text (or one ticker within it)."""

    verdict: Verdict
    confidence: float  # 0..1: how sure the analyzer is of its verdict
    score: float  # -1..1: signed sentiment, bearish to bullish
    evidence: tuple[str, ...] = ()  # the cues that moved the score, for the reasoning
    signals: Signals = Signals()  # what the lexicon found; empty from other analyzers


@dataclass(frozen=True, slots=True)
class Vote:
    """One analyzer's contribution to a decision: an opinion or the reason it has none."""

    analyzer: str
    domain: str
    status: Status
    opinion: Opinion | None
    error: str = ""
    model: str = ""
    latency_ms: float = 0.0


@dataclass(frozen=True, slots=True)
class ModelCall:
    """One LLM call made (or served from cache) while analyzing a post: for cost and audit."""

    provider: str
    model: str
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    latency_ms: float = 0.0
    parse_method: str = ""
    cached: bool = False
    attempts: int = 1
    errors: tuple[str, ...] = ()  # what failed before this answer (429s, fallbacks)
    tokens_cached: int = 0  # of tokens_in, billed at the provider's cached-prompt rate
    batch_size: int = 1  # questions in the request that answered it (1: asked alone)


@dataclass(frozen=True, slots=True)
class Analysis:
    """An analyzer's answer for one post: its votes per ticker (one per tier that ran) and the
    model calls they cost."""

    votes: Mapping[str, tuple[Vote, ...]]
    calls: tuple[ModelCall, ...] = ()


@dataclass(frozen=True, slots=True)
class Decision:
    """The combined verdict for one (post, ticker)."""

    ticker: str
    verdict: Verdict
    confidence: float
    score: float
    reasoning: str
    status: Status
    votes: tuple[Vote, ...]
