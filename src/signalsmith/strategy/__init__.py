"""The strategy pipeline (seed 002): a trading system's own signals, rated without ever making
it wait.

signal (STRATEGY_STREAM or POST /api/strategy-signals) → too old? → offline rating (rules over
the indicators) → the model's rating (when providers are configured) → commit: the envelope on
ENHANCED_STREAM and the decision log. Fan-out consumers keep the SQL tables and the CSV files.

The record every consumer reads is ``strategy.contract.StrategyMeta``, in ``meta.strategy`` of
a v1 envelope with ``decision.kind = "strategy"`` and ``correlation_id`` = the signal id.
"""
