"""``signalsmith eval``: labeled texts in, classification metrics out.

Reading the labeled JSONL and the metrics are pure; ``evaluate`` is the one async driver that runs
the configured analyzers (offline or with LLMs, as ``analyze`` does) over the items.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from itertools import islice
from pathlib import Path
from typing import Final, Literal

import structlog

from signalsmith.analyze.llm.providers import ProviderConfig
from signalsmith.domain import ModelCall, Post, Status, Verdict
from signalsmith.errors import PoisonInput, TransientError
from signalsmith.lifecycle import build_analyzers
from signalsmith.normalize import parse_tickers
from signalsmith.observe.metrics import Metrics
from signalsmith.oneshot import WHOLE_TEXT, OneShot
from signalsmith.settings import Settings

log = structlog.get_logger("signalsmith")

Label = Literal["buy", "sell", "hold"]
LABELS: Final[tuple[Label, ...]] = ("buy", "sell", "hold")
BUNDLED: Final[Mapping[str, tuple[str, ...]]] = {
    "dev": ("dev",),
    "test": ("test",),
    "all": ("dev", "test"),
}
_LABEL_OF: Final[Mapping[Verdict, Label]] = {
    Verdict.BUY: "buy",
    Verdict.SELL: "sell",
    Verdict.HOLD: "hold",
}
_TEXT_SHOWN = 160  # characters of a misclassified text in the report
_NO_CATEGORY = "uncategorized"
MAX_LABELED_TICKERS: Final = 100  # per_ticker entries, or raters, on one line


# --- Input: labeled JSONL -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Item:
    """One labeled text; ``tickers`` (when given) are the ones the label is about.

    ``per_ticker`` labels each of ``tickers`` on its own (``label`` is its first ticker's);
    ``raters`` are tickers named only as the firm rating a subject, which must get no BUY or SELL.
    """

    id: str
    text: str
    label: Label
    tickers: tuple[str, ...] = ()
    category: str = ""
    per_ticker: tuple[tuple[str, Label], ...] = ()
    raters: tuple[str, ...] = ()

    @property
    def finds_tickers(self) -> bool:
        """Analyzed on the tickers found in the text, as ``analyze`` does, not on those given:
        a rater is only a problem if the analyzer picks it up."""
        return bool(self.per_ticker or self.raters)


def load_items(spec: str) -> list[Item]:
    """Every item of FILE, or of the bundled set ``dev``, ``test`` or ``all``, in order."""
    sources = [_bundled(name) for name in BUNDLED[spec]] if spec in BUNDLED else [_file(spec)]
    items = [item for name, text in sources for item in parse_items(name, text)]
    if not items:
        raise PoisonInput("no_input", f"{spec}: no labeled items")
    return items


def _bundled(name: str) -> tuple[str, str]:
    resource = resources.files("signalsmith") / "data" / "eval" / f"{name}.jsonl"
    if not resource.is_file():
        raise PoisonInput(
            "no_input", f"the bundled set {name!r} is not installed (data/eval/{name}.jsonl)"
        )
    return f"{name}.jsonl", resource.read_text(encoding="utf-8")


def _file(spec: str) -> tuple[str, str]:
    try:
        return spec, Path(spec).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PoisonInput("no_input", f"{spec}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PoisonInput("no_input", f"{spec}: cannot read it ({exc})") from None


def parse_items(source: str, text: str) -> Iterator[Item]:
    """The items of one JSONL text; a malformed line raises ``PoisonInput`` naming it."""
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            where = f"{source} line {number}"
            try:
                yield parse_item(line, f"{source}:{number}")
            except PoisonInput as exc:
                raise PoisonInput("bad_eval_line", f"{where}: {exc.detail or exc}") from None


def parse_item(line: str, default_id: str) -> Item:
    """One JSONL line as an item; ``default_id`` names it when the line has no id."""
    record = _record(line)
    item_id = _id(record.get("id"), default_id)
    text = _text(record.get("text"))
    per_ticker = _per_ticker(record.get("per_ticker"))
    label = _item_label(record.get("label"), per_ticker)
    tickers = _tickers(record.get("tickers"), per_ticker)
    return Item(
        id=item_id,
        text=text,
        label=label,
        tickers=tickers,
        category=_optional_string(record, "category"),
        per_ticker=per_ticker,
        raters=_raters(record.get("raters"), tickers),
    )


def _record(line: str) -> dict[str, object]:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise PoisonInput("bad_json", f"not JSON ({exc.msg} at column {exc.colno})") from None
    except (ValueError, RecursionError) as exc:  # an integer of 4,300+ digits, deep nesting
        raise PoisonInput("bad_json", f"not JSON that can be read ({str(exc)[:80]})") from None
    if not isinstance(record, dict):
        raise PoisonInput("wrong_type", f"a JSON object is needed, not {type(record).__name__}")
    return record


def _id(value: object, default: str) -> str:
    if value is None or value == "":
        return default
    if isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool)):
        return str(value)
    raise PoisonInput("wrong_type", f"'id' must be a string or an integer, not {value!r:.40}")


def _text(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise PoisonInput("no_text", "'text' must be a non-empty string")
    return value.strip()


def _label(value: object, what: str = "'label'") -> Label:
    for label in LABELS:
        if isinstance(value, str) and value.strip().lower() == label:
            return label
    raise PoisonInput("bad_label", f"{what} must be buy, sell or hold, not {value!r:.40}")


def _item_label(value: object, per_ticker: Sequence[tuple[str, Label]]) -> Label:
    """``label``, which may be left out when ``per_ticker`` gives it (its first ticker's)."""
    if not per_ticker:
        return _label(value)
    first_ticker, first = per_ticker[0]
    if value is None:
        return first
    label = _label(value)
    if label != first:
        raise PoisonInput(
            "bad_label",
            f"'label' is {label} but 'per_ticker' labels its first ticker, {first_ticker}, {first}",
        )
    return label


def _per_ticker(value: object) -> tuple[tuple[str, Label], ...]:
    """``{"NFLX": "buy", "DIS": "sell"}`` as (ticker, label) pairs, in the line's order."""
    if value is None:
        return ()
    if not isinstance(value, dict):
        raise PoisonInput(
            "wrong_type", f"'per_ticker' must be an object of ticker: label, not {value!r:.40}"
        )
    if not value:
        raise PoisonInput("no_tickers", "'per_ticker' must label at least one ticker")
    _bounded(len(value), "per_ticker")
    labeled: dict[str, Label] = {}
    for key, label in value.items():
        symbol = _symbol(key, "per_ticker")
        if symbol in labeled:
            raise PoisonInput("duplicate_ticker", f"'per_ticker' names {symbol} twice")
        labeled[symbol] = _label(label, f"'per_ticker' label of {symbol}")
    return tuple(labeled.items())


def _tickers(value: object, per_ticker: Sequence[tuple[str, Label]]) -> tuple[str, ...]:
    """``tickers``; with ``per_ticker``, its keys (``tickers`` left out or empty, or the same)."""
    tickers = parse_tickers(value)
    subjects = tuple(ticker for ticker, _ in per_ticker)
    if not subjects or not tickers:
        return tickers or subjects
    if tickers != subjects:
        raise PoisonInput(
            "ticker_mismatch",
            f"'tickers' {list(tickers)!r:.80} must be the 'per_ticker' keys "
            f"{list(subjects)!r:.80}, in the same order",
        )
    return tickers


def _raters(value: object, subjects: Sequence[str]) -> tuple[str, ...]:
    """``raters`` as tickers, none of them a subject of the line; ``[]`` is none."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise PoisonInput("wrong_type", f"'raters' must be a list of tickers, not {value!r:.40}")
    _bounded(len(value), "raters")
    raters = tuple(dict.fromkeys(_symbol(entry, "raters") for entry in value))
    for rater in raters:
        if rater in subjects:
            raise PoisonInput(
                "ticker_conflict", f"{rater} is both a labeled ticker and in 'raters'"
            )
    return raters


def _symbol(value: object, key: str) -> str:
    """One ticker of ``key``, normalized as ``tickers`` are ("$nvda" is NVDA)."""
    try:
        (symbol,) = parse_tickers([value])
    except PoisonInput:
        raise PoisonInput("wrong_type", f"{key!r} has a bad ticker: {value!r:.40}") from None
    return symbol


def _bounded(count: int, key: str) -> None:
    if count > MAX_LABELED_TICKERS:
        raise PoisonInput(
            "too_many_tickers", f"{key!r} has {count} tickers, limit {MAX_LABELED_TICKERS}"
        )


def _optional_string(record: Mapping[str, object], name: str) -> str:
    value = record.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise PoisonInput("wrong_type", f"{name!r} must be a string, not {value!r:.40}")
    return value.strip()


# --- Metrics: pure, over (true label, predicted label) pairs --------------------------------

Pair = tuple[Label, Label]  # (true, predicted)
Confusion = dict[Label, dict[Label, int]]


@dataclass(frozen=True, slots=True)
class ClassScore:
    precision: float
    recall: float
    f1: float
    support: int  # items whose true label is this class


@dataclass(frozen=True, slots=True)
class Directional:
    """On the items labeled buy or sell: how often a direction was called, and how often right."""

    coverage: float  # share not predicted hold
    accuracy: float  # right direction among those not predicted hold
    support: int  # items labeled buy or sell


def _ratio(part: int, whole: int) -> float:
    return part / whole if whole else 0.0  # an empty denominator scores 0, as sklearn's default


def confusion(pairs: Sequence[Pair]) -> Confusion:
    """Counts as {true label: {predicted label: count}}, every cell present."""
    counts = Counter(pairs)
    return {true: {pred: counts[true, pred] for pred in LABELS} for true in LABELS}


def class_scores(matrix: Confusion) -> dict[Label, ClassScore]:
    """Precision, recall, F1 and support per class; a class never predicted has precision 0."""
    scores: dict[Label, ClassScore] = {}
    for label in LABELS:
        hits = matrix[label][label]
        support = sum(matrix[label].values())
        predicted = sum(matrix[true][label] for true in LABELS)
        precision, recall = _ratio(hits, predicted), _ratio(hits, support)
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        scores[label] = ClassScore(precision, recall, f1, support)
    return scores


def macro_f1(matrix: Confusion) -> float:
    """Mean F1 over the classes that occur (as a true label or a prediction)."""
    scores = class_scores(matrix)
    present = [
        label
        for label in LABELS
        if scores[label].support or any(matrix[true][label] for true in LABELS)
    ]
    return sum(scores[label].f1 for label in present) / len(present) if present else 0.0


def accuracy(pairs: Sequence[Pair]) -> float:
    return _ratio(sum(true == pred for true, pred in pairs), len(pairs))


def directional(pairs: Sequence[Pair]) -> Directional:
    """Coverage and accuracy of the direction on the items labeled buy or sell."""
    moved = [(true, pred) for true, pred in pairs if true != "hold"]
    called = [(true, pred) for true, pred in moved if pred != "hold"]
    right = sum(true == pred for true, pred in called)
    return Directional(_ratio(len(called), len(moved)), _ratio(right, len(called)), len(moved))


def classification(pairs: Sequence[Pair]) -> dict[str, object]:
    """The classification metrics of one set of pairs, as JSON."""
    matrix = confusion(pairs)
    moves = directional(pairs)
    return {
        "n": len(pairs),
        "accuracy": round(accuracy(pairs), 4),
        "macro_f1": round(macro_f1(matrix), 4),
        "per_class": {
            label: {
                "precision": round(score.precision, 4),
                "recall": round(score.recall, 4),
                "f1": round(score.f1, 4),
                "support": score.support,
            }
            for label, score in class_scores(matrix).items()
        },
        "confusion": matrix,
        "directional": {
            "coverage": round(moves.coverage, 4),
            "accuracy": round(moves.accuracy, 4),
            "support": moves.support,
        },
    }


# --- The report: pure, over scored items ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class Scored:
    """One item and what the analyzers made of it; a failed analysis is predicted hold.

    ``per_target`` is the verdict for each ticker analyzed (or the whole text, ``*``, when the
    text names none), for comparisons between configurations; it is empty only when the analysis
    failed.
    """

    item: Item
    predicted: Label
    status: Status
    calls: tuple[ModelCall, ...] = ()
    reached_llm: bool = False
    per_target: tuple[tuple[str, Verdict], ...] = ()


def report(
    scored: Sequence[Scored], elapsed_s: float, analyzer: str, show_errors: int = 0
) -> dict[str, object]:
    """Every metric of one evaluation run, as the JSON object ``eval`` prints."""
    pairs = [(s.item.label, s.predicted) for s in scored]
    statuses = Counter(s.status for s in scored)
    result: dict[str, object] = {
        "analyzer": analyzer,
        **classification(pairs),
        # an analysis' statuses (EXPIRED is the strategy pipeline's, for signals never rated)
        "statuses": {status.value: statuses[status] for status in Status if status != "expired"},
        "elapsed_s": round(elapsed_s, 3),
        "texts_per_s": round(len(scored) / elapsed_s, 1) if elapsed_s > 0 else 0.0,
        "llm": llm_usage(scored),
    }
    if any(s.item.category for s in scored):
        result["by_category"] = by_category(scored)
    if any(s.item.per_ticker for s in scored):
        result["per_ticker"] = per_ticker_accuracy(ticker_pairs(scored))
    if any(s.item.raters for s in scored):
        result["raters"] = rater_signals(rater_pairs(scored), show_errors)
    if show_errors:
        result["misclassified"] = misclassified(scored, show_errors)
    return result


def by_category(scored: Sequence[Scored]) -> dict[str, object]:
    groups: dict[str, list[Pair]] = {}
    for s in scored:
        groups.setdefault(s.item.category or _NO_CATEGORY, []).append((s.item.label, s.predicted))
    return {name: classification(groups[name]) for name in sorted(groups)}


def llm_usage(scored: Sequence[Scored]) -> dict[str, object]:
    """Model calls answered (cached ones included), failures, tokens, cost and LLM reach."""
    calls = [call for s in scored for call in s.calls]
    answered = [call for call in calls if call.provider]  # "" marks "no provider could answer"
    reached = sum(s.reached_llm for s in scored)
    paying = sum(any(c.provider and not c.cached for c in s.calls) for s in scored)
    return {
        "calls": len(answered),
        "cached": sum(call.cached for call in answered),
        "failed": len(calls) - len(answered),
        "tokens_in": sum(call.tokens_in for call in answered),
        "tokens_out": sum(call.tokens_out for call in answered),
        "cost_usd": round(sum((call.cost_usd for call in answered), 0.0), 6),
        "texts_reaching_llm": reached,
        "share_of_texts_reaching_llm": round(_ratio(reached, len(scored)), 4),
        # reaching the LLM tier, minus the texts whose answer was reused (duplicate stories)
        "texts_calling_llm": paying,
        "share_of_texts_calling_llm": round(_ratio(paying, len(scored)), 4),
    }


def misclassified(scored: Sequence[Scored], limit: int) -> list[dict[str, object]]:
    """The first ``limit`` wrong predictions, in input order, for error analysis: an item's,
    or for an item with ``per_ticker``, each of its tickers' (the item's is its first's)."""
    return list(islice((wrong for s in scored for wrong in _wrong(s)), limit))


def _wrong(s: Scored) -> Iterator[dict[str, object]]:
    about = {"category": s.item.category} if s.item.category else {}
    if s.item.per_ticker:
        for pair in _ticker_pairs(s):
            if pair.predicted != pair.label:
                # predicted None: the analyzer returned no decision for this ticker
                yield {
                    "id": s.item.id,
                    "text": _shortened(s.item.text),
                    "ticker": pair.ticker,
                    "label": pair.label,
                    "predicted": pair.predicted,
                    "status": s.status.value,
                    **about,
                }
    elif s.predicted != s.item.label:
        yield {
            "id": s.item.id,
            "text": _shortened(s.item.text),
            "label": s.item.label,
            "predicted": s.predicted,
            "status": s.status.value,
            **({"tickers": list(s.item.tickers)} if s.item.tickers else {}),
            **about,
        }


# --- Per ticker: subjects labeled one by one, and raters that must get no signal ------------


@dataclass(frozen=True, slots=True)
class TickerPair:
    """One labeled ticker of one text; ``predicted`` is None when the analyzer returned none."""

    item: Item
    ticker: str
    label: Label
    predicted: Label | None


@dataclass(frozen=True, slots=True)
class RaterPair:
    """One rater of one text; ``predicted`` is None when the analyzer returned none for it."""

    item: Item
    rater: str
    predicted: Label | None


def ticker_pairs(scored: Sequence[Scored]) -> list[TickerPair]:
    """Every (text, labeled ticker) pair of the items with ``per_ticker``, in input order."""
    return [pair for s in scored for pair in _ticker_pairs(s)]


def _ticker_pairs(s: Scored) -> list[TickerPair]:
    if not s.per_target:  # the analysis failed: predicted hold, as the item is
        return [TickerPair(s.item, ticker, label, "hold") for ticker, label in s.item.per_ticker]
    returned = _returned(s)
    return [
        TickerPair(s.item, ticker, label, returned.get(ticker))
        for ticker, label in s.item.per_ticker
    ]


def rater_pairs(scored: Sequence[Scored]) -> list[RaterPair]:
    """Every (text, rater) pair, in input order; a failed analysis returned no ticker."""
    return [
        RaterPair(s.item, rater, _returned(s).get(rater)) for s in scored for rater in s.item.raters
    ]


def _returned(s: Scored) -> dict[str, Label]:
    return {target: _LABEL_OF[verdict] for target, verdict in s.per_target if target != WHOLE_TEXT}


def per_ticker_accuracy(pairs: Sequence[TickerPair]) -> dict[str, object]:
    """Pairs right (the ticker's decision has its label), and missed (no decision for it, which
    counts as wrong), overall and per category."""
    groups: dict[str, list[TickerPair]] = {}
    for pair in pairs:
        groups.setdefault(pair.item.category or _NO_CATEGORY, []).append(pair)
    return {
        **_ticker_figures(pairs),
        "by_category": {name: _ticker_figures(groups[name]) for name in sorted(groups)},
    }


def _ticker_figures(pairs: Sequence[TickerPair]) -> dict[str, object]:
    correct = sum(pair.predicted == pair.label for pair in pairs)
    return {
        "pairs": len(pairs),
        "correct": correct,
        "accuracy": round(_ratio(correct, len(pairs)), 4),
        "missed": sum(pair.predicted is None for pair in pairs),
    }


def rater_signals(pairs: Sequence[RaterPair], limit: int = 0) -> dict[str, object]:
    """Raters given a BUY or SELL (a HOLD, or no decision, is fine), and the first ``limit``."""
    false = [pair for pair in pairs if pair.predicted in ("buy", "sell")]
    result: dict[str, object] = {
        "pairs": len(pairs),
        "false_signals": len(false),
        "false_signal_rate": round(_ratio(len(false), len(pairs)), 4),
    }
    if limit:
        result["offending"] = [
            {"id": pair.item.id, "rater": pair.rater, "verdict": pair.predicted}
            for pair in false[:limit]
        ]
    return result


def _shortened(text: str) -> str:
    return text if len(text) <= _TEXT_SHOWN else text[: _TEXT_SHOWN - 1] + "…"


def describe(providers: Sequence[ProviderConfig], policy: str) -> str:
    """The configuration in a few words, never a key: ``offline`` or ``llm:<models> policy=P``."""
    if not providers:
        return "offline"
    models = ",".join(f"{p.name}/{p.model}" for p in providers)
    return f"llm:{models} policy={policy}"


# --- The driver ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EvalOptions:
    concurrency: int = 16  # texts analyzed at once: LLM calls in flight
    show_errors: int = 0  # misclassified examples to include


async def evaluate(
    settings: Settings, items: Sequence[Item], options: EvalOptions
) -> dict[str, object]:
    """Analyze every item with the analyzers the settings configure; the metrics, as JSON."""
    run = await predictions(settings, items, options.concurrency)
    analyzer = describe(run.providers, settings.llm_policy or "always")
    return report(run.scored, run.elapsed_s, analyzer, options.show_errors)


@dataclass(frozen=True, slots=True)
class Run:
    """Every item scored, the providers that served them, and the analysis time (start-up, such
    as building the lexicon, excluded)."""

    scored: list[Scored]
    providers: tuple[ProviderConfig, ...]
    elapsed_s: float


async def predictions(settings: Settings, items: Sequence[Item], concurrency: int = 16) -> Run:
    """Every item scored (per target too) with the configured analyzers."""
    stack = build_analyzers(settings, Metrics(), None)
    try:
        shot = OneShot(stack.analyzers)
        started = time.perf_counter()
        scored = await score_all(shot, items, concurrency)
        elapsed = time.perf_counter() - started
    finally:
        await stack.aclose()
    providers = tuple(stack.chain.providers) if stack.chain is not None else ()
    return Run(scored, providers, elapsed)


async def score_all(shot: OneShot, items: Sequence[Item], concurrency: int) -> list[Scored]:
    """Every item scored, at most ``concurrency`` at a time; results in input order."""
    gate = asyncio.Semaphore(concurrency)

    async def one(item: Item) -> Scored:
        async with gate:
            return await score(shot, item)

    return list(await asyncio.gather(*(one(item) for item in items)))


async def score(shot: OneShot, item: Item) -> Scored:
    """The prediction for one item: its one ticker's decision, else the whole text's.

    An item with ``per_ticker`` or ``raters`` is analyzed on the tickers found in its text (the
    post carries none, so ``OneShot`` extracts them as ``analyze`` does) and predicted from its
    first ticker: hold when the analyzer did not find it, the whole text's with no tickers.
    """
    post = Post(id=item.id, body=item.text, tickers=() if item.finds_tickers else item.tickers)
    try:
        outcome = await shot.outcome(post)
    except TransientError as exc:
        # Only the LLM chain raises this (LLM_FAILURE=retry): the text reached it, and failed.
        log.warning("analysis failed", id=item.id, error=str(exc))
        return Scored(item, "hold", Status.ERROR, reached_llm=True)
    decision = outcome.decisions.get(_target(item))
    whole = outcome.decisions[WHOLE_TEXT]
    targets = outcome.tickers or (WHOLE_TEXT,)
    return Scored(
        item,
        _LABEL_OF[decision.verdict] if decision else "hold",  # not found: no signal for it
        decision.status if decision else whole.status,
        outcome.calls,
        reached_llm=bool(outcome.calls),
        per_target=tuple((t, outcome.decisions[t].verdict) for t in targets),
    )


def _target(item: Item) -> str:
    """The ticker whose decision is the item's prediction, or the whole text's (``*``)."""
    if item.finds_tickers:
        return item.tickers[0] if item.tickers else WHOLE_TEXT
    return item.tickers[0] if len(item.tickers) == 1 else WHOLE_TEXT
