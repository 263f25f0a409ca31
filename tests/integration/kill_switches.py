"""Kill switches at a worker's external boundaries, for crash tests that must not depend on
timing: a TCP proxy in front of Redis that SIGKILLs the worker when it sends a chosen command
(and never forwards it), and a JSON webhook that SIGKILLs it when a message arrives."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

Command = list[bytes]  # a command as the client sent it: its name, then its arguments
_CHUNK = 65_536
_KILL_WAIT_S = 10.0


def kill(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL ``process`` and wait until it is gone, so that nothing it had in hand can still
    reach the network after this returns."""
    os.kill(process.pid, signal.SIGKILL)
    process.wait(_KILL_WAIT_S)


def parse_command(data: bytes | bytearray, at: int = 0) -> tuple[Command, int] | None:
    """The RESP command (an array of bulk strings, as every client sends) starting at ``at`` and
    the offset just past it; None while it has not fully arrived."""
    line_end = data.find(b"\r\n", at)
    if line_end < 0:
        return None
    if data[at : at + 1] != b"*":
        raise ValueError(f"not a RESP command: {bytes(data[at : at + 20])!r}")
    count = int(data[at + 1 : line_end])
    parts: Command = []
    at = line_end + 2
    for _ in range(count):
        line_end = data.find(b"\r\n", at)
        if line_end < 0:
            return None
        size = int(data[at + 1 : line_end])  # data[at] is "$"
        start = line_end + 2
        if len(data) < start + size + 2:
            return None
        parts.append(bytes(data[start : start + size]))
        at = start + size + 2
    return parts, at


def commit_of(group: str) -> Callable[[Command], bool]:
    """Matches the engine's commit for ``group``: a call of the commit script (EVALSHA, or EVAL
    when the script is sent whole), whose first argument is the group (see commit.lua). The
    script's XACK runs inside Redis, so "XACK" itself never crosses the wire."""
    name = group.encode()

    def matches(command: Command) -> bool:
        if len(command) < 3 or command[0].upper() not in (b"EVALSHA", b"EVAL"):
            return False
        arguments = command[3 + int(command[2]) :]
        return bool(arguments) and arguments[0] == name

    return matches


def committed_ids(command: Command) -> list[str]:
    """The entry ids a commit script call (see ``commit_of``) would acknowledge: ARGV[3] is
    the batch, a JSON list of [entry id, records, updates]."""
    arguments = command[3 + int(command[2]) :]
    return [str(commit[0]) for commit in json.loads(arguments[2])]


class RedisTap:
    """A TCP proxy in front of a Redis server. It forwards every byte both ways until a client
    sends a command ``cut`` matches; then it SIGKILLs the armed process, drops that command and
    everything any client sends afterwards, and closes the connections. Without ``cut`` it is
    a plain forwarding proxy."""

    def __init__(self, redis_url: str, cut: Callable[[Command], bool] | None = None) -> None:
        self._upstream = urlsplit(redis_url)
        self._cut = cut
        self._victim: subprocess.Popen[bytes] | None = None
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self.cut_command: Command | None = None
        self.fired = threading.Event()
        self.url = self._proxied_url(int(self._listener.getsockname()[1]))
        threading.Thread(target=self._accept, daemon=True).start()

    def arm(self, process: subprocess.Popen[bytes]) -> None:
        """The process to SIGKILL when the cut comes."""
        self._victim = process

    def close(self) -> None:
        self._listener.close()
        with self._lock:
            _close(*self._sockets)

    def __enter__(self) -> RedisTap:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _proxied_url(self, port: int) -> str:
        upstream = self._upstream
        if upstream.scheme == "unix":  # an embedded server: the db travels as a parameter
            db = dict(p.split("=", 1) for p in upstream.query.split("&") if "=" in p).get("db")
            return f"redis://127.0.0.1:{port}/{db or 0}"
        userinfo = upstream.netloc.rpartition("@")[0]
        netloc = f"{userinfo}@127.0.0.1:{port}" if userinfo else f"127.0.0.1:{port}"
        return upstream._replace(netloc=netloc).geturl()

    def _connect_upstream(self) -> socket.socket:
        upstream = self._upstream
        if upstream.scheme == "unix":
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.connect(upstream.path)
            return sock
        return socket.create_connection((upstream.hostname or "127.0.0.1", upstream.port or 6379))

    def _accept(self) -> None:
        while True:
            try:
                client, _address = self._listener.accept()
            except OSError:  # closed
                return
            server = self._connect_upstream()
            with self._lock:
                self._sockets += [client, server]
            threading.Thread(target=self._to_server, args=(client, server), daemon=True).start()
            threading.Thread(target=self._to_client, args=(server, client), daemon=True).start()

    def _to_server(self, client: socket.socket, server: socket.socket) -> None:
        buffer = bytearray()
        try:
            while (chunk := client.recv(_CHUNK)) and not self.fired.is_set():
                buffer += chunk
                complete = 0
                while (parsed := parse_command(buffer, complete)) is not None:
                    command, end = parsed
                    if self._cut is not None and self._cut(command):
                        server.sendall(buffer[:complete])  # the commands before it
                        self._fire(command)
                        return
                    complete = end
                server.sendall(buffer[:complete])
                del buffer[:complete]
        except OSError:
            pass  # either side went away: the other is closed below
        finally:
            _close(client, server)

    def _to_client(self, server: socket.socket, client: socket.socket) -> None:
        try:
            while chunk := server.recv(_CHUNK):
                client.sendall(chunk)
        except OSError:
            pass  # either side went away: the other is closed below
        finally:
            _close(client, server)

    def _fire(self, command: Command) -> None:
        self.cut_command = command
        self.fired.set()
        if self._victim is not None:
            kill(self._victim)
        self.close()


def _close(*sockets: socket.socket) -> None:
    for sock in sockets:
        with contextlib.suppress(OSError):  # already shut down, or never connected
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()


@dataclass(frozen=True)
class Received:
    path: str
    at: float  # time.monotonic() on arrival
    title: str
    message: str


class Webhook:
    """A local JSON webhook (apprise's ``json://``): records every POST. Once armed with a
    process, it SIGKILLs that process when the next message arrives and answers nothing."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self._lock = threading.Lock()
        self._victim: subprocess.Popen[bytes] | None = None
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_class(self))
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def url(self, path: str) -> str:
        return f"json://127.0.0.1:{self.port}/{path}"

    def arm(self, process: subprocess.Popen[bytes]) -> None:
        """Kill ``process`` when the next message arrives, before answering it."""
        self._victim = process

    def messages(self) -> list[Received]:
        with self._lock:
            return list(self.received)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def arrived(self, received: Received) -> subprocess.Popen[bytes] | None:
        """Records the message; the process to kill before answering, if armed."""
        with self._lock:
            self.received.append(received)
            victim, self._victim = self._victim, None
        return victim


def _handler_class(hook: Webhook) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            payload = json.loads(self.rfile.read(length) or b"{}")
            received = Received(
                self.path, time.monotonic(), payload.get("title", ""), payload.get("message", "")
            )
            victim = hook.arrived(received)
            if victim is not None:
                kill(victim)
                self.close_connection = True
                return  # the sender is gone: no answer
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_args: object) -> None:
            return

    return Handler
