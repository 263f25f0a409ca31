"""The README's quality table: ``signalsmith eval`` on a bundled half, offline and tiered.

    python bench/bench_quality.py [--set test|dev]

Runs the real command (``python -m signalsmith eval SET``) three times and prints one JSON line
per configuration with its figures overall and per category:
  offline            the lexicon alone (the default configuration)
  tiered/uncertain   lexicon, then the LLM only where the lexicon cannot settle it
  tiered/always      lexicon and the LLM on every relevant text
The LLM is ``signalsmith fake-llm --answers`` on loopback answering the set's own labels: a
perfect model. So the tiered rows are an upper bound on what an LLM adds, and show what it costs
(the share of texts that reach it); they are not a measurement of any real model.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bench_tiers import Oracle

DATA = Path(__file__).resolve().parents[1] / "src" / "signalsmith" / "data" / "eval"
CONFIGS = {
    "offline": {},
    "tiered/uncertain": {"LLM_POLICY": "uncertain"},
    "tiered/always": {"LLM_POLICY": "always"},
}


def _eval(half: str, extra: dict[str, str]) -> dict[str, object]:
    dropped = {"LLM_PROVIDERS", "LLM_PROVIDER", "SIGNALSMITH_CONFIG", "GROQ_API_KEY"}
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    ran = subprocess.run(
        [sys.executable, "-m", "signalsmith", "eval", half],
        env={**env, **extra},
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(ran.stdout))


def _row(name: str, metrics: dict[str, object]) -> dict[str, object]:
    def figures(m: dict[str, object]) -> dict[str, object]:
        directional = m["directional"]
        assert isinstance(directional, dict)
        return {
            "n": m["n"],
            "accuracy": m["accuracy"],
            "macro_f1": m["macro_f1"],
            "directional_accuracy": directional["accuracy"],
            "coverage": directional["coverage"],
        }

    categories = metrics.get("by_category") or {}
    assert isinstance(categories, dict)
    llm = metrics["llm"]
    assert isinstance(llm, dict)
    return {
        "config": name,
        "all": figures(metrics),
        **{category: figures(m) for category, m in sorted(categories.items())},
        "llm_share": llm.get("share_of_texts_reaching_llm"),
        "texts_per_s": metrics["texts_per_s"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", default="test", choices=("test", "dev"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        answers = Path(scratch) / "answers.jsonl"
        answers.write_text((DATA / f"{args.set}.jsonl").read_text(encoding="utf-8"))
        oracle = Oracle(answers)
        try:
            llm = {
                "LLM_PROVIDERS": "openai",
                "OPENAI_BASE_URL": oracle.base_url,
                "OPENAI_API_KEY": "bench",
                "LLM_CACHE": "off",
            }
            for name, extra in CONFIGS.items():
                env = {**llm, **extra} if extra else {}
                print(json.dumps(_row(name, _eval(args.set, env))), flush=True)
        finally:
            oracle.stop()


if __name__ == "__main__":
    main()
