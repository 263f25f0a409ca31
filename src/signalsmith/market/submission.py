"""A market request POSTed to /api/insights, as it is queued on MARKET_STREAM: seed 001's
payload validated as the pipeline will read it, with a new correlation id when it has none."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic_core import to_json

from signalsmith.errors import PoisonInput
from signalsmith.intake import Submission
from signalsmith.market.requests import request_from_values
from signalsmith.market.schedule import SCHEDULED_PREFIX


def market_submission(values: dict[str, Any]) -> Submission:
    """Raises ``PoisonInput`` (``bad_request``, ``unknown_prompt``) as the pipeline would; an id
    of INSIGHT_SCHEDULE's (``sched-...``) is refused, so a POST cannot take a tick's place."""
    given = values.get("correlation_id")
    if given is None or given == "":
        values["correlation_id"] = uuid.uuid4().hex
    elif isinstance(given, str) and given.startswith(SCHEDULED_PREFIX):
        raise PoisonInput("bad_request", f"correlation_id: {SCHEDULED_PREFIX}... is the schedule's")
    request = request_from_values(values)
    data = to_json(request.model_dump(exclude_none=True)).decode()
    return Submission(request.correlation_id, data, request.product_id)
