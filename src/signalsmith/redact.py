"""URLs made safe to show: user info and key-like query values masked, and the secret values a
URL carries listed for the log scrubber. Pure; never raises on a malformed URL.
"""

from __future__ import annotations

import re
from urllib.parse import SplitResult, unquote, unquote_plus, urlsplit

MASK = "***"
_SECRET_PARAMS = frozenset(
    {
        "password",
        "pass",
        "pwd",
        "passwd",
        "key",
        "api_key",
        "apikey",
        "auth",
        "token",
        "access_token",
        "secret",
        "client_secret",
        "sig",
        "signature",
        "credential",
    }
)
_SECRET_SUFFIXES = ("_key", "_token", "_secret")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")
_EMPTY_AUTHORITY = re.compile(r"[\x00-\x20]*(?:[A-Za-z][A-Za-z0-9+.-]*:)?//")


def is_secret_param(name: str) -> bool:
    """True for a query parameter whose value is a credential (``api-key`` is ``api_key``)."""
    normal = unquote_plus(name).strip().lower().replace("-", "_")
    return normal in _SECRET_PARAMS or normal.endswith(_SECRET_SUFFIXES)


def redact_url(url: str) -> str:
    """``url`` with its password (or a lone user name, often a token) and the values of key-like
    query parameters replaced by ``***``; a URL that cannot be read safely keeps only its scheme."""
    parts = _split(url)
    if parts is None:
        return _masked(url)
    userinfo, at, hostport = parts.netloc.rpartition("@")
    text = f"{parts.scheme}:" if parts.scheme else ""
    if parts.netloc or _EMPTY_AUTHORITY.match(url):  # as in unix:///run/redis.sock
        text += "//" + (f"{_masked_userinfo(userinfo)}@{hostport}" if at else hostport)
    text += parts.path
    if parts.query:
        text += "?" + _masked_params(parts.query)
    if parts.fragment:
        text += "#" + _masked_params(parts.fragment)
    return text


def url_secrets(url: str) -> list[str]:
    """Every secret value inside ``url``, raw and percent-decoded, for the log scrubber."""
    parts = _split(url)
    if parts is None:
        return _unique(_guessed_secrets(url))
    found: list[str] = []
    userinfo, at, _hostport = parts.netloc.rpartition("@")
    if at:
        user, colon, password = userinfo.partition(":")
        secret = password if colon else user
        found += [secret, unquote(secret)]
    for text in (parts.query, parts.fragment):
        for name, value in _params(text):
            if is_secret_param(name):
                found += [value, unquote_plus(value), unquote(value)]
    return _unique(found)


def _split(url: str) -> SplitResult | None:
    """The URL's parts, or None when they cannot be trusted to put a secret where it is masked:
    urlsplit raised, or an ``@`` outside the authority (a password holding ``/``, ``?`` or ``#``
    ends the authority early and would otherwise be shown as a host, a path or a query)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if "@" in parts.netloc:
        return parts
    if "@" in url:
        return None
    return parts


def _masked(url: str) -> str:
    scheme, sep, _rest = url.partition("://")
    return f"{scheme}://{MASK}" if sep and _SCHEME.fullmatch(scheme) else MASK


def _masked_userinfo(userinfo: str) -> str:
    user, colon, _password = userinfo.partition(":")
    # A user name alone is how many services take a token (https://<token>@host), and no rule
    # tells a name from a token: mask it too.
    return f"{user}:{MASK}" if colon else MASK


def _params(text: str) -> list[tuple[str, str]]:
    pairs = []
    for piece in text.split("&"):
        name, eq, value = piece.partition("=")
        if eq:
            pairs.append((name, value))
    return pairs


def _masked_params(text: str) -> str:
    if "=" not in text:
        return text
    pieces = []
    for piece in text.split("&"):
        name, eq, _value = piece.partition("=")
        pieces.append(f"{name}={MASK}" if eq and is_secret_param(name) else piece)
    return "&".join(pieces)


def _guessed_secrets(url: str) -> list[str]:
    """For a URL that could not be read: everything after the scheme, and what sits where a
    password would (between ``//`` and the last ``@``, after the first ``:``)."""
    _scheme, _sep, rest = url.partition("://")
    found = [rest or url]
    userinfo, at, _tail = rest.rpartition("@")
    if at:
        user, colon, password = userinfo.partition(":")
        found += [password if colon else user]
    return found


def _unique(values: list[str]) -> list[str]:
    return list(dict.fromkeys(value for value in values if value))
