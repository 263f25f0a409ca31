"""Who may use the query API: anyone on a loopback-bound server; on any other, only a request
bearing API_TOKEN (compared in constant time). The token is never shown, logged or echoed."""

from __future__ import annotations

import hmac
import ipaddress
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import SecretStr

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="signalsmith"'}
_REFUSED = {"WWW-Authenticate": 'Bearer realm="signalsmith", error="invalid_token"'}
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


@dataclass(frozen=True, slots=True)
class ApiAccess:
    """``required``: the server listens beyond loopback, so every request needs the token."""

    token: SecretStr | None = None
    required: bool = False

    def check(self, credentials: HTTPAuthorizationCredentials | None) -> None:
        """Raises the 503 (no token configured) or 401 the request deserves, if any."""
        if not self.required:
            return
        expected = self.token.get_secret_value().encode() if self.token else b""
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
