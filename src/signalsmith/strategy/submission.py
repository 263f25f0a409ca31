"""A strategy signal POSTed to /api/strategy-signals, as it is queued on STRATEGY_STREAM: checked
now as the pipeline will check it (a 422 names the field), queued as sent, with a new signal
id when it has none."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from signalsmith.intake import Submission
from signalsmith.normalize import utc_now
from signalsmith.strategy.signals import signal_from_values


def strategy_submission(
    max_bars: int, clock: Callable[[], datetime] = utc_now
) -> Callable[[dict[str, Any]], Submission]:
    """The parse of POST bodies: raises ``PoisonInput`` whose detail starts with the field."""

    def parse(values: dict[str, Any]) -> Submission:
        if values.get("signal_id") in (None, ""):
            values["signal_id"] = uuid.uuid4().hex
        signal = signal_from_values(values, now=clock(), max_bars=max_bars)
        data = json.dumps(values, ensure_ascii=False, separators=(",", ":"))
        return Submission(signal.signal_id, data, signal.symbol)

    return parse
