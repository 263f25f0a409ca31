"""What the tiers save: the share of posts that reach the LLM under LLM_POLICY=uncertain, and the
share of the ``always`` policy's actionable verdicts that ``uncertain`` still produces.

    python bench/bench_tiers.py [--concurrency N]

Starts ``signalsmith fake-llm --answers`` on loopback as an oracle (it answers the human label of
every text it knows, confidence 0.9, so retention is measured against a strong reference rather
than the lexicon the fake otherwise echoes), then analyzes each set twice, with
LLM_POLICY=always and =uncertain, in process and without Redis (the story index and reply reuse
are then this process's own):
  dev     the bundled eval set's development half (the uncertain rule was tuned on it)
  test    the held-out half (never tuned on)
  demo    the bundled demo posts (malformed lines left out), labeled by
          tests/data/demo_expectations.jsonl line by line; tickers from the expectations
and prints one JSON object per set:
  posts, llm_share (texts reaching the LLM tier: asked, or served a reused answer),
  paid_share (texts that caused a new call), calls (what the fake answered) per policy, and
  retention = actionable (BUY/SELL) verdicts of ``always`` that ``uncertain`` also gives, same
  item and ticker, over the actionable verdicts of ``always``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx

from signalsmith.domain import Verdict
from signalsmith.errors import PoisonInput
from signalsmith.evaluate import Item, Scored, load_items, predictions
from signalsmith.normalize import to_post
from signalsmith.observe.logging import configure_logging
from signalsmith.settings import load_settings
from signalsmith.source.files import jsonl_fields

ROOT = Path(__file__).resolve().parents[1]
DEMO_POSTS = ROOT / "src" / "signalsmith" / "data" / "demo_posts.jsonl"
DEMO_LABELS = ROOT / "tests" / "data" / "demo_expectations.jsonl"
POLICIES = ("always", "uncertain")


def demo_items() -> tuple[list[Item], list[dict[str, object]]]:
    """The demo posts as labeled items, and their answer records (per-ticker labels included)."""
    items: list[Item] = []
    answers: list[dict[str, object]] = []
    posts = DEMO_POSTS.read_text(encoding="utf-8").splitlines()
    labels = DEMO_LABELS.read_text(encoding="utf-8").splitlines()
    for line, label_line in zip(posts, labels, strict=True):
        expected = json.loads(label_line)
        if expected["label"] not in ("buy", "sell", "hold"):
            continue  # malformed on purpose: the worker dead-letters them
        try:
            post = to_post(jsonl_fields(line), f"demo-{expected['line']}")
        except PoisonInput:
            continue
        tickers = tuple(expected["tickers"])
        items.append(Item(post.id, post.text, expected["label"], tickers))
        answers.append(
            {
                "text": post.text,
                "label": expected["label"],
                "tickers": list(tickers),
                "per_ticker": expected["per_ticker"],
            }
        )
    return items, answers


def eval_answers(items: Sequence[Item]) -> Iterator[dict[str, object]]:
    """The oracle's answers: each ticker's own label where the item gives one."""
    for item in items:
        answer: dict[str, object] = {
            "text": item.text,
            "label": item.label,
            "tickers": list(item.tickers),
        }
        if item.per_ticker:
            answer["per_ticker"] = dict(item.per_ticker)
        yield answer


class Oracle:
    """``signalsmith fake-llm --answers FILE`` in its own process on a free loopback port."""

    def __init__(self, answers: Path) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        command = [sys.executable, "-m", "signalsmith", "fake-llm", "--port", str(self.port)]
        self._process = subprocess.Popen(
            [*command, "--answers", str(answers)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.admin = f"http://127.0.0.1:{self.port}/_fake"
        for _ in range(400):
            try:
                httpx.post(f"{self.admin}/reset").raise_for_status()
            except httpx.TransportError:
                time.sleep(0.05)
            else:
                return
        self.stop()
        raise RuntimeError("the fake LLM did not start")

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def reset(self) -> None:
        httpx.post(f"{self.admin}/reset").raise_for_status()

    def stats(self) -> dict[str, int]:
        stats = httpx.get(f"{self.admin}/stats").json()
        return {"calls": stats["calls"], "labeled": stats.get("labeled", 0)}

    def stop(self) -> None:
        self._process.terminate()
        self._process.wait(timeout=10)


def retention(always: Sequence[Scored], uncertain: Sequence[Scored]) -> tuple[int, int]:
    """(actionable verdicts of ``always`` that ``uncertain`` repeats, actionable of ``always``)."""
    kept = total = 0
    for left, right in zip(always, uncertain, strict=True):
        theirs = dict(right.per_target)
        for target, verdict in left.per_target:
            if verdict is Verdict.HOLD:
                continue
            total += 1
            kept += theirs.get(target) is verdict
    return kept, total


def _share(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


async def run_policy(
    oracle: Oracle, items: Sequence[Item], policy: str, concurrency: int
) -> tuple[list[Scored], dict[str, object]]:
    os.environ["LLM_POLICY"] = policy
    oracle.reset()
    scored = (await predictions(load_settings(), items, concurrency)).scored
    reached = sum(s.reached_llm for s in scored)
    paid = sum(any(c.provider and not c.cached for c in s.calls) for s in scored)
    fake = oracle.stats()
    return scored, {
        "llm_share": _share(reached, len(scored)),
        "paid_share": _share(paid, len(scored)),
        "calls": fake["calls"],
        "answered_from_labels": fake["labeled"],
    }


async def bench_set(
    name: str, oracle: Oracle, items: Sequence[Item], concurrency: int
) -> dict[str, object]:
    runs = {policy: await run_policy(oracle, items, policy, concurrency) for policy in POLICIES}
    kept, total = retention(runs["always"][0], runs["uncertain"][0])
    return {
        "set": name,
        "posts": len(items),
        **{policy: figures for policy, (_scored, figures) in runs.items()},
        "actionable_always": total,
        "actionable_kept": kept,
        "retention": _share(kept, total),
    }


def _environment(base_url: str) -> None:
    for key in [k for k in os.environ if k.endswith(("_API_KEY", "_BASE_URL"))]:
        del os.environ[key]
    os.environ.update(
        {
            "LLM_PROVIDERS": "openai",
            "OPENAI_BASE_URL": base_url,
            "OPENAI_API_KEY": "bench",
            "LLM_CACHE": "readwrite",
            "LOG_LEVEL": "WARNING",
        }
    )


async def main(concurrency: int) -> None:
    configure_logging("WARNING", "console", [])
    sets = {"dev": load_items("dev"), "test": load_items("test")}
    demo, demo_answers = demo_items()
    with tempfile.TemporaryDirectory() as tmp:
        answers = Path(tmp) / "answers.jsonl"
        records = [*eval_answers(sets["dev"]), *eval_answers(sets["test"]), *demo_answers]
        answers.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
        oracle = Oracle(answers)
        try:
            _environment(oracle.base_url)
            for name, items in [*sets.items(), ("demo", demo)]:
                print(json.dumps(await bench_set(name, oracle, items, concurrency)), flush=True)
        finally:
            oracle.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=16)
    asyncio.run(main(parser.parse_args().concurrency))
