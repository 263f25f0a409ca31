"""Who may use the query API, the live feed and the dashboard: anyone on a loopback-bound server
without API_TOKEN; otherwise only a request bearing the token (compared in constant time) or,
for reading, the dashboard's session cookie, which a browser gets by giving the token once at
``/login``. The token is never shown, logged or echoed; the cookie holds a keyed digest of it,
never the token itself."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import time
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import SecretStr
from starlette.types import ASGIApp, Receive, Scope, Send

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="signalsmith"'}
_REFUSED = {"WWW-Authenticate": 'Bearer realm="signalsmith", error="invalid_token"'}
SESSION_COOKIE = "signalsmith_session"
SESSION_S = 12 * 3_600  # a dashboard session lasts this long, then the token is asked again
_SKEW_S = 60
_READS = frozenset({"GET", "HEAD"})
_bearer = HTTPBearer(
    auto_error=False, description="API_TOKEN, required when HTTP_HOST is not loopback"
)
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def is_loopback(host: str) -> bool:
    """True when a server bound to ``host`` is reachable from this machine only. A name other
    than ``localhost`` is not resolved: it counts as reachable from elsewhere."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:  # "", "0.0.0.0"-like names, host names
        return False


def session_value(token: str, issued: int) -> str:
    """The session cookie's value: when it was issued (epoch seconds) and a digest of that
    keyed by ``token``, so a stolen cookie does not reveal the token, ends ``SESSION_S`` after
    it was issued, and a new token ends every session."""
    message = f"signalsmith dashboard session {issued}".encode()
    return f"{issued}.{hmac.new(token.encode(), message, hashlib.sha256).hexdigest()}"


def session_valid(value: str, token: str, now: float) -> bool:
    """Whether ``value`` is a session issued with ``token`` less than ``SESSION_S`` ago."""
    issued_text, _, _ = value.partition(".")
    if not issued_text.isascii() or not issued_text.isdigit() or len(issued_text) > 12:
        return False
    issued = int(issued_text)
    if not -_SKEW_S <= now - issued <= SESSION_S:
        return False
    given = value.encode("utf-8", "replace")
    return hmac.compare_digest(given, session_value(token, issued).encode())


@dataclass(frozen=True, slots=True)
class ApiAccess:
    """``required``: every request needs the token (API_TOKEN is set, or the server listens
    beyond loopback, where a missing token is a 503)."""

    token: SecretStr | None = None
    required: bool = False

    def check(
        self,
        credentials: HTTPAuthorizationCredentials | None,
        session: str | None = None,
        method: str = "GET",
    ) -> None:
        """Raises the 503 (no token configured) or 401 the request deserves, if any. The
        session cookie is accepted for reading only: a page elsewhere cannot make a browser
        write with it (it is also SameSite=Strict)."""
        if not self.required:
            return
        expected = self._expected()
        if session is not None and method in _READS and credentials is None and expected:
            if session_valid(session, expected.decode(), time.time()):
                return
            raise HTTPException(401, "the session has ended: sign in again at /", _REFUSED)
        if not expected:
            raise HTTPException(
                503,
                "the query API is served beyond loopback (HTTP_HOST) without a token: "
                "set API_TOKEN",
            )
        if credentials is None:
            raise HTTPException(401, "send Authorization: Bearer <API_TOKEN>", _CHALLENGE)
        # Header values arrive as latin-1 text: these are the bytes the client sent.
        given = credentials.credentials.encode("latin-1", "replace")
        if not hmac.compare_digest(given, expected):
            raise HTTPException(401, "the bearer token is not API_TOKEN", _REFUSED)

    def session(self) -> str:
        """A new session cookie's value ("" without a token)."""
        expected = self._expected()
        return session_value(expected.decode(), int(time.time())) if expected else ""

    def accepts_token(self, given: str) -> bool:
        """Whether ``given`` is API_TOKEN (constant time)."""
        expected = self._expected()
        return bool(expected) and hmac.compare_digest(given.encode("utf-8", "replace"), expected)

    def _expected(self) -> bytes:
        """API_TOKEN's bytes (b"" when none is set)."""
        return self.token.get_secret_value().encode() if self.token else b""


class LoopbackHosts:
    """ASGI: on a server that asks for no token, a request must name this machine in its Host
    header. A page elsewhere whose name was made to point at 127.0.0.1 (DNS rebinding) sends
    its own name, and gets 421 instead of the decisions. A request without a Host passes (a
    probe speaking HTTP/1.0)."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            host = dict(scope.get("headers") or ()).get(b"host", b"").decode("latin-1")
            if host and not is_loopback(host_name(host)):
                refused = JSONResponse(
                    {"detail": "this server answers only requests addressed to this machine"},
                    421,
                )
                await refused(scope, receive, send)
                return
        await self._app(scope, receive, send)


def host_name(host: str) -> str:
    """The name in a Host header, without its port (``[::1]:8080`` → ``::1``)."""
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host
