"""POSTing a request to a pipeline (``/api/insights``, ``/api/strategy-signals``): the body read
up to its limit, queued through the pipeline's ``StreamIntake``, and each failure as the status
it deserves: 413 too large, 422 not a request (the detail names the field), 503 Redis down."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Final

from fastapi import HTTPException, Request, Response

from signalsmith.errors import PoisonInput, TransientError
from signalsmith.intake import Queued, RequestState, StreamIntake
from signalsmith.query import render

RETRY_AFTER_S: Final = "1"
_JSON: Final = "application/json"


async def queue_posted(request: Request, intake: StreamIntake) -> Queued:
    body = await _body(request, intake.max_body_bytes)
    with redis_unavailable():
        try:
            return await intake.submit(body)
        except PoisonInput as exc:
            raise HTTPException(422, f"{exc.reason}: {exc.detail}") from None


def json_response(
    body: Mapping[str, object], status: int, headers: dict[str, str] | None = None
) -> Response:
    return Response(render.json_body(body), status_code=status, media_type=_JSON, headers=headers)


async def state_response(
    intake: StreamIntake | None, name: str, key: str, unknown: str, *, queued: bool = False
) -> Response:
    """A request's answer while its result is not in the store: 200 with the reason once it
    failed, 202 (Retry-After) while pending, processing or decided; 404 ``unknown`` when it was
    never queued over HTTP (or Redis is not asked) and is not known to be ``queued``."""
    state: RequestState | None = None
    if intake is not None:
        with redis_unavailable():
            state = await intake.state(key)
    if state is None and queued:
        state = RequestState("pending")
    if state is None:
        raise HTTPException(404, unknown)
    shown: dict[str, object] = {name: key, "state": state.state}
    if state.state == "failed":
        return json_response({**shown, "reason": state.reason, "detail": state.detail}, 200)
    if state.state == "processing":
        shown["deliveries"] = state.deliveries
    return json_response(shown, 202, {"Retry-After": RETRY_AFTER_S})


async def _body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it passes ``limit`` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"the body is larger than {limit} bytes")
    received = bytearray()
    async for chunk in request.stream():
        received += chunk
        if len(received) > limit:
            raise HTTPException(413, f"the body is larger than {limit} bytes")
    return bytes(received)


@contextlib.contextmanager
def redis_unavailable() -> Iterator[None]:
    """``TransientError`` (Redis down) as a 503 with Retry-After."""
    try:
        yield
    except TransientError as exc:
        raise HTTPException(503, str(exc), {"Retry-After": RETRY_AFTER_S}) from None
