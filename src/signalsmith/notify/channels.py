"""NOTIFY_URLS → channels: each apprise URL with a stable id free of secrets, a masked form to
show, the secret values it carries (for the log scrubber) and its message length limit. Pure.

Apprise URLs keep their credentials in every part: ``discord://<id>/<token>``,
``tgram://<bot token>/<chat>``, ``slack://<T>/<B>/<token>``, ``json://user:pass@host/path``, headers
as ``?+Authorization=...``. So nothing past the host is ever shown, a host that is no host name
(a webhook id, a bot token) is masked too, and the id is the scheme, the host name when there is
one, and a hash of the whole URL.

Message length limits, in UTF-16 code units (what Discord and Telegram count; never fewer than
code points), for the title and the body together:

=====================  =======  ===========================================================
scheme(s)              limit    why
=====================  =======  ===========================================================
discord                2000     a message's content limit; the title counts against it
slack                  3000     a message takes 40000, but a section block shows 3000 and a
                                longer notification is unreadable in a channel anyway
tgram                  4096     a message's limit; apprise puts the title inside the body
mailto, mailtos        65536    no protocol limit; bounded so a runaway text stays readable
json(s), form(s),      32768    the HTTP body of a webhook: receivers commonly cap request
xml(s)                          bodies, and apprise's own default for these services
anything else          1000     unknown services: conservative (SMS-like services take less,
                                and apprise's own per-service limit applies on top)
=====================  =======  ===========================================================

The sender lowers a limit further to apprise's own figure for the service when that is smaller.
A text over the limit is cut at a word boundary and ends in "…" (``message.fit``), never split
into several messages: one message per (record, channel) is what makes a redelivery safe to
skip; a half-delivered series could not be. Insights (at most 100 words) fit every limit.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import unquote, unquote_plus

from signalsmith.errors import ConfigError

SETTING: Final = "NOTIFY_URLS"
MASK: Final = "***"
DEFAULT_LIMIT: Final = 1_000
LIMITS: Final[Mapping[str, int]] = {
    "discord": 2_000,
    "slack": 3_000,
    "tgram": 4_096,
    "mailto": 65_536,
    "mailtos": 65_536,
    "json": 32_768,
    "jsons": 32_768,
    "form": 32_768,
    "forms": 32_768,
    "xml": 32_768,
    "xmls": 32_768,
}
# Services also reachable by their own https:// webhook URLs, which apprise recognises.
_NATIVE_HOSTS: Final[Mapping[str, str]] = {
    "discord.com": "discord",
    "discordapp.com": "discord",
    "hooks.slack.com": "slack",
    "api.telegram.org": "tgram",
}
_DIGEST_CHARS: Final = 10
_LABEL_CHARS: Final = 40
_SCHEME: Final = re.compile(r"[A-Za-z][A-Za-z0-9+.-]{0,31}")
# A comma or semicolon starts a new URL only where one begins: ``mailto://...?to=a@x,b@y`` is one.
_NEXT_URL: Final = re.compile(r"[,;]+(?=[A-Za-z][A-Za-z0-9+.-]{0,31}://)")
_HOST_NAME: Final = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z][A-Za-z0-9-]{0,62}\.?"
)
_PORT: Final = re.compile(r"[0-9]{1,5}")
# A path segment or parameter value that is a plain word ("hooks", "api", "text") is no secret,
# and scrubbing it would blank that word out of every log line.
_PLAIN_WORD: Final = re.compile(r"[a-z_-]{1,12}")
_AUTH_SCHEMES: Final = frozenset({"basic", "bearer", "bot", "token"})  # "Bearer <token>"


@dataclass(frozen=True, slots=True)
class Channel:
    """One notification target. ``url`` holds its secrets: only the sender reads it, and it is
    left out of the repr so that no log line or error can carry it by accident."""

    id: str  # [a-z0-9.-]: part of group, key and stream names
    scheme: str
    shown: str  # what logs, errors and dead letters may say
    limit: int  # title + body, in UTF-16 code units
    url: str = field(repr=False)

    def __str__(self) -> str:
        return self.shown


def parse_channels(text: str) -> tuple[Channel, ...]:
    """The channels of NOTIFY_URLS (URLs separated by commas, semicolons or whitespace), each
    once. Raises ``ConfigError`` naming the offending item by position, never quoting it."""
    channels: dict[str, Channel] = {}
    for position, url in enumerate(split_urls(text), start=1):
        channel = parse_channel(url, position)
        channels.setdefault(channel.id, channel)
    return tuple(channels.values())


def split_urls(text: str) -> list[str]:
    """The URLs in ``text``, in order."""
    urls: list[str] = []
    for word in text.split():
        urls += [piece for piece in _NEXT_URL.split(word.strip(",;")) if piece]
    return urls


def parse_channel(url: str, position: int = 1) -> Channel:
    """One URL as a channel; ``position`` only names it in an error."""
    scheme, sep, rest = url.partition("://")
    if not sep or not _SCHEME.fullmatch(scheme) or not rest.strip("/"):
        raise ConfigError(SETTING, f"item {position} is not a scheme://... URL apprise could read")
    scheme = scheme.lower()
    host = _host_name(_authority(rest)[1])
    service = _NATIVE_HOSTS.get(host.partition(":")[0].lower(), scheme) if host else scheme
    return Channel(
        id=channel_id(scheme, host, url),
        scheme=scheme,
        shown=f"{scheme}://{host or MASK}{'/…' if _beyond_host(rest) else ''}",
        limit=LIMITS.get(service, DEFAULT_LIMIT),
        url=url,
    )


def channel_id(scheme: str, host: str, url: str) -> str:
    """``<scheme>[-<host>]-<hash of the whole URL>``: stable while the URL stays the same, and
    two channels on one host (two webhooks of one server) apart."""
    digest = hashlib.sha256(url.encode("utf-8", "surrogatepass")).hexdigest()[:_DIGEST_CHARS]
    label = re.sub(r"[^a-z0-9.-]+", "-", host.lower()).strip("-.")[:_LABEL_CHARS]
    safe_scheme = re.sub(r"[^a-z0-9]+", "", scheme.lower()) or "url"
    return "-".join(part for part in (safe_scheme, label, digest) if part)


def channel_secrets(url: str) -> list[str]:
    """Every value in ``url`` that may be a credential, raw and percent-decoded, for the log
    scrubber: the password (or a lone user name), a host that is no host name, every path
    segment and parameter value that is not a plain word, and every header value."""
    _scheme, _sep, rest = url.partition("://")
    userinfo, hostport, tail = _authority(rest)
    found = _userinfo_secrets(userinfo)
    if not _host_name(hostport):
        found += [hostport, *hostport.split(":")]
    tail, _, fragment = tail.partition("#")
    path, _, query = tail.partition("?")
    found += [segment for segment in path.split("/") if not _PLAIN_WORD.fullmatch(segment)]
    found += _parameter_secrets(query) + _parameter_secrets(fragment)
    decoded = [unquote(value) for value in found] + [unquote_plus(value) for value in found]
    # "Bearer <token>": the token alone may be logged too.
    words = [word for value in decoded for word in value.split() if word != value]
    words = [w for w in words if not _PLAIN_WORD.fullmatch(w) and w.lower() not in _AUTH_SCHEMES]
    return list(dict.fromkeys(value for value in found + decoded + words if len(value) >= 4))


def url_list_secrets(text: str) -> list[str]:
    """``channel_secrets`` of every URL in NOTIFY_URLS; never raises (the scrubber learns them
    before the URLs are checked)."""
    found: list[str] = []
    for url in split_urls(text):
        found += channel_secrets(url)
    return list(dict.fromkeys(found))


def _authority(rest: str) -> tuple[str, str, str]:
    """``rest`` (after ``://``) as user info, host[:port] and the remainder."""
    end = len(rest)
    for mark in "/?#":
        found = rest.find(mark)
        if found != -1:
            end = min(end, found)
    authority, tail = rest[:end], rest[end:]
    userinfo, _at, hostport = authority.rpartition("@")
    return userinfo, hostport, tail


def _host_name(hostport: str) -> str:
    """``hostport`` when it names a host (a DNS name, an IP address, localhost; a numeric port
    allowed), else "" (a webhook id or a bot token standing where a host would)."""
    host, colon, port = hostport.rpartition(":") if ":" in hostport else (hostport, "", "")
    if hostport.startswith("[") and "]" in hostport:  # [v6]:port
        host, _, after = hostport[1:].partition("]")
        colon, port = (":", after[1:]) if after.startswith(":") else ("", "")
    if colon and not _PORT.fullmatch(port):
        return ""
    if host.lower() == "localhost" or _HOST_NAME.fullmatch(host) or _is_ip(host):
        return hostport.lower()
    return ""


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _beyond_host(rest: str) -> bool:
    """True when the URL says more than its host (user info, a path, parameters)."""
    userinfo, _hostport, tail = _authority(rest)
    return bool(userinfo or tail.strip("/"))


def _userinfo_secrets(userinfo: str) -> list[str]:
    if not userinfo:
        return []
    user, colon, password = userinfo.partition(":")
    # A user name alone is how several services take a token: treat it as one.
    return [password] if colon else [user]


def _parameter_secrets(text: str) -> list[str]:
    found: list[str] = []
    for piece in text.split("&"):
        name, eq, value = piece.partition("=")
        if not eq:
            continue
        if name.startswith("+") or not _PLAIN_WORD.fullmatch(value):
            found.append(value)
    return found
