"""Who may read and write: the bearer token, or for reading only the dashboard's session
cookie, a keyed digest of the token that never reveals it."""

from __future__ import annotations

import time

import pytest
from fastapi import HTTPException
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import SecretStr

from signalsmith.query.access import (
    SESSION_S,
    ApiAccess,
    host_name,
    session_valid,
    session_value,
)

TOKEN = "s3cret-token"
GUARDED = ApiAccess(SecretStr(TOKEN), required=True)
NOW = int(time.time())


def _bearer(token: str) -> HTTPAuthorizationCredentials:
    return HTTPAuthorizationCredentials(scheme="Bearer", credentials=token)


def _status(access: ApiAccess, *args: object) -> int:
    try:
        access.check(*args)  # type: ignore[arg-type]
    except HTTPException as refused:
        return refused.status_code
    return 200


def test_the_session_is_a_dated_digest_of_the_token() -> None:
    value = session_value(TOKEN, NOW)
    assert TOKEN not in value
    assert value.startswith(f"{NOW}.")
    assert session_valid(value, TOKEN, NOW + 10)
    assert not session_valid(value, TOKEN + "x", NOW)
    assert not session_valid(value, TOKEN, NOW + SESSION_S + 1)  # it ends
    assert not session_valid(value, TOKEN, NOW - 3_600)  # issued in the future
    later = session_value(TOKEN, NOW + 5)
    assert not session_valid(later.split(".")[0] + "." + value.split(".")[1], TOKEN, NOW + 10)
    for forged in ("", ".", "x.y", f"{NOW}", f"{NOW}.", "9" * 40 + ".ab", "\xe9.ab", "١٢.ab"):
        assert not session_valid(forged, TOKEN, NOW)


@pytest.mark.parametrize(
    ("credentials", "session", "method", "status"),
    [
        (None, None, "GET", 401),
        (_bearer(TOKEN), None, "GET", 200),
        (_bearer(TOKEN), None, "POST", 200),
        (_bearer("wrong"), None, "GET", 401),
        (None, session_value(TOKEN, NOW), "GET", 200),
        (None, session_value(TOKEN, NOW), "HEAD", 200),
        (None, session_value(TOKEN, NOW), "POST", 401),  # the cookie never writes
        (None, session_value("other", NOW), "GET", 401),
        (None, "", "GET", 401),
        (None, session_value(TOKEN, NOW - SESSION_S - 10), "GET", 401),  # ended
        (None, "\xe9" * 64, "GET", 401),
        (_bearer("wrong"), session_value(TOKEN, NOW), "GET", 401),  # a wrong bearer is not excused
    ],
)
def test_who_gets_in(
    credentials: HTTPAuthorizationCredentials | None, session: str | None, method: str, status: int
) -> None:
    assert _status(GUARDED, credentials, session, method) == status


def test_open_on_loopback_without_a_token_and_refused_beyond_it() -> None:
    assert _status(ApiAccess(None, required=False), None, None, "POST") == 200
    assert _status(ApiAccess(None, required=True), None, session_value("", NOW), "GET") == 503


def test_the_sign_in_compares_the_token() -> None:
    assert GUARDED.accepts_token(TOKEN)
    assert not GUARDED.accepts_token(TOKEN + " ")
    assert not GUARDED.accepts_token("")
    assert not ApiAccess(None).accepts_token("")
    assert not GUARDED.accepts_token("\udcff")


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("127.0.0.1:8080", "127.0.0.1"),
        ("localhost", "localhost"),
        ("[::1]:8080", "::1"),
        ("[::1]", "::1"),
        ("::1", "::1"),
        ("evil.example:80", "evil.example"),
        ("[::1", "[::1"),
    ],
)
def test_the_host_headers_name(header: str, name: str) -> None:
    assert host_name(header) == name
