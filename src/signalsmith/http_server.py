"""The HTTP endpoints' own thread, event loop and listening socket, and the pacing that keeps a
flood of requests from taking the pipeline's CPU: the pipeline and this thread share one GIL, so
every request served is time the pipeline does not run."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import heapq
import itertools
import socket
import threading
import time
from collections.abc import Iterator

import structlog
import uvicorn
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from signalsmith.errors import ConfigError

log = structlog.get_logger("signalsmith")

# Pacing: the thread may use at most _CPU_SHARE of one CPU, averaged over time. The CPU it spent
# (parsing, rendering, answering, its event loop) is paid back by waiting before the next batch
# of at most _BATCH requests is let through. A closed-loop client waits for its answer before
# asking again, so the wait slows a flood down at no CPU cost; a lone probe on a quiet server is
# answered at once from the credit of up to _CREDIT_S of idle time. Each wake-up of this thread
# also makes the pipeline's thread hand over the GIL, so requests go through in batches: under a
# flood, batches of 16 served about 1.6 times as many requests as batches of 4 for the same CPU
# (measured), but a probe waits behind the batch in hand and its pay-back (~0.8 s for 16), so 8.
_CPU_SHARE = 0.02
_BATCH = 8
_CREDIT_S = 0.25
# The query API (/api/...) answers people and dashboards from the database: a page costs a few
# ms of this thread's CPU, which at 2% would make the next request wait a quarter of a second.
# It has a budget of its own, a quarter of one CPU, measured around its own requests and not
# charged to the probes' budget: a flood of queries slows queries, never /livez or /health.
_API_PREFIX = "/api/"
# The dashboard's page and files share the API's budget, charged for their own CPU only: the
# rest's budget also pays for what else the thread did (the live feed's reader), so after a
# quiet spell a page's files would wait seconds behind it.
_PAGE = ("/", "/login")
_PAGE_PREFIX = "/assets/"
_INTAKE = frozenset({"/api/insights", "/api/strategy-signals"})  # POST: a producer's input
_STREAMED = frozenset({"/api/live"})  # GET: open for as long as the client reads
_API_CPU_SHARE = 0.25
# Beyond this many open connections uvicorn answers 503 at once: what is queued stays bounded.
_MAX_CONNECTIONS = 1024
_BACKLOG = 2048
_STOP_GRACE_S = 1  # requests still running at shutdown are cancelled after this
_BODY_WAIT_S = 1.0  # how long a request's body may take once it has its turn
_JOIN_TIMEOUT_S = 3.0

# (when its connection was last served, minus its arrival number, its waiter): least recently
# served connection first; among equals (fresh connections) the newest first, as under overload
# the oldest waiters are the likeliest to have given up already.
_Turn = tuple[float, int, "asyncio.Future[None]"]


class CpuLedger:
    """CPU time spent by requests that another budget pays for (this thread's, in seconds)."""

    def __init__(self) -> None:
        self.spent = 0.0


class Paced:
    """ASGI middleware: requests wait for their turn, which comes only as often as the thread's
    CPU budget allows, a few at a time. With ``own`` the budget pays for the CPU measured
    around its own requests, which it records there; with ``excluding``, for the thread's CPU
    less what that ledger recorded. The connection served least recently goes first, and
    a fresh one before any served one, so a probe passes a flood of keep-alive clients instead
    of queueing behind all of them. Runs on one event loop (the HTTP thread's); ``close`` may
    come from any thread."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        share: float = _CPU_SHARE,
        batch: int = _BATCH,
        own: CpuLedger | None = None,
        excluding: CpuLedger | None = None,
    ) -> None:
        self._app = app
        self._share = share
        self._batch = batch
        self._own = own
        self._excluding = excluding
        self._queue: list[_Turn] = []
        self._arrivals = itertools.count()
        self._served: dict[object, float] = {}  # client address -> when its last answer ended
        self._running = 0
        self._free_at = 0.0
        self._cpu_seen: float | None = None
        self._wakeup: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        client = scope.get("client")
        loop = self._loop = asyncio.get_running_loop()
        turn = loop.create_future()
        last = self._served.get(client, float("-inf"))
        heapq.heappush(self._queue, (last, -next(self._arrivals), turn))
        self._dispatch()
        try:
            await turn
            try:
                first = await asyncio.wait_for(receive(), _BODY_WAIT_S)
            except TimeoutError:  # a body promised and never sent must not hold up the rest
                await _answer(send, 408)
                return
            if first["type"] == "http.disconnect":
                return  # the client gave up while it waited: answering would only cost CPU
            await self._serve(scope, _replay(first, receive), send)
        finally:
            if not turn.cancelled():  # it had its turn: give the place back
                self._running -= 1
                if len(self._served) > 4 * _MAX_CONNECTIONS:  # addresses of closed connections
                    self._served.clear()
                self._served[client] = loop.time()
                self._dispatch()

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._own is None:
            await self._app(scope, receive, send)
            return
        started = time.thread_time()  # includes what ran meanwhile: it errs on paying more
        try:
            await self._app(scope, receive, send)
        finally:
            self._own.spent += time.thread_time() - started

    def close(self) -> None:
        """From now on, let every request through at once: the server is stopping."""
        self._closing = True
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._dispatch)

    def _dispatch(self) -> None:
        """Let the next batch through once the previous one is done and the budget allows."""
        if self._loop is None or (self._wakeup is not None and not self._closing):
            return
        if self._running and not self._closing:
            return
        now = self._loop.time()
        if self._queue and now < self._free_at and not self._closing:
            self._wakeup = self._loop.call_at(self._free_at, self._wake)
            return
        if self._queue:
            self._charge(now)
        admitted = 0
        while self._queue and (self._closing or admitted < self._batch):
            turn = heapq.heappop(self._queue)[2]
            if not turn.done():  # a request cancelled while waiting leaves its turn behind
                turn.set_result(None)
                self._running += 1
                admitted += 1

    def _wake(self) -> None:
        self._wakeup = None
        self._dispatch()

    def _charge(self, now: float) -> None:
        """Push the next batch back by the CPU spent since the last one, over the share."""
        cpu = self._own.spent if self._own is not None else self._thread_cpu()
        spent = 0.0 if self._cpu_seen is None else max(0.0, cpu - self._cpu_seen)
        self._cpu_seen = cpu
        self._free_at = max(self._free_at, now - _CREDIT_S) + spent / self._share

    def _thread_cpu(self) -> float:
        """This thread's CPU time, less what the excluded ledger's requests spent."""
        excluded = self._excluding.spent if self._excluding is not None else 0.0
        return time.thread_time() - excluded


class PathPaced:
    """Two budgets on one thread: the query API's and the dashboard's (``/api/...``, ``/``,
    ``/assets/...``) and everyone else's; and no
    budget for a producer POSTing input (``_INTAKE``): that is the pipelines' own input, which
    costs the same whether it comes over HTTP or Redis, and a producer must be answered at once
    (a budget would only queue it in front of the server). Nor for the live feed
    (``_STREAMED``): a stream would hold its turn for as long as it is open; LIVE_MAX_CLIENTS
    bounds it instead. Open connections stay bounded."""

    def __init__(self, app: ASGIApp) -> None:
        ledger = CpuLedger()
        self._app = app
        self._api = Paced(app, share=_API_CPU_SHARE, own=ledger)
        self._rest = Paced(app, excluding=ledger)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if (path in _INTAKE and scope.get("method") == "POST") or path in _STREAMED:
            await self._app(scope, receive, send)
            return
        own = path.startswith((_API_PREFIX, _PAGE_PREFIX)) or path in _PAGE
        paced = self._api if own else self._rest
        await paced(scope, receive, send)

    def close(self) -> None:
        self._api.close()
        self._rest.close()


def _replay(first: Message, receive: Receive) -> Receive:
    """``receive`` with ``first`` (already received) handed out again first."""
    pending = [first]

    async def replayed() -> Message:
        return pending.pop() if pending else await receive()

    return replayed


async def _answer(send: Send, status: int) -> None:
    await send({"type": "http.response.start", "status": status, "headers": []})
    await send({"type": "http.response.body", "body": b""})


def bind_listener(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (port 0: any free one). A host that is not an address
    of this machine, or a port that is taken or not allowed, is the operator's mistake."""
    where = f"{host}:{port}"
    try:
        found = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except (socket.gaierror, UnicodeError) as exc:
        reason = exc.strerror if isinstance(exc, socket.gaierror) else str(exc)
        raise ConfigError(
            "HTTP_HOST", f"cannot listen on {where}: {reason} (name an address of this machine)"
        ) from None
    family, kind, proto, _name, address = found[0]
    listener = socket.socket(family, kind, proto)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(address)
        listener.listen(_BACKLOG)
    except OSError as exc:
        listener.close()
        if exc.errno == errno.EADDRNOTAVAIL:
            raise ConfigError(
                "HTTP_HOST", f"cannot listen on {where}: {exc.strerror} (not this machine's)"
            ) from None
        raise ConfigError(
            "HTTP_PORT", f"cannot listen on {where}: {exc.strerror} (choose another, or 0)"
        ) from None
    return listener


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the service owns SIGINT/SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def listen_url(host: str, listener: socket.socket) -> str:
    """The base URL a client on this machine uses for ``listener``."""
    port = listener.getsockname()[1]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class HttpThread:
    """uvicorn serving ``app`` on ``listener`` from its own thread and event loop, so that the
    pipeline's event loop never waits on a request, nor a request on the pipeline."""

    def __init__(self, app: ASGIApp, listener: socket.socket, host: str) -> None:
        self._paced = PathPaced(app)
        config = uvicorn.Config(
            self._paced,
            log_level="warning",
            access_log=False,
            lifespan="off",
            proxy_headers=False,
            server_header=False,
            limit_concurrency=_MAX_CONNECTIONS,
            timeout_graceful_shutdown=_STOP_GRACE_S,
        )
        self._server = _Server(config)
        self._listener = listener
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._serve, name="signalsmith-http", daemon=True)
        self.url = listen_url(host, listener)

    def _serve(self) -> None:
        try:
            self._server.run(sockets=[self._listener])
        except BaseException as exc:  # the worker goes on without HTTP; start() re-raises it
            self._failure = exc
            log.exception("the HTTP server stopped")
        finally:
            self._listener.close()

    async def start(self) -> None:
        """Returns once the server accepts connections."""
        self._thread.start()
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError("the HTTP server stopped during start-up") from self._failure
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        """Stop accepting, answer what is queued without pacing, and wait for the thread."""
        self._paced.close()
        self._server.should_exit = True
        await asyncio.to_thread(self._thread.join, _JOIN_TIMEOUT_S)
        if self._thread.is_alive():
            self._server.force_exit = True
            await asyncio.to_thread(self._thread.join, _JOIN_TIMEOUT_S)
