"""A market request POSTed to /api/insights, as it is queued on MARKET_STREAM: seed 001's
payload validated as the pipeline will read it, with a new correlation id when it has none."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic_core import to_json

from signalsmith.intake import Submission
from signalsmith.market.requests import request_from_values


def market_submission(values: dict[str, Any]) -> Submission:
    """Raises ``PoisonInput`` (``bad_request``, ``unknown_prompt``) as the pipeline would."""
    values.setdefault("correlation_id", uuid.uuid4().hex)
    request = request_from_values(values)
    data = to_json(request.model_dump(exclude_none=True)).decode()
    return Submission(request.correlation_id, data, request.product_id)
